package audit_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ecogrid/internal/audit"
)

// checkPDF renders rep as PDF, extracts its text with pdftotext and
// renders its first page with pdftoppm (poppler-utils): the Chinese text
// must be there, and the page must render.
func checkPDF(t *testing.T, rep *audit.Report, want ...string) {
	t.Helper()
	for _, tool := range []string{"pdftotext", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Debian package poppler-utils (scripts/test.sh does)", tool)
		}
	}
	var b bytes.Buffer
	if err := audit.WritePDF(&b, rep); err != nil {
		t.Fatalf("PDF: %v (the font comes from Debian package fonts-arphic-gbsn00lp)", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", file, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	text := string(out)
	for _, w := range append([]string{"领导干部生态环境离任审计报告", "辖区案件", "核验方法", rep.ReportID}, want...) {
		if !strings.Contains(text, w) {
			t.Errorf("the PDF text has no %q:\n%.2000s", w, text)
		}
	}
	if out, err := exec.Command("pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page*.png"))
	if len(pages) != 1 {
		t.Fatalf("pdftoppm rendered %d pages, want 1", len(pages))
	}
	if st, err := os.Stat(pages[0]); err != nil || st.Size() < 2000 {
		t.Fatalf("rendered page: %v %v", st, err)
	}
	t.Logf("PDF %d bytes", b.Len())
	if d := os.Getenv("AUDIT_PDF_DIR"); d != "" {
		_ = os.WriteFile(filepath.Join(d, rep.ReportID+".pdf"), b.Bytes(), 0o644)
	}
}
