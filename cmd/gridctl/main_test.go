package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// `gridctl <cmd> -h` (and --help) prints the command's usage and exits 0,
// for every command and for a subcommand's flags.
func TestHelpExitsZero(t *testing.T) {
	t.Setenv("GRIDD_ADDR", "127.0.0.1:1") // nothing may be dialled
	var args [][]string
	for name := range commands() {
		args = append(args, []string{name, "-h"}, []string{name, "--help"})
	}
	args = append(args, []string{"-h"}, []string{"help"}, []string{"audit", "verify", "-h"}, []string{"grid", "import", "--help"},
		[]string{"cases", "act", "-h"}, []string{"cases", "act", "dispatch", "-h"}, []string{"cases", "rules", "set", "-h"}, []string{"cases", "list", "-h"},
		[]string{"deadletters", "replay", "-h"}, []string{"persons", "list", "-h"}, []string{"categories", "list", "--help"})
	for _, a := range args {
		err := realMain(context.Background(), a)
		var stderr bytes.Buffer
		if code := exitCode(err, &stderr); code != 0 {
			t.Errorf("gridctl %s: exit %d (%v) %s", strings.Join(a, " "), code, err, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := exitCode(errors.New("boom"), &stderr); code != 1 || !strings.Contains(stderr.String(), "gridctl: boom") {
		t.Errorf("an error: exit %d, %q", code, stderr.String())
	}
	if code := exitCode(realMain(context.Background(), []string{"no-such-command"}), &stderr); code != 1 {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestDescribeBuild(t *testing.T) {
	got := describeBuild(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "ecogrid", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-02T17:00:00Z"}, {Key: "vcs.modified", Value: "true"}}})
	if want := "v1.2.3 (0123456789ab+dirty 2026-12-02T17:00:00Z) go1.26.8"; got != want {
		t.Fatalf("describeBuild = %q, want %q", got, want)
	}
	if got := describeBuild(&debug.BuildInfo{GoVersion: "go1.26.8"}); got != "(devel) go1.26.8" {
		t.Fatalf("without VCS = %q", got)
	}
}

// The built binary prints its build information with --version and
// exits 0 for -h.
func TestBuiltBinaryVersionAndHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gridctl")
	}
	bin := filepath.Join(t.TempDir(), "gridctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("gridctl --version: %v", err)
	}
	if !strings.HasPrefix(string(out), "gridctl ") || !strings.Contains(string(out), " go1.") {
		t.Fatalf("gridctl --version = %q", out)
	}
	// The revision is there when the build stamps VCS information
	// (-buildvcs); TestDescribeBuild checks how it is shown.
	for _, a := range [][]string{{"audit", "-h"}, {"dev", "-h"}, {"users", "bootstrap-admin", "-h"}} {
		if err := exec.Command(bin, a...).Run(); err != nil {
			t.Errorf("gridctl %s: %v", strings.Join(a, " "), err)
		}
	}
}
