package server

import (
	"flag"
	"time"

	"ecogrid/internal/flagenv"
)

// RegisterFlags defines a server's flags; environment variables are named
// <envPrefix>_GRPC_ADDR, <envPrefix>_METRICS_ADDR and so on, so gridd and
// cased can share a host's environment.
func (c *Config) RegisterFlags(fs *flag.FlagSet, envPrefix, grpcAddr, metricsAddr string) {
	e := func(name string) string { return envPrefix + "_" + name }
	flagenv.String(fs, &c.GRPCAddr, "grpc-addr", e("GRPC_ADDR"), grpcAddr, "gRPC listen address")
	flagenv.String(fs, &c.MetricsAddr, "metrics-addr", e("METRICS_ADDR"), metricsAddr, "Prometheus /metrics listen address (empty disables)")
	flagenv.String(fs, &c.TLSCertFile, "tls-cert", e("TLS_CERT"), "", "PEM certificate file; with -tls-key enables TLS")
	flagenv.String(fs, &c.TLSKeyFile, "tls-key", e("TLS_KEY"), "", "PEM private key file")
	flagenv.Duration(fs, &c.ShutdownTimeout, "shutdown-timeout", e("SHUTDOWN_TIMEOUT"), 30*time.Second, "how long in-flight calls may run after SIGTERM")
	flagenv.Int(fs, &c.MaxRecvMsgBytes, "max-recv-bytes", e("MAX_RECV_BYTES"), 4<<20, "largest request message in bytes")
	flagenv.Int(fs, &c.MaxConcurrentStreams, "max-concurrent-streams", e("MAX_CONCURRENT_STREAMS"), 512, "concurrent calls per client connection")
}
