package main

import (
	"testing"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

func TestReportsExportRequest(t *testing.T) {
	req, err := reportsExportRequest("CSV", "2026-11-01", "2026-12-01T00:00:00Z", "500101001", "water", "only")
	if err != nil {
		t.Fatal(err)
	}
	f := req.GetFilter()
	if req.Format != ecogridv1.ExportFormat_EXPORT_FORMAT_CSV || f.NodeCode != "500101001" || f.Category != "water" ||
		f.Violation != ecogridv1.ViolationFilter_VIOLATION_FILTER_ONLY {
		t.Fatalf("%+v", req)
	}
	if want := time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC); !f.ObservedFrom.AsTime().Equal(want) {
		t.Fatalf("from %v, want %v (midnight China time)", f.ObservedFrom.AsTime(), want)
	}
	for _, bad := range [][6]string{
		{"xml", "", "", "", "", ""},
		{"csv", "yesterday", "", "", "", ""},
		{"csv", "", "", "", "", "maybe"},
	} {
		if _, err := reportsExportRequest(bad[0], bad[1], bad[2], bad[3], bad[4], bad[5]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
