package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/structerr"
)

func TestMigrationsAreIdempotent(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	applied, err := database.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v, want nothing", applied)
	}
	var postgis string
	if err := pool.QueryRow(ctx, `SELECT postgis_version()`).Scan(&postgis); err != nil {
		t.Fatalf("postgis not enabled: %v", err)
	}
}

func TestMigrationsApplyToEmptyDatabase(t *testing.T) {
	t.Parallel()
	// A database created without the template: every migration runs.
	admin, err := pgx.Connect(context.Background(), dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	url := dbtest.NewURL(t)
	pool, err := database.Open(context.Background(), database.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	// Empty it: drop every schema the migrations made, and goose's table.
	if _, err := pool.Exec(ctx, `DROP SCHEMA grid, ledger, people, auth, field, cases, outbox, gis, webhooks CASCADE;
		DROP TABLE goose_db_version; DROP EXTENSION postgis CASCADE`); err != nil {
		t.Fatal(err)
	}
	pool.Reset()
	applied, err := database.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("no migration applied to an empty database")
	}
	again, err := database.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run: applied %v, err %v", again, err)
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := dbtest.NewPool(t), dbtest.NewPool(t)
	ctx := context.Background()
	if _, err := a.Exec(ctx, `CREATE TABLE public.isolation_probe (x int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'isolation_probe'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table created in one test database is visible in another")
	}
}

func TestGeometryRoundTrip(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	mp := geom.NewMultiPolygon(geom.XY).SetSRID(4326)
	poly := geom.NewPolygon(geom.XY)
	if _, err := poly.SetCoords([][]geom.Coord{{{116, 39}, {117, 39}, {117, 40}, {116, 40}, {116, 39}}}); err != nil {
		t.Fatal(err)
	}
	if err := mp.Push(poly); err != nil {
		t.Fatal(err)
	}
	var back *geom.MultiPolygon
	var srid int
	var covers bool
	err := pool.QueryRow(ctx, `SELECT $1::geometry, ST_SRID($1::geometry), ST_Covers($1::geometry, ST_SetSRID(ST_MakePoint(116.5, 39.5), 4326))`, mp).
		Scan(&back, &srid, &covers)
	if err != nil {
		t.Fatal(err)
	}
	if srid != 4326 || !covers {
		t.Fatalf("srid %d covers %v", srid, covers)
	}
	if back.NumPolygons() != 1 || back.Polygon(0).NumCoords() != 5 {
		t.Fatalf("round trip lost coordinates: %v", back.FlatCoords())
	}
	// A point without SRID is stored as 4326.
	if err := pool.QueryRow(ctx, `SELECT ST_SRID($1::geometry)`, geom.NewPointFlat(geom.XY, []float64{116, 39})).Scan(&srid); err != nil || srid != 4326 {
		t.Fatalf("srid %d err %v", srid, err)
	}
	var null geom.T = geom.NewPoint(geom.XY)
	if err := pool.QueryRow(ctx, `SELECT NULL::geometry`).Scan(&null); err != nil || null != nil {
		t.Fatalf("NULL geometry: %v %v", null, err)
	}
}

func TestDeadlineCancelsSQL(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := pool.Exec(ctx, `SELECT pg_sleep(30)`)
	if err == nil {
		t.Fatal("pg_sleep(30) finished inside a 200 ms deadline")
	}
	if got := structerr.Code(err); got != codes.DeadlineExceeded && got != codes.Canceled {
		t.Fatalf("code %v (%v), want DeadlineExceeded", got, err)
	}
	// The server side statement is gone, not left running.
	var running int
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active' AND datname = current_database()`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if running != 0 {
		t.Fatal("statement still running after its deadline")
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE public.t (x int)`); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO public.t VALUES (1)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.t`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows %d err %v, want 0", n, err)
	}
}

func TestOpenFailsFastWithOneLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{"postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", "cannot reach PostgreSQL"},
		{"not a url ::", "not a valid PostgreSQL URL"},
	} {
		_, err := database.Open(ctx, database.Config{URL: tc.url, ConnectTimeout: 3 * time.Second})
		if err == nil || !contains(err.Error(), tc.want) || contains(err.Error(), "\n") {
			t.Errorf("Open(%q) = %v, want one line containing %q", tc.url, err, tc.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// The services' role reads and writes working tables but cannot rewrite the ledger.
func TestAppRoleMayWorkButNotRewriteTheLedger(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET ROLE ecogrid_app`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `RESET ROLE`) //nolint:errcheck
	for _, q := range []string{
		`SELECT count(*) FROM grid.nodes`,
		`SELECT count(*) FROM field.reports`,
		`SELECT count(*) FROM cases.cases`,
		`SELECT count(*) FROM outbox.events`,
		`SELECT count(*) FROM ledger.records`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Errorf("%s as ecogrid_app: %v", q, err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE ledger.records SET action = action`); err == nil {
		t.Error("ecogrid_app may UPDATE ledger.records")
	}
	if _, err := conn.Exec(ctx, `DELETE FROM ledger.records`); err == nil {
		t.Error("ecogrid_app may DELETE from ledger.records")
	}
}
