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
	"regexp"
	"sort"
	"strings"
	"syscall"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// command is one gridctl subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"migrate":     {"apply pending database migrations (DATABASE_URL)", runMigrate},
		"dev":         {"bring the whole stack up on this machine; Ctrl-C stops it", runDev},
		"grid":        {"import, export and locate in the grid; write the demo county", runGrid},
		"users":       {"bootstrap the first administrator, create people, accounts and assignments, log in", runUsers},
		"audit":       {"verify a ledger export offline, export, verify the chain, sign checkpoints, make keys", runAudit},
		"reports":     {"export reports as GeoJSON, CSV or XLSX", runReports},
		"cases":       {"list, show and act on cases; deadline rules; export as CSV, XLSX or GeoJSON", runCases},
		"persons":     {"list people by grid node or name", runPersons},
		"categories":  {"list the report categories of a county", runCategories},
		"deadletters": {"list and replay violation events cased parked on the dead-letter stream", runDeadLetters},
		"zones":       {"import, export and locate protected zones; list their rules", runZones},
		"monitoring":  {"import water samples from a lab's CSV; list monitoring points", runMonitoring},
		"waters":      {"import and export river and reservoir reaches; print a reach's chief sign", runWaters},
		"departments": {"manage the county's departments, their area and staff, the taxonomy and routing rules", runDepartments},
		"webhooks":    {"register, list and disable webhook subscribers; read a delivery log; replay", runWebhooks},
		"assessment":  {"assessment (考核): indicators, weights, values, scorecards and exports, closing periods", runAssessment},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := exitCode(realMain(ctx, os.Args[1:]), os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode is 0 for success and for help asked for (`gridctl <cmd> -h`
// printed what was wanted), else 1 after printing the error in the one
// format of every command (formatError).
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprint(stderr, formatError(err))
	return 1
}

// commandError is an error of one command, named as typed ("cases act
// accept").
type commandError struct {
	command string
	err     error
}

func (e *commandError) Error() string { return e.command + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// formatError is how gridctl reports every failure:
//
//	gridctl: <command>: <gRPC code>: <message>
//	  <field>: <what is wrong with it>      (one line per field violation)
//
// for an error the server answered, and "gridctl: <command>: <message>"
// for one gridctl found itself (a missing flag, an unreadable file).
func formatError(err error) string {
	var b strings.Builder
	b.WriteString("gridctl: ")
	var ce *commandError
	if errors.As(err, &ce) {
		b.WriteString(ce.command + ": ")
		err = ce.err
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) || se.GRPCStatus().Code() == codes.OK {
		b.WriteString(err.Error() + "\n")
		return b.String()
	}
	st := se.GRPCStatus()
	b.WriteString(st.Code().String() + ": " + st.Message() + "\n")
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				b.WriteString("  " + v.GetField() + ": " + v.GetDescription() + "\n")
			}
		}
	}
	return b.String()
}

// commandName is the command as typed: the command and its subcommand
// words ("cases act accept"), not flags or values.
func commandName(args []string) string {
	name := args[0]
	for _, a := range args[1:min(len(args), 3)] {
		if !subcommandWord.MatchString(a) {
			break
		}
		name += " " + a
	}
	return name
}

var subcommandWord = regexp.MustCompile(`^[a-z][a-z-]*$`)

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
	if err := c.run(ctx, args[1:]); err != nil {
		return &commandError{command: commandName(args), err: err}
	}
	return nil
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: gridctl <command> [flags]   (gridctl <command> -h for its flags; gridctl --version)")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", n, cmds[n].summary)
	}
}
