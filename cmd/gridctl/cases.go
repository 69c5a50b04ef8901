package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

// runCases is `gridctl cases`: the case-tracking service's operator commands.
func runCases(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, `usage: gridctl cases <command> [flags]   (gridctl cases <command> -h for its flags)
  list    list cases [-state s1,s2] [-node code] [-overdue] [-escalated] [-limit n]
  show    a case, its next steps and its timeline: -id CASE
  act     take a workflow step: act <accept|reject|dispatch|start-work|submit-rectification|verify|close|return|…> -id CASE
  rules   the county's rectification deadlines: rules list|set -county CODE …
  export  export cases as CSV, XLSX or GeoJSON [-format csv|xlsx|geojson] [-state …] [-o file]`)
		return flag.ErrHelp
	}
	sub := map[string]func(context.Context, []string) error{
		"export": runCasesExport, "list": runCasesList, "show": runCasesShow, "act": runCasesAct, "rules": runCasesRules,
	}
	run, ok := sub[args[0]]
	if !ok {
		return fmt.Errorf("unknown cases command %q (want: list, show, act, rules, export)", args[0])
	}
	return run(ctx, args[1:])
}

// casesExportOptions selects and formats an export.
type casesExportOptions struct {
	Format    string // csv or geojson
	States    []ecogridv1.CaseState
	NodeCode  string
	Overdue   bool
	Escalated bool
	BOM       bool // UTF-8 byte order mark so spreadsheet programs read Chinese text correctly
}

func runCasesExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl cases export", flag.ContinueOnError)
	var sc serverConn
	var states, out string
	var opts casesExportOptions
	sc.register(fs, "cased", "CASED_ADDR", "127.0.0.1:7444", "access token")
	fs.StringVar(&opts.Format, "format", "csv", "csv or geojson")
	fs.StringVar(&states, "state", "", "comma-separated states to export (reported, accepted, rejected, dispatched, in_progress, rectified, verified, closed); all when empty")
	fs.StringVar(&opts.NodeCode, "node", "", "only cases inside this grid node (township or village code)")
	fs.BoolVar(&opts.Overdue, "overdue", false, "only overdue cases")
	fs.BoolVar(&opts.Escalated, "escalated", false, "only cases under county supervision (督办)")
	fs.BoolVar(&opts.BOM, "bom", true, "start CSV with a UTF-8 byte order mark (for spreadsheet programs)")
	fs.StringVar(&out, "o", "-", "output file (- for standard output)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if opts.Format != "csv" && opts.Format != "geojson" {
		return fmt.Errorf("-format must be csv or geojson, not %q", opts.Format)
	}
	for _, s := range strings.Split(states, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, ok := ecogridv1.CaseState_value["CASE_STATE_"+strings.ToUpper(s)]
		if !ok || v == 0 {
			return fmt.Errorf("unknown case state %q", s)
		}
		opts.States = append(opts.States, ecogridv1.CaseState(v))
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()

	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	n, err := exportCases(ctx, ecogridv1.NewCaseServiceClient(conn), opts, bw)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d cases\n", n)
	return nil
}

