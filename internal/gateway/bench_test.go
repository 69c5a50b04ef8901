package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"ecogrid/web"
)

// shellBudget is the most the console may send before the user has signed
// in (index.html and the entry script and style, gzip): issue 20.
const shellBudget = 300 << 10

// shellGzipBytes adds up the gzip sizes of index.html and every file it
// references; the map and chart code load later, with their pages.
func shellGzipBytes(t *testing.T) (total int, files []string) {
	t.Helper()
	dist := web.Dist()
	index, err := fs.ReadFile(dist, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Len()
	}
	total = gz(index)
	files = []string{"index.html"}
	for _, m := range regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		b, err := fs.ReadFile(dist, m[1])
		if err != nil {
			t.Fatal(err)
		}
		total += gz(b)
		files = append(files, m[1])
	}
	return total, files
}

// The console's shell fits its budget (a size, not a timing).
func TestConsoleShellFitsBudget(t *testing.T) {
	t.Parallel()
	n, files := shellGzipBytes(t)
	t.Logf("shell %d bytes gzip: %s", n, strings.Join(files, ", "))
	if len(files) < 2 {
		t.Fatalf("index.html references no script: %v", files)
	}
	if n > shellBudget {
		t.Errorf("console shell is %d bytes gzip, budget %d", n, shellBudget)
	}
}

// benchTracks is how many patrols (of the last 6 days) the benchmark's map draws.
const benchTracks = 500

// TestConsoleBenchmark prints the console's browser figures (BENCHMARKS.md):
// shell size, first board render, and the 10,000-point map's draw and pan
// with 500 patrol tracks.
// It asserts no timing, and runs only when asked:
//
//	ECOGRID_BROWSER_BENCH=1 go test -run TestConsoleBenchmark -v ./internal/gateway/
func TestConsoleBenchmark(t *testing.T) {
	if os.Getenv("ECOGRID_BROWSER_BENCH") == "" {
		t.Skip("set ECOGRID_BROWSER_BENCH=1 to run the browser benchmark")
	}
	webDir := consoleTools(t)
	s := startStack(t)
	for i := range 10 {
		s.fileViolation(t, "benchmark case "+string(rune('A'+i)))
	}
	seeded := time.Now()
	s.seedTracks(t, benchTracks, 100)
	t.Logf("BENCH seeded %d patrols of 100 fixes through the field API in %s", benchTracks, time.Since(seeded).Round(time.Millisecond))
	users := map[string]map[string]string{}
	for _, name := range []string{"supervisor", "officer"} {
		u := s.people[name]
		users[name] = map[string]string{"username": u.username, "password": u.password}
	}
	story, _ := json.Marshal(map[string]any{"users": users, "points": 10000, "tracks": benchTracks})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "e2e/bench.mjs")
	cmd.Dir = webDir
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+s.ConsoleURL, "STORY="+string(story))
	out, err := cmd.CombinedOutput()
	n, _ := shellGzipBytes(t)
	t.Logf("BENCH shell_gzip_bytes=%d budget=%d\n%s", n, shellBudget, out)
	if err != nil {
		t.Fatalf("benchmark failed: %v", err)
	}
}
