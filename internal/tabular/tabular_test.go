package tabular

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

var cst = time.FixedZone("CST", 8*3600)

func write(t *testing.T, f Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := New(f, &buf, cst, "cases", []string{"id", "name", "severity", "observed_at", "count", "lat", "overdue", "photos", "note"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 1, 30, 0, 0, time.UTC) // 09:30 in China
	if err := w.Row("c1", "王村", "serious", at, int32(3), 38.0455123, true, []string{"a", "b"}, "=HYPERLINK(\"x\")"); err != nil {
		t.Fatal(err)
	}
	if err := w.Row("c2", "", "minor", time.Time{}, 0, 0.0, false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCSVConvention(t *testing.T) {
	b := write(t, CSV)
	if !bytes.HasPrefix(b, []byte("\uFEFF")) {
		t.Fatal("no UTF-8 byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\uFEFF")))).ReadAll()
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	want := []string{"c1", "王村", "serious", "2026-12-03T09:30:00+08:00", "3", "38.0455123", "true", "a;b", "'=HYPERLINK(\"x\")"}
	if strings.Join(recs[1], "|") != strings.Join(want, "|") {
		t.Fatalf("row = %q\nwant %q", recs[1], want)
	}
	if recs[2][3] != "" || recs[2][8] != "" {
		t.Fatalf("empty time or value = %q", recs[2])
	}
}

func TestXLSXTypedCellsAndFrozenHeader(t *testing.T) {
	f, err := excelize.OpenReader(bytes.NewReader(write(t, XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "cases" {
		t.Fatalf("sheets %v", got)
	}
	panes, err := f.GetPanes("cases")
	if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Fatalf("panes = %+v, %v; want the header row frozen", panes, err)
	}
	rows, err := f.GetRows("cases")
	if err != nil || len(rows) != 3 || rows[0][3] != "observed_at" {
		t.Fatalf("rows %q, %v", rows, err)
	}
	for cell, want := range map[string]excelize.CellType{"A2": excelize.CellTypeSharedString, "E2": excelize.CellTypeNumber, "F2": excelize.CellTypeNumber, "G2": excelize.CellTypeBool, "D2": excelize.CellTypeNumber} {
		if ct, err := f.GetCellType("cases", cell); err != nil || ct != want {
			// excelize writes strings inline in a stream; both are text.
			// A number cell carries no t attribute (unset means number).
			if !(want == excelize.CellTypeSharedString && ct == excelize.CellTypeInlineString) && !(want == excelize.CellTypeNumber && ct == excelize.CellTypeUnset) {
				t.Errorf("%s is of type %v, want %v (%v)", cell, ct, want, err)
			}
		}
	}
	if raw, _ := f.GetCellValue("cases", "F2", excelize.Options{RawCellValue: true}); raw != "38.0455123" {
		t.Errorf("F2 raw = %q", raw)
	}
	// The time is a date cell showing the county's wall clock.
	if v, _ := f.GetCellValue("cases", "D2"); v != "2026-12-03 09:30:00" {
		t.Errorf("D2 shows %q, want 2026-12-03 09:30:00", v)
	}
	raw, _ := f.GetCellValue("cases", "D2", excelize.Options{RawCellValue: true})
	if tm, err := excelize.ExcelDateToTime(mustFloat(t, raw), false); err != nil || !tm.Equal(time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("D2 serial %s is %v, %v", raw, tm, err)
	}
	if v, _ := f.GetCellValue("cases", "B2"); v != "王村" {
		t.Errorf("B2 = %q", v)
	}
	if v, _ := f.GetCellValue("cases", "I2"); v != "=HYPERLINK(\"x\")" {
		t.Errorf("I2 = %q (text, never a formula)", v)
	}
	if fm, _ := f.GetCellFormula("cases", "I2"); fm != "" {
		t.Errorf("I2 holds the formula %q", fm)
	}
	if v, _ := f.GetCellValue("cases", "D3"); v != "" {
		t.Errorf("an empty time is %q", v)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmtSscan(s, &f); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return f
}

var fmtSscan = func(s string, f *float64) (int, error) { return fmt.Sscan(s, f) }
