// Package tabular writes the county's table exports (reports, cases, the
// audit's records) in the one convention of issue 14, as CSV or XLSX with
// the same columns:
//
//   - CSV: UTF-8 with a byte order mark (zh-CN Excel otherwise reads
//     Chinese as mojibake), RFC 4180, a header row; times in the county's
//     time zone with their offset (2026-12-03T09:30:00+08:00); cells a
//     spreadsheet would run as a formula are prefixed with a quote.
//   - XLSX: typed cells (times as Excel dates in the county's wall clock,
//     numbers as numbers, booleans as booleans), a bold frozen header row.
//
// Codes stand beside names and enums are lower case: that is the
// caller's choice of columns and values, the same for both formats.
package tabular

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Format is an export's file format.
type Format string

// The table formats.
const (
	CSV  Format = "csv"
	XLSX Format = "xlsx"
)

// ParseFormat reads "csv" or "xlsx" (any case).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case CSV, XLSX:
		return f, nil
	}
	return "", fmt.Errorf("table format must be csv or xlsx, not %q", s)
}

// ContentType is the MIME type of the format.
func (f Format) ContentType() string {
	if f == XLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// Time is a time cell: written in the writer's zone, with Layout in CSV
// (RFC 3339 when empty). The zero time is an empty cell.
type Time struct {
	T      time.Time
	Layout string
}

// Writer writes rows of one table. Values are string, bool, int, int32,
// int64, float64, time.Time, Time, []string (joined with ";") or nil (an
// empty cell).
type Writer interface {
	Row(values ...any) error
	// Close finishes the file; nothing is complete before it.
	Close() error
}

// New returns a writer of format f to w with the header columns; times
// are written in loc.
func New(f Format, w io.Writer, loc *time.Location, sheet string, columns []string) (Writer, error) {
	if loc == nil {
		loc = time.UTC
	}
	switch f {
	case XLSX:
		return newXLSX(w, loc, sheet, columns)
	case CSV:
		return newCSV(w, loc, columns)
	}
	return nil, fmt.Errorf("table format must be csv or xlsx, not %q", f)
}

type csvWriter struct {
	w   *csv.Writer
	loc *time.Location
}

func newCSV(w io.Writer, loc *time.Location, columns []string) (*csvWriter, error) {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return nil, err
	}
	c := &csvWriter{w: csv.NewWriter(w), loc: loc}
	return c, c.w.Write(columns)
}

// Text is v as a CSV cell.
func Text(v any, loc *time.Location) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case time.Time:
		return Text(Time{T: v}, loc)
	case Time:
		if v.T.IsZero() {
			return ""
		}
		layout := v.Layout
		if layout == "" {
			layout = time.RFC3339
		}
		return v.T.In(loc).Format(layout)
	case []string:
		return strings.Join(v, ";")
	}
	return fmt.Sprint(v)
}

// guard keeps a spreadsheet from running a text cell as a formula.
func guard(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return "'" + s
		}
	}
	return s
}

func (c *csvWriter) Row(values ...any) error {
	rec := make([]string, len(values))
	for i, v := range values {
		rec[i] = Text(v, c.loc)
		if _, ok := v.(string); ok {
			rec[i] = guard(rec[i])
		}
	}
	return c.w.Write(rec)
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	return c.w.Error()
}

type xlsxWriter struct {
	out       io.Writer
	f         *excelize.File
	sw        *excelize.StreamWriter
	loc       *time.Location
	row       int
	dateStyle int
}

// DateTimeFormat is how XLSX time cells show.
const DateTimeFormat = "yyyy-mm-dd hh:mm:ss"

func newXLSX(w io.Writer, loc *time.Location, sheet string, columns []string) (*xlsxWriter, error) {
	f := excelize.NewFile()
	if sheet == "" {
		sheet = "export"
	}
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return nil, err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return nil, err
	}
	format := DateTimeFormat
	dateStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &format})
	if err != nil {
		return nil, err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return nil, err
	}
	header := make([]any, len(columns))
	for i, c := range columns {
		header[i] = excelize.Cell{StyleID: bold, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return nil, err
	}
	return &xlsxWriter{out: w, f: f, sw: sw, loc: loc, row: 1, dateStyle: dateStyle}, nil
}

// wallClock is t's wall clock in loc labelled UTC: Excel dates have no
// zone, and excelize counts from a UTC epoch.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

func (x *xlsxWriter) Row(values ...any) error {
	cells := make([]any, len(values))
	for i, v := range values {
		switch v := v.(type) {
		case time.Time:
			if !v.IsZero() {
				cells[i] = excelize.Cell{StyleID: x.dateStyle, Value: wallClock(v, x.loc)}
			}
		case Time:
			if !v.T.IsZero() {
				cells[i] = excelize.Cell{StyleID: x.dateStyle, Value: wallClock(v.T, x.loc)}
			}
		case []string:
			cells[i] = strings.Join(v, ";")
		case string:
			if v != "" {
				cells[i] = v
			}
		default:
			cells[i] = v
		}
	}
	x.row++
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, cells)
}

func (x *xlsxWriter) Close() error {
	defer x.f.Close()
	if err := x.sw.Flush(); err != nil {
		return err
	}
	_, err := x.f.WriteTo(x.out)
	return err
}
