// Command gridd runs ecogrid's field-facing service (grid, people, auth, patrols, reports, photos).
// Configuration comes from flags with environment fallbacks: gridd -help.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"ecogrid/internal/flagenv"
	"ecogrid/internal/gridd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gridd:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context) error {
	var cfg gridd.Config
	fs := flag.NewFlagSet("gridd", flag.ContinueOnError)
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
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("service", "gridd")
	return gridd.Run(ctx, cfg, log)
}
