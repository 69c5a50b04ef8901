package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"ecogrid/internal/flagenv"
)

// Main is the whole main function of a service binary: flags with
// environment fallbacks (register adds the service's own), -log-level,
// JSON logs on stderr tagged with the service name, and run under a
// context that SIGINT or SIGTERM cancels for a graceful stop. An error
// is printed as one line and the process exits 1.
func Main(name string, register func(*flag.FlagSet), run func(ctx context.Context, log *slog.Logger) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := mainErr(ctx, name, os.Args[1:], register, run)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, name string, args []string, register func(*flag.FlagSet), run func(context.Context, *slog.Logger) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	register(fs)
	var level string
	flagenv.String(fs, &level, "log-level", "ECOGRID_LOG_LEVEL", "info", "debug, info, warn or error")
	if err := flagenv.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	return run(ctx, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("service", name))
}

// Background adapts a background task's result for an errgroup next to
// the server: ending because the group was cancelled is not a failure.
func Background(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
