package field

import (
	"errors"
	"math"
	"testing"
	"time"

	"ecogrid/internal/structerr"
)

// FuzzPatrolTracksQuery feeds ListPatrolTracks' request check and its
// simplifier arbitrary input: a refusal is InvalidArgument naming its
// field; an accepted query is within the limits; a simplified track keeps
// its first and last point and has at most max_points points.
func FuzzPatrolTracksQuery(f *testing.F) {
	f.Add("130123", int64(0), int64(7*24*3600), 10.0, 500, 50, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add("13012300100", int64(5), int64(-1), math.NaN(), 1, -3, []byte{})
	f.Add("130123001001", int64(0), int64(40*24*3600), 5001.0, 2, 9999, []byte{255, 0, 255, 0, 9, 9})
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, node string, fromS, spanS int64, tol float64, maxPoints, pageSize int, pts []byte) {
		q := TrackQuery{NodeCode: node, From: base.Add(time.Duration(fromS%1e6) * time.Second), ToleranceM: tol, MaxPoints: maxPoints, PageSize: pageSize}
		q.To = q.From.Add(time.Duration(spanS%1e8) * time.Second)
		if err := q.check(); err != nil {
			var se *structerr.Error
			if !errors.As(err, &se) {
				t.Fatalf("refusal %v is not a structured InvalidArgument", err)
			}
			return
		}
		if q.MaxPoints < 2 || q.MaxPoints > 5000 || q.PageSize < 1 || q.PageSize > 500 || q.ToleranceM <= 0 || q.To.Sub(q.From) > maxTrackWindow {
			t.Fatalf("accepted query out of bounds: %+v", q)
		}
		var line [][2]float64
		for i := 0; i+1 < len(pts); i += 2 {
			line = append(line, [2]float64{114 + float64(pts[i])/1e3, 38 + float64(pts[i+1])/1e3})
		}
		if len(line) < 2 {
			return
		}
		out := boundPoints(line, q.MaxPoints, q.ToleranceM/111_320)
		if len(out) > q.MaxPoints || out[0] != line[0] || out[len(out)-1] != line[len(line)-1] {
			t.Fatalf("simplified %d points to %d (max %d): ends %v %v, want %v %v", len(line), len(out), q.MaxPoints, out[0], out[len(out)-1], line[0], line[len(line)-1])
		}
	})
}
