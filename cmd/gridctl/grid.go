package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
)

const gridUsage = `usage:
  gridctl grid import [-level county|township|village] [-dry-run] [-effective 2026-01-01] [-replace-under CODE] FILE
  gridctl grid export [-node ID] [-level village] [-at 2025-06-01] [-o FILE]
  gridctl grid locate [-crs wgs84|gcj02|bd09] [-at TIME] LAT LON
  gridctl grid demo [-o FILE]     write the demo county (130123, 10 townships, 150 villages) as GeoJSON`

// runGrid is `gridctl grid`: import and export boundaries through
// GridService, locate a point, and write the demo county.
func runGrid(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, gridUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "import":
		return runGridImport(ctx, args[1:])
	case "export":
		return runGridExport(ctx, args[1:])
	case "locate":
		return runGridLocate(ctx, args[1:])
	case "demo":
		return runGridDemo(args[1:])
	default:
		return fmt.Errorf("unknown grid command %q (want: import, export, locate, demo)", args[0])
	}
}

// gridConn holds the connection flags every GridService command takes.
type gridConn struct{ serverConn }

func (g *gridConn) register(fs *flag.FlagSet) {
	g.serverConn.register(fs, "gridd", "GRIDD_ADDR", "127.0.0.1:7443", "access token")
}

func (g *gridConn) dial(ctx context.Context) (ecogridv1.GridServiceClient, context.Context, func(), error) {
	conn, ctx, err := g.serverConn.dial(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	return ecogridv1.NewGridServiceClient(conn), ctx, func() { conn.Close() }, nil
}

func parseGridLevel(s string) (ecogridv1.GridLevel, error) {
	if s == "" {
		return ecogridv1.GridLevel_GRID_LEVEL_UNSPECIFIED, nil
	}
	l, ok := grid.ParseLevel(s)
	if !ok {
		return 0, fmt.Errorf("level %q is not county, township, village or cell", s)
	}
	return ecogridv1.GridLevel(l), nil
}

// parseWhen accepts RFC 3339 or a date (midnight China Standard Time).
func parseWhen(s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.FixedZone("CST", 8*3600))
	if err != nil {
		return nil, fmt.Errorf("time %q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return timestamppb.New(t), nil
}

// importChunk is the size of one streamed piece of the file.
const importChunk = 1 << 20

func runGridImport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl grid import", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	level := fs.String("level", "", "level of features without a level property (a file per level)")
	dryRun := fs.Bool("dry-run", false, "validate and report, write nothing")
	effective := fs.String("effective", "", "when changed boundaries take effect (RFC 3339 or YYYY-MM-DD; default now)")
	replaceUnder := fs.String("replace-under", "", "the file is the whole new subtree of this code: nodes below it missing from the file are retired (merged townships)")
	sourceSRS := fs.String("s-srs", "", "coordinate system of the file when it does not declare one, e.g. EPSG:4547 (CGCS2000 Gauss-Krüger 114°E); transformed to WGS-84")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give exactly one GeoJSON file (gridctl grid import FILE)")
	}
	lv, err := parseGridLevel(*level)
	if err != nil {
		return err
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
	info, err := f.Stat()
	if err != nil {
		return err
	}
	client, ctx, closeConn, err := gc.dial(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	res, err := importFile(ctx, client, f, info.Size(), &ecogridv1.ImportGeoJSONHeader{Level: lv, DryRun: *dryRun, EffectiveTime: eff, FileName: info.Name(), ReplaceUnderCode: *replaceUnder, SourceCrs: *sourceSRS}, os.Stderr)
	if err != nil {
		return describeGridError(err, os.Stderr)
	}
	verb := "imported"
	if res.GetDryRun() {
		verb = "checked (dry run, nothing written)"
	}
	fmt.Printf("%s %s: %d created, %d updated, %d unchanged, %d retired\n", fs.Arg(0), verb, res.GetCreated(), res.GetUpdated(), res.GetUnchanged(), res.GetRetired())
	for _, w := range res.GetWarnings() {
		fmt.Printf("warning: feature %d (%s %s): %s\n", w.GetFeature(), w.GetCode(), w.GetName(), w.GetMessage())
	}
	return nil
}

// importFile streams r to ImportGeoJSON, printing a progress line to
// progress for files over a few megabytes.
func importFile(ctx context.Context, client ecogridv1.GridServiceClient, r io.Reader, size int64, h *ecogridv1.ImportGeoJSONHeader, progress io.Writer) (*ecogridv1.ImportGeoJSONResponse, error) {
	h.TotalBytes = size
	stream, err := client.ImportGeoJSON(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&ecogridv1.ImportGeoJSONRequest{Part: &ecogridv1.ImportGeoJSONRequest_Header{Header: h}}); err != nil {
		return stream.CloseAndRecv()
	}
	buf := make([]byte, importChunk)
	var sent int64
	showProgress := size > 4*importChunk
	last := time.Now()
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&ecogridv1.ImportGeoJSONRequest{Part: &ecogridv1.ImportGeoJSONRequest_Chunk{Chunk: buf[:n]}}); err != nil {
				break // the server has answered; CloseAndRecv returns its status
			}
			sent += int64(n)
			if showProgress && time.Since(last) > 200*time.Millisecond {
				fmt.Fprintf(progress, "\rsent %.1f of %.1f MB (%d%%)", float64(sent)/1e6, float64(size)/1e6, sent*100/max(size, 1))
				last = time.Now()
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if showProgress {
		fmt.Fprintf(progress, "\rsent %.1f MB; validating and writing…\n", float64(sent)/1e6)
	}
	return stream.CloseAndRecv()
}

// describeGridError prints every problem of a refused import, one a line,
// and returns a short error.
func describeGridError(err error, w io.Writer) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var lines []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				lines = append(lines, v.GetDescription())
			}
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: %s", st.Code(), st.Message())
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return fmt.Errorf("import refused (%d problem(s) listed above), nothing was written", len(lines))
}

func runGridExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl grid export", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	node := fs.String("node", "", "root node id (default: your own area)")
	level := fs.String("level", "", "deepest level to export (default: all)")
	at := fs.String("at", "", "export the boundaries in force at this time (RFC 3339 or YYYY-MM-DD)")
	out := fs.String("o", "-", "output file (- for stdout)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	lv, err := parseGridLevel(*level)
	if err != nil {
		return err
	}
	when, err := parseWhen(*at)
	if err != nil {
		return err
	}
	client, ctx, closeConn, err := gc.dial(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	stream, err := client.ExportGeoJSON(ctx, &ecogridv1.ExportGeoJSONRequest{NodeId: *node, MaxLevel: lv, AtTime: when})
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	var file *os.File
	if *out != "-" {
		if file, err = os.Create(*out); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	features := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return describeGridError(err, os.Stderr)
		}
		if _, err := w.Write(m.GetChunk()); err != nil {
			return err
		}
		features = int(m.GetFeaturesSent())
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%d features written to %s\n", features, *out)
	}
	return nil
}

func runGridLocate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl grid locate", flag.ContinueOnError)
	var gc gridConn
	gc.register(fs)
	crs := fs.String("crs", "wgs84", "coordinate system of LAT LON: wgs84, gcj02 (Amap, Tencent) or bd09 (Baidu)")
	at := fs.String("at", "", "locate against the boundaries in force at this time")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("give LAT LON")
	}
	var lat, lon float64
	if _, err := fmt.Sscan(fs.Arg(0), &lat); err != nil {
		return fmt.Errorf("latitude %q: %v", fs.Arg(0), err)
	}
	if _, err := fmt.Sscan(fs.Arg(1), &lon); err != nil {
		return fmt.Errorf("longitude %q: %v", fs.Arg(1), err)
	}
	sys := map[string]ecogridv1.CoordinateSystem{"wgs84": ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84,
		"gcj02": ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_GCJ02, "bd09": ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_BD09}[strings.ToLower(*crs)]
	if sys == ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_UNSPECIFIED {
		return fmt.Errorf("coordinate system %q is not wgs84, gcj02 or bd09", *crs)
	}
	when, err := parseWhen(*at)
	if err != nil {
		return err
	}
	client, ctx, closeConn, err := gc.dial(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	resp, err := client.LocatePoint(ctx, &ecogridv1.LocatePointRequest{Position: &ecogridv1.Position{Latitude: lat, Longitude: lon, CoordinateSystem: sys}, AtTime: when})
	if err != nil {
		return err
	}
	if !resp.GetFound() {
		fmt.Printf("%.7f, %.7f (WGS-84) is outside the grid you can see\n", resp.GetWgs84Latitude(), resp.GetWgs84Longitude())
		return nil
	}
	var path []string
	for _, r := range resp.GetPath() {
		path = append(path, r.GetName()+" "+r.GetCode())
	}
	fmt.Printf("%.7f, %.7f (WGS-84): %s\n", resp.GetWgs84Latitude(), resp.GetWgs84Longitude(), strings.Join(path, " / "))
	return nil
}

func runGridDemo(args []string) error {
	fs := flag.NewFlagSet("gridctl grid demo", flag.ContinueOnError)
	out := fs.String("o", "-", "output file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "-" {
		_, err := os.Stdout.Write(demo.County())
		return err
	}
	return os.WriteFile(*out, demo.County(), 0o644)
}
