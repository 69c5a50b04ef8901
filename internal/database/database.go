// Package database is ecogrid's PostgreSQL plumbing: the pgx pool, the
// PostGIS geometry codec, the one transaction helper every store uses, and
// the embedded goose migrations.
package database

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is used when DATABASE_URL is not set: the local PostgreSQL with
// trust authentication.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/ecogrid?sslmode=disable"

// Config configures the pool.
type Config struct {
	URL             string        // libpq URL or key=value string (DATABASE_URL)
	MaxConns        int32         // pool size; 0 keeps pgx's default (max(4, cores))
	ConnectTimeout  time.Duration // how long Open waits for the first connection
	MigrateOnStart  bool          // apply pending migrations when a server starts
	ApplicationName string        // shown in pg_stat_activity
}

// Querier is satisfied by *pgxpool.Pool, *pgxpool.Conn and pgx.Tx, so store
// functions can run inside or outside a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TxBeginner is satisfied by *pgxpool.Pool and pgx.Tx (a savepoint).
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// InTx runs fn in a READ COMMITTED transaction, committing when fn returns
// nil and rolling back otherwise. It is the transaction helper every store
// uses; a single read needs none.
func InTx(ctx context.Context, db TxBeginner, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db, pgx.TxOptions{}, fn)
}

// Open connects a pool, checks that the server answers and that PostGIS is
// available, and registers the geometry codec on every connection. Errors
// are one line that says what to do.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %q is not a valid PostgreSQL URL: %v", Redact(cfg.URL), err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	if cfg.ApplicationName != "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 || pcfg.ConnConfig.ConnectTimeout > timeout {
		pcfg.ConnConfig.ConnectTimeout = timeout
	}
	pcfg.AfterConnect = registerTypes
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %v", Redact(cfg.URL), err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		if strings.Contains(err.Error(), "does not exist") {
			return nil, fmt.Errorf("database in %s does not exist: run 'gridctl migrate' to create and migrate it", Redact(cfg.URL))
		}
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (%v): start it or set DATABASE_URL", Redact(cfg.URL), firstLine(err))
	}
	if err := CheckPostGIS(pctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// CheckPostGIS fails with an install hint when the server has no PostGIS.
func CheckPostGIS(ctx context.Context, db Querier) error {
	var available bool
	var major int
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'),
		current_setting('server_version_num')::int / 10000`).Scan(&available, &major)
	if err != nil {
		return fmt.Errorf("checking for PostGIS: %v", firstLine(err))
	}
	if !available {
		return fmt.Errorf("PostGIS is not installed on the PostgreSQL %d server: run 'apt-get install postgresql-%d-postgis-3' as root", major, major)
	}
	return nil
}

// Redact hides the password in a database URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if strings.Contains(raw, "password=") {
			return "(connection string with password)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return s
}

// CreateIfMissing creates the database named in url when it does not exist,
// connecting to the server's postgres database to do so.
func CreateIfMissing(ctx context.Context, rawURL string) error {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL %q is not a valid PostgreSQL URL: %v", Redact(rawURL), err)
	}
	name := cfg.Database
	if name == "" || name == "postgres" {
		return nil
	}
	cfg.Database = "postgres"
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at %s (%v): start it or set DATABASE_URL", Redact(rawURL), firstLine(err))
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %v", name, firstLine(err))
	}
	return nil
}
