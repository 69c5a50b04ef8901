package messaging

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process nats-server.
type EmbeddedConfig struct {
	Host     string // default 127.0.0.1
	Port     int    // 0 picks a free port
	StoreDir string // JetStream file storage
}

// StartEmbedded runs a nats-server with JetStream on disk inside this
// process, as `gridctl dev` and the tests use it. JetStream fsyncs every
// write (sync_interval: always): by default it acknowledges before it
// fsyncs, and acknowledged messages have been lost in crash tests.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "ecogrid-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server on %s:%d did not become ready", cfg.Host, cfg.Port)
	}
	return s, nil
}
