package tabular

import (
	"io"
	"testing"
	"time"
)

// BenchmarkWrite10kRows: one op writes a 10,000-row, 9-column export
// (the size of a county's year of cases) as CSV or XLSX.
func BenchmarkWrite10kRows(b *testing.B) {
	at := time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC)
	for _, f := range []Format{CSV, XLSX} {
		b.Run(string(f), func(b *testing.B) {
			for b.Loop() {
				w, err := New(f, io.Discard, cst, "cases", []string{"id", "name", "severity", "observed_at", "count", "lat", "overdue", "photos", "note"})
				if err != nil {
					b.Fatal(err)
				}
				for i := range 10000 {
					if err := w.Row("c1", "王村", "serious", at.Add(time.Duration(i)*time.Minute), i, 38.0455123, i%2 == 0, []string{"a"}, "焚烧秸秆"); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
