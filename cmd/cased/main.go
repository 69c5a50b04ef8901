// Command cased runs ecogrid's case-tracking service (violations → cases, case workflow).
// Configuration comes from flags with environment fallbacks: cased -help.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"ecogrid/internal/cased"
	"ecogrid/internal/flagenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cased:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	var cfg cased.Config
	fs := flag.NewFlagSet("cased", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var level string
	flagenv.String(fs, &level, "log-level", "ECOGRID_LOG_LEVEL", "info", "debug, info, warn or error")
	if err := flagenv.Parse(fs, os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("service", "cased")
	return cased.Run(ctx, cfg, log)
}
