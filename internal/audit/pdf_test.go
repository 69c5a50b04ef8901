package audit_test

import (
	"bytes"
	"image/color"
	"image/png"
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
	// The page is drawn: its title and tables leave dark pixels (a page
	// whose glyphs the font lacks renders blank).
	f, err := os.Open(pages[0])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("rendered page: %v", err)
	}
	dark, all := 0, img.Bounds().Dx()*img.Bounds().Dy()
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			if g := color.GrayModel.Convert(img.At(x, y)).(color.Gray); g.Y < 128 {
				dark++
			}
		}
	}
	if dark < all/200 {
		t.Fatalf("the rendered first page is nearly blank: %d dark pixels of %d", dark, all)
	}
	t.Logf("PDF %d bytes, first page %d of %d pixels dark", b.Len(), dark, all)
	if d := os.Getenv("AUDIT_PDF_DIR"); d != "" {
		_ = os.WriteFile(filepath.Join(d, rep.ReportID+".pdf"), b.Bytes(), 0o644)
	}
}
