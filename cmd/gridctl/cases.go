package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/tabular"
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
	Format    string // csv, xlsx or geojson
	States    []ecogridv1.CaseState
	NodeCode  string
	Overdue   bool
	Escalated bool
	// Names looks up the names written beside codes; nil leaves them empty.
	Names nameLookup
}

func runCasesExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl cases export", flag.ContinueOnError)
	sc := casesConn(fs)
	var states, out string
	var opts casesExportOptions
	fs.StringVar(&opts.Format, "format", "csv", "csv, xlsx or geojson")
	fs.StringVar(&states, "state", "", "comma-separated states to export (reported, accepted, rejected, dispatched, in_progress, rectified, verified, closed); all when empty")
	fs.StringVar(&opts.NodeCode, "node", "", "only cases inside this grid node (township or village code)")
	fs.BoolVar(&opts.Overdue, "overdue", false, "only overdue cases")
	fs.BoolVar(&opts.Escalated, "escalated", false, "only cases under county supervision (督办)")
	fs.StringVar(&out, "o", "-", "output file (- for standard output)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if opts.Format != "csv" && opts.Format != "xlsx" && opts.Format != "geojson" {
		return fmt.Errorf("-format must be csv, xlsx or geojson, not %q", opts.Format)
	}
	var err error
	if opts.States, err = parseStates(states); err != nil {
		return err
	}
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Names beside codes come from gridd (grid nodes, people).
	gconn, err := grpc.NewClient(sc.authAddr, grpc.WithTransportCredentials(sc.creds), grpc.WithUnaryInterceptor(sc.unary))
	if err != nil {
		return err
	}
	defer gconn.Close()
	opts.Names = newRPCNames(gconn)

	var w io.Writer = os.Stdout
	var file *os.File
	if out != "-" {
		if file, err = os.Create(out); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriter(w)
	n, err := exportCases(ctx, ecogridv1.NewCaseServiceClient(conn), opts, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if file != nil {
			os.Remove(out) // never leave a truncated export that looks complete
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d cases\n", n)
	return nil
}

// nameLookup gives the names written beside codes; "" when unknown.
type nameLookup interface {
	nodeName(ctx context.Context, code string) (string, error)
	personName(ctx context.Context, id string) (string, error)
	categoryName(ctx context.Context, county, code string) (string, error)
}

// rpcNames looks names up through gridd, once per code.
type rpcNames struct {
	grid   ecogridv1.GridServiceClient
	people ecogridv1.PeopleServiceClient
	field  ecogridv1.FieldServiceClient
	cache  map[string]string
}

func newRPCNames(conn *grpc.ClientConn) *rpcNames {
	return &rpcNames{grid: ecogridv1.NewGridServiceClient(conn), people: ecogridv1.NewPeopleServiceClient(conn),
		field: ecogridv1.NewFieldServiceClient(conn), cache: map[string]string{}}
}

func (r *rpcNames) lookup(key string, get func() (string, error)) (string, error) {
	if v, ok := r.cache[key]; ok {
		return v, nil
	}
	v, err := get()
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied:
		v, err = "", nil // a name the caller may not see is left out
	default:
		return "", err
	}
	r.cache[key] = v
	return v, nil
}

func (r *rpcNames) nodeName(ctx context.Context, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	return r.lookup("node:"+code, func() (string, error) {
		resp, err := r.grid.GetNode(ctx, &ecogridv1.GetNodeRequest{Code: code})
		return resp.GetNode().GetName(), err
	})
}

func (r *rpcNames) personName(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	return r.lookup("person:"+id, func() (string, error) {
		resp, err := r.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: id})
		return resp.GetPerson().GetName(), err
	})
}

// categoryName is the name of a category code in county: one
// ListCategories per county fills the cache with every code it knows.
func (r *rpcNames) categoryName(ctx context.Context, county, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	listed := "categories:" + county
	if _, ok := r.cache[listed]; !ok {
		resp, err := r.field.ListCategories(ctx, &ecogridv1.ListCategoriesRequest{CountyCode: county})
		switch status.Code(err) {
		case codes.OK:
			for _, c := range resp.GetCategories() {
				r.cache["category:"+county+":"+c.GetCode()] = c.GetName()
			}
		case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied:
		default:
			return "", err
		}
		r.cache[listed] = ""
	}
	return r.cache["category:"+county+":"+code], nil
}

