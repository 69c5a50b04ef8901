package messaging

import (
	"flag"

	"ecogrid/internal/flagenv"
)

// RegisterFlags defines the NATS URL (one server or a cluster's list) and
// stream replica flags.
func RegisterFlags(fs *flag.FlagSet, url *string, replicas *int) {
	flagenv.String(fs, url, "nats-url", "NATS_URL", DefaultURL, "NATS server URL (JetStream enabled); for a cluster, several comma separated (nats://a:4222,nats://b:4222,nats://c:4222): the client connects to one and moves to another when it fails")
	flagenv.Int(fs, replicas, "stream-replicas", "ECOGRID_STREAM_REPLICAS", 0, "JetStream stream replicas; 0 chooses by the server: 1 on a single server, 3 on a cluster. An existing stream is scaled up, never down")
}

// RegisterCredentialFlags defines the NATS user and password flags. The
// user name is the service's role (gridd, cased); the password is a secret,
// never shown in -help or logs.
func RegisterCredentialFlags(fs *flag.FlagSet, c *Credentials) {
	flagenv.String(fs, &c.User, "nats-user", "NATS_USER", "", "NATS user: the service's role (gridd or cased); empty connects without credentials")
	flagenv.Secret(fs, &c.Password, "nats-password", "NATS_PASSWORD", "NATS user's password")
}
