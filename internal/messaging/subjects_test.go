package messaging_test

import (
	"errors"
	"strings"
	"testing"

	"ecogrid/internal/messaging"
)

func TestSubjectsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, want := range []messaging.Subject{
		{Stream: messaging.StreamViolations, County: "130123"},
		{Stream: messaging.StreamCases, County: "130123", EventType: "opened"},
		{Stream: messaging.StreamDeadLetter, Parked: messaging.StreamViolations},
	} {
		subj := want.String()
		got, err := messaging.ParseSubject(subj)
		if err != nil || got != want {
			t.Fatalf("ParseSubject(%q) = %+v, %v; want %+v", subj, got, err, want)
		}
		if stream, ok := messaging.StreamOf(subj); !ok || stream != want.Stream {
			t.Fatalf("StreamOf(%q) = %q, %v", subj, stream, ok)
		}
		if !strings.HasPrefix(subj, messaging.StreamSubjectPrefix(want.Stream)) ||
			messaging.StreamSubjects(want.Stream) != messaging.StreamSubjectPrefix(want.Stream)+">" {
			t.Fatalf("prefix/wildcard of %s do not cover %q", want.Stream, subj)
		}
	}
	if messaging.ViolationSubject("130123") != "ecogrid.v1.violations.130123" ||
		messaging.CaseSubject("130123", "closed") != "ecogrid.v1.cases.130123.closed" ||
		messaging.DeadLetterSubject(messaging.StreamViolations) != "ecogrid.v1.dlq.VIOLATIONS" {
		t.Fatal("subject layout changed: integrators subscribe to these names")
	}
}

func TestParseSubjectRefusesOtherLayouts(t *testing.T) {
	t.Parallel()
	for _, subj := range []string{
		"", "ecogrid", "ecogrid.v1.violations.", "ecogrid.v1.violations.130123.extra",
		"ecogrid.v1.violations.*", "ecogrid.v1.violations.>", "ecogrid.v1.cases.130123",
		"ecogrid.v1.cases.130123.", "ecogrid.v1.cases..opened", "ecogrid.v1.dlq.NOPE",
		"ecogrid.v2.violations.130123", "other.v1.violations.130123",
		"ecogrid.v1.violations.13 0123", "ecogrid.v1.violations." + strings.Repeat("1", 400),
	} {
		if s, err := messaging.ParseSubject(subj); err == nil || !errors.Is(err, messaging.ErrUnknownSubject) {
			t.Errorf("ParseSubject(%q) = %+v, %v; want ErrUnknownSubject", subj, s, err)
		} else if len(err.Error()) > 200 {
			t.Errorf("error for %q is %d bytes", subj, len(err.Error()))
		}
	}
	if _, ok := messaging.StreamOf("foo.bar"); ok {
		t.Error("StreamOf took a foreign subject")
	}
}

// Subjects arrive from the network: parsing never panics, errors stay
// short, and what parses builds back to the same subject.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"ecogrid.v1.violations.130123", "ecogrid.v1.cases.130123.opened",
		"ecogrid.v1.dlq.VIOLATIONS", "ecogrid.v1.cases.1.2.3", "ecogrid.v1.violations.\x00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subj string) {
		s, err := messaging.ParseSubject(subj)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if s.String() != subj {
			t.Fatalf("ParseSubject(%q).String() = %q", subj, s.String())
		}
		if stream, ok := messaging.StreamOf(subj); !ok || stream != s.Stream {
			t.Fatalf("StreamOf(%q) = %q, %v; parsed stream %q", subj, stream, ok, s.Stream)
		}
	})
}