// exportCases pages through ListCases and writes every case; it returns
// how many it wrote.
func exportCases(ctx context.Context, client ecogridv1.CaseServiceClient, opts casesExportOptions, w io.Writer) (int, error) {
	var enc caseEncoder
	switch opts.Format {
	case "geojson":
		enc = &geoJSONCases{w: w}
	case "xlsx":
		enc = &tableCases{w: w, format: tabular.XLSX}
	default:
		enc = &tableCases{w: w, format: tabular.CSV}
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
			values, err := caseValues(ctx, c, opts.Names)
			if err != nil {
				return n, err
			}
			if err := enc.write(c, values); err != nil {
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
	write(c *ecogridv1.Case, values []any) error
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

// cellTime is t as an export value: nil when unset (an empty cell, null
// in GeoJSON).
func cellTime(t *timestamppb.Timestamp) any {
	if t == nil {
		return nil
	}
	return tabular.Time{T: t.AsTime()}
}

func caseState(c *ecogridv1.Case) string {
	return strings.ToLower(strings.TrimPrefix(c.GetState().String(), "CASE_STATE_"))
}

func caseSeverity(c *ecogridv1.Case) string {
	return strings.ToLower(strings.TrimPrefix(c.GetSeverity().String(), "SEVERITY_"))
}

// round7 keeps 7 decimals of a degree (about 1 cm), what a GPS fix holds.
func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// csvHeader are the columns of every case export (CSV and XLSX columns,
// GeoJSON properties), names beside codes.
var csvHeader = []string{"case_id", "report_id", "state", "severity", "category", "category_name", "county_code", "township_code", "township_name",
	"village_code", "village_name", "latitude", "longitude", "reported_at", "dispatched_at", "deadline", "extension_days",
	"overdue", "overdue_days", "escalated", "supervisor_id", "supervisor_name", "handler_id", "handler_name", "rectified_at", "closed_at",
	"reopen_count", "description"}

// caseValues are c's values in csvHeader order, typed.
func caseValues(ctx context.Context, c *ecogridv1.Case, names nameLookup) ([]any, error) {
	var township, village, supervisor, handler, category string
	if names != nil {
		var err error
		if category, err = names.categoryName(ctx, c.GetCountyCode(), c.GetCategory()); err != nil {
			return nil, err
		}
		if township, err = names.nodeName(ctx, c.GetTownshipCode()); err != nil {
			return nil, err
		}
		if village, err = names.nodeName(ctx, c.GetVillageCode()); err != nil {
			return nil, err
		}
		if supervisor, err = names.personName(ctx, c.GetSupervisorId()); err != nil {
			return nil, err
		}
		if handler, err = names.personName(ctx, c.GetHandlerId()); err != nil {
			return nil, err
		}
	}
	var lat, lon any
	if p := c.GetPosition(); p != nil {
		lat, lon = round7(p.GetLatitude()), round7(p.GetLongitude())
	}
	return []any{c.GetId(), c.GetReportId(), caseState(c), caseSeverity(c), c.GetCategory(), category, c.GetCountyCode(),
		c.GetTownshipCode(), township, c.GetVillageCode(), village, lat, lon, cellTime(c.GetReportedAt()),
		cellTime(c.GetDispatchedAt()), cellTime(c.GetDeadline()), c.GetExtensionDays(), c.GetOverdue(), c.GetOverdueDays(),
		c.GetEscalated(), c.GetSupervisorId(), supervisor, c.GetHandlerId(), handler, cellTime(c.GetRectifiedAt()),
		cellTime(c.GetClosedAt()), c.GetReopenCount(), c.GetDescription()}, nil
}

// tableCases writes the cases as CSV or XLSX in the county convention
// (internal/tabular).
type tableCases struct {
	w      io.Writer
	format tabular.Format
	t      tabular.Writer
}

func (e *tableCases) begin() error {
	var err error
	e.t, err = tabular.New(e.format, e.w, chinaTime, "cases", csvHeader)
	return err
}

func (e *tableCases) write(_ *ecogridv1.Case, values []any) error { return e.t.Row(values...) }

func (e *tableCases) end() error { return e.t.Close() }

// geoJSONCases streams an RFC 7946 FeatureCollection, one feature per case
// (geometry null when the report had no position), so that GIS staff can
// open it in QGIS as it is. Its properties are the table's columns; an
// unset time is null, never "".
type geoJSONCases struct {
	w     io.Writer
	count int
}

func (e *geoJSONCases) begin() error {
	_, err := io.WriteString(e.w, `{"type":"FeatureCollection","features":[`)
	return err
}

func (e *geoJSONCases) write(c *ecogridv1.Case, values []any) error {
	type feature struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Geometry   any            `json:"geometry"`
		Properties map[string]any `json:"properties"`
	}
	props := make(map[string]any, len(csvHeader))
	for i, v := range values {
		switch col := csvHeader[i]; {
		case col == "case_id" || col == "latitude" || col == "longitude":
			continue // the feature's id and geometry
		default:
			if t, ok := v.(tabular.Time); ok {
				v = tabular.Text(t, chinaTime)
			}
			props[col] = v
		}
	}
	f := feature{Type: "Feature", ID: c.GetId(), Properties: props}
	if p := c.GetPosition(); p != nil {
		f.Geometry = map[string]any{"type": "Point", "coordinates": []float64{round7(p.GetLongitude()), round7(p.GetLatitude())}}
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
