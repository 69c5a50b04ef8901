package archtest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"ecogrid/internal/database/dbtest"
)

// Citus readiness (issue 15, deploy/scale-out.md). Distributed by
// county_code, a table's primary key must contain county_code, and so must
// every foreign key between distributed tables (Citus enforces both; a
// foreign key may also point at a reference table). This test reads the
// catalog of the migrated database: every table either passes, is a
// reference table, or is a listed exception with its reason. A new table
// that does none fails, and so does an exception that has been fixed
// (remove it from the list).

// referenceTables are small tables every county reads, replicated in full
// to every Citus node (create_reference_table). They may reference only
// each other.
var referenceTables = map[string]string{
	"grid.regions": "34 provinces and ~330 prefectures above the counties (migration 00013)",
}

// citusExceptions are the tables that do not yet carry the county code in
// their keys, each with why, and what distributing it would take.
var citusExceptions = map[string]string{
	// Logins are national: a token names a session, not a county, and a
	// person works in several counties over a life. Distributed by account
	// id (co-located with each other), or kept on the coordinator.
	"auth.accounts":       "keyed by account; sessions are found by token, with no county at hand",
	"auth.sessions":       "keyed by session id, found from the token alone",
	"auth.refresh_tokens": "keyed by token hash, found from the token alone",
	"auth.login_limits":   "keyed by login name and address, before any county is known",
	// People: one identity for life across counties (DESIGN: stable
	// identity), assignments reference it.
	"people.persons":     "a person's identity is national; distributed by person id or a reference table per province",
	"people.assignments": "has county_code, primary key id: needs (county_code, id) in the people context",
	// Cases: county_code is on the case; its children reach it by case id.
	"cases.cases":            "has county_code, primary key id: needs (county_code, id) and the children below to carry it",
	"cases.transitions":      "no county_code; references cases by id",
	"cases.department_tasks": "no county_code; references cases by id",
	"cases.inbox":            "keyed by event id (JetStream dedup); the county is in the subject and could be in the key",
	// Departments: a department serves a county, found by id.
	"departments.departments": "has county_code, primary key id",
	"departments.memberships": "no county_code; references departments by id",
	"departments.coverage":    "no primary key; references departments by id",
	"departments.routes":      "foreign key to departments by id alone",
	// Field: reports and patrols carry county_code but are keyed by the
	// client's id; their children reach them by that id. Changing the keys
	// touches every field insert (left for a field-owned change, not done
	// beside the parallel field work of issue 15).
	"field.reports":       "has county_code, primary key id",
	"field.patrols":       "has county_code, primary key id",
	"field.report_photos": "no county_code; references reports by id and photos by hash",
	"field.track_points":  "no county_code; references patrols by id",
	"field.uploads":       "keyed by upload id, resumed from the id alone",
	"field.case_evidence": "has county_code, key (case_id, sha256); references photos by hash",
	// A photo is stored once per content hash, nationally (the same photo
	// in two counties is one blob): distributed by sha256, not co-located.
	"field.photos": "content-addressed: one row per SHA-256 for the nation",
	// Monitoring points and their samples are keyed by id.
	"monitoring.points":     "has county_code, primary key id",
	"monitoring.samples":    "no county_code; references points by id",
	"monitoring.misses":     "no county_code; references points by id",
	"monitoring.violations": "has county_code, keyed by event id; references points and samples by id",
	// Rivers cross counties: a water body is national, its reaches each
	// belong to a node of one county.
	"waters.bodies":  "a river or reservoir crosses counties: a reference table candidate",
	"waters.reaches": "has county_code, primary key id; references bodies by code",
	"waters.chiefs":  "has county_code, primary key id",
	// The outbox is ordered by one global sequence the relay follows.
	"outbox.events": "has county_code, primary key seq: one relay order; per-county sequences would shard it",
	// Webhook subscribers are integrators across counties.
	"webhooks.subscribers": "has county_code, primary key subscriber_id",
	"webhooks.deliveries":  "no county_code; references subscribers by id",
	// Assessment (issue 19) landed beside this test; its keys follow.
	"assessment.external_values": "has county_code, primary key id: needs (county_code, id)",
	"assessment.node_kinds":      "keyed by node code, whose first six digits are the county",
}

type catalogTable struct {
	name       string
	pk         []string
	hasCounty  bool
	foreignKey []catalogFK
}

type catalogFK struct {
	name, target string
	columns      []string
}

