package field

import (
	"bytes"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr/structerrtest"
)

var lowerUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// FuzzFieldRequests decodes arbitrary bytes as the field service's
// requests, exactly as gRPC would (proto3 strings are UTF-8 checked there),
// and runs them through the checks that stand before the database:
// kind 0 a report (draftOf, normalize), 1 a photo upload header
// (checkHeader), 2 a report list filter and page token, 3 a batch of GPS
// fixes (timeOf, positionOf, Position.check). A refusal must be
// InvalidArgument (or ResourceExhausted for an oversize photo) with a
// short message an app can show; what is accepted must be in canonical
// form, inside the limits, and normalize must be idempotent (a replay of
// the same draft hashes the same).
func FuzzFieldRequests(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	pos := &ecogridv1.Position{Latitude: 38.05, Longitude: 114.55, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_GCJ02, AccuracyM: 8}
	seed := func(kind uint8, m proto.Message) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, b)
	}
	seed(0, &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{
		ReportId: "6F1C2B7E-4D0A-4C8E-9A53-0B7F3E2D9C11", ObservedAt: timestamppb.New(now.Add(-time.Hour)), Category: "waste_dumping",
		Severity: ecogridv1.Severity_SEVERITY_SERIOUS, Description: "河边倾倒建筑垃圾", Position: pos,
		PhotoSha256: []string{strings.Repeat("AB", 32), strings.Repeat("ab", 32)}, Violation: true,
	}})
	seed(0, &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{ReportId: "x", Position: &ecogridv1.Position{Latitude: math.NaN()}}})
	seed(1, &ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Header{Header: &ecogridv1.PhotoUploadHeader{
		ReportId: "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11", Sha256: strings.Repeat("0f", 32), Size: 123456, ContentType: "image/JPEG",
	}}})
	seed(2, &ecogridv1.ListReportsRequest{Filter: &ecogridv1.ReportFilter{NodeCode: "130123005", Category: "smoke", ObservedFrom: timestamppb.New(now.Add(-48 * time.Hour)), ObservedTo: timestamppb.New(now)},
		Page: &ecogridv1.PageRequest{PageToken: encodePageToken(pageKey{ReceivedAt: now, ID: "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"})}})
	seed(3, &ecogridv1.AppendTrackPointsRequest{PatrolId: "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11", Points: []*ecogridv1.TrackPoint{
		{RecordedAt: timestamppb.New(now), Position: pos},
		{RecordedAt: &timestamppb.Timestamp{Seconds: math.MaxInt64}, Position: &ecogridv1.Position{Latitude: 91, Longitude: 200, CoordinateSystem: 7}},
	}})

	cfg := DefaultConfig()
	rs, ph := &Reports{cfg: cfg}, &Photos{cfg: cfg}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		switch kind % 4 {
		case 0:
			var req ecogridv1.SubmitReportRequest
			if proto.Unmarshal(data, &req) != nil {
				return
			}
			d, err := draftOf(req.GetReport())
			if err == nil {
				err = rs.normalize(&d, now)
			}
			if err != nil {
				structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
				return
			}
			checkDraft(t, cfg, d, now)
			again := d
			again.PhotoSHA256 = append([]string(nil), d.PhotoSHA256...)
			if err := rs.normalize(&again, now); err != nil {
				t.Fatalf("a normalized draft is refused: %v", err)
			}
			if !bytes.Equal(again.hash("r"), d.hash("r")) {
				t.Fatalf("normalize is not idempotent: %+v then %+v", d, again)
			}
		case 1:
			var req ecogridv1.UploadPhotoRequest
			if proto.Unmarshal(data, &req) != nil || req.GetHeader() == nil {
				return
			}
			hp := req.GetHeader()
			h := UploadHeader{UploadID: hp.GetUploadId(), ReportID: hp.GetReportId(), Size: hp.GetSize(), SHA256: hp.GetSha256(), ContentType: hp.GetContentType()}
			if err := ph.checkHeader(&h, inspectorAID); err != nil {
				structerrtest.CheckRefusal(t, err, codes.InvalidArgument, codes.ResourceExhausted)
				return
			}
			if !sha256Hex.MatchString(h.SHA256) || !lowerUUID.MatchString(h.UploadID) || h.Size <= 0 || h.Size > cfg.MaxPhotoBytes {
				t.Fatalf("accepted header %+v", h)
			}
			if h.ReportID != "" && !lowerUUID.MatchString(h.ReportID) {
				t.Fatalf("accepted report id %q", h.ReportID)
			}
		case 2:
			var req ecogridv1.ListReportsRequest
			if proto.Unmarshal(data, &req) != nil {
				return
			}
			rf, err := filterOf(req.GetFilter())
			if err == nil {
				err = rf.check()
			}
			if err != nil {
				structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
			}
			if tok := req.GetPage().GetPageToken(); tok != "" {
				k, err := decodePageToken(tok)
				if err != nil {
					structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
				} else if encodePageToken(k) != tok {
					t.Fatalf("page token %q read as %+v, which encodes as %q", tok, k, encodePageToken(k))
				}
			}
		case 3:
			var req ecogridv1.AppendTrackPointsRequest
			if proto.Unmarshal(data, &req) != nil {
				return
			}
			for _, p := range req.GetPoints() {
				at, _ := timeOf("recorded_at", p.GetRecordedAt())
				_ = at.UTC().Truncate(time.Microsecond).UnixMicro()
				ps, _ := positionOf(p.GetPosition())
				lat, lon, err := ps.check(cfg.MaxAccuracyM)
				if err != nil {
					structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
					continue
				}
				if !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
					t.Fatalf("position %+v accepted as %v,%v", ps, lat, lon)
				}
			}
		}
	})
}

func checkDraft(t *testing.T, cfg Config, d Draft, now time.Time) {
	t.Helper()
	if !lowerUUID.MatchString(d.ID) || (d.PatrolID != "" && !lowerUUID.MatchString(d.PatrolID)) {
		t.Fatalf("ids not canonical: %q %q", d.ID, d.PatrolID)
	}
	if d.ObservedAt.After(now.Add(cfg.MaxClockSkew)) || d.ObservedAt.Before(now.Add(-cfg.MaxReportAge)) || d.ObservedAt.Location() != time.UTC {
		t.Fatalf("observed_at %v accepted", d.ObservedAt)
	}
	if !utf8.ValidString(d.Description) || utf8.RuneCountInString(d.Description) > cfg.MaxDescriptionRunes || strings.ContainsRune(d.Description, 0) {
		t.Fatalf("description %.80q accepted", d.Description)
	}
	if !categoryCode.MatchString(d.Category) || d.Severity < SeverityMinor || d.Severity > SeverityCritical {
		t.Fatalf("category %q severity %v accepted", d.Category, d.Severity)
	}
	seen := map[string]bool{}
	for _, h := range d.PhotoSHA256 {
		if !sha256Hex.MatchString(h) || seen[h] {
			t.Fatalf("photo list %q accepted", d.PhotoSHA256)
		}
		seen[h] = true
	}
	lat, lon, err := d.Position.check(cfg.MaxAccuracyM)
	if err != nil || !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
		t.Fatalf("position %+v accepted as %v,%v (%v)", d.Position, lat, lon, err)
	}
}
