package field

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/server"
)

// testCallers stands in for the auth interceptor: the x-test-person header
// names one of the test callers.
var testCallers = map[string]scope.Caller{
	inspectorAID: inspectorA, inspectorBID: inspectorB, supervisorID: supervisor, officerID: officer, otherOfficer: officer2,
}

func testAuth(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-test-person"); len(v) == 1 {
		if c, ok := testCallers[v[0]]; ok {
			return scope.NewContext(ctx, c)
		}
	}
	return ctx
}

// startServer serves f through the platform's server (interceptors, limits)
// on a loopback port and returns a client.
func startServer(tb testing.TB, f *Field) ecogridv1.FieldServiceClient {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, log, server.Options{
		AuthUnary: func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(testAuth(ctx), req)
		},
		AuthStream: func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return h(srv, &authStream{ServerStream: ss, ctx: testAuth(ss.Context())})
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	ecogridv1.RegisterFieldServiceServer(srv.GRPC, NewService(f, log))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return ecogridv1.NewFieldServiceClient(conn)
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authStream) Context() context.Context { return s.ctx }

func as(person string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-test-person", person)
}

func draftPB(d Draft) *ecogridv1.ReportDraft {
	return &ecogridv1.ReportDraft{
		ReportId: d.ID, ObservedAt: timestamppb.New(d.ObservedAt), Category: d.Category,
		Severity: ecogridv1.Severity(d.Severity), Description: d.Description, Position: positionPB(d.Position),
		PatrolId: d.PatrolID, PhotoSha256: d.PhotoSHA256, Violation: d.Violation,
	}
}

func grpcCode(t testing.TB, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

func TestServiceReports(t *testing.T) {
	e := newEnv(t, Config{})
	cl := startServer(t, e.f)
	d := e.draft(29.01, 106.05)
	d.Violation = true
	resp, err := cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: draftPB(d)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Replayed || resp.Report.GetLocation().GetVillageCode() != villageWS || resp.Report.ReceivedAt == nil {
		t.Fatalf("%+v", resp)
	}
	again, err := cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: draftPB(d)})
	if err != nil || !again.Replayed || !again.Report.ReceivedAt.AsTime().Equal(resp.Report.ReceivedAt.AsTime()) {
		t.Fatalf("replay %+v %v", again, err)
	}
	_, err = cl.SubmitReport(context.Background(), &ecogridv1.SubmitReportRequest{Report: draftPB(d)})
	grpcCode(t, err, codes.Unauthenticated)
	_, err = cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{})
	grpcCode(t, err, codes.InvalidArgument)
	noPos := draftPB(e.draft(29.01, 106.05))
	noPos.Position = nil
	_, err = cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: noPos})
	grpcCode(t, err, codes.InvalidArgument)
	_, err = cl.GetReport(as(inspectorBID), &ecogridv1.GetReportRequest{ReportId: d.ID})
	grpcCode(t, err, codes.NotFound)
	huge := draftPB(e.draft(29.01, 106.05))
	huge.Description = strings.Repeat("x", 1<<20)
	_, err = cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: huge})
	grpcCode(t, err, codes.InvalidArgument)
	if st, _ := status.FromError(err); len(st.Message()) > 200 {
		t.Fatalf("error echoes the text: %d bytes", len(st.Message()))
	}

	// A check the proto's rules cannot make (the phone's clock is a day
	// ahead) names its field in a BadRequest, as the rules' refusals do.
	ahead := e.draft(29.01, 106.05)
	ahead.ObservedAt = e.clock.Now().Add(24 * time.Hour)
	_, err = cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: draftPB(ahead)})
	grpcCode(t, err, codes.InvalidArgument)
	var field string
	if br := badRequestOf(err); br != nil && len(br.GetFieldViolations()) == 1 {
		field = br.GetFieldViolations()[0].GetField()
	}
	if field != "report.observed_at" {
		t.Errorf("future observed_at: BadRequest field %q, want report.observed_at (%v)", field, err)
	}
	unknown := e.draft(29.01, 106.05)
	unknown.Category = "no_such_category"
	_, err = cl.SubmitReport(as(inspectorAID), &ecogridv1.SubmitReportRequest{Report: draftPB(unknown)})
	if br := badRequestOf(err); br == nil || br.GetFieldViolations()[0].GetField() != "report.category" {
		t.Errorf("unknown category: %v %v", err, br)
	}

	// Offline batch: the bad item has its own error, the others are kept.
	good1, bad, good2 := e.draft(29.02, 106.05), e.draft(29.02, 106.05), e.draft(29.03, 106.05)
	bad.ObservedAt = e.clock.Now().Add(24 * time.Hour)
	batch, err := cl.SubmitReportBatch(as(inspectorAID), &ecogridv1.SubmitReportBatchRequest{
		Reports: []*ecogridv1.ReportDraft{draftPB(good1), draftPB(bad), draftPB(good2), draftPB(d), noPos}})
	if err != nil {
		t.Fatal(err)
	}
	r := batch.Results
	if r[0].ErrorCode != 0 || r[2].ErrorCode != 0 || r[1].ErrorCode != int32(codes.InvalidArgument) || r[1].ErrorMessage == "" ||
		!r[3].Replayed || r[4].ErrorCode != int32(codes.InvalidArgument) {
		t.Fatalf("batch results %v", r)
	}
	list, err := cl.ListReports(as(supervisorID), &ecogridv1.ListReportsRequest{
		Filter: &ecogridv1.ReportFilter{Violation: ecogridv1.ViolationFilter_VIOLATION_FILTER_EXCLUDE},
		Page:   &ecogridv1.PageRequest{PageSize: 1}})
	if err != nil || len(list.Reports) != 1 || list.NextPageToken == "" {
		t.Fatalf("list %v %v", list, err)
	}
	cats, err := cl.ListCategories(as(inspectorAID), &ecogridv1.ListCategoriesRequest{})
	if err != nil || len(cats.Categories) != 10 {
		t.Fatalf("categories %v %v", cats, err)
	}
}

