package messaging

import (
	"flag"

	"ecogrid/internal/flagenv"
)

// RegisterFlags defines the NATS URL and stream replica flags.
func RegisterFlags(fs *flag.FlagSet, url *string, replicas *int) {
	flagenv.String(fs, url, "nats-url", "NATS_URL", DefaultURL, "NATS server URL (JetStream enabled)")
	flagenv.Int(fs, replicas, "stream-replicas", "ECOGRID_STREAM_REPLICAS", 1, "JetStream stream replicas (3 in production)")
}
