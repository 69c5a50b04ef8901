package server_test

import (
	"strings"
	"testing"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/server"
)

// BenchmarkValidateSubmitReport is the cost the request rules add to the
// hottest write: one well-formed report with two photos.
func BenchmarkValidateSubmitReport(b *testing.B) {
	req := &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{
		ReportId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f", Category: "water", Severity: ecogridv1.Severity_SEVERITY_NORMAL,
		Description: "oil on the canal", Position: &ecogridv1.Position{Latitude: 38.05, Longitude: 114.55, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_GCJ02},
		PhotoSha256: []string{strings.Repeat("ab", 32), strings.Repeat("cd", 32)}}}
	if err := server.ValidateRequest(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := server.ValidateRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateRefusal is the cost of a refusal with its details.
func BenchmarkValidateRefusal(b *testing.B) {
	req := &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{ReportId: "r-1", Position: &ecogridv1.Position{Latitude: 91}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := server.ValidateRequest(req); err == nil {
			b.Fatal("accepted")
		}
	}
}