func TestServicePatrol(t *testing.T) {
	e := newEnv(t, Config{})
	cl := startServer(t, e.f)
	ctx := as(inspectorAID)
	start := e.clock.Now().Add(-time.Hour)
	id := uuid.NewString()
	if _, err := cl.StartPatrol(ctx, &ecogridv1.StartPatrolRequest{PatrolId: id, StartedAt: timestamppb.New(start)}); err != nil {
		t.Fatal(err)
	}
	var pts []*ecogridv1.TrackPoint
	for _, p := range walk(start, 41, time.Minute, 29.01, 106.05, 0.0003) {
		pts = append(pts, &ecogridv1.TrackPoint{RecordedAt: timestamppb.New(p.RecordedAt), Position: positionPB(p.Position)})
	}
	pts = append(pts, &ecogridv1.TrackPoint{}) // no time, no position
	res, err := cl.AppendTrackPoints(ctx, &ecogridv1.AppendTrackPointsRequest{PatrolId: id, Points: pts})
	if err != nil || res.Added != 41 || res.Rejected != 1 {
		t.Fatalf("%v %v", res, err)
	}
	end, err := cl.EndPatrol(ctx, &ecogridv1.EndPatrolRequest{PatrolId: id, EndedAt: timestamppb.New(start.Add(40 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	p := end.Patrol
	if p.State != ecogridv1.PatrolState_PATROL_STATE_ENDED || p.PointCount != 41 || p.DistanceM < 1300 || len(p.Flags) != 0 || p.DurationS != 2400 {
		t.Fatalf("%+v", p)
	}
	comp, err := cl.GetPatrolCompliance(as(supervisorID), &ecogridv1.GetPatrolComplianceRequest{
		Period: ecogridv1.CompliancePeriod_COMPLIANCE_PERIOD_WEEK, From: timestamppb.New(start), To: timestamppb.New(start.Add(time.Hour))})
	if err != nil || len(comp.Rows) == 0 || comp.Rows[0].Done != 1 {
		t.Fatalf("%v %v", comp, err)
	}
}

// An app that ends a patrol as the inspector taps "end" sends no ended_at:
// the patrol ends at the server's now instead of being refused (issue 14).
func TestServiceEndPatrolWithoutEndedAtMeansNow(t *testing.T) {
	e := newEnv(t, Config{})
	cl := startServer(t, e.f)
	ctx := as(inspectorAID)
	start := e.clock.Now().Add(-time.Hour)
	id := uuid.NewString()
	if _, err := cl.StartPatrol(ctx, &ecogridv1.StartPatrolRequest{PatrolId: id, StartedAt: timestamppb.New(start)}); err != nil {
		t.Fatal(err)
	}
	end, err := cl.EndPatrol(ctx, &ecogridv1.EndPatrolRequest{PatrolId: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := end.Patrol.GetEndedAt().AsTime(); !got.Equal(e.clock.Now()) || end.Patrol.State != ecogridv1.PatrolState_PATROL_STATE_ENDED {
		t.Fatalf("ended at %v (state %v), want now %v", got, end.Patrol.State, e.clock.Now())
	}
}

// upload sends the header and data[from:] in chunks; stopAt > 0 ends the
// stream early (a dropped connection, seen by the server as EOF).
func upload(t testing.TB, cl ecogridv1.FieldServiceClient, ctx context.Context, h *ecogridv1.PhotoUploadHeader, data []byte, from, stopAt, chunk int) (*ecogridv1.UploadPhotoResponse, error) {
	t.Helper()
	st, err := cl.UploadPhoto(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Header{Header: h}}); err != nil {
		return nil, err
	}
	end := len(data)
	if stopAt > 0 {
		end = stopAt
	}
	for off := from; off < end; off += chunk {
		msg := &ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Chunk{Chunk: &ecogridv1.PhotoChunk{
			Offset: int64(off), Data: data[off:min(off+chunk, end)]}}}
		if err := st.Send(msg); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server answered early; CloseAndRecv has it
			}
			return nil, err
		}
	}
	return st.CloseAndRecv()
}

func TestServicePhotoUploadResumeAndDownload(t *testing.T) {
	e := newEnv(t, Config{})
	cl := startServer(t, e.f)
	ctx := as(inspectorAID)
	data := testJPEG(t, 29.0101, 106.0501, e.clock.Now(), 3<<20)
	h := &ecogridv1.PhotoUploadHeader{UploadId: uuid.NewString(), Size: int64(len(data)), Sha256: sum(data), ContentType: "image/jpeg"}

	part, err := upload(t, cl, ctx, h, data, 0, 1<<20+12345, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if part.State != ecogridv1.UploadState_UPLOAD_STATE_PARTIAL || part.CommittedOffset != 1<<20+12345 {
		t.Fatalf("partial %+v", part)
	}
	st, err := cl.GetUploadStatus(ctx, &ecogridv1.GetUploadStatusRequest{UploadId: h.UploadId})
	if err != nil || st.CommittedOffset != part.CommittedOffset {
		t.Fatalf("status %+v %v", st, err)
	}
	_, err = upload(t, cl, ctx, h, data, 0, 0, 256<<10)
	grpcCode(t, err, codes.FailedPrecondition)
	done, err := upload(t, cl, ctx, h, data, int(st.CommittedOffset), 0, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE || done.Photo.GetWidth() != 64 || !done.Photo.HasExifPosition {
		t.Fatalf("done %+v", done)
	}
	// Chunks after completion are refused; the header alone is answered
	// complete, also for the same photo under another upload id by another
	// inspector (stored once, no byte sent).
	_, err = upload(t, cl, ctx, h, data, 0, 0, 256<<10)
	grpcCode(t, err, codes.FailedPrecondition)
	again, err := upload(t, cl, ctx, h, nil, 0, 0, 256<<10)
	if err != nil || again.State != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE {
		t.Fatalf("header only: %+v %v", again, err)
	}
	h2 := &ecogridv1.PhotoUploadHeader{UploadId: uuid.NewString(), Size: h.Size, Sha256: h.Sha256, ContentType: h.ContentType}
	dup, err := upload(t, cl, as(inspectorBID), h2, nil, 0, 0, 256<<10)
	if err != nil || dup.State != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE || dup.Photo.GetSha256() != h.Sha256 {
		t.Fatalf("dedup: %+v %v", dup, err)
	}

	big := &ecogridv1.PhotoUploadHeader{UploadId: uuid.NewString(), Size: 21 << 20, Sha256: sum(data), ContentType: "image/jpeg"}
	_, err = upload(t, cl, ctx, big, nil, 0, 0, 1)
	grpcCode(t, err, codes.ResourceExhausted)

	// Download: the uploader yes, another inspector no.
	dl := func(ctx context.Context) ([]byte, error) {
		s, err := cl.DownloadPhoto(ctx, &ecogridv1.DownloadPhotoRequest{Sha256: h.Sha256})
		if err != nil {
			return nil, err
		}
		var out []byte
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if m.Offset != int64(len(out)) {
				t.Fatalf("offset %d after %d bytes", m.Offset, len(out))
			}
			out = append(out, m.Data...)
		}
	}
	got, err := dl(ctx)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
	// B "uploaded" it by its hash alone: knowing a hash grants nothing.
	_, err = dl(as(inspectorBID))
	grpcCode(t, err, codes.NotFound)
}

func TestServiceExport(t *testing.T) {
	e := newEnv(t, Config{})
	cl := startServer(t, e.f)
	ctx := context.Background()
	for i, c := range []scope.Caller{inspectorA, inspectorA, inspectorB} {
		d := e.draft(29.01+float64(i)*0.001, []float64{106.05, 106.06, 106.15}[i])
		d.Description = []string{"=HYPERLINK(\"http://evil\")", "line one\nline two, with \"quotes\"", "水体发黑发臭"}[i]
		d.ObservedAt = e.clock.Now().Add(-time.Duration(10-i) * time.Minute) // export order
		if i == 1 {
			d.Category = "air"
		}
		if i == 2 {
			d.Position = wgs(29.0123456789, 106.1512345678) // more decimals than a fix holds
		}
		if _, _, err := e.f.SubmitReport(ctx, c, d); err != nil {
			t.Fatal(err)
		}
	}
	read := func(who string, format ecogridv1.ExportFormat, fl *ecogridv1.ReportFilter) []byte {
		t.Helper()
		s, err := cl.ExportReports(as(who), &ecogridv1.ExportReportsRequest{Format: format, Filter: fl})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m.Data...)
		}
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			ID       string `json:"id"`
			Geometry struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(read(officerID, ecogridv1.ExportFormat_EXPORT_FORMAT_GEOJSON, nil), &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 3 {
		t.Fatalf("%d features", len(fc.Features))
	}
	f0 := fc.Features[0]
	if f0.Geometry.Type != "Point" || len(f0.Geometry.Coordinates) != 2 || f0.Geometry.Coordinates[0] < 106 || f0.Geometry.Coordinates[1] > 30 {
		t.Fatalf("RFC 7946 wants [lon, lat]: %v", f0.Geometry.Coordinates)
	}
	if f0.Properties["village_code"] == "" || f0.Properties["category"] == nil {
		t.Fatalf("properties %v", f0.Properties)
	}
	// One convention across exports (issue 14): names beside codes,
	// lower-case enums, +08:00 times, 7 decimals of a degree.
	if f0.Properties["village_name"] != "West-South Village" || f0.Properties["township_name"] != "West Township" ||
		f0.Properties["reporter_name"] != "Li Inspector" || f0.Properties["severity"] != "normal" ||
		!strings.HasSuffix(f0.Properties["observed_at"].(string), "+08:00") || f0.Properties["original_coordinate_system"] != "wgs-84" {
		t.Fatalf("properties %v", f0.Properties)
	}
	if c := fc.Features[2].Geometry.Coordinates; c[0] != 106.1512346 || c[1] != 29.0123457 || fc.Features[2].Properties["latitude"] != 29.0123457 {
		t.Fatalf("coordinates %v, latitude %v: want 7 decimals", c, fc.Features[2].Properties["latitude"])
	}
	// Scoped: the west supervisor sees only the west township's two.
	sup := read(supervisorID, ecogridv1.ExportFormat_EXPORT_FORMAT_CSV, nil)
	if !bytes.HasPrefix(sup, []byte("\xEF\xBB\xBFreport_id,")) {
		t.Fatalf("CSV without UTF-8 BOM: %q", sup[:min(20, len(sup))])
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(sup, []byte("\xEF\xBB\xBF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0][0] != "report_id" || recs[0][2] != "reporter_name" || recs[1][2] != "Li Inspector" || recs[1][7] != "West-South Village" {
		t.Fatalf("%d CSV rows: %q", len(recs), recs[:min(2, len(recs))])
	}
	desc := len(recs[0]) - 1
	if !strings.HasPrefix(recs[1][desc], "'=") || recs[2][desc] != "line one\nline two, with \"quotes\"" {
		t.Fatalf("descriptions %q %q", recs[1][desc], recs[2][desc])
	}
	// XLSX: the CSV's columns and rows as typed cells under a frozen header.
	x, err := excelize.OpenReader(bytes.NewReader(read(supervisorID, ecogridv1.ExportFormat_EXPORT_FORMAT_XLSX, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows("reports")
	if err != nil || len(rows) != len(recs) || strings.Join(rows[0], ",") != strings.Join(recs[0], ",") || rows[1][0] != recs[1][0] || rows[1][7] != "West-South Village" {
		t.Fatalf("XLSX rows %q, %v; want the CSV's", rows[:min(2, len(rows))], err)
	}
	if p, err := x.GetPanes("reports"); err != nil || !p.Freeze || p.YSplit != 1 {
		t.Fatalf("XLSX header not frozen: %+v %v", p, err)
	}
	col := func(name string) string {
		i := slices.Index(recs[0], name)
		c, _ := excelize.CoordinatesToCellName(i+1, 2)
		return c
	}
	observed, _ := x.GetCellValue("reports", col("observed_at"), excelize.Options{RawCellValue: true})
	serial, err := strconv.ParseFloat(observed, 64)
	if err != nil {
		t.Fatalf("observed_at is %q in XLSX, not a date serial", observed)
	}
	want, _ := time.Parse(time.RFC3339, recs[1][slices.Index(recs[0], "observed_at")])
	if at, _ := excelize.ExcelDateToTime(serial, false); at.Sub(time.Date(want.Year(), want.Month(), want.Day(), want.Hour(), want.Minute(), want.Second(), 0, time.UTC)).Abs() > time.Second {
		t.Fatalf("observed_at serial %v is %v; want the county's wall clock of %v", serial, at, want)
	}
	if ct, _ := x.GetCellType("reports", col("latitude")); ct != excelize.CellTypeUnset && ct != excelize.CellTypeNumber {
		t.Fatalf("latitude cell type %v, want a number", ct)
	}
	if ct, _ := x.GetCellType("reports", col("violation")); ct != excelize.CellTypeBool {
		t.Fatalf("violation cell type %v, want a boolean", ct)
	}
	air := read(officerID, ecogridv1.ExportFormat_EXPORT_FORMAT_CSV, &ecogridv1.ReportFilter{Category: "air", NodeCode: townshipWest})
	if recs, _ := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(air, []byte("\xEF\xBB\xBF")))).ReadAll(); len(recs) != 2 {
		t.Fatalf("filtered export has %d rows", len(recs))
	}
	if out := read(otherOfficer, ecogridv1.ExportFormat_EXPORT_FORMAT_GEOJSON, nil); !bytes.Contains(out, []byte(`"features":[`)) || bytes.Contains(out, []byte("Feature\"")) {
		t.Fatalf("other county export: %s", out)
	}
	s, _ := cl.ExportReports(as(officerID), &ecogridv1.ExportReportsRequest{})
	_, err = s.Recv()
	grpcCode(t, err, codes.InvalidArgument)
}

func badRequestOf(err error) *errdetails.BadRequest {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}
