package monitoring

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/structerr"
)

// CSV import limits.
const (
	MaxCSVRows      = 100_000
	maxRowProblems  = 1000
	maxProblemBytes = 200
)

// CSVRow is one parsed row of a lab's export: a sample of the point with
// the given code.
type CSVRow struct {
	Line      int
	PointCode string
	Sample    Sample
}

// RowProblem is one bad row (line 1 is the header; 0 for the file).
type RowProblem struct {
	Line    int
	Message string
}

func (p RowProblem) String() string {
	if p.Line <= 0 {
		return "file: " + p.Message
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Message)
}

// CSVRejectedError is an import refused with every bad row (up to a
// thousand), InvalidArgument with a capped message and BadRequest details.
type CSVRejectedError struct{ Problems []RowProblem }

func (e *CSVRejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "import refused, nothing was written: %d bad row(s): ", len(e.Problems))
	for i, p := range e.Problems {
		s := p.String()
		if b.Len()+len(s) > structerr.MaxMessageBytes-40 {
			fmt.Fprintf(&b, "and %d more", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// GRPCStatus makes the rejection an InvalidArgument with details.
func (e *CSVRejectedError) GRPCStatus() *status.Status {
	st := status.New(codes.InvalidArgument, structerr.NewInvalidArgument("%s", e.Error()).Error())
	br := &errdetails.BadRequest{}
	for _, p := range e.Problems {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fmt.Sprintf("line %d", p.Line), Description: p.Message})
	}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

type rowProblems struct {
	list []RowProblem
	n    int
}

func (ps *rowProblems) add(line int, format string, args ...any) {
	ps.n++
	if len(ps.list) >= maxRowProblems {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "?")
	}
	if len(msg) > maxProblemBytes {
		msg = clip(msg, maxProblemBytes) + "…"
	}
	ps.list = append(ps.list, RowProblem{Line: line, Message: msg})
}

// columns every export has; the rest are parameters, named as in Table 1
// (or an alias), optionally with a unit: "NH3-N", "NH3-N [mg/L]",
// "Hg(ug/L)".
var fixedColumns = []string{"sample_id", "point_code", "sampled_at", "sampler", "lab", "corrects_sample_id"}

type paramColumn struct {
	index int
	param Parameter
	unit  string
}

// ParseSamplesCSV reads a lab's CSV export: a header row with point_code,
// sampled_at (RFC 3339, or "2006-01-02 15:04" in China Standard Time),
// lab, and optionally sample_id (a UUID; derived from point, time and lab
// when absent, so importing the file twice records nothing twice),
// sampler and corrects_sample_id, then one column per parameter. Empty
// cells are parameters not measured. Every bad row is reported by line.
func ParseSamplesCSV(r io.Reader) ([]CSVRow, []RowProblem) {
	var ps rowProblems
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		ps.add(0, "no header row: %v", csvErr(err))
		return nil, ps.list
	}
	fixed := map[string]int{}
	var params []paramColumn
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		name := strings.ToLower(h)
		if slicesContains(fixedColumns, name) {
			if _, dup := fixed[name]; dup {
				ps.add(1, "column %s appears twice", name)
			}
			fixed[name] = i
			continue
		}
		pname, unit := splitUnit(h)
		p, ok := LookupParameter(pname)
		if !ok {
			ps.add(1, "column %.40q is neither a known column nor a GB 3838-2002 parameter", h)
			continue
		}
		if _, err := p.Normalize(0, unit); err != nil {
			ps.add(1, "column %.40q: %v", h, err)
			continue
		}
		for _, q := range params {
			if q.param.Code == p.Code {
				ps.add(1, "parameter %s has two columns", p.Code)
			}
		}
		params = append(params, paramColumn{index: i, param: p, unit: unit})
	}
	for _, need := range []string{"point_code", "sampled_at", "lab"} {
		if _, ok := fixed[need]; !ok {
			ps.add(1, "column %s is missing", need)
		}
	}
	if len(params) == 0 {
		ps.add(1, "no parameter columns")
	}
	if ps.n > 0 {
		return nil, ps.list
	}
	cell := func(rec []string, name string) string {
		if i, ok := fixed[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []CSVRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err == csv.ErrFieldCount {
				ps.add(pe.StartLine, "%d fields, the header has %d", len(rec), len(header))
				continue
			}
			line := 0
			if pe != nil {
				line = pe.StartLine
			}
			ps.add(line, "not CSV: %v", csvErr(err))
			break
		}
		line, _ := cr.FieldPos(0)
		if len(rows) >= MaxCSVRows {
			ps.add(line, "more than %d rows in one file; split it", MaxCSVRows)
			break
		}
		before := ps.n
		row := CSVRow{Line: line, PointCode: cell(rec, "point_code")}
		s := &row.Sample
		if row.PointCode == "" {
			ps.add(line, "point_code is empty")
		}
		s.Lab, s.Sampler = cell(rec, "lab"), cell(rec, "sampler")
		if s.Lab == "" {
			ps.add(line, "lab is empty")
		}
		if !utf8.ValidString(s.Lab) || !utf8.ValidString(s.Sampler) || !utf8.ValidString(row.PointCode) {
			ps.add(line, "text must be UTF-8 (save the export as UTF-8)")
		}
		at, err := parseTime(cell(rec, "sampled_at"))
		if err != nil {
			ps.add(line, "sampled_at: %v", err)
		}
		s.SampledAt = at
		if v := cell(rec, "sample_id"); v != "" {
			if s.ID, err = uuid.Parse(v); err != nil {
				ps.add(line, "sample_id %.40q is not a UUID", v)
			}
		}
		if v := cell(rec, "corrects_sample_id"); v != "" {
			if s.CorrectsID, err = uuid.Parse(v); err != nil {
				ps.add(line, "corrects_sample_id %.40q is not a UUID", v)
			}
		}
		for _, pc := range params {
			v := strings.TrimSpace(rec[pc.index])
			if v == "" {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f != f || f > 1e9 {
				ps.add(line, "%s value %.20q is not a number", pc.param.Code, v)
				continue
			}
			s.Measurements = append(s.Measurements, Measurement{Parameter: pc.param.Code, Value: f, Unit: pc.unit})
		}
		if len(s.Measurements) == 0 && ps.n == before {
			ps.add(line, "no parameter measured")
		}
		if ps.n == before {
			rows = append(rows, row)
		}
	}
	return rows, ps.list
}

