// Command gridctl is the operator's command line for ecogrid: migrations,
// the dev stack, grid import/export, users and assignments, the
// accountability ledger's audit, and exports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one gridctl subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"migrate":    {"apply pending database migrations (DATABASE_URL)", runMigrate},
		"dev":        {"bring the whole stack up on this machine; Ctrl-C stops it", runDev},
		"grid":       {"import, export and locate in the grid; write the demo county", runGrid},
		"users":      {"bootstrap the first administrator, create people, accounts and assignments, log in", runUsers},
		"audit":      {"verify a ledger export offline, export, verify the chain, sign checkpoints, make keys", runAudit},
		"reports":    {"export reports as GeoJSON or CSV", runReports},
		"cases":      {"export cases as CSV or GeoJSON", runCases},
		"zones":      {"import, export and locate protected zones; list their rules", runZones},
		"monitoring": {"import water samples from a lab's CSV; list monitoring points", runMonitoring},
		"waters":     {"import and export river and reservoir reaches; print a reach's chief sign", runWaters},
		"assessment": {"assessment (考核): indicators, weights, values, scorecards and exports, closing periods", runAssessment},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := exitCode(realMain(ctx, os.Args[1:]), os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode is 0 for success and for help asked for (`gridctl <cmd> -h`
// printed what was wanted), else 1 after printing the error.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "gridctl:", err)
	return 1
}

func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

func realMain(ctx context.Context, args []string) error {
	cmds := commands()
	if len(args) == 0 || isHelp(args[0]) {
		usage(cmds)
		return nil
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Println(versionLine())
		return nil
	}
	if len(args) > 1 && isHelp(args[1]) {
		// Every command and command group understands -h.
		args = append([]string{args[0], "-h"}, args[2:]...)
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:])
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: gridctl <command> [flags]   (gridctl <command> -h for its flags; gridctl --version)")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, cmds[n].summary)
	}
}
