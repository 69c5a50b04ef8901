package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/ledger"
)

const auditUsage = `usage: gridctl audit <command> [flags]
  verify FILE --pubkey KEY [--checkpoint NOTE]... [--baseline OLDFILE] [--allow-unsigned-tail]
                                                    verify an export offline (no database; FILE - is stdin);
                                                    fails when a record is not covered by a signed checkpoint
  export --county CODE [-o FILE] [--db]             export a county's ledger as JSON Lines
  verify-chain --county CODE [--checkpoint NOTE] [--db]   verify a chain on the server
  checkpoint --county CODE | --all [--db]           sign a checkpoint now
  verify-report FILE -pub KEY                       verify a tenure audit report offline (no database)
  keygen [--name NAME] -o FILE                      make an ed25519 signing key (FILE, 0600) and print its public key
Without --db the commands call gridd's AccountabilityService (GRIDD_ADDR, ECOGRID_TOKEN);
with --db they use DATABASE_URL directly (and the signing key from ECOGRID_LEDGER_KEY_FILE).
KEY and NOTE are the key or note text, or @path of a file holding it.`

// runAudit is `gridctl audit`: the accountability ledger's verification,
// export, checkpoints and keys.
func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, auditUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], os.Stdin, os.Stdout)
	case "export":
		return auditExport(ctx, args[1:])
	case "verify-chain":
		return auditVerifyChain(ctx, args[1:])
	case "checkpoint":
		return auditCheckpoint(ctx, args[1:])
	case "keygen":
		return auditKeygen(args[1:], os.Stdout)
	case "verify-report":
		return auditVerifyReport(args[1:], os.Stdin, os.Stdout)
	}
	fmt.Fprintln(os.Stderr, auditUsage)
	return fmt.Errorf("unknown audit command %q", args[0])
}

// parseInterspersed parses flags that may come after positional arguments
// (`verify FILE --pubkey KEY`) and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := flagenv.Parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// textArg resolves "@path" to the file's contents.
func textArg(v string) (string, error) {
	if p, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return v, nil
}

func auditVerify(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("gridctl audit verify", flag.ContinueOnError)
	var keys, notes listFlag
	fs.Var(&keys, "pubkey", "trusted ledger public key (text or @file); repeat for retired keys")
	fs.Var(&notes, "checkpoint", "a signed checkpoint note you kept (text or @file); the export must reproduce it; repeatable")
	var baseline string
	var allowTail bool
	fs.BoolVar(&allowTail, "allow-unsigned-tail", false, "accept records after the last signed checkpoint (they are chained, not signed)")
	fs.StringVar(&baseline, "baseline", "", "an earlier export of the same county you kept: every record in it must be unchanged (names the exact first changed record)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: gridctl audit verify FILE --pubkey KEY")
	}
	if len(keys) == 0 {
		return errors.New("--pubkey is required: the key comes from the county office, never from the file")
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
	var witnesses []string
	for _, n := range notes {
		t, err := textArg(n)
		if err != nil {
			return err
		}
		witnesses = append(witnesses, t)
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
	var base *ledger.Baseline
	if baseline != "" {
		bf, err := os.Open(baseline)
		if err != nil {
			return err
		}
		base, err = ledger.ReadBaseline(bufio.NewReaderSize(bf, 1<<20), verifiers)
		bf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", baseline, err)
		}
	}
	res, err := ledger.VerifyExportAgainst(bufio.NewReaderSize(in, 1<<20), verifiers, witnesses, base)
	if err != nil {
		return fmt.Errorf("%s is not a readable ledger export: %w", pos[0], err)
	}
	if err := reportResult(stdout, res.CountyCode, res.OK(), res.Records, res.Checkpoints, lastSize(res.LastCheckpoint), res.Defect); err != nil {
		return err
	}
	return checkCovered(stdout, res, allowTail)
}

// checkCovered fails an offline verification whose export holds records no
// signed checkpoint covers, unless the auditor accepts that tail: an export
// with no checkpoint at all proves nothing beyond its own consistency.
func checkCovered(w io.Writer, res ledger.Result, allowTail bool) error {
	n := res.Uncovered()
	if n == 0 || allowTail {
		return nil
	}
	fmt.Fprintf(w, "UNCOVERED: %d of %d records of county %s are not covered by a signed checkpoint; sign one (gridctl audit checkpoint) and export again, or pass --allow-unsigned-tail\n",
		n, res.Records, res.CountyCode)
	return fmt.Errorf("%d ledger records of county %s are not covered by a signed checkpoint", n, res.CountyCode)
}

func lastSize(c *ledger.Checkpoint) int64 {
	if c == nil {
		return 0
	}
	return c.Size
}

func reportResult(w io.Writer, county string, ok bool, records int64, checkpoints int, last int64, d *ledger.Defect) error {
	if ok {
		fmt.Fprintf(w, "OK: ledger of county %s verified: %d records, %d signed checkpoints, the last covering %d records\n", county, records, checkpoints, last)
		if last < records {
			fmt.Fprintf(w, "note: records %d to %d are chained but not yet covered by a signed checkpoint\n", last, records-1)
		}
		return nil
	}
	fmt.Fprintf(w, "TAMPERED: ledger of county %s: first bad record %d: %s\n", county, d.Seq, d.Reason)
	fmt.Fprintf(w, "records before %d verified; the last good checkpoint covers %d records\n", d.Seq, last)
	return fmt.Errorf("the ledger of county %s does not verify", county)
}

// auditConn holds the common flags of the commands that reach a server or
// the database.
type auditConn struct {
	serverConn
	dbURL string
	db    bool
}