func csvErr(err error) string {
	if errors.Is(err, io.EOF) {
		return "the file is empty"
	}
	return err.Error()
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitUnit splits "NH3-N [mg/L]" or "Hg(ug/L)" into name and unit.
func splitUnit(h string) (string, string) {
	for _, br := range [][2]string{{"[", "]"}, {"(", ")"}, {"（", "）"}} {
		if i := strings.Index(h, br[0]); i > 0 && strings.HasSuffix(h, br[1]) {
			return strings.TrimSpace(h[:i]), strings.TrimSpace(h[i+len(br[0]) : len(h)-len(br[1])])
		}
	}
	return h, ""
}

var cst = time.FixedZone("CST", 8*3600)

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006/01/02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, cst); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%.30q is not a time (RFC 3339, or 2006-01-02 15:04 in Beijing time)", s)
}

// csvSampleID derives a sample id from what identifies a row, so that the
// same export imported twice records each sample once.
func csvSampleID(county, pointCode string, at time.Time, lab string) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, []byte("csv/"+county+"/"+pointCode+"/"+at.UTC().Format(time.RFC3339Nano)+"/"+lab))
}

// ImportCSV records a county's samples from a lab's export, all or none:
// rows naming an unknown point, or whose values the standard refuses, are
// reported by line with the parser's problems, and nothing is written.
func (m *Monitor) ImportCSV(ctx context.Context, county string, r io.Reader, actor uuid.UUID, dryRun bool) (recorded, unchanged, exceeding int, err error) {
	rows, problems := ParseSamplesCSV(r)
	ps := rowProblems{list: problems, n: len(problems)}
	pts, err := m.Points(ctx, county)
	if err != nil {
		return 0, 0, 0, err
	}
	byCode := map[string]Point{}
	for _, p := range pts {
		byCode[p.Code] = p
	}
	var ss []Sample
	for _, row := range rows {
		p, ok := byCode[row.PointCode]
		if !ok {
			ps.add(row.Line, "county %s has no monitoring point %.64q", county, row.PointCode)
			continue
		}
		s := row.Sample
		s.PointID = p.ID
		if s.ID == uuid.Nil {
			s.ID = csvSampleID(county, row.PointCode, s.SampledAt, s.Lab)
		}
		if _, _, _, err := Classify(p, s.Measurements); err != nil {
			ps.add(row.Line, "%s", err.Error())
			continue
		}
		if s.SampledAt.After(m.now().Add(10 * time.Minute)) {
			ps.add(row.Line, "sampled_at is in the future")
			continue
		}
		ss = append(ss, s)
	}
	if ps.n > 0 {
		sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Line < ps.list[j].Line })
		return 0, 0, 0, &CSVRejectedError{Problems: ps.list}
	}
	return m.RecordSamples(ctx, ss, actor, dryRun)
}
