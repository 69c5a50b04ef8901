package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

const watersUsage = `usage:
  gridctl waters import [-dry-run] [-effective 2026-01-01] FILE   reaches (河段/库区) as GeoJSON, all or nothing
  gridctl waters export [-county 130123] [-at 2025-06-01] [-o FILE]
  gridctl waters sign REACH_CODE                                   the reach's public sign (河长公示牌)`

// runWaters is `gridctl waters`: import and export reaches through
// WatersService, and print a reach's sign.
func runWaters(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, watersUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "import":
		return runWatersImport(ctx, args[1:])
	case "export":
		return runWatersExport(ctx, args[1:])
	case "sign":
		return runWatersSign(ctx, args[1:])
	default:
		return fmt.Errorf("unknown waters command %q (want: import, export, sign)", args[0])
	}
}

func dialWaters(ctx context.Context, gc *gridConn) (ecogridv1.WatersServiceClient, context.Context, func(), error) {
	conn, ctx, err := gc.serverConn.dial(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	return ecogridv1.NewWatersServiceClient(conn), ctx, func() { conn.Close() }, nil
}

func runWatersImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl waters import", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	dryRun := fs.Bool("dry-run", false, "validate and report, write nothing")
	effective := fs.String("effective", "", "when changed reaches take effect (RFC 3339 or YYYY-MM-DD; default now)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give exactly one GeoJSON file (gridctl waters import FILE)")
	}
	eff, err := parseWhen(*effective)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	client, ctx, closeConn, err := dialWaters(ctx, &gc)
	if err != nil {
		return err
	}
	defer closeConn()
	res, err := client.ImportReaches(ctx, &ecogridv1.ImportReachesRequest{Geojson: data, DryRun: *dryRun, EffectiveTime: eff})
	if err != nil {
		return describeGridError(err, os.Stderr)
	}
	verb := "imported"
	if res.GetDryRun() {
		verb = "checked (dry run, nothing written)"
	}
	fmt.Printf("%s %s: %d created, %d updated, %d unchanged\n", fs.Arg(0), verb, res.GetCreated(), res.GetUpdated(), res.GetUnchanged())
	for _, w := range res.GetWarnings() {
		fmt.Printf("warning: feature %d (%s %s): %s\n", w.GetFeature(), w.GetCode(), w.GetName(), w.GetMessage())
	}
	return nil
}

func runWatersExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl waters export", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	county := fs.String("county", "", "six-digit county code (default: your own county)")
	at := fs.String("at", "", "export the reaches in force at this time (RFC 3339 or YYYY-MM-DD)")
	out := fs.String("o", "-", "output file (- for stdout)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	when, err := parseWhen(*at)
	if err != nil {
		return err
	}
	client, ctx, closeConn, err := dialWaters(ctx, &gc)
	if err != nil {
		return err
	}
	defer closeConn()
	res, err := client.ExportReaches(ctx, &ecogridv1.ExportReachesRequest{CountyCode: *county, AtTime: when})
	if err != nil {
		return describeGridError(err, os.Stderr)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(res.GetGeojson())
		return err
	}
	if err := os.WriteFile(*out, res.GetGeojson(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d reaches written to %s\n", res.GetReaches(), *out)
	return nil
}

func runWatersSign(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl waters sign", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give one reach code (gridctl waters sign REACH_CODE)")
	}
	client, ctx, closeConn, err := dialWaters(ctx, &gc)
	if err != nil {
		return err
	}
	defer closeConn()
	res, err := client.GetReachSign(ctx, &ecogridv1.GetReachSignRequest{ReachCode: fs.Arg(0)})
	if err != nil {
		return err
	}
	s := res.GetSign()
	fmt.Printf("%s %s（%s，%.1f km）\n责任单位 %s %s\n", s.GetBodyName(), s.GetReachName(), s.GetReachCode(), s.GetLengthM()/1000, s.GetNodeCode(), s.GetNodeName())
	for _, c := range s.GetChiefs() {
		fmt.Printf("%s %s %s %s\n", c.GetTitle(), c.GetName(), c.GetPost(), c.GetPhone())
		for _, d := range c.GetDuties() {
			fmt.Printf("    %s\n", d)
		}
	}
	return nil
}