func (c *auditConn) flags(fs *flag.FlagSet) {
	c.serverConn.register(fs, "gridd", "GRIDD_ADDR", "127.0.0.1:7443", "access token of a county officer")
	c.noToken = "no access token: set ECOGRID_TOKEN or pass -token (or use --db)"
	flagenv.String(fs, &c.dbURL, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL (with --db)")
	fs.BoolVar(&c.db, "db", false, "use the database directly instead of the server")
}

func (c *auditConn) client(ctx context.Context) (ecogridv1.AccountabilityServiceClient, context.Context, func(), error) {
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	return ecogridv1.NewAccountabilityServiceClient(conn), ctx, func() { conn.Close() }, nil
}

// ledger opens the ledger on the database, with the keys from the
// environment and the witness directory ECOGRID_LEDGER_WITNESS_DIR.
func (c *auditConn) ledger(ctx context.Context) (*ledger.Ledger, func(), error) {
	keys, err := ledger.LoadKeys(ledger.KeyConfigFromEnv())
	if err != nil {
		return nil, nil, err
	}
	pool, err := database.Open(ctx, database.Config{URL: c.dbURL, ApplicationName: "gridctl"})
	if err != nil {
		return nil, nil, err
	}
	return ledger.New(pool, keys, ledger.Config{WitnessDir: os.Getenv("ECOGRID_LEDGER_WITNESS_DIR")}, nil), pool.Close, nil
}

func auditExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl audit export", flag.ContinueOnError)
	var conn auditConn
	var county, out string
	conn.flags(fs)
	fs.StringVar(&county, "county", "", "county code of the chain (6 digits)")
	fs.StringVar(&out, "o", "-", "output file (- for standard output)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if county == "" {
		return errors.New("--county is required")
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "-" {
		var err error
		if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if conn.db {
		l, closeDB, err := conn.ledger(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		if err := l.Export(ctx, county, bw); err != nil {
			return err
		}
	} else {
		client, ctx, done, err := conn.client(ctx)
		if err != nil {
			return err
		}
		defer done()
		stream, err := client.Export(ctx, &ecogridv1.ExportRequest{CountyCode: county})
		if err != nil {
			return err
		}
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if _, err := bw.Write(m.GetChunk()); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "exported the ledger of county %s to %s\n", county, out)
	}
	return nil
}

func auditVerifyChain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl audit verify-chain", flag.ContinueOnError)
	var conn auditConn
	var county string
	var notes listFlag
	conn.flags(fs)
	fs.StringVar(&county, "county", "", "county code of the chain (6 digits)")
	fs.Var(&notes, "checkpoint", "a signed checkpoint note you kept (text or @file); repeatable")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if county == "" {
		return errors.New("--county is required")
	}
	var known []string
	for _, n := range notes {
		t, err := textArg(n)
		if err != nil {
			return err
		}
		known = append(known, t)
	}
	if conn.db {
		l, closeDB, err := conn.ledger(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		res, err := l.VerifyChain(ctx, county, known)
		if err != nil {
			return err
		}
		return reportResult(os.Stdout, county, res.OK(), res.Records, res.Checkpoints, lastSize(res.LastCheckpoint), res.Defect)
	}
	client, ctx, done, err := conn.client(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := client.VerifyChain(ctx, &ecogridv1.VerifyChainRequest{CountyCode: county, KnownCheckpoints: known})
	if err != nil {
		return err
	}
	var d *ledger.Defect
	if !resp.GetOk() {
		d = &ledger.Defect{Seq: resp.GetFirstBadSeq(), Reason: resp.GetReason()}
	}
	return reportResult(os.Stdout, county, resp.GetOk(), resp.GetRecords(), int(resp.GetCheckpoints()), resp.GetLastCheckpoint().GetSize(), d)
}

func auditCheckpoint(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl audit checkpoint", flag.ContinueOnError)
	var conn auditConn
	var county string
	var all bool
	conn.flags(fs)
	fs.StringVar(&county, "county", "", "county code of the chain (6 digits)")
	fs.BoolVar(&all, "all", false, "every chain that grew (with --db)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if (county == "") == !all {
		return errors.New("give --county CODE or --all")
	}
	if conn.db {
		l, closeDB, err := conn.ledger(ctx)
		if err != nil {
			return err
		}
		defer closeDB()
		var cps []ledger.Checkpoint
		if all {
			cps, err = l.CheckpointAll(ctx)
		} else {
			var cp ledger.Checkpoint
			cp, err = l.Checkpoint(ctx, county)
			cps = append(cps, cp)
		}
		for _, cp := range cps {
			fmt.Print(cp.Note)
		}
		return err
	}
	if all {
		return errors.New("--all needs --db")
	}
	client, ctx, done, err := conn.client(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := client.SignCheckpoint(ctx, &ecogridv1.SignCheckpointRequest{CountyCode: county})
	if err != nil {
		return err
	}
	fmt.Print(resp.GetCheckpoint().GetNote())
	return nil
}

func auditKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gridctl audit keygen", flag.ContinueOnError)
	var name, out string
	fs.StringVar(&name, "name", ledger.DefaultKeyName, "key name, shown in every checkpoint signature")
	fs.StringVar(&out, "o", "", "private key file to create (mode 0600; never overwritten)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if out == "" {
		return errors.New("-o FILE is required: the private key is written to a file, never printed")
	}
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return errors.New("--name must be non-empty without spaces or '+'")
	}
	skey, vkey, err := ledger.NewKeyPair(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	content := "# ecogrid ledger checkpoint signing key. Keep it secret, out of the database.\n" +
		"# Public key: " + vkey + "\n" + skey + "\n"
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout, vkey)
	fmt.Fprintf(os.Stderr, "wrote the private key to %s and the public key to %s.pub; set %s=%s for gridd\n", out, out, ledger.EnvKeyFile, out)
	return nil
}
