package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/xuri/excelize/v2"

	"ecogrid/internal/audit"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/tabular"
)

// county is a test county with several years of synthetic activity in its
// ledger chain, written in the shapes people, field and cases record them.
type county struct {
	t       testing.TB
	pool    *pgxpool.Pool
	ledger  *ledger.Ledger
	pub     string
	grid    peopletest.Grid
	officer peopletest.Member
	events  []ledger.Entry
}

// post is one synthetic assignment.
type post struct {
	id, person, name, node, role string
	from                         time.Time
	to                           *time.Time
	how, reason, next            string
}

var epoch = time.Date(2021, 1, 4, 8, 0, 0, 0, time.UTC)

func newCounty(t testing.TB) *county {
	t.Helper()
	skey, _, err := ledger.NewKeyPair("test-ledger")
	if err != nil {
		t.Fatal(err)
	}
	c := countyOn(t, dbtest.NewPool(t), skey)
	c.grid = peopletest.InsertGrid(t, c.pool)
	c.officer = peopletest.AddMember(t, c.pool, c.grid[peopletest.CountyA], scope.RoleCountyOfficer, "赵主任", "")
	return c
}

// countyOn is a county over pool whose ledger signs with the private key
// skey, without its grid and officer.
func countyOn(t testing.TB, pool *pgxpool.Pool, skey string) *county {
	t.Helper()
	keys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	return &county{t: t, pool: pool, ledger: ledger.New(pool, keys, ledger.Config{WitnessDir: t.TempDir()}, nil), pub: keys.PublicKey()}
}