// exportCases pages through ListCases and writes every case; it returns
// how many it wrote.
func exportCases(ctx context.Context, client ecogridv1.CaseServiceClient, opts casesExportOptions, w io.Writer) (int, error) {
	var enc caseEncoder
	switch opts.Format {
	case "geojson":
		enc = &geoJSONCases{w: w}
	default:
		enc = &csvCases{w: csv.NewWriter(w), bom: opts.BOM, out: w}
	}
	if err := enc.begin(); err != nil {
		return 0, err
	}
	n, token := 0, ""
	for {
		resp, err := client.ListCases(ctx, &ecogridv1.ListCasesRequest{
			Page:   &ecogridv1.PageRequest{PageSize: 500, PageToken: token},
			States: opts.States, NodeCode: opts.NodeCode, OverdueOnly: opts.Overdue, EscalatedOnly: opts.Escalated,
		})
		if err != nil {
			return n, fmt.Errorf("listing cases: %w", err)
		}
		for _, c := range resp.GetCases() {
			if err := enc.write(c); err != nil {
				return n, err
			}
			n++
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return n, enc.end()
}

type caseEncoder interface {
	begin() error
	write(*ecogridv1.Case) error
	end() error
}

// chinaTime is how the county office reads times.
var chinaTime = time.FixedZone("CST", 8*60*60)

func fmtTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().In(chinaTime).Format(time.RFC3339)
}

func caseState(c *ecogridv1.Case) string {
	return strings.ToLower(strings.TrimPrefix(c.GetState().String(), "CASE_STATE_"))
}

func caseSeverity(c *ecogridv1.Case) string {
	return strings.ToLower(strings.TrimPrefix(c.GetSeverity().String(), "SEVERITY_"))
}

var csvHeader = []string{"case_id", "report_id", "state", "severity", "category", "county_code", "township_code",
	"village_code", "latitude", "longitude", "reported_at", "dispatched_at", "deadline", "extension_days",
	"overdue", "overdue_days", "escalated", "supervisor_id", "handler_id", "rectified_at", "closed_at",
	"reopen_count", "description"}

type csvCases struct {
	w   *csv.Writer
	out io.Writer
	bom bool
}

func (e *csvCases) begin() error {
	if e.bom {
		if _, err := io.WriteString(e.out, "\uFEFF"); err != nil {
			return err
		}
	}
	return e.w.Write(csvHeader)
}

func (e *csvCases) write(c *ecogridv1.Case) error {
	lat, lon := "", ""
	if p := c.GetPosition(); p != nil {
		lat, lon = strconv.FormatFloat(p.GetLatitude(), 'f', 7, 64), strconv.FormatFloat(p.GetLongitude(), 'f', 7, 64)
	}
	return e.w.Write([]string{c.GetId(), c.GetReportId(), caseState(c), caseSeverity(c), c.GetCategory(),
		c.GetCountyCode(), c.GetTownshipCode(), c.GetVillageCode(), lat, lon, fmtTime(c.GetReportedAt()),
		fmtTime(c.GetDispatchedAt()), fmtTime(c.GetDeadline()), strconv.Itoa(int(c.GetExtensionDays())),
		strconv.FormatBool(c.GetOverdue()), strconv.Itoa(int(c.GetOverdueDays())), strconv.FormatBool(c.GetEscalated()),
		c.GetSupervisorId(), c.GetHandlerId(), fmtTime(c.GetRectifiedAt()), fmtTime(c.GetClosedAt()),
		strconv.Itoa(int(c.GetReopenCount())), c.GetDescription()})
}

func (e *csvCases) end() error {
	e.w.Flush()
	return e.w.Error()
}

// geoJSONCases streams an RFC 7946 FeatureCollection, one feature per case
// (geometry null when the report had no position), so that GIS staff can
// open it in QGIS as it is.
type geoJSONCases struct {
	w     io.Writer
	count int
}

func (e *geoJSONCases) begin() error {
	_, err := io.WriteString(e.w, `{"type":"FeatureCollection","features":[`)
	return err
}

func (e *geoJSONCases) write(c *ecogridv1.Case) error {
	type feature struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Geometry   any            `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	f := feature{Type: "Feature", ID: c.GetId(), Properties: map[string]any{
		"report_id": c.GetReportId(), "state": caseState(c), "severity": caseSeverity(c), "category": c.GetCategory(),
		"county_code": c.GetCountyCode(), "township_code": c.GetTownshipCode(), "village_code": c.GetVillageCode(),
		"reported_at": fmtTime(c.GetReportedAt()), "dispatched_at": fmtTime(c.GetDispatchedAt()),
		"deadline": fmtTime(c.GetDeadline()), "extension_days": c.GetExtensionDays(), "overdue": c.GetOverdue(),
		"overdue_days": c.GetOverdueDays(), "escalated": c.GetEscalated(), "handler_id": c.GetHandlerId(),
		"supervisor_id": c.GetSupervisorId(), "closed_at": fmtTime(c.GetClosedAt()), "description": c.GetDescription(),
	}}
	if p := c.GetPosition(); p != nil {
		f.Geometry = map[string]any{"type": "Point", "coordinates": []float64{p.GetLongitude(), p.GetLatitude()}}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if e.count > 0 {
		if _, err := io.WriteString(e.w, ","); err != nil {
			return err
		}
	}
	e.count++
	_, err = e.w.Write(b)
	return err
}

func (e *geoJSONCases) end() error {
	_, err := io.WriteString(e.w, "]}\n")
	return err
}
