package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/xuri/excelize/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/devstack"
	"ecogrid/internal/messaging"
)

// opStack is the whole dev stack (gridd, cased, embedded NATS) on the
// test database, as an operator reaches it.
type opStack struct {
	a    devstack.Addresses
	pool *pgxpool.Pool
	dir  string
}

func startOpStack(t *testing.T) *opStack {
	t.Helper()
	url := dbtest.NewURL(t)
	dir := t.TempDir()
	cfg := devstack.Config{DataDir: filepath.Join(dir, "dev"), DatabaseURL: url,
		GriddAddr: "127.0.0.1:0", GriddMetric: "127.0.0.1:0", CasedAddr: "127.0.0.1:0", CasedMetric: "127.0.0.1:0"}
	readyc := make(chan devstack.Addresses, 1)
	cfg.Ready = func(a devstack.Addresses) { readyc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, cfg, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { cancel(); <-done })
	s := &opStack{dir: dir}
	select {
	case s.a = <-readyc:
	case err := <-done:
		t.Fatalf("dev stack: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("dev stack not ready")
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s.pool = pool
	return s
}

// run runs a gridctl command line and returns its standard output and
// the error as gridctl prints it ("" on success).
func (s *opStack) run(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var err error
	out, _ := captureStdout(t, func() error { err = realMain(context.Background(), args); return err })
	if err == nil {
		return out, ""
	}
	return out, formatError(err)
}

func (s *opStack) must(t *testing.T, args ...string) string {
	t.Helper()
	out, e := s.run(t, args...)
	if e != "" {
		t.Fatalf("gridctl %s: %s%s", strings.Join(args, " "), e, out)
	}
	return out
}

// login logs in with a password on stdin, saving the refresh token.
func (s *opStack) login(t *testing.T, user, pw, refreshFile string) string {
	t.Helper()
	r, w, _ := os.Pipe()
	w.WriteString(pw + "\n") //nolint:errcheck
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	return strings.TrimSpace(s.must(t, "users", "login", "-addr", s.a.GriddGRPC, "-username", user, "-refresh-out", refreshFile))
}

// violation files a violation the way gridd's relay does, as the gridd
// NATS user; withReport records the field report that makes it authentic.
func (s *opStack) violation(t *testing.T, village string, withReport bool) *eventsv1.ViolationReported {
	t.Helper()
	ctx := context.Background()
	ev := &eventsv1.ViolationReported{EventId: uuid.NewString(), ReportId: uuid.NewString(), CountyCode: village[:6],
		TownshipCode: village[:9], VillageCode: village, Category: "open_burning", Severity: "SEVERITY_SERIOUS",
		Description: "焚烧秸秆", Latitude: 38.04, Longitude: 114.51, ReceivedAt: timestamppb.Now()}
	if withReport {
		s.recordReport(t, ev)
	}
	pw, err := os.ReadFile(filepath.Join(s.a.NATSPasswordDir, "nats-gridd.password"))
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := messaging.ConnectAs(ctx, s.a.NATSURL, messaging.Credentials{User: "gridd", Password: strings.TrimSpace(string(pw))}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	data, _ := proto.Marshal(ev)
	m := nats.NewMsg(messaging.ViolationSubject(ev.CountyCode))
	m.Data = data
	m.Header.Set("Nats-Msg-Id", ev.EventId)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (s *opStack) recordReport(t *testing.T, ev *eventsv1.ViolationReported) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code,
			village_code, cell_code, category, severity, description, observed_at, position, orig_lat, orig_lon,
			orig_system, violation, outside_area, event_id)
		VALUES ($1, '\x00', '', $2, $3, $4, $4, $5, 3, $6, now(), ST_SetSRID(ST_MakePoint($7, $8), 4326), $8, $7, 1, true, false, $9)`,
		ev.ReportId, ev.CountyCode, ev.TownshipCode, ev.VillageCode, ev.Category, ev.Description, ev.Longitude, ev.Latitude, ev.EventId); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestOperatorCommandsAgainstTheStack drives the operator's gridctl
// commands against the dev stack: persons and categories, cases list,
// show and act, deadline rules, dead-letter list and replay, with the
// access token renewed from the saved refresh token, and every failure in
// the one error format.
func TestOperatorCommandsAgainstTheStack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dev stack")
	}
	s := startOpStack(t)
	county := s.a.CountyCode
	var village string
	if err := s.pool.QueryRow(context.Background(), `SELECT code FROM grid.nodes WHERE county_code = $1 AND length(code) = 12 ORDER BY code LIMIT 1`, county).Scan(&village); err != nil {
		t.Fatal(err)
	}
	gridd := []string{"-addr", s.a.GriddGRPC}
	adminRefresh := filepath.Join(s.dir, "admin.refresh")
	admin := s.login(t, devstack.DevAdminUser, devstack.DefaultAdminPassword, adminRefresh)
	out := s.must(t, append([]string{"users", "create", "-county", county, "-name", "县网格办 李", "-username", "officer", "-token", admin}, gridd...)...)
	personID := regexp.MustCompile(`(?m)^person_id\s+(\S+)$`).FindStringSubmatch(out)[1]
	pw := regexp.MustCompile(`(?m)^password\s+(\S+)$`).FindStringSubmatch(out)[1]
	s.must(t, append([]string{"users", "assign", "-person", personID, "-node", county, "-role", "county_officer", "-token", admin}, gridd...)...)

	refresh := filepath.Join(s.dir, "officer.refresh")
	s.login(t, "officer", pw, refresh)
	// From here on the officer's commands carry no token: it is renewed
	// from the refresh file.
	t.Setenv("ECOGRID_REFRESH_FILE", refresh)
	t.Setenv("GRIDD_ADDR", s.a.GriddGRPC)
	t.Setenv("CASED_ADDR", s.a.CasedGRPC)
	t.Setenv("ECOGRID_TOKEN", "")
	firstRefresh, _ := os.ReadFile(refresh)

	if out := s.must(t, "persons", "list", "-node", county); !strings.Contains(out, "县网格办 李") || !strings.Contains(out, personID) {
		t.Errorf("persons list:\n%s", out)
	}
	if rotated, _ := os.ReadFile(refresh); string(rotated) == string(firstRefresh) {
		t.Error("the refresh token was not rotated by the renewal")
	}
	if fi, err := os.Stat(refresh + ".access"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("renewed access token not saved 0600 beside the refresh file: %v %v", fi, err)
	}
	if out := s.must(t, "categories", "list", "-county", county); !strings.Contains(out, "open_burning") {
		t.Errorf("categories list:\n%s", out)
	}
	// An access token that has run out is renewed before the call (the
	// saved one is read), one the server refuses is renewed after it.
	expired := "e30." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1000000000}`)) + ".sig"
	s.must(t, "persons", "list", "-token", expired)
	os.Remove(refresh + ".access")
	s.must(t, "persons", "list", "-token", "not-a-token")

	// A case from a violation, through the stack's NATS and cased.
	s.violation(t, village, true)
	var caseID string
	waitFor(t, "the case", func() bool {
		out, _ := s.run(t, "cases", "list", "-state", "reported")
		if m := regexp.MustCompile(`(?m)^([0-9a-f-]{36})\s+reported\s+serious\s+open_burning`).FindStringSubmatch(out); m != nil {
			caseID = m[1]
		}
		return caseID != ""
	})
	if out := s.must(t, "cases", "act", "accept", "-id", caseID, "-note", "收到"); !strings.Contains(out, "accepted") || !strings.Contains(out, "dispatch") {
		t.Errorf("cases act accept: %s", out)
	}
	out = s.must(t, "cases", "show", "-id", caseID)
	for _, want := range []string{"accepted", "next steps", "dispatch", "timeline:", "create", "accept", "reported → accepted", "收到"} {
		if !strings.Contains(out, want) {
			t.Errorf("cases show lacks %q:\n%s", want, out)
		}
	}
	if out := s.must(t, "cases", "list", "-state", "accepted", "-node", village); !strings.Contains(out, caseID) {
		t.Errorf("cases list -state accepted:\n%s", out)
	}
	if out := s.must(t, "cases", "list", "-state", "closed"); strings.Contains(out, caseID) {
		t.Errorf("cases list -state closed shows the accepted case:\n%s", out)
	}
	out = s.must(t, "cases", "rules", "set", "-county", county, "-severity", "serious", "-days", "4", "-max-days", "9")
	if !regexp.MustCompile(`(?m)^serious\s+4\s+9\s+county$`).MatchString(out) {
		t.Errorf("cases rules set:\n%s", out)
	}
	if out := s.must(t, "cases", "rules", "list", "-county", county); !regexp.MustCompile(`(?m)^serious\s+4\s+9\s+county$`).MatchString(out) {
		t.Errorf("cases rules list:\n%s", out)
	}

	// A violation field never recorded is dead-lettered; once its report
	// is there, replaying it opens its case.
	natsPW, _ := os.ReadFile(filepath.Join(s.a.NATSPasswordDir, "nats-cased.password"))
	t.Setenv("NATS_PASSWORD", strings.TrimSpace(string(natsPW)))
	natsFlags := []string{"-nats-url", s.a.NATSURL}
	orphan := s.violation(t, village, false)
	var seq string
	waitFor(t, "the dead letter", func() bool {
		out := s.must(t, append([]string{"deadletters", "list"}, natsFlags...)...)
		if m := regexp.MustCompile(`(?m)^(\d+)\s+\S+\s+` + regexp.QuoteMeta(messaging.ViolationSubject(county)) + `\s.*no violation with event id`).FindStringSubmatch(out); m != nil {
			seq = m[1]
		}
		return seq != ""
	})
	s.recordReport(t, orphan)
	if out := s.must(t, append([]string{"deadletters", "replay", "-seq", seq}, natsFlags...)...); !strings.Contains(out, "replayed "+seq) {
		t.Errorf("deadletters replay: %s", out)
	}
	waitFor(t, "the replayed violation's case", func() bool {
		var n int
		s.pool.QueryRow(context.Background(), `SELECT count(*) FROM cases.cases WHERE report_id = $1`, orphan.ReportId).Scan(&n) //nolint:errcheck
		return n == 1
	})
	if out := s.must(t, append([]string{"deadletters", "list"}, natsFlags...)...); strings.Contains(out, orphan.EventId) || regexp.MustCompile(`(?m)^`+seq+`\s`).MatchString(out) {
		t.Errorf("the replayed dead letter is still listed:\n%s", out)
	}

	// Exports through the stack: names beside codes (from gridd), XLSX
	// from both the cases and the reports export.
	xlsxFile := filepath.Join(s.dir, "cases.xlsx")
	s.must(t, "cases", "export", "-format", "xlsx", "-o", xlsxFile)
	x, err := excelize.OpenFile(xlsxFile)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := x.GetRows("cases")
	x.Close()
	if err != nil || len(rows) < 3 {
		t.Fatalf("cases.xlsx rows %q, %v", rows, err)
	}
	var villageName string
	if err := s.pool.QueryRow(context.Background(), `SELECT name FROM grid.nodes WHERE code = $1 AND retired_at IS NULL`, village).Scan(&villageName); err != nil {
		t.Fatal(err)
	}
	vcol, hcol := slices.Index(rows[0], "village_name"), slices.Index(rows[0], "supervisor_name")
	ccol, cncol := slices.Index(rows[0], "category"), slices.Index(rows[0], "category_name")
	for _, r := range rows[1:] {
		if r[vcol] != villageName {
			t.Errorf("village_name %q, want %q", r[vcol], villageName)
		}
		var categoryName string
		if err := s.pool.QueryRow(context.Background(), `SELECT name FROM field.categories WHERE code = $1 ORDER BY county_code DESC NULLS LAST LIMIT 1`, r[ccol]).Scan(&categoryName); err != nil {
			t.Fatalf("category %q: %v", r[ccol], err)
		}
		if r[cncol] == "" || r[cncol] != categoryName {
			t.Errorf("category_name of %q = %q, want %q", r[ccol], r[cncol], categoryName)
		}
		if r[slices.Index(rows[0], "state")] == "accepted" && r[hcol] != "县网格办 李" {
			t.Errorf("supervisor_name of the accepted case = %q", r[hcol])
		}
	}
	reportsFile := filepath.Join(s.dir, "reports.xlsx")
	s.must(t, "reports", "export", "-format", "xlsx", "-o", reportsFile)
	if x, err := excelize.OpenFile(reportsFile); err != nil {
		t.Fatalf("reports.xlsx: %v", err)
	} else if rows, err := x.GetRows("reports"); err != nil || len(rows) != 3 || rows[0][0] != "report_id" {
		t.Fatalf("reports.xlsx rows %q, %v", rows, err)
	} else {
		x.Close()
	}

	// One error format for every command: gridctl: <command>: <code>: <message>.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cases", "act", "close", "-id", caseID}, `^gridctl: cases act close: FailedPrecondition: .+\n$`},
		// A refused request's field violations follow, one per line.
		{[]string{"cases", "show", "-id", "not-a-case"}, `^gridctl: cases show: InvalidArgument: .+\n  case_id: .+\n$`},
		{[]string{"cases", "show", "-id", uuid.NewString()}, `^gridctl: cases show: NotFound: .+\n$`},
		{[]string{"cases", "rules", "set", "-county", "12", "-severity", "serious", "-days", "3", "-max-days", "5"}, `^gridctl: cases rules set: InvalidArgument: .+\n  county_code: .+\n$`},
		{[]string{"persons", "list", "-node", "999999"}, `^gridctl: persons list: (PermissionDenied|NotFound|InvalidArgument): .+\n$`},
		{append([]string{"deadletters", "replay", "-seq", "999999"}, natsFlags...), `^gridctl: deadletters replay: NotFound: .+\n$`},
		{[]string{"cases", "act", "fly", "-id", caseID}, `^gridctl: cases act fly: unknown step "fly" .+\n$`},
		{[]string{"categories", "list", "-refresh-file", filepath.Join(s.dir, "none")}, `^gridctl: categories list: renewing the access token: .+\n$`},
		{[]string{"users", "whoami", "-refresh-file", "", "-token", "bad"}, `^gridctl: users whoami: Unauthenticated: .+\n$`},
	} {
		_, e := s.run(t, tc.args...)
		if !regexp.MustCompile(tc.want).MatchString(e) {
			t.Errorf("gridctl %s printed %q; want %s", strings.Join(tc.args, " "), e, tc.want)
		}
	}
}

// Field violations are printed one per line under the error.
func TestFormatErrorFieldViolations(t *testing.T) {
	st, _ := status.New(codes.InvalidArgument, "the request has 2 problems").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "rule.rectify_days", Description: "must be at least 1"}, {Field: "county_code", Description: "is required"}}})
	got := formatError(&commandError{command: "cases rules set", err: st.Err()})
	want := "gridctl: cases rules set: InvalidArgument: the request has 2 problems\n  rule.rectify_days: must be at least 1\n  county_code: is required\n"
	if got != want {
		t.Fatalf("formatError =\n%s\nwant\n%s", got, want)
	}
	if got := formatError(&commandError{command: "grid import", err: os.ErrNotExist}); got != "gridctl: grid import: file does not exist\n" {
		t.Fatalf("a local error = %q", got)
	}
}
