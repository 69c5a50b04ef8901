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

// RegisterCredentialFlags defines the NATS user and password flags. The
// user name is the service's role (gridd, cased); the password is a secret,
// never shown in -help or logs.
func RegisterCredentialFlags(fs *flag.FlagSet, c *Credentials) {
	flagenv.String(fs, &c.User, "nats-user", "NATS_USER", "", "NATS user: the service's role (gridd or cased); empty connects without credentials")
	flagenv.Secret(fs, &c.Password, "nats-password", "NATS_PASSWORD", "NATS user's password")
}
