package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/messaging"
	"ecogrid/internal/monitoring"
)

// Anyone who reaches NATS can publish on a violation subject. A forged
// event (nothing recorded), a replay of a real one under a new message id
// and a real event with altered content open no case; the real one opens
// exactly one, and the forged and altered ones are parked with a reason.
func TestForgedReplayedAndAlteredViolationsOpenNoCase(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.startConsumer(ConsumerConfig{})
	publish := func(ev *eventsv1.ViolationReported, msgID string) {
		t.Helper()
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(messaging.ViolationSubject(ev.CountyCode))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, msgID)
		if _, err := s.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	real := violation(testVillage)
	s.file(real)
	publish(real, real.EventId)

	forged := violation(testVillage)
	forged.Severity = "SEVERITY_CRITICAL" // attributed to a real inspector, never filed
	publish(forged, forged.EventId)

	publish(real, "replay-"+uuid.NewString()) // past JetStream's duplicate check

	altered := proto.Clone(real).(*eventsv1.ViolationReported)
	altered.Severity = "SEVERITY_CRITICAL"
	publish(altered, "altered-"+uuid.NewString())

	s.waitCases(1, 20*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for s.streamMsgs(messaging.StreamDeadLetter) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream holds %d messages, want 2 (forged, altered)", s.streamMsgs(messaging.StreamDeadLetter))
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.waitConsumerIdle("cased-violations", 15*time.Second)
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != 1 {
		t.Fatalf("%d cases, want exactly the real one", n)
	}
	if n := s.count(`SELECT count(*) FROM cases.cases WHERE violation_event_id = $1 AND severity = 'SEVERITY_NORMAL'`, real.EventId); n != 1 {
		t.Fatal("the real violation's case is missing or took the altered content")
	}
	if n := s.count(`SELECT count(*) FROM cases.inbox WHERE event_id = $1`, forged.EventId); n != 0 {
		t.Fatal("the forged event reached the inbox")
	}
	if n := s.streamMsgs(messaging.StreamDeadLetter); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}
	st, err := s.js.Stream(ctx, messaging.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	reasons := ""
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		reasons += m.Header.Get("Ecogrid-Dead-Letter-Reason") + "\n"
	}
	if !strings.Contains(reasons, "forged") || !strings.Contains(reasons, "severity differs") {
		t.Fatalf("dead-letter reasons %q", reasons)
	}
}

// A violation raised by water monitoring (a missed sample here) opens its
// case once; the same event with nothing recorded behind it, or with its
// severity raised, opens none.
func TestMonitoringViolationsAreCheckedAgainstMonitoring(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.startConsumer(ConsumerConfig{})
	point, event := uuid.New(), uuid.New()
	if _, err := s.pool.Exec(ctx, `INSERT INTO monitoring.points (id, county_code, code, name, kind, water_body, target_class,
			latitude, longitude, township_code, village_code, schedule_start, swept_until)
		VALUES ($1, $2, 'SW-01', '河源断面', 1, 1, 3, 38.0455, 114.5153, $3, $4, now(), now())`,
		point, testVillage[:6], testVillage[:9], testVillage); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO monitoring.violations (event_id, county_code, township_code, village_code, point_id,
			window_start, category, severity, latitude, longitude, occurred_at, description)
		VALUES ($1, $2, $3, $4, $5, now(), 'missed_sample', 'SEVERITY_SERIOUS', 38.0455, 114.5153, now(), 'no sample in the window')`,
		event, testVillage[:6], testVillage[:9], testVillage, point); err != nil {
		t.Fatal(err)
	}
	source := monitoring.Source
	ev := func(id uuid.UUID, severity string) *eventsv1.ViolationReported {
		return &eventsv1.ViolationReported{EventId: id.String(), ReportId: id.String(), CountyCode: testVillage[:6],
			TownshipCode: testVillage[:9], VillageCode: testVillage, Category: "missed_sample", Severity: severity,
			Description: "no sample in the window", Latitude: 38.0455, Longitude: 114.5153,
			ObservedAt: timestamppb.Now(), ReceivedAt: timestamppb.Now(), Source: &source}
	}
	publish := func(e *eventsv1.ViolationReported, msgID string) {
		t.Helper()
		data, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(messaging.ViolationSubject(e.CountyCode))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, msgID)
		if _, err := s.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(ev(uuid.New(), "SEVERITY_SERIOUS"), "forged-"+uuid.NewString())
	publish(ev(event, "SEVERITY_CRITICAL"), "altered-"+uuid.NewString())
	publish(ev(event, "SEVERITY_SERIOUS"), event.String())
	s.waitCases(1, 20*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for s.streamMsgs(messaging.StreamDeadLetter) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream holds %d messages, want 2 (forged, altered)", s.streamMsgs(messaging.StreamDeadLetter))
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.waitConsumerIdle("cased-violations", 15*time.Second)
	if n := s.count(`SELECT count(*) FROM cases.cases WHERE violation_event_id = $1 AND severity = 'SEVERITY_SERIOUS'`, event); n != 1 {
		t.Fatalf("%d cases for the monitoring violation, want 1", n)
	}
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != 1 {
		t.Fatalf("%d cases, want only the recorded one", n)
	}
}
