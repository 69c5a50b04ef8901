package monitoring

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
)

// FuzzParseSamplesCSV: any bytes give rows or problems, never a panic;
// problems are short and valid UTF-8; every row has a point, a lab, a time
// and at least one measurement with a known parameter and a finite value.
func FuzzParseSamplesCSV(f *testing.F) {
	f.Add("point_code,sampled_at,sampler,lab,pH,DO [mg/L],NH3-N,Hg(ug/L),TP\nDM-4,2026-11-01 09:30,李四,县监测站,7.5,6.5,0.4,0.05,0.1\n")
	f.Add("sample_id,point_code,sampled_at,lab,corrects_sample_id,COD\n" + uuid.NewString() + ",A,2026-01-01T00:00:00Z,x,,12\n")
	f.Add("point_code,sampled_at,lab,pH\n\"unterminated,1,2,3\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, data string) {
		rows, problems := ParseSamplesCSV(strings.NewReader(data))
		if len(problems) > maxRowProblems {
			t.Fatalf("%d problems", len(problems))
		}
		for _, p := range problems {
			if len(p.Message) > maxProblemBytes+len("…") || !utf8.ValidString(p.Message) {
				t.Fatalf("problem %q", p.Message)
			}
		}
		for _, r := range rows {
			if r.PointCode == "" || r.Sample.Lab == "" || r.Sample.SampledAt.IsZero() || len(r.Sample.Measurements) == 0 {
				t.Fatalf("accepted row %+v", r)
			}
			for _, m := range r.Sample.Measurements {
				if _, ok := LookupParameter(m.Parameter); !ok || m.Value < 0 || m.Value != m.Value {
					t.Fatalf("accepted measurement %+v", m)
				}
			}
		}
		if len(problems) > 0 {
			if st := (&CSVRejectedError{Problems: problems}).GRPCStatus(); len(st.Message()) > 400 {
				t.Fatalf("status message %d bytes", len(st.Message()))
			}
		}
	})
}
