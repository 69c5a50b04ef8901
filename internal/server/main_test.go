package server

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

func TestMainFlagsAndLogLevel(t *testing.T) {
	var addr string
	register := func(fs *flag.FlagSet) { fs.StringVar(&addr, "addr", "x", "") }
	ran := 0
	run := func(ctx context.Context, log *slog.Logger) error {
		ran++
		if !log.Enabled(ctx, slog.LevelDebug) {
			return errors.New("debug level not applied")
		}
		return nil
	}
	if err := mainErr(context.Background(), "svc", []string{"-addr", "y", "-log-level", "debug"}, register, run); err != nil || ran != 1 || addr != "y" {
		t.Fatalf("mainErr = %v, ran %d, addr %q", err, ran, addr)
	}
	if err := mainErr(context.Background(), "svc", []string{"-log-level", "loud"}, register, run); err == nil || !strings.Contains(err.Error(), "want debug, info, warn or error") || ran != 1 {
		t.Fatalf("bad level: %v (ran %d)", err, ran)
	}
	if err := mainErr(context.Background(), "svc", []string{"-help"}, register, run); err != nil || ran != 1 {
		t.Fatalf("-help: %v (ran %d)", err, ran)
	}
	if err := mainErr(context.Background(), "svc", []string{"-nope"}, register, run); err == nil || ran != 1 {
		t.Fatalf("unknown flag: %v (ran %d)", err, ran)
	}
	if Background(context.Canceled) != nil || Background(errors.New("x")) == nil || Background(nil) != nil {
		t.Fatal("Background")
	}
}
