package cases

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
	"ecogrid/internal/scope"
)

// stack is cased's pipeline on a real database and a real in-process
// nats-server: outbox relay → VIOLATIONS → consumer → cases.
type stack struct {
	t       testing.TB
	pool    *pgxpool.Pool
	nats    *natstest.Server
	js      jetstream.JetStream
	tracker *Tracker
	wg      sync.WaitGroup
}

func newStack(t testing.TB) *stack {
	t.Helper()
	// A pool sized as cased's should be: workers, relay, background jobs and RPCs.
	pool, err := database.Open(context.Background(), database.Config{URL: dbtest.NewURL(t), MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := &stack{t: t, pool: pool, nats: natstest.Start(t)}
	_, s.js = s.nats.Connect(t)
	s.tracker = NewTracker(s.pool, nil)
	return s
}

// run starts fn until the test ends (or the returned stop is called).
func (s *stack) run(fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil {
			s.t.Errorf("background: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	s.t.Cleanup(stop)
	return stop
}

func (s *stack) startRelay(name string) func() {
	r := outbox.NewRelay(s.pool, s.js, outbox.RelayConfig{Name: name, PollInterval: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, AckTimeout: time.Second}, nil)
	return s.run(r.Run)
}

func (s *stack) startConsumer(cfg ConsumerConfig) func() {
	c := NewConsumer(s.js, s.tracker, cfg, nil)
	return s.run(c.Run)
}

// violation is a ViolationReported as gridd writes it for a village of the test township.
func violation(village string) *eventsv1.ViolationReported {
	now := time.Now()
	return &eventsv1.ViolationReported{
		EventId:      uuid.NewString(),
		ReportId:     uuid.NewString(),
		CountyCode:   village[:6],
		TownshipCode: village[:9],
		VillageCode:  village,
		ReporterId:   inspectorID,
		Category:     "solid_waste",
		Severity:     "SEVERITY_NORMAL",
		Description:  "construction waste dumped by the river",
		Latitude:     38.0455,
		Longitude:    114.5153,
		ObservedAt:   timestamppb.New(now.Add(-time.Minute)),
		ReceivedAt:   timestamppb.New(now),
		Responsible: []*eventsv1.ResponsiblePerson{
			{PersonId: chiefID, Name: "Wang Fang", Role: "grid_chief", NodeCode: village},
			{PersonId: inspectorID, Name: "Li Wei", Role: "inspector", NodeCode: village},
		},
	}
}

// file writes a violation into the outbox as gridd does with a report.
func (s *stack) file(ev *eventsv1.ViolationReported) { s.fileMany(ev) }

// fileMany writes several violations in one transaction (a load generator
// standing in for several gridd replicas committing at once).
func (s *stack) fileMany(evs ...*eventsv1.ViolationReported) {
	s.t.Helper()
	err := database.InTx(context.Background(), s.pool, func(tx pgx.Tx) error {
		for _, ev := range evs {
			if err := recordReport(context.Background(), tx, ev); err != nil {
				return err
			}
			if err := outbox.Enqueue(context.Background(), tx, ev.CountyCode, messaging.ViolationSubject(ev.CountyCode),
				outbox.EventViolationReported, uuid.MustParse(ev.EventId), ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

var severityCodes = map[string]int{"SEVERITY_MINOR": 1, "SEVERITY_NORMAL": 2, "SEVERITY_SERIOUS": 3, "SEVERITY_CRITICAL": 4}

// recordReport writes the violation report field commits with ev, so that
// the event is authentic (cased checks every event against it).
func recordReport(ctx context.Context, q database.Querier, ev *eventsv1.ViolationReported) error {
	cell := ev.VillageCode
	if cell == "" {
		cell = ev.TownshipCode
	}
	_, err := q.Exec(ctx, `INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code, village_code,
			cell_code, category, severity, description, observed_at, received_at, position, orig_lat, orig_lon, orig_system,
			photo_sha256, violation, outside_area, event_id)
		VALUES ($1, '\x00', $2, $3, $4, NULLIF($5, ''), $6, $7, $8, $9, $10, $11,
			ST_SetSRID(ST_MakePoint($12, $13), 4326), $13, $12, 1, coalesce($14::text[], '{}'), true, false, $15)`,
		ev.ReportId, ev.ReporterId, ev.CountyCode, ev.TownshipCode, ev.VillageCode, cell, ev.Category,
		severityCodes[ev.Severity], ev.Description, ev.ObservedAt.AsTime(), ev.ReceivedAt.AsTime(),
		ev.Longitude, ev.Latitude, ev.PhotoSha256, ev.EventId)
	return err
}

func (s *stack) count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func (s *stack) waitCases(n int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.count(`SELECT count(*) FROM cases.cases`)
		if got == n {
			return
		}
		if got > n {
			s.t.Fatalf("%d cases, more than the %d violations filed", got, n)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v: %d cases for %d violations", timeout, got, n)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// assertExactlyOnce checks that filed violations and cases match one to one
// and that nothing was done twice: one case, one opening timeline entry,
// one ledger record and one CaseEvent per violation.
func (s *stack) assertExactlyOnce(filed int) {
	s.t.Helper()
	checks := []struct {
		what string
		sql  string
	}{
		{"violations filed", `SELECT count(*) FROM outbox.events WHERE event_type = 'ViolationReported'`},
		{"cases", `SELECT count(*) FROM cases.cases`},
		{"cases matching a filed violation", `SELECT count(*) FROM cases.cases c JOIN outbox.events e ON e.event_id = c.violation_event_id`},
		{"inbox rows", `SELECT count(*) FROM cases.inbox`},
		{"opening timeline entries", `SELECT count(*) FROM cases.transitions WHERE action = 'create'`},
		{"case.opened ledger records", `SELECT count(*) FROM ledger.records WHERE action = 'case.opened'`},
		{"opened CaseEvents", `SELECT count(*) FROM outbox.events WHERE event_type = 'CaseEvent' AND subject LIKE '%.opened'`},
	}
	for _, c := range checks {
		if got := s.count(c.sql); got != filed {
			s.t.Errorf("%s: %d, want %d", c.what, got, filed)
		}
	}
}

// waitConsumerIdle waits until the durable consumer has acknowledged
// everything in the stream.
func (s *stack) waitConsumerIdle(durable string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cons, err := s.js.Consumer(context.Background(), messaging.StreamViolations, durable)
		if err != nil {
			s.t.Fatal(err)
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			s.t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("consumer still has %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *stack) streamMsgs(stream string) uint64 {
	s.t.Helper()
	st, err := s.js.Stream(context.Background(), stream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return info.State.Msgs
}

// People of the test grid. Ledger records need real uuids.
const (
	inspectorID  = "0b6f6a64-53f2-4a70-9f0e-1f2b1c000001"
	chiefID      = "0b6f6a64-53f2-4a70-9f0e-1f2b1c000002"
	supervisorID = "0b6f6a64-53f2-4a70-9f0e-1f2b1c000003"
	officerID    = "0b6f6a64-53f2-4a70-9f0e-1f2b1c000004"
	handlerID    = "0b6f6a64-53f2-4a70-9f0e-1f2b1c000005"
)

var (
	inspector  = scope.Caller{PersonID: inspectorID, Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: testVillage}}}
	supervisor = scope.Caller{PersonID: supervisorID, Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: testTownship}}}
	officer    = scope.Caller{PersonID: officerID, Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: testCounty}}}
	// otherSupervisor runs the neighbouring township.
	otherSupervisor = scope.Caller{PersonID: "0b6f6a64-53f2-4a70-9f0e-1f2b1c000006",
		Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: "130123102"}}}
)

// addPerson gives the test grid a person with a current assignment.
func addPerson(t testing.TB, pool *pgxpool.Pool, id, name string, role scope.Role, node string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO people.persons (id, county_code, name) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, node[:6], name); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO people.assignments (id, person_id, county_code, node_id, node_code, role, valid_from)
		VALUES ($1, $2, $3, $4, $5, $6, now() - interval '1 year')`,
		uuid.New(), id, node[:6], uuid.New(), node, string(role)); err != nil {
		t.Fatal(err)
	}
}

func fileN(s *stack, n int) {
	for i := range n {
		_ = i
		s.file(violation(testVillage))
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func histogramCount(h prometheus.Histogram) uint64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}
