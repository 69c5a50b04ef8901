package assessment_test

import (
	"fmt"
	"testing"
	"time"

	"ecogrid/internal/assessment"
	"ecogrid/internal/ledger"
)

// BenchmarkScorecardsYear scores the 500 villages and 25 townships of a
// county for a year from its case and violation records (about 20 cases
// per village, 5 records each), in memory: the computation only, not the
// ledger read.
func BenchmarkScorecardsYear(b *testing.B) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	var nodes []string
	var records []ledger.Record
	seq := int64(0)
	for tw := 1; tw <= 25; tw++ {
		township := fmt.Sprintf("130123%03d", tw)
		nodes = append(nodes, township)
		for v := 1; v <= 20; v++ {
			village := fmt.Sprintf("%s%03d", township, v)
			nodes = append(nodes, village)
			for c := range 20 {
				at := from.Add(time.Duration(c) * 18 * 24 * time.Hour)
				id := fmt.Sprintf("%s-%d", village, c)
				dl := []byte(`{"deadline":"` + at.Add(7*24*time.Hour).Format(time.RFC3339) + `"}`)
				for k, action := range []string{"violation.reported", "case.created", "case.accepted", "case.dispatched", "case.closed"} {
					records = append(records, ledger.Record{CountyCode: "130123", Seq: seq, RecordedAt: at.Add(time.Duration(k*30) * time.Hour),
						Action: action, SubjectType: "case", SubjectID: id, NodeCode: village, Payload: dl})
					seq++
				}
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		sc := assessment.Compute(nodes, nil, from, to, records)
		if len(sc) != len(nodes) {
			b.Fatal(len(sc))
		}
	}
	b.ReportMetric(float64(len(records)), "records")
	b.ReportMetric(float64(len(nodes)), "nodes")
}