func readCatalog(t *testing.T) []catalogTable {
	t.Helper()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT n.nspname || '.' || c.relname,
		       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_constraint k
		                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
		                 WHERE k.conrelid = c.oid AND k.contype = 'p'), '{}'),
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'county_code' AND NOT a.attisdropped)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'topology', 'tiger', 'tiger_data')
		  AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var out []catalogTable
	for rows.Next() {
		var tb catalogTable
		if err := rows.Scan(&tb.name, &tb.pk, &tb.hasCounty); err != nil {
			t.Fatal(err)
		}
		out = append(out, tb)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	fkRows, err := pool.Query(ctx, `
		SELECT n.nspname || '.' || c.relname, k.conname, tn.nspname || '.' || tc.relname,
		       (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
		        WHERE a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey))
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class tc ON tc.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
		WHERE k.contype = 'f'`)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*catalogTable{}
	for i := range out {
		byName[out[i].name] = &out[i]
	}
	for fkRows.Next() {
		var table string
		var fk catalogFK
		if err := fkRows.Scan(&table, &fk.name, &fk.target, &fk.columns); err != nil {
			t.Fatal(err)
		}
		if tb := byName[table]; tb != nil {
			tb.foreignKey = append(tb.foreignKey, fk)
		}
	}
	if err := fkRows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// citusProblems says why a table cannot be distributed by county_code as
// it is: nothing when it can.
func citusProblems(tb catalogTable) []string {
	var p []string
	if !slices.Contains(tb.pk, "county_code") {
		if len(tb.pk) == 0 {
			p = append(p, "no primary key")
		} else {
			p = append(p, "primary key ("+strings.Join(tb.pk, ", ")+") lacks county_code")
		}
	}
	for _, fk := range tb.foreignKey {
		if _, ref := referenceTables[fk.target]; ref {
			continue
		}
		if !slices.Contains(fk.columns, "county_code") {
			p = append(p, "foreign key "+fk.name+" to "+fk.target+" lacks county_code")
		}
	}
	return p
}

func TestEveryTableIsKeyedByCountyOrListed(t *testing.T) {
	tables := readCatalog(t)
	if len(tables) < 20 {
		t.Fatalf("only %d tables in the migrated database: wrong database?", len(tables))
	}
	seen := map[string]bool{}
	var failing []string
	for _, tb := range tables {
		seen[tb.name] = true
		if _, ref := referenceTables[tb.name]; ref {
			for _, fk := range tb.foreignKey {
				if _, ok := referenceTables[fk.target]; !ok {
					t.Errorf("reference table %s references %s, which is not one (a replicated table can only reference replicated ones)", tb.name, fk.target)
				}
			}
			continue
		}
		problems := citusProblems(tb)
		_, excepted := citusExceptions[tb.name]
		switch {
		case len(problems) > 0 && !excepted:
			failing = append(failing, tb.name+": "+strings.Join(problems, "; "))
		case len(problems) == 0 && excepted:
			t.Errorf("%s is keyed by county now: remove it from citusExceptions", tb.name)
		}
	}
	sort.Strings(failing)
	for _, f := range failing {
		t.Errorf("not ready for Citus (add county_code to the keys, or list it with its reason): %s", f)
	}
	for name := range referenceTables {
		if !seen[name] {
			t.Errorf("reference table %s does not exist", name)
		}
	}
	for name := range citusExceptions {
		if !seen[name] {
			t.Errorf("exception %s does not exist: remove it", name)
		}
	}
}

// The check itself fails on the cases it is for.
func TestCitusProblemsSeesMissingCountyCode(t *testing.T) {
	for _, c := range []struct {
		tb   catalogTable
		want int
	}{
		{catalogTable{name: "x.ok", pk: []string{"county_code", "id"}, foreignKey: []catalogFK{{name: "f", target: "x.p", columns: []string{"county_code", "p"}}}}, 0},
		{catalogTable{name: "x.pk", pk: []string{"id"}}, 1},
		{catalogTable{name: "x.none"}, 1},
		{catalogTable{name: "x.fk", pk: []string{"county_code", "id"}, foreignKey: []catalogFK{{name: "f", target: "x.p", columns: []string{"p"}}}}, 1},
		{catalogTable{name: "x.ref", pk: []string{"county_code", "id"}, foreignKey: []catalogFK{{name: "f", target: "grid.regions", columns: []string{"region_code"}}}}, 0},
	} {
		if got := citusProblems(c.tb); len(got) != c.want {
			t.Errorf("%s: %v, want %d problems", c.tb.name, got, c.want)
		}
	}
}
