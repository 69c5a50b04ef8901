package fieldsim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
)

// ErrNotExact is returned by Main when the run completed but a
// reconciliation did not hold.
var ErrNotExact = errors.New("reconciliation is not exact")

// Main is the fieldsim command: flags (with environment fallbacks), a
// run, a human summary on stdout (or the JSON result with -json) and
// progress on stderr. cmd/fieldsim calls it; tests can too.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("fieldsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagenv.String(fs, &cfg.GriddAddr, "gridd", "GRIDD_ADDR", cfg.GriddAddr, "gridd gRPC address, or replicas' addresses comma-separated (loopback only)")
	flagenv.String(fs, &cfg.CasedAddr, "cased", "CASED_ADDR", cfg.CasedAddr, "cased gRPC address, or replicas' addresses comma-separated (loopback only)")
	flagenv.String(fs, &cfg.DatabaseURL, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL for the read-only reconciliation (loopback only)")
	flagenv.String(fs, &cfg.AdminUser, "admin-user", "ECOGRID_ADMIN_USER", cfg.AdminUser, "administrator (or county officer) who creates the simulated people")
	flagenv.Secret(fs, &cfg.AdminPassword, "admin-password", "ECOGRID_ADMIN_PASSWORD", "the administrator's password (prefer the environment variable)")
	fs.StringVar(&cfg.County, "county", "", "county code to simulate (default: the administrator's county)")
	fs.StringVar(&cfg.Name, "name", cfg.Name, "prefix of the simulated usernames; re-runs with the same name reuse the same people")
	fs.IntVar(&cfg.Inspectors, "inspectors", cfg.Inspectors, "simulated inspectors (one supervisor per township is added)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the workload runs")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long to wait after the run for every violation to become a case")
	fs.DurationVar(&cfg.GiveUpAfter, "give-up-after", cfg.GiveUpAfter, "how long calls started before the end keep retrying")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", cfg.CallTimeout, "deadline of one attempt of one call")
	fs.DurationVar(&cfg.ThinkTime, "think", cfg.ThinkTime, "mean pause of an inspector between patrols")
	fs.Float64Var(&cfg.ViolationShare, "violations", cfg.ViolationShare, "share of reports that are violations")
	fs.Float64Var(&cfg.OfflineShare, "offline", cfg.OfflineShare, "share of patrols walked offline (reports queued and replayed in batches)")
	fs.Float64Var(&cfg.PhotoShare, "photos", cfg.PhotoShare, "share of reports with one or two photos")
	fs.Float64Var(&cfg.DropShare, "drops", cfg.DropShare, "share of photo uploads cut mid-stream and resumed")
	fs.IntVar(&cfg.LoginConcurrency, "login-concurrency", cfg.LoginConcurrency, "parallel logins (argon2id is slow by design)")
	fs.IntVar(&cfg.SupervisorWorkers, "supervisor-workers", cfg.SupervisorWorkers, "cases each supervisor works at once")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the simulated people's behaviour")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of the summary")
	jsonOut := fs.String("json-out", "", "also write the JSON result to this file")
	verbose := fs.Bool("v", false, "log refused calls to stderr")
	if err := flagenv.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Progress = stderr
	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	res, err := Run(ctx, cfg)
	if res != nil {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			res.WriteSummary(stdout)
		}
		if *jsonOut != "" {
			b, jerr := json.MarshalIndent(res, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
			}
			if jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		return err
	}
	if !res.Exact() {
		return ErrNotExact
	}
	return nil
}
