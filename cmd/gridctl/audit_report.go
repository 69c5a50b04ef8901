package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"ecogrid/internal/audit"
	"ecogrid/internal/ledger"
)

// auditVerifyReport is `gridctl audit verify-report FILE -pub KEY`: it
// checks a tenure audit report offline, with no database and only the
// ledger's public key, and prints its summary when it verifies.
func auditVerifyReport(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("gridctl audit verify-report", flag.ContinueOnError)
	var keys listFlag
	fs.Var(&keys, "pub", "trusted ledger public key (text or @file); repeat for retired keys")
	fs.Var(&keys, "pubkey", "same as -pub")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: gridctl audit verify-report FILE -pub KEY")
	}
	if len(keys) == 0 {
		return errors.New("-pub is required: the key comes from the county office, never from the report")
	}
	var keyTexts []string
	for _, k := range keys {
		t, err := textArg(k)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(t, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keyTexts = append(keyTexts, line)
			}
		}
	}
	verifiers, err := ledger.ParsePublicKeys(keyTexts...)
	if err != nil {
		return err
	}
	in := stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	facts, err := audit.VerifyReport(in, verifiers)
	if err != nil {
		fmt.Fprintf(stdout, "FAILED %s: %v\n", pos[0], err)
		return fmt.Errorf("the report does not verify: %w", err)
	}
	s := facts.Summary
	_, err = fmt.Fprintf(stdout, "OK tenure audit of %s (%s), %s to %s: %d posts, %d cases (%d closed on time, %d late, %d overdue, %d escalated, %d reopened, %d open at the end), %d reports filed, %d acts\n",
		facts.PersonName, facts.PersonID, facts.Params.From.Format("2006-01-02"), facts.Params.To.Format("2006-01-02"),
		s.Posts, s.Cases, s.ClosedOnTime, s.ClosedLate, s.Overdue, s.Escalated, s.Reopened, s.OpenAtEnd, s.ReportsFiled, s.Acts)
	return err
}
