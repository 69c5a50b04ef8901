package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/cases"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/scope"
)

func TestCasesExportCSVAndGeoJSON(t *testing.T) {
	pool := dbtest.NewPool(t)
	tracker := cases.NewTracker(pool, nil)
	ctx := context.Background()
	const village = "130123101201"
	var ids []string
	for i := range 3 {
		ev := &eventsv1.ViolationReported{
			EventId: uuid.NewString(), ReportId: uuid.NewString(), CountyCode: village[:6], TownshipCode: village[:9],
			VillageCode: village, Category: "open_burning", Severity: "SEVERITY_NORMAL", Description: "焚烧秸秆, field " + string(rune('A'+i)),
			Latitude: 38.04 + float64(i)/100, Longitude: 114.51, ReceivedAt: timestamppb.Now(),
		}
		if i == 2 {
			ev.Latitude, ev.Longitude = 0, 0 // no position
		}
		// cased opens cases only for violations field recorded.
		if _, err := pool.Exec(ctx, `INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code,
				village_code, cell_code, category, severity, description, observed_at, position, orig_lat, orig_lon,
				orig_system, violation, outside_area, event_id)
			VALUES ($1, '\x00', '', $2, $3, $4, $4, $5, 2, $6, now(), ST_SetSRID(ST_MakePoint($7, $8), 4326), $8, $7, 1, true, false, $9)`,
			ev.ReportId, ev.CountyCode, ev.TownshipCode, ev.VillageCode, ev.Category, ev.Description,
			ev.Longitude, ev.Latitude, ev.EventId); err != nil {
			t.Fatal(err)
		}
		out, err := tracker.OpenFromViolation(ctx, ev, cases.Source{Subject: "test", Kind: "jetstream"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.CaseID)
	}
	caller := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: "130123"}}}
	if _, err := tracker.Transition(ctx, caller, ids[0], uuid.NewString(), cases.ActionAccept, cases.Input{}); err != nil {
		t.Fatal(err)
	}

	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(scope.NewContext(ctx, caller), req)
	}))
	ecogridv1.RegisterCaseServiceServer(srv, cases.NewService(tracker, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis) //nolint:errcheck
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ecogridv1.NewCaseServiceClient(conn)

	var buf bytes.Buffer
	n, err := exportCases(ctx, client, casesExportOptions{Format: "csv"}, &buf)
	if err != nil || n != 3 {
		t.Fatalf("csv export: %d cases, %v", n, err)
	}
	if !strings.HasPrefix(buf.String(), "\uFEFF") {
		t.Fatal("csv has no byte order mark")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(buf.String(), "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "case_id" || len(rows[1]) != len(csvHeader) {
		t.Fatalf("csv rows %v", rows)
	}
	states := map[string]string{}
	for _, r := range rows[1:] {
		states[r[0]] = r[2]
		if !strings.Contains(r[len(r)-1], "焚烧秸秆") {
			t.Fatalf("description lost: %q", r[len(r)-1])
		}
		at := r[slices.Index(csvHeader, "reported_at")]
		if _, err := time.Parse(time.RFC3339, at); err != nil || !strings.HasSuffix(at, "+08:00") {
			t.Fatalf("reported_at %q: %v", at, err)
		}
	}
	if states[ids[0]] != "accepted" || states[ids[1]] != "reported" {
		t.Fatalf("states %v", states)
	}

	buf.Reset()
	n, err = exportCases(ctx, client, casesExportOptions{Format: "geojson", States: []ecogridv1.CaseState{ecogridv1.CaseState_CASE_STATE_REPORTED}}, &buf)
	if err != nil || n != 2 {
		t.Fatalf("geojson export: %d cases, %v", n, err)
	}
	var fc struct {
		Type     string
		Features []struct {
			Type     string
			ID       string
			Geometry *struct {
				Type        string
				Coordinates []float64
			}
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &fc); err != nil {
		t.Fatalf("geojson does not parse: %v\n%s", err, buf.String())
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 2 {
		t.Fatalf("feature collection %+v", fc)
	}
	for _, f := range fc.Features {
		switch f.ID {
		case ids[1]:
			if f.Geometry == nil || f.Geometry.Type != "Point" || f.Geometry.Coordinates[0] != 114.51 || f.Geometry.Coordinates[1] != 38.05 {
				t.Fatalf("geometry %+v, want [lon, lat]", f.Geometry)
			}
		case ids[2]:
			if f.Geometry != nil {
				t.Fatalf("case without position has geometry %+v", f.Geometry)
			}
		default:
			t.Fatalf("unexpected feature %s", f.ID)
		}
		// An unset time is null, never "".
		if f.Properties["state"] != "reported" || f.Properties["closed_at"] != nil || f.Properties["severity"] != "normal" {
			t.Fatalf("properties %v", f.Properties)
		}
		if _, ok := f.Properties["closed_at"]; !ok {
			t.Fatalf("closed_at missing from %v", f.Properties)
		}
	}

	// XLSX: the CSV's columns, typed, the header frozen.
	buf.Reset()
	if n, err := exportCases(ctx, client, casesExportOptions{Format: "xlsx"}, &buf); err != nil || n != 3 {
		t.Fatalf("xlsx export: %d cases, %v", n, err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	xrows, err := x.GetRows("cases")
	if err != nil || len(xrows) != 4 || strings.Join(xrows[0], ",") != strings.Join(rows[0], ",") {
		t.Fatalf("xlsx rows %q, %v; want the CSV's header", xrows, err)
	}
	if p, _ := x.GetPanes("cases"); !p.Freeze || p.YSplit != 1 {
		t.Fatalf("header not frozen: %+v", p)
	}
	cell := func(col string) string {
		c, _ := excelize.CoordinatesToCellName(slices.Index(csvHeader, col)+1, 2)
		return c
	}
	raw, _ := x.GetCellValue("cases", cell("reported_at"), excelize.Options{RawCellValue: true})
	if _, err := strconv.ParseFloat(raw, 64); err != nil {
		t.Fatalf("reported_at is %q, not a date serial", raw)
	}
	if ct, _ := x.GetCellType("cases", cell("overdue")); ct != excelize.CellTypeBool {
		t.Fatalf("overdue is of cell type %v", ct)
	}
	if v, _ := x.GetCellValue("cases", cell("extension_days"), excelize.Options{RawCellValue: true}); v != "0" {
		t.Fatalf("extension_days = %q", v)
	}
}
