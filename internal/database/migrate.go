package database

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"ecogrid/migrations"
)

// Migrate applies every pending migration embedded in the binary. It is
// idempotent, and safe when several replicas start at once: goose holds a
// PostgreSQL session advisory lock while it works. Afterwards the pool's
// connections are reset so they pick up types created by the migrations
// (PostGIS geometry on a fresh database).
//
// goose was chosen over golang-migrate and tern because it runs plain SQL
// files from an embed.FS through database/sql (pgx's stdlib adapter), has a
// provider API with a session locker for concurrent starts, allows
// out-of-order files (bounded contexts number their own ranges), and
// reports what it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("applying migrations: %w", err)
	}
	pool.Reset()
	var applied []string
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}
