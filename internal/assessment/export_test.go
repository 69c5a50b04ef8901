package assessment_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"ecogrid/internal/assessment"
	"ecogrid/internal/ledger"
)

// sheet is a small county's quarter computed in memory.
func sheet(t *testing.T) assessment.Sheet {
	p, err := assessment.ParsePeriod("130123", "2026-Q1")
	if err != nil {
		t.Fatal(err)
	}
	var records []*ledger.Record
	for i, v := range []string{"130123101201", "130123101202"} {
		at := p.From.Add(time.Duration(i+1) * 48 * time.Hour)
		for k, a := range []string{"violation.reported", "case.opened", "case.accepted", "case.closed"} {
			records = append(records, &ledger.Record{CountyCode: "130123", Seq: int64(len(records)), RecordedAt: at.Add(time.Duration(k*(i+1)*30) * time.Hour),
				Action: a, SubjectType: "case", SubjectID: v, NodeCode: v, Payload: []byte(`{"deadline":"` + at.Add(72*time.Hour).Format(time.RFC3339) + `"}`)})
		}
	}
	res := assessment.Compute(assessment.Input{Period: p, LateAfter: -1, Records: records, Nodes: []assessment.Node{
		{Code: "130123101", Name: "城关镇", AreaKm2: 30}, {Code: "130123101201", Name: "东关村", AreaKm2: 3, Kind: assessment.Ecological},
		{Code: "130123101202", Name: "西关村", AreaKm2: 4, Kind: assessment.Urban}}})
	return assessment.Sheet{Period: p, Level: assessment.LevelVillage, Catalogue: assessment.BuiltinIndicators, Cards: res.Villages}
}

// TestExports writes a quarter's village scorecards as CSV, XLSX and PDF
// and reads each back: the CSV and the workbook hold every scorecard; the
// PDF's Chinese text is extracted with pdftotext and a page rendered with
// pdftoppm.
func TestExports(t *testing.T) {
	s := sheet(t)
	if len(s.Cards) != 2 || s.Cards[0].Rank != 1 {
		t.Fatalf("cards %+v", s.Cards)
	}
	var b bytes.Buffer
	if err := assessment.WriteCSV(&b, s); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 3 || !strings.Contains(b.String(), "东关村") || !strings.Contains(b.String(), "按期办结率") {
		t.Errorf("CSV:\n%s", b.String())
	}
	b.Reset()
	if err := assessment.WriteXLSX(&b, s); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := x.GetRows("考核 2026-Q1")
	if err != nil || len(rows) != 3 || rows[1][1] != "东关村" || rows[2][1] != "西关村" {
		t.Fatalf("XLSX rows %v %v", rows, err)
	}
	if cat, _ := x.GetRows("指标 indicators"); len(cat) != 1+len(assessment.BuiltinIndicators) {
		t.Errorf("XLSX catalogue has %d rows", len(cat))
	}

	for _, tool := range []string{"pdftotext", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Debian package poppler-utils (scripts/test.sh does)", tool)
		}
	}
	b.Reset()
	if err := assessment.WritePDF(&b, s); err != nil {
		t.Fatalf("PDF: %v (the font comes from Debian package fonts-arphic-gbsn00lp)", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "scorecards.pdf")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", file, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	for _, w := range []string{"生态环境考核结果", "东关村", "西关村", "生态保护区", "指标说明", "按期办结率"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the PDF text has no %q:\n%.1500s", w, out)
		}
	}
	if out, err := exec.Command("pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	if pages, _ := filepath.Glob(filepath.Join(dir, "page*.png")); len(pages) != 1 {
		t.Fatalf("pdftoppm rendered %d pages", len(pages))
	}
}