func (c *county) person(name string) people.Person {
	c.t.Helper()
	p, _, err := people.NewStore(c.pool, nil).CreatePerson(context.Background(), people.SystemActor,
		people.Person{ID: uuid.NewString(), CountyCode: peopletest.CountyA, Name: name})
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// assign queues the records of a post as people.Store writes them.
func (c *county) assign(p post) {
	resp := []ledger.Responsible{{PersonID: p.person, Name: p.name, Role: p.role, NodeCode: p.node}}
	c.events = append(c.events, ledger.Entry{CountyCode: p.node[:6], Action: "assignment.started", SubjectType: "assignment",
		SubjectID: p.id, NodeCode: p.node, Responsible: resp, At: p.from, Payload: map[string]any{
			"person_id": p.person, "person_name": p.name, "role": p.role, "node_code": p.node, "tasks": []string{"patrol weekly"},
			"valid_from": p.from.Format(time.RFC3339Nano)}})
	if p.to != nil {
		pl := map[string]any{"person_id": p.person, "person_name": p.name, "role": p.role, "node_code": p.node,
			"valid_from": p.from.Format(time.RFC3339Nano), "valid_to": p.to.Format(time.RFC3339Nano), "reason": p.reason}
		if p.next != "" {
			pl["next_assignment_id"] = p.next
		}
		c.events = append(c.events, ledger.Entry{CountyCode: p.node[:6], ActorID: c.officer.Person.ID, ActorRole: "county_officer",
			Action: "assignment." + p.how, SubjectType: "assignment", SubjectID: p.id, NodeCode: p.node, Responsible: resp, At: *p.to, Payload: pl})
	}
}

// holders are the people of posts responsible for node at t (the node's
// own post and its ancestors', as people.ResponsibleAt walks them).
func holders(posts []post, node string, t time.Time) []ledger.Responsible {
	var out []ledger.Responsible
	for _, p := range posts {
		if len(p.node) <= len(node) && node[:len(p.node)] == p.node && !t.Before(p.from) && (p.to == nil || t.Before(*p.to)) {
			out = append(out, ledger.Responsible{PersonID: p.person, Name: p.name, Role: p.role, NodeCode: p.node})
		}
	}
	return out
}

// build writes the queued events in time order into the ledger.
func (c *county) build() {
	c.t.Helper()
	slices.SortStableFunc(c.events, func(a, b ledger.Entry) int { return a.At.Compare(b.At) })
	ctx := context.Background()
	for i := 0; i < len(c.events); i += 200 {
		batch := c.events[i:min(i+200, len(c.events))]
		err := database.InTx(ctx, c.pool, func(tx pgx.Tx) error {
			for _, e := range batch {
				if _, err := ledger.Append(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// activity queues n years of cases in the villages: violations reported by
// the village's inspector, accepted, dispatched with a 7-day deadline,
// closed on time or late, some escalated, some reopened, some never closed.
func (c *county) activity(posts []post, villages []string, years int, rng *rand.Rand) {
	end := epoch.AddDate(years, 0, 0)
	for _, v := range villages {
		for t := epoch.Add(36 * time.Hour); t.Before(end); t = t.Add(time.Duration(240+rng.IntN(480)) * time.Hour) {
			id := uuid.NewString()
			resp := holders(posts, v, t)
			var reporter string
			for _, r := range resp {
				if r.Role == "inspector" {
					reporter = r.PersonID
				}
			}
			rid := uuid.NewString()
			if reporter != "" {
				c.events = append(c.events, ledger.Entry{CountyCode: v[:6], ActorID: reporter, ActorRole: "inspector", ActorNodeCode: v,
					Action: "violation.reported", SubjectType: "report", SubjectID: rid, NodeCode: v, Responsible: resp, At: t,
					Payload: map[string]any{"category": "solid_waste", "severity": "SEVERITY_NORMAL"}})
			}
			step := func(event, state string, at time.Time, extra map[string]any) {
				pl := map[string]any{"state": state, "report_id": rid, "severity": "normal"}
				for k, x := range extra {
					pl[k] = x
				}
				e := ledger.Entry{CountyCode: v[:6], ActorRole: "system", Action: "case." + event,
					SubjectType: "case", SubjectID: id, NodeCode: v, Responsible: holders(posts, v, at), At: at, Payload: pl}
				// The grid chief accepts a case of the cell, its inspector
				// confirms the rectification that closes it; nobody
				// holding the post: the system.
				actor := map[string]string{"accepted": "grid_chief", "closed": "inspector"}[event]
				for _, r := range e.Responsible {
					if actor != "" && r.Role == actor && r.NodeCode == v {
						e.ActorID, e.ActorRole, e.ActorNodeCode = r.PersonID, r.Role, v
					}
				}
				c.events = append(c.events, e)
			}
			at := t.Add(time.Minute)
			step("opened", "reported", at, nil)
			at = at.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
			step("accepted", "accepted", at, nil)
			at = at.Add(time.Hour)
			deadline := at.Add(7 * 24 * time.Hour)
			dl := map[string]any{"deadline": deadline.Format(time.RFC3339)}
			step("dispatched", "dispatched", at, dl)
			late := rng.IntN(4) == 0
			if late {
				step("escalated", "dispatched", deadline.Add(time.Hour), dl)
			}
			if rng.IntN(10) == 0 && at.After(end.Add(-30*24*time.Hour)) {
				continue // still open
			}
			close := at.Add(time.Duration(24+rng.IntN(120)) * time.Hour)
			if late {
				close = deadline.Add(time.Duration(2+rng.IntN(200)) * time.Hour)
			}
			step("closed", "closed", close, dl)
			if rng.IntN(6) == 0 {
				again := close.Add(time.Duration(48+rng.IntN(400)) * time.Hour)
				step("reopened", "accepted", again, dl)
				dl2 := map[string]any{"deadline": again.Add(8 * 24 * time.Hour).Format(time.RFC3339)}
				step("dispatched", "dispatched", again.Add(time.Hour), dl2)
				if rng.IntN(3) > 0 {
					step("closed", "closed", again.Add(time.Duration(24+rng.IntN(300))*time.Hour), dl2)
				}
			}
		}
	}
}

// direct holds the figures computed by SQL straight over ledger.records,
// independently of the audit's Go code.
type direct struct {
	cases, accepted, closed, escalated, reopened, closedLate, closedOnTime, overdue, overdueDays int
	openAtEnd, overdueAtEnd, reports, posts, cells, acts                                         int
	meanResponse                                                                                 float64
	actsBy                                                                                       string // action:count,...
}

func (c *county) direct(personID string, p audit.Params) direct {
	c.t.Helper()
	ctx := context.Background()
	var d direct
	q := func(dst any, sql string) {
		c.t.Helper()
		if err := c.pool.QueryRow(ctx, sql, personID, p.From, p.To, p.AsOf).Scan(dst); err != nil {
			c.t.Fatalf("%v\n%s", err, sql)
		}
	}
	// The cases the person was named in (or acted on) during the period,
	// with their whole history; the history's last deadline, state and
	// reopening; its close after the last reopening.
	const touched = `WITH touched AS (SELECT DISTINCT county_code, subject_id FROM ledger.records
		WHERE subject_type = 'case' AND action LIKE 'case.%' AND recorded_at >= $2 AND recorded_at < $3
		AND (responsible @> jsonb_build_array(jsonb_build_object('person_id', $1::text)) OR actor_id = $1::uuid)),
		hist AS (SELECT r.*, convert_from(r.payload, 'UTF8')::jsonb AS pl FROM ledger.records r JOIN touched USING (county_code, subject_id)
		WHERE r.subject_type = 'case' AND r.recorded_at <= $4),
		last AS (SELECT DISTINCT ON (county_code, subject_id) county_code, subject_id, action, recorded_at, pl FROM hist
		ORDER BY county_code, subject_id, seq DESC),
		per0 AS (SELECT county_code, subject_id, max(seq) FILTER (WHERE action = 'case.reopened') AS reopened,
			(array_agg((pl->>'deadline')::timestamptz ORDER BY seq DESC) FILTER (WHERE pl ? 'deadline'))[1] AS deadline,
			(array_agg(pl->>'state' ORDER BY seq DESC) FILTER (WHERE pl ? 'state'))[1] AS state_now,
			min(recorded_at) FILTER (WHERE action = 'case.created') AS created,
			min(recorded_at) FILTER (WHERE action = 'case.accepted') AS accepted
			FROM hist GROUP BY county_code, subject_id),
		per AS (SELECT p.*, (SELECT max(h.recorded_at) FROM hist h WHERE h.county_code = p.county_code AND h.subject_id = p.subject_id
			AND h.action = 'case.closed' AND h.seq > coalesce(p.reopened, -1)) AS closed_at FROM per0 p),
		late AS (SELECT CASE WHEN deadline IS NULL THEN 0
			WHEN closed_at IS NOT NULL THEN greatest(0, ceil(extract(epoch FROM closed_at - deadline) / 86400))
			WHEN state_now NOT IN ('closed', 'rejected') THEN greatest(0, ceil(extract(epoch FROM $4 - deadline) / 86400))
			ELSE 0 END::int AS days FROM per),
		at_end AS (SELECT DISTINCT ON (county_code, subject_id) county_code, subject_id, pl->>'state' AS state
			FROM hist WHERE recorded_at < $3 AND pl ? 'state' ORDER BY county_code, subject_id, seq DESC),
		deadline_at_end AS (SELECT DISTINCT ON (county_code, subject_id) county_code, subject_id, (pl->>'deadline')::timestamptz AS deadline
			FROM hist WHERE recorded_at < $3 AND pl ? 'deadline' ORDER BY county_code, subject_id, seq DESC) `
	q(&d.cases, touched+`SELECT count(*) FROM touched`)
	q(&d.accepted, touched+`SELECT count(*) FROM per WHERE accepted IS NOT NULL`)
	q(&d.meanResponse, touched+`SELECT coalesce(round(avg(round((extract(epoch FROM accepted - created) / 3600)::numeric, 2)), 2), 0)::float8
		FROM per WHERE accepted IS NOT NULL AND created IS NOT NULL`)
	q(&d.closed, touched+`SELECT count(*) FROM per WHERE closed_at IS NOT NULL`)
	q(&d.escalated, touched+`SELECT count(DISTINCT subject_id) FROM hist WHERE action = 'case.escalated'`)
	q(&d.reopened, touched+`SELECT count(DISTINCT subject_id) FROM hist WHERE action = 'case.reopened'`)
	q(&d.closedLate, touched+`SELECT count(*) FROM last WHERE action = 'case.closed' AND recorded_at > (pl->>'deadline')::timestamptz`)
	q(&d.closedOnTime, touched+`SELECT count(*) FROM last WHERE action = 'case.closed' AND recorded_at <= (pl->>'deadline')::timestamptz`)
	q(&d.overdue, touched+`SELECT count(*) FROM late WHERE days > 0`)
	q(&d.overdueDays, touched+`SELECT coalesce(sum(days), 0)::int FROM late`)
	q(&d.openAtEnd, touched+`SELECT count(*) FROM at_end WHERE state NOT IN ('closed', 'rejected')`)
	q(&d.overdueAtEnd, touched+`SELECT count(*) FROM at_end JOIN deadline_at_end USING (county_code, subject_id)
		WHERE state NOT IN ('closed', 'rejected') AND deadline < $3`)
	q(&d.reports, `SELECT count(*) FROM ledger.records WHERE action = 'violation.reported' AND actor_id = $1::uuid
		AND recorded_at >= $2 AND recorded_at < $3 AND recorded_at <= $4`)
	q(&d.acts, `SELECT count(*) FROM ledger.records WHERE actor_id = $1::uuid AND recorded_at >= $2 AND recorded_at < $3
		AND action NOT LIKE 'audit.%' AND recorded_at <= $4`)
	q(&d.actsBy, `SELECT coalesce(string_agg(action || ':' || n, ',' ORDER BY action), '') FROM (SELECT action, count(*) AS n FROM ledger.records
		WHERE actor_id = $1::uuid AND recorded_at >= $2 AND recorded_at < $3 AND action NOT LIKE 'audit.%' AND recorded_at <= $4 GROUP BY action) a`)
	const held = `WITH posts AS (SELECT subject_id, min(convert_from(payload, 'UTF8')::jsonb->>'node_code') AS node,
			min((convert_from(payload, 'UTF8')::jsonb->>'valid_from')::timestamptz) AS valid_from,
			max((convert_from(payload, 'UTF8')::jsonb->>'valid_to')::timestamptz) AS valid_to
		FROM ledger.records WHERE subject_type = 'assignment' AND convert_from(payload, 'UTF8')::jsonb->>'person_id' = $1::text
		AND recorded_at <= $4 GROUP BY subject_id),
		held AS (SELECT * FROM posts WHERE valid_from < $3 AND coalesce(valid_to, 'infinity') > $2) `
	q(&d.posts, held+`SELECT count(*) FROM held`)
	q(&d.cells, held+`SELECT count(DISTINCT node) FROM held`)
	return d
}

func checkAgainstSQL(t *testing.T, name string, f audit.Facts, d direct) {
	t.Helper()
	s := f.Summary
	cells := map[string]bool{}
	for _, p := range f.Posts {
		cells[p.NodeCode] = true
	}
	var acts []string
	for _, a := range f.Acts {
		acts = append(acts, fmt.Sprintf("%s:%d", a.Action, a.Count))
	}
	got := direct{cases: s.Cases, accepted: s.Accepted, closed: s.Closed, escalated: s.Escalated, reopened: s.Reopened, closedLate: s.ClosedLate,
		closedOnTime: s.ClosedOnTime, overdue: s.Overdue, overdueDays: s.OverdueDays, openAtEnd: s.OpenAtEnd, overdueAtEnd: s.OverdueAtEnd,
		reports: s.ReportsFiled, posts: s.Posts, cells: len(cells), acts: s.Acts, meanResponse: s.MeanResponseHours, actsBy: strings.Join(acts, ",")}
	if math.Abs(got.meanResponse-d.meanResponse) <= 0.011 {
		got.meanResponse = d.meanResponse // rounding of float64 against numeric
	}
	if got != d {
		t.Errorf("%s: audit counts\n%+v\nSQL over the ledger\n%+v", name, got, d)
	}
	if d.cases == 0 || d.reports == 0 || d.escalated == 0 || d.reopened == 0 || d.overdue == 0 || d.acts == 0 {
		t.Errorf("%s: the synthetic county lacks cases, reports, escalations, reopenings, overdue cases or acts: %+v", name, d)
	}
	t.Logf("%s: %+v", name, d)
}

// checkHandoversAgainstSQL counts, for each handover, the cases of the
// post's cells the person was named in whose last state before the
// handover was not closed, straight from the ledger.
func (c *county) checkHandoversAgainstSQL(t *testing.T, name string, f audit.Facts) {
	t.Helper()
	if len(f.Handovers) == 0 {
		t.Fatalf("%s: no handover", name)
	}
	for _, h := range f.Handovers {
		var n int
		err := c.pool.QueryRow(context.Background(), `WITH touched AS (SELECT DISTINCT county_code, subject_id FROM ledger.records
			WHERE subject_type = 'case' AND action LIKE 'case.%' AND recorded_at >= $2 AND recorded_at < $3
			AND (responsible @> jsonb_build_array(jsonb_build_object('person_id', $1::text)) OR actor_id = $1::uuid))
			SELECT count(*) FROM (SELECT DISTINCT ON (r.county_code, r.subject_id) convert_from(r.payload, 'UTF8')::jsonb->>'state' AS state
				FROM ledger.records r JOIN touched USING (county_code, subject_id)
				WHERE r.subject_type = 'case' AND r.node_code LIKE $5 || '%' AND r.recorded_at <= $4
				AND convert_from(r.payload, 'UTF8')::jsonb ? 'state'
				ORDER BY r.county_code, r.subject_id, r.seq DESC) s WHERE state NOT IN ('closed', 'rejected')`,
			f.PersonID, f.Params.From, f.Params.To, h.At, h.NodeCode).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.OpenCases) != n {
			t.Errorf("%s: the handover of %s at %s lists %d open cases, SQL over the ledger %d", name, h.NodeCode, h.At, len(h.OpenCases), n)
		}
	}
}

// checkPatrolsAgainstSQL recounts every month of the patrol section from
// field.patrols and the grid's quota.
func (c *county) checkPatrolsAgainstSQL(t *testing.T, name string, rep *audit.Report) {
	t.Helper()
	if len(rep.Patrols) == 0 {
		t.Fatalf("%s: no patrol months", name)
	}
	posts := map[string]audit.Post{}
	for _, p := range rep.Facts.Posts {
		posts[p.AssignmentID] = p
	}
	counted := 0
	for _, m := range rep.Patrols {
		p := posts[m.AssignmentID]
		start, err := time.ParseInLocation("2006-01", m.Month, time.FixedZone("CST", 8*3600))
		if err != nil {
			t.Fatal(err)
		}
		var to any
		if p.ValidTo != nil {
			to = *p.ValidTo
		}
		var done, flagged, required int
		err = c.pool.QueryRow(context.Background(), `SELECT
				count(*) FILTER (WHERE cardinality(flags) = 0), count(*) FILTER (WHERE cardinality(flags) > 0),
				(SELECT coalesce(sum((t->>'count')::int), 0) FROM grid.nodes n, jsonb_array_elements(n.tasks) t
					WHERE n.code = $2 AND t->>'kind' = 'patrol' AND t->>'period' = 'month')
			FROM field.patrols WHERE inspector_id = $1 AND ended_at IS NOT NULL
			AND EXISTS (SELECT 1 FROM unnest(cell_codes) c WHERE c LIKE $2 || '%')
			AND started_at >= greatest($3::timestamptz, $5, $7) AND started_at < least($4::timestamptz, coalesce($6::timestamptz, 'infinity'), $8)`,
			rep.Facts.PersonID, m.CellCode, start, start.AddDate(0, 1, 0), p.ValidFrom, to, rep.Facts.Params.From, rep.Facts.Params.To).
			Scan(&done, &flagged, &required)
		if err != nil {
			t.Fatal(err)
		}
		if m.Done != done || m.Flagged != flagged || m.Required != required || m.Compliant != (done >= required) {
			t.Errorf("%s: patrols of %s in %s: %+v; SQL: done %d flagged %d required %d", name, m.CellCode, m.Month, m, done, flagged, required)
		}
		counted += done
	}
	if counted == 0 {
		t.Errorf("%s: no patrol counted", name)
	}
}

func TestTenureAuditMatchesSQLAndVerifiesOffline(t *testing.T) {
	ctx := context.Background()
	c := newCounty(t)
	zhang := c.person("张伟") // moved post twice
	li := c.person("李娜")    // left the service
	wang := c.person("王强")  // took over Li's village
	chen := c.person("陈静")  // township supervisor throughout
	t1, t2, t3 := epoch.AddDate(1, 6, 0), epoch.AddDate(3, 0, 0), epoch.AddDate(2, 3, 0)
	z1, z2, z3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	l1 := uuid.NewString()
	t0 := epoch.AddDate(-1, 0, 0)
	z0 := uuid.NewString()
	posts := []post{
		// Zhang came from another county (130124) before his three posts here.
		{id: z0, person: zhang.ID, name: zhang.Name, node: peopletest.VillageB1a, role: "inspector", from: t0, to: &epoch, how: "ended", reason: "调出本县"},
		{id: z1, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1a, role: "inspector", from: epoch, to: &t1, how: "transferred", reason: "调任", next: z2},
		{id: z2, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1b, role: "inspector", from: t1, to: &t2, how: "transferred", reason: "提任网格长", next: z3},
		{id: z3, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1b, role: "grid_chief", from: t2},
		{id: l1, person: li.ID, name: li.Name, node: peopletest.VillageA2a, role: "inspector", from: epoch, to: &t3, how: "ended", reason: "离职"},
		{id: uuid.NewString(), person: wang.ID, name: wang.Name, node: peopletest.VillageA2a, role: "inspector", from: t3},
		{id: uuid.NewString(), person: chen.ID, name: chen.Name, node: peopletest.TownshipA1, role: "township_supervisor", from: epoch},
	}
	for _, p := range posts {
		c.assign(p)
	}
	rng := rand.New(rand.NewPCG(19, 2026))
	c.activity(posts, []string{peopletest.VillageA1a, peopletest.VillageA1b, peopletest.VillageA2a, peopletest.VillageB1a}, 5, rng)
	c.build()
	if _, err := c.ledger.Checkpoint(ctx, peopletest.CountyA); err != nil {
		t.Fatal(err)
	}
	// Village A1a asks for two patrols a month; Zhang patrols it twice in
	// his first month there, once (and once flagged) in the second.
	if _, err := c.pool.Exec(ctx, `UPDATE grid.nodes SET tasks = '[{"kind":"patrol","count":2,"period":"month"}]' WHERE code = $1`, peopletest.VillageA1a); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Duration{24, 72, 24 * 32, 24 * 33} {
		flags := []string{}
		if i == 3 {
			flags = []string{"too_fast"}
		}
		if _, err := c.pool.Exec(ctx, `INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, started_at, ended_at, cell_codes, flags)
			VALUES ($1, '\x00', $2, '130123', $3::timestamptz, $3::timestamptz + interval '1 hour', $4, $5)`, uuid.NewString(), zhang.ID, epoch.Add(at*time.Hour),
			[]string{peopletest.VillageA1a}, flags); err != nil {
			t.Fatal(err)
		}
	}

	// Village A1b asks for three patrols a month. Zhang patrols it over
	// his two posts there, some patrols flagged, some through other
	// cells too; another inspector's patrols through it are not his.
	if _, err := c.pool.Exec(ctx, `UPDATE grid.nodes SET tasks = '[{"kind":"patrol","count":3,"period":"month"}]' WHERE code = $1`, peopletest.VillageA1b); err != nil {
		t.Fatal(err)
	}
	prng := rand.New(rand.NewPCG(7, 19))
	for at := t1.Add(-10 * 24 * time.Hour); at.Before(epoch.AddDate(5, 0, 0)); at = at.Add(time.Duration(100+prng.IntN(300)) * time.Hour) {
		who, cells, flags := zhang.ID, []string{peopletest.VillageA1b}, []string{}
		switch prng.IntN(8) {
		case 0:
			flags = []string{"too_fast"}
		case 1:
			cells = append(cells, peopletest.VillageA1a)
		case 2:
			who = wang.ID
		}
		if _, err := c.pool.Exec(ctx, `INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, started_at, ended_at, cell_codes, flags)
			VALUES ($1, '\x00', $2, '130123', $3::timestamptz, $3::timestamptz + interval '1 hour', $4, $5)`, uuid.NewString(), who, at, cells, flags); err != nil {
			t.Fatal(err)
		}
	}

	a := audit.New(c.pool, c.ledger)
	officer := c.officer.Caller()
	keys, err := ledger.ParsePublicKeys(c.pub)
	if err != nil {
		t.Fatal(err)
	}

	// Zhang over all his posts (two moves).
	zr, err := a.TenureAudit(ctx, officer, audit.Request{ReportID: uuid.NewString(), PersonID: zhang.ID, From: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if zr.Facts.Summary.Posts != 4 || len(zr.Facts.Handovers) != 3 || zr.Facts.PersonName != "张伟" {
		t.Fatalf("zhang: posts %d handovers %d name %q", zr.Facts.Summary.Posts, len(zr.Facts.Handovers), zr.Facts.PersonName)
	}
	checkAgainstSQL(t, "zhang", zr.Facts, c.direct(zhang.ID, zr.Facts.Params))
	c.checkHandoversAgainstSQL(t, "zhang", zr.Facts)
	c.checkPatrolsAgainstSQL(t, "zhang", zr)
	if !slices.ContainsFunc(zr.Facts.Posts, func(p audit.Post) bool { return p.NodeCode == peopletest.VillageB1a && p.EndReason == "调出本县" }) {
		t.Errorf("zhang's post in the other county is missing: %+v", zr.Facts.Posts)
	}
	// Patrol compliance per month of the A1a post against its quota.
	var a1a []audit.PatrolMonth
	for _, m := range zr.Patrols {
		if m.CellCode == peopletest.VillageA1a {
			a1a = append(a1a, m)
		}
	}
	if len(a1a) != 19 || a1a[0].Month != "2021-01" || !a1a[0].Compliant || a1a[0].Done != 2 || a1a[0].Required != 2 ||
		a1a[1].Compliant || a1a[1].Done != 1 || a1a[1].Flagged != 1 || a1a[2].Done != 0 || a1a[0].CellName == "" {
		t.Errorf("patrol compliance of the A1a post: %d months, %+v", len(a1a), a1a[:min(3, len(a1a))])
	}

	// Li for her one post, ending when she left the service.
	lr, err := a.TenureAudit(ctx, officer, audit.Request{ReportID: uuid.NewString(), PersonID: li.ID, AssignmentID: l1})
	if err != nil {
		t.Fatal(err)
	}
	if !lr.Facts.Params.To.Equal(t3) || len(lr.Facts.Handovers) != 1 || lr.Facts.Handovers[0].Reason != "离职" {
		t.Fatalf("li: period ends %s, handovers %+v", lr.Facts.Params.To, lr.Facts.Handovers)
	}
	checkAgainstSQL(t, "li", lr.Facts, c.direct(li.ID, lr.Facts.Params))
	c.checkHandoversAgainstSQL(t, "li", lr.Facts)
	if n := len(lr.Facts.Handovers[0].OpenCases); n != lr.Facts.Summary.OpenAtEnd {
		t.Errorf("li: handover lists %d open cases, summary says %d open at the end", n, lr.Facts.Summary.OpenAtEnd)
	}
	for _, cs := range lr.Facts.Cases {
		if len(cs.Responsible) == 0 || len(cs.Cites) == 0 {
			t.Fatalf("case %s names nobody responsible or cites nothing", cs.CaseID)
		}
	}

	checkPDF(t, zr, "张伟", "调任", "提任网格长", "调出本县", "巡查任务完成情况", "本人履职行为", "上报问题")
	checkPDF(t, lr, "李娜", "离职")
	var csvOut bytes.Buffer
	if err := audit.WriteCSV(&csvOut, lr); err != nil {
		t.Fatal(err)
	}
	// The county's table convention: BOM, a header, one row per case,
	// +08:00 times; the XLSX has the same rows.
	if !bytes.HasPrefix(csvOut.Bytes(), []byte("\uFEFFcase_id,")) {
		t.Fatalf("CSV starts %q", csvOut.Bytes()[:min(20, csvOut.Len())])
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(csvOut.Bytes(), []byte("\uFEFF")))).ReadAll()
	if err != nil || len(recs) != 1+len(lr.Facts.Cases) {
		t.Fatalf("CSV has %d records for %d cases: %v", len(recs), len(lr.Facts.Cases), err)
	}
	if opened := recs[1][5]; !strings.HasSuffix(opened, "+08:00") {
		t.Errorf("opened_at %q is not in the county's time zone", opened)
	}
	var xlsxOut bytes.Buffer
	if err := audit.WriteTable(&xlsxOut, lr, tabular.XLSX); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(&xlsxOut)
	if err != nil {
		t.Fatal(err)
	}
	xrows, err := x.GetRows("tenure audit")
	x.Close()
	if err != nil || len(xrows) != len(recs) || xrows[1][0] != recs[1][0] {
		t.Fatalf("XLSX rows %q, %v", xrows, err)
	}

	// The generation is ledgered: who audited whom.
	hist, _, err := c.ledger.PersonHistory(ctx, li.ID, ledger.HistoryQuery{Scope: []string{""}, Actions: []string{audit.ActionReportGenerated}})
	if err != nil || len(hist) != 1 || hist[0].ActorID != c.officer.Person.ID || hist[0].SubjectID != lr.ReportID {
		t.Fatalf("generation record in li's history: %v %+v", err, hist)
	}

	// Same report id again: the same report.
	again, err := a.TenureAudit(ctx, officer, audit.Request{ReportID: lr.ReportID, PersonID: li.ID, AssignmentID: l1})
	if err != nil || again.Digest != lr.Digest || again.Generation != lr.Generation {
		t.Fatalf("replayed report: %v, digest %s vs %s", err, again.Digest, lr.Digest)
	}

	for name, rep := range map[string]*audit.Report{"zhang": zr, "li": lr} {
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := audit.VerifyReport(bytes.NewReader(data), keys); err != nil {
			t.Fatalf("%s: untampered report does not verify: %v", name, err)
		}
		for what, tamper := range tamperings() {
			bad := tamper(t, data)
			if _, err := audit.VerifyReport(bytes.NewReader(bad), keys); err == nil {
				t.Errorf("%s: report with %s verified", name, what)
			} else {
				t.Logf("%s, %s: %v", name, what, err)
			}
		}
	}
	other, _, _ := ledger.NewKeyPair("other")
	otherKeys, _ := ledger.LoadKeys(ledger.KeyConfig{PrivateKey: other})
	data, _ := json.Marshal(lr)
	if _, err := audit.VerifyReport(bytes.NewReader(data), otherKeys.Verifiers()); err == nil {
		t.Error("a report verified with another county's key")
	}
}

// tamperings edit a report's JSON the way a forger would.
func tamperings() map[string]func(*testing.T, []byte) []byte {
	edit := func(fn func(r *audit.Report)) func(*testing.T, []byte) []byte {
		return func(t *testing.T, data []byte) []byte {
			var r audit.Report
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			fn(&r)
			out, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	return map[string]func(*testing.T, []byte) []byte{
		"one changed count": edit(func(r *audit.Report) { r.Facts.Summary.ClosedLate-- }),
		"a case dropped from the facts": edit(func(r *audit.Report) {
			r.Facts.Cases = r.Facts.Cases[1:]
		}),
		"a case dropped with its records and the counts redone": edit(func(r *audit.Report) {
			drop := r.Facts.Cases[0]
			r.Facts.Cases = r.Facts.Cases[1:]
			keep := r.Evidence[:0]
			for _, p := range r.Evidence {
				if p.Record.SubjectID != drop.CaseID {
					keep = append(keep, p)
				}
			}
			r.Evidence = keep
			var recs []ledger.Record
			for _, p := range r.Evidence {
				if p.Record.Action != audit.ActionReportGenerated {
					recs = append(recs, p.Record)
				}
			}
			r.Facts = audit.Compute(r.Facts.Params, recs)
		}),
		"a forged proof": edit(func(r *audit.Report) { r.Evidence[len(r.Evidence)/2].Proof[0][3] ^= 0x40 }),
		"an edited record": edit(func(r *audit.Report) {
			p := &r.Evidence[len(r.Evidence)/3]
			p.Record.RecordedAt = p.Record.RecordedAt.Add(-48 * time.Hour)
			p.Record.LeafHash = p.Record.ComputeLeafHash()
		}),
		"a changed period": edit(func(r *audit.Report) { r.Facts.Params.To = r.Facts.Params.To.Add(-24 * time.Hour) }),
		"another auditor":  edit(func(r *audit.Report) { r.AuditorID = uuid.NewString() }),
	}
}
