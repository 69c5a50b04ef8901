package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

const zonesUsage = `usage:
  gridctl zones import -county 130123 [-dry-run] [-effective 2026-01-01] [-replace-all] FILE
  gridctl zones export -county 130123 [-o FILE]
  gridctl zones locate LAT LON           zones containing a WGS-84 point
  gridctl zones rules -county 130123     what every kind of zone means in the county`

const monitoringUsage = `usage:
  gridctl monitoring import -county 130123 [-dry-run] FILE.csv
      columns: point_code, sampled_at, lab, [sample_id, sampler, corrects_sample_id],
      then one per GB 3838-2002 parameter, e.g. "pH", "DO [mg/L]", "NH3-N", "Hg(ug/L)"
  gridctl monitoring points -county 130123`

// runZones is `gridctl zones`: import and export protected zones through
// ZoneService, locate a point, list the county's rules.
func runZones(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, zonesUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gridctl zones "+args[0], flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	county := fs.String("county", "", "six-digit county code")
	dryRun := fs.Bool("dry-run", false, "validate and report, write nothing")
	effective := fs.String("effective", "", "when new and changed zones take effect (RFC 3339 or YYYY-MM-DD; default now)")
	replaceAll := fs.Bool("replace-all", false, "the file is all of the county's zones: end those it lacks")
	out := fs.String("o", "", "output file (default stdout)")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	conn, ctx, err := gc.serverConn.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ecogridv1.NewZoneServiceClient(conn)
	switch args[0] {
	case "import":
		if fs.NArg() != 1 {
			return errors.New("give exactly one GeoJSON file (gridctl zones import -county CODE FILE)")
		}
		eff, err := parseWhen(*effective)
		if err != nil {
			return err
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		stream, err := client.ImportZones(ctx)
		if err != nil {
			return err
		}
		h := &ecogridv1.ImportZonesHeader{CountyCode: *county, DryRun: *dryRun, EffectiveTime: eff, ReplaceAll: *replaceAll, FileName: fs.Arg(0)}
		res, err := streamFile(f, func() error {
			return stream.Send(&ecogridv1.ImportZonesRequest{Part: &ecogridv1.ImportZonesRequest_Header{Header: h}})
		}, func(b []byte) error {
			return stream.Send(&ecogridv1.ImportZonesRequest{Part: &ecogridv1.ImportZonesRequest_Chunk{Chunk: b}})
		}, stream.CloseAndRecv)
		if err != nil {
			return describeGridError(err, os.Stderr)
		}
		verb := "imported"
		if res.GetDryRun() {
			verb = "checked (dry run, nothing written)"
		}
		fmt.Printf("%s %s: %d created, %d updated, %d unchanged, %d ended\n", fs.Arg(0), verb, res.GetCreated(), res.GetUpdated(), res.GetUnchanged(), res.GetEnded())
		return nil
	case "export":
		stream, err := client.ExportZones(ctx, &ecogridv1.ExportZonesRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		return writeChunks(*out, func() ([]byte, error) {
			msg, err := stream.Recv()
			return msg.GetChunk(), err
		})
	case "locate":
		if fs.NArg() != 2 {
			return errors.New("give LAT LON")
		}
		lat, err1 := strconv.ParseFloat(fs.Arg(0), 64)
		lon, err2 := strconv.ParseFloat(fs.Arg(1), 64)
		if err1 != nil || err2 != nil {
			return errors.New("LAT and LON must be numbers")
		}
		resp, err := client.LocateZones(ctx, &ecogridv1.LocateZonesRequest{Position: &ecogridv1.Position{Latitude: lat, Longitude: lon, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84}})
		if err != nil {
			return err
		}
		if len(resp.GetZones()) == 0 {
			fmt.Println("no protected zone here")
		}
		for _, z := range resp.GetZones() {
			fmt.Printf("%s/%s\t%s\t%s\tversion %d\n", z.GetCountyCode(), z.GetCode(), z.GetKind(), z.GetName(), z.GetVersion())
		}
		return nil
	case "rules":
		resp, err := client.ListZoneRules(ctx, &ecogridv1.ListZoneRulesRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		for _, r := range resp.GetRules() {
			def := ""
			if r.GetIsDefault() {
				def = " (default)"
			}
			fmt.Printf("%-22s min %-17s deadline %4dh escalate %-5v patrols/month %d%s\n", r.GetKind(), r.GetMinSeverity(), r.GetDeadlineHours(), r.GetEscalateNow(), r.GetPatrolsPerMonth(), def)
		}
		return nil
	}
	return fmt.Errorf("unknown zones command %q (want: import, export, locate, rules)", args[0])
}

// runMonitoring is `gridctl monitoring`: import a lab's CSV, list points.
func runMonitoring(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, monitoringUsage)
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gridctl monitoring "+args[0], flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	county := fs.String("county", "", "six-digit county code")
	dryRun := fs.Bool("dry-run", false, "validate and report, write nothing")
	if err := flagenv.Parse(fs, args[1:]); err != nil {
		return err
	}
	conn, ctx, err := gc.serverConn.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ecogridv1.NewMonitoringServiceClient(conn)
	switch args[0] {
	case "import":
		if fs.NArg() != 1 {
			return errors.New("give exactly one CSV file (gridctl monitoring import -county CODE FILE)")
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		stream, err := client.ImportSamplesCSV(ctx)
		if err != nil {
			return err
		}
		h := &ecogridv1.ImportSamplesCSVHeader{CountyCode: *county, DryRun: *dryRun, FileName: fs.Arg(0)}
		res, err := streamFile(f, func() error {
			return stream.Send(&ecogridv1.ImportSamplesCSVRequest{Part: &ecogridv1.ImportSamplesCSVRequest_Header{Header: h}})
		}, func(b []byte) error {
			return stream.Send(&ecogridv1.ImportSamplesCSVRequest{Part: &ecogridv1.ImportSamplesCSVRequest_Chunk{Chunk: b}})
		}, stream.CloseAndRecv)
		if err != nil {
			return describeGridError(err, os.Stderr)
		}
		fmt.Printf("%s: %d recorded, %d already recorded, %d worse than their target class (violations raised)%s\n",
			fs.Arg(0), res.GetRecorded(), res.GetUnchanged(), res.GetExceeding(), map[bool]string{true: " — dry run, nothing written"}[res.GetDryRun()])
		return nil
	case "points":
		resp, err := client.ListPoints(ctx, &ecogridv1.ListPointsRequest{CountyCode: *county})
		if err != nil {
			return err
		}
		for _, p := range resp.GetPoints() {
			fmt.Printf("%s\t%s\t%s\ttarget %d\t%.6f,%.6f\t%s\tevery %dh\n", p.GetCode(), p.GetName(), p.GetKind(), p.GetTargetClass(), p.GetLatitude(), p.GetLongitude(), p.GetVillageCode(), p.GetSampleEveryHours())
		}
		return nil
	}
	return fmt.Errorf("unknown monitoring command %q (want: import, points)", args[0])
}

// streamFile sends a header, then r in chunks, and returns the answer; a
// send failing means the server has answered, which close returns.
func streamFile[R any](r io.Reader, header func() error, chunk func([]byte) error, closeAndRecv func() (R, error)) (R, error) {
	if err := header(); err != nil {
		return closeAndRecv()
	}
	buf := make([]byte, importChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := chunk(buf[:n]); err != nil {
				break
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			var zero R
			return zero, rerr
		}
	}
	return closeAndRecv()
}

// writeChunks writes what next returns to path (stdout when "") until EOF.
func writeChunks(path string, next func() ([]byte, error)) error {
	var w io.Writer = os.Stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	for {
		b, err := next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
}
