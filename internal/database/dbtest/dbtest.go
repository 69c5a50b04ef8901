// Package dbtest gives each integration test its own fresh database on the
// real PostgreSQL/PostGIS at DATABASE_URL (default: the local server, user
// postgres).
//
// One migrated template database is built per migration set (its name
// carries a hash of the embedded migrations, so every test binary of a run
// shares it and a changed migration builds a new one); each test gets a
// `CREATE DATABASE … TEMPLATE` clone, serialised by an advisory lock, and
// dropped WITH (FORCE) in t.Cleanup. Migrations run once, not per test.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database"
	"ecogrid/migrations"
)

// advisory lock key serialising template builds and clones across test binaries.
const lockKey = 0x6563_6f67_7269_64 // "ecogrid"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// AdminURL is the server the tests use: DATABASE_URL, or the local
// PostgreSQL with user postgres.
func AdminURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// withDatabase returns base with its database name replaced.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}

func adminConn(ctx context.Context) (*pgx.Conn, error) {
	u, err := withDatabase(AdminURL(), "postgres")
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("dbtest: cannot reach PostgreSQL at %s (set DATABASE_URL): %w", database.Redact(u), err)
	}
	return conn, nil
}

func ensureTemplate(ctx context.Context) (string, error) {
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "ecogrid_tmpl_" + hash
	conn, err := adminConn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Build under a temporary name and rename when complete, so a crashed
	// build never leaves a half-migrated template behind.
	building := name + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	u, err := withDatabase(AdminURL(), building)
	if err != nil {
		return "", err
	}
	pool, err := database.Open(ctx, database.Config{URL: u})
	if err != nil {
		return "", err
	}
	_, err = database.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("dbtest: migrating template: %w", err)
	}
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`COMMENT ON DATABASE %s IS 'ecogrid test template built %d'`, name, time.Now().Unix())); err != nil {
		return "", err
	}
	// Drop templates of other migration sets once they are a day old: a
	// younger one may belong to a test run still going on this server.
	rows, err := conn.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE datname LIKE 'ecogrid\_tmpl\_%' AND datname <> $1`, name)
	if err != nil {
		return "", err
	}
	type tmpl struct{ name, comment string }
	old, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tmpl, error) {
		var t tmpl
		return t, r.Scan(&t.name, &t.comment)
	})
	if err != nil {
		return "", err
	}
	for _, o := range old {
		var built int64
		if _, err := fmt.Sscanf(o.comment, "ecogrid test template built %d", &built); err != nil || time.Since(time.Unix(built, 0)) < 24*time.Hour {
			continue
		}
		conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{o.name}.Sanitize()+` WITH (FORCE)`) //nolint:errcheck
	}
	return name, nil
}

// NewURL creates a fresh, migrated database for tb and returns its URL. The
// database is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx) })
	if templateErr != nil {
		tb.Fatalf("dbtest: %v", templateErr)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "ecogrid_test_" + hex.EncodeToString(rnd[:])
	conn, err := adminConn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		tb.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+templateName)
	conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey) //nolint:errcheck
	if err != nil {
		tb.Fatalf("dbtest: creating %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := adminConn(ctx)
		if err != nil {
			tb.Errorf("dbtest: dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("dbtest: dropping %s: %v", name, err)
		}
	})
	u, err := withDatabase(AdminURL(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// NewPool returns a pool on a fresh, migrated database of its own, closed
// when the test ends (before the database is dropped).
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	u := NewURL(tb)
	pool, err := database.Open(context.Background(), database.Config{URL: u})
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// Kept returns the URL of a database kept between test runs, for a
// benchmark whose data takes minutes to build (the audit's 10M-record
// chain): "ecogrid_kept_<name>_<migrations hash>", cloned from the
// migrated template on first use and never dropped by the test. note is
// what SetKeptNote stored with it when its build completed; "" means the
// database is new (or an earlier build stopped half way, in which case it
// is dropped and cloned afresh) and the caller must build it, then call
// SetKeptNote. Kept databases of other migration sets under the same name
// are dropped. Drop one by hand (DROP DATABASE) to force a rebuild.
func Kept(tb testing.TB, name string) (u, note string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx) })
	if templateErr != nil {
		tb.Fatalf("dbtest: %v", templateErr)
	}
	full := keptName(name)
	conn, err := adminConn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		tb.Fatal(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey) //nolint:errcheck
	rows, err := conn.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE datname LIKE $1`, "ecogrid\\_kept\\_"+strings.ReplaceAll(name, "_", "\\_")+"\\_%")
	if err != nil {
		tb.Fatal(err)
	}
	type kept struct{ name, note string }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kept, error) {
		var k kept
		return k, r.Scan(&k.name, &k.note)
	})
	if err != nil {
		tb.Fatal(err)
	}
	exists := false
	for _, k := range found {
		if k.name == full && strings.HasPrefix(k.note, keptMark) {
			note, exists = strings.TrimPrefix(k.note, keptMark), true
			continue
		}
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{k.name}.Sanitize()+` WITH (FORCE)`); err != nil {
			tb.Fatalf("dbtest: dropping %s: %v", k.name, err)
		}
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{full}.Sanitize()+` TEMPLATE `+templateName); err != nil {
			tb.Fatalf("dbtest: creating %s: %v", full, err)
		}
	}
	if u, err = withDatabase(AdminURL(), full); err != nil {
		tb.Fatal(err)
	}
	return u, note
}

// keptMark starts the comment of a kept database whose build completed.
const keptMark = "ecogrid kept database: "

func keptName(name string) string {
	hash, err := migrationsHash()
	if err != nil {
		panic(err)
	}
	return "ecogrid_kept_" + name + "_" + hash[:8]
}

// SetKeptNote marks the kept database name as built, with note (read back
// by Kept).
func SetKeptNote(tb testing.TB, name, note string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := adminConn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `COMMENT ON DATABASE `+pgx.Identifier{keptName(name)}.Sanitize()+` IS '`+
		strings.ReplaceAll(keptMark+note, "'", "''")+`'`); err != nil {
		tb.Fatal(err)
	}
}
