package assessment_test

import (
	"testing"
	"unicode/utf8"

	"ecogrid/internal/assessment"
	"ecogrid/internal/structerr"
)

// FuzzPeriodAndIndicator feeds period labels and indicator definitions
// from outside: a label either parses into a range whose previous period
// ends where it starts, or is refused with a short InvalidArgument; an
// indicator definition is accepted or refused the same way, never
// panicking, and an accepted one scores within 0..100.
func FuzzPeriodAndIndicator(f *testing.F) {
	f.Add("2026-Q1", "water_quality", "水质", "higher", 100.0, 60.0, 75.0)
	f.Add("2026-03", "x", "", "lower", 0.0, 10.0, -1.0)
	f.Add("2026", "on_time_closure", "按期", "sideways", 1.0, 1.0, 1.0)
	f.Add("1999-13", "A", "a", "higher", 2.0, 1.0, 3.0)
	f.Add("2000", "ab", "b", "lower", 1.0, 2.0, 1.5)
	f.Fuzz(func(t *testing.T, label, code, name, dir string, best, worst, v float64) {
		p, err := assessment.ParsePeriod("130123", label)
		if err != nil {
			if structerr.Code(err).String() != "InvalidArgument" || len(err.Error()) > 400 || !utf8.ValidString(err.Error()) {
				t.Fatalf("label %q: %v", label, err)
			}
		} else {
			if !p.To.After(p.From) || !p.Prev().To.Equal(p.From) || p.Label != label {
				t.Fatalf("label %q: %+v, prev %+v", label, p, p.Prev())
			}
		}
		ind := assessment.Indicator{Code: code, Name: name, Unit: "%", Direction: assessment.Direction(dir), Best: best, Worst: worst, Source: assessment.External}
		if err := ind.Check(); err != nil {
			if structerr.Code(err).String() != "InvalidArgument" || len(err.Error()) > 400 {
				t.Fatalf("%+v: %v", ind, err)
			}
			return
		}
		if s := ind.Score(v); s < 0 || s > 100 {
			t.Fatalf("%+v scores %v as %v", ind, v, s)
		}
	})
}
