package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"ecogrid/internal/cases"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/messaging"
)

const deadLettersUsage = `usage: gridctl deadletters <command> [flags]   (NATS as the cased user: -nats-url, -nats-user cased, NATS_PASSWORD)
  list     the violation events cased parked, oldest first, with why
  replay   publish dead letters back to their violation subject and remove them: replay -seq N[,M…] | -all`

// runDeadLetters is `gridctl deadletters`: the operator's hands on the
// DLQ stream. It talks to NATS directly, as the cased user (whose
// permissions read and remove dead letters and publish violations).
func runDeadLetters(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(os.Stderr, deadLettersUsage)
		return flag.ErrHelp
	}
	verb := args[0]
	if verb != "list" && verb != "replay" {
		return fmt.Errorf("unknown deadletters command %q (want list or replay)", verb)
	}
	fs := flag.NewFlagSet("gridctl deadletters "+verb, flag.ContinueOnError)
	var url, seqs string
	var creds messaging.Credentials
	var replicas, limit int
	var all bool
	messaging.RegisterFlags(fs, &url, &replicas)
	messaging.RegisterCredentialFlags(fs, &creds)
	fs.IntVar(&limit, "limit", 100, "most dead letters to list or replay (0: all)")
	if verb == "replay" {
		fs.StringVar(&seqs, "seq", "", "comma-separated DLQ sequences (from list)")
		fs.BoolVar(&all, "all", false, "replay every dead letter")
	}
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	if creds.User == "" {
		creds.User = string(messaging.RoleCased)
	}
	var targets []uint64
	if verb == "replay" {
		if (seqs == "") == !all {
			return fmt.Errorf("give -seq N[,M…] or -all")
		}
		for _, s := range splitList(seqs) {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil || n == 0 {
				return fmt.Errorf("-seq %q is not a DLQ sequence", s)
			}
			targets = append(targets, n)
		}
	}
	nc, js, err := messaging.ConnectAs(ctx, url, creds, "gridctl", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	if verb == "list" || all {
		dls, err := cases.ListDeadLetters(ctx, js, limit)
		if err != nil {
			return err
		}
		if verb == "list" {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tPARKED_AT\tSUBJECT\tORIGINAL_SEQ\tBYTES\tREASON")
			for _, d := range dls {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.At.In(chinaTime).Format("2006-01-02T15:04:05-07:00"),
					d.OriginalSubject, d.OriginalSeq, d.Size, d.Reason)
			}
			return tw.Flush()
		}
		for _, d := range dls {
			targets = append(targets, d.Seq)
		}
	}
	for _, seq := range targets {
		subject, err := cases.ReplayDeadLetter(ctx, js, seq)
		if err != nil {
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		fmt.Printf("replayed %d to %s\n", seq, subject)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
