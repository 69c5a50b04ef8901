package gridd_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"ecogrid/internal/auth"
	"ecogrid/internal/daemon"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/gridd"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/server"
)

// Bad configuration stops gridd at start with one line that says what to do.
func TestBadConfigurationFailsFastWithOneLine(t *testing.T) {
	t.Parallel()
	nats := natstest.Start(t)
	goodDB := dbtest.NewURL(t)
	srv := server.Config{GRPCAddr: "127.0.0.1:0"}
	pem, err := auth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.Config{Keys: auth.KeyConfig{PrivateKeyPEM: string(pem)}}
	photos := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  gridd.Config
		want string
	}{
		{"unreachable database", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, NATSURL: nats.URL()}}, "cannot reach PostgreSQL"},
		{"bad database URL", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: "postgres://a b"}, NATSURL: nats.URL()}}, "not a valid PostgreSQL URL"},
		{"missing database", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: "postgres://postgres@127.0.0.1:5432/ecogrid_does_not_exist?sslmode=disable"}, NATSURL: nats.URL()}}, "gridctl migrate"},
		{"unreachable NATS", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: goodDB}, NATSURL: "nats://127.0.0.1:1"}}, "cannot reach NATS"},
		{"no token key", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: goodDB}, NATSURL: nats.URL()}, PhotoDir: photos}, "no token key configured"},
		{"unreachable photo bucket", gridd.Config{Config: daemon.Config{Server: srv, Database: database.Config{URL: goodDB}, NATSURL: nats.URL(), Auth: keys}, PhotoDir: photos,
			PhotoS3: blob.S3Config{Endpoint: "http://127.0.0.1:1", Bucket: "photos", AccessKey: "k", SecretKey: "s", Timeout: 2 * time.Second}}, "ECOGRID_PHOTO_S3_ENDPOINT"},
		{"port in use", gridd.Config{Config: daemon.Config{Server: server.Config{GRPCAddr: "127.0.0.1:" + strings.TrimPrefix(nats.URL(), "nats://127.0.0.1:")}, Database: database.Config{URL: goodDB}, NATSURL: nats.URL(), Auth: keys}, PhotoDir: photos}, "another server using the port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := gridd.Run(ctx, tc.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				t.Fatal("started with bad configuration")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}
}
