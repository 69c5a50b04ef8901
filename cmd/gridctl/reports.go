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
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/flagenv"
)

// runReports is `gridctl reports`: the county office's access to field
// reports through gridd.
func runReports(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, "usage: gridctl reports export [-format geojson|csv|xlsx] [-from T] [-to T] [-cell code] [-category c] [-violation only|exclude] [-reporter uuid] [-o file]")
		return flag.ErrHelp
	}
	switch args[0] {
	case "export":
		return runReportsExport(ctx, args[1:])
	default:
		return fmt.Errorf("unknown reports command %q (want: export)", args[0])
	}
}

// chinaStandardTime interprets dates given without a zone.
var chinaStandardTime = time.FixedZone("CST", 8*3600)

// parseReportTime accepts RFC 3339 or a date (midnight China time).
func parseReportTime(name, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, chinaStandardTime); err == nil {
		return timestamppb.New(t), nil
	}
	return nil, fmt.Errorf("-%s %q is not a date (2006-01-02) or an RFC 3339 time", name, s)
}

// reportsExportRequest builds the ExportReports request from flag values.
func reportsExportRequest(format, from, to, cell, category, violation string) (*ecogridv1.ExportReportsRequest, error) {
	req := &ecogridv1.ExportReportsRequest{Filter: &ecogridv1.ReportFilter{NodeCode: cell, Category: category}}
	switch strings.ToLower(format) {
	case "geojson":
		req.Format = ecogridv1.ExportFormat_EXPORT_FORMAT_GEOJSON
	case "csv":
		req.Format = ecogridv1.ExportFormat_EXPORT_FORMAT_CSV
	case "xlsx":
		req.Format = ecogridv1.ExportFormat_EXPORT_FORMAT_XLSX
	default:
		return nil, fmt.Errorf("-format must be geojson, csv or xlsx, not %q", format)
	}
	var err error
	if req.Filter.ObservedFrom, err = parseReportTime("from", from); err != nil {
		return nil, err
	}
	if req.Filter.ObservedTo, err = parseReportTime("to", to); err != nil {
		return nil, err
	}
	switch violation {
	case "":
	case "only":
		req.Filter.Violation = ecogridv1.ViolationFilter_VIOLATION_FILTER_ONLY
	case "exclude":
		req.Filter.Violation = ecogridv1.ViolationFilter_VIOLATION_FILTER_EXCLUDE
	default:
		return nil, fmt.Errorf("-violation must be only or exclude, not %q", violation)
	}
	return req, nil
}

func runReportsExport(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl reports export", flag.ContinueOnError)
	var sc serverConn
	var format, from, to, cell, category, violation, reporter, out string
	sc.register(fs, "gridd", "GRIDD_ADDR", "127.0.0.1:7443", "access token")
	fs.StringVar(&format, "format", "geojson", "geojson (RFC 7946), csv or xlsx")
	fs.StringVar(&from, "from", "", "observed at or after (2006-01-02 in China time, or RFC 3339)")
	fs.StringVar(&to, "to", "", "observed before (2006-01-02 in China time, or RFC 3339)")
	fs.StringVar(&cell, "cell", "", "only reports inside this grid node (county, township or village code)")
	fs.StringVar(&category, "category", "", "only this category code (e.g. water)")
	fs.StringVar(&violation, "violation", "", "only: violations only; exclude: no violations")
	fs.StringVar(&reporter, "reporter", "", "only reports filed by this person (UUID)")
	fs.StringVar(&out, "o", "-", "output file (- for standard output)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	req, err := reportsExportRequest(format, from, to, cell, category, violation)
	if err != nil {
		return err
	}
	req.Filter.ReporterId = reporter
	conn, ctx, err := sc.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()

	var w io.Writer = os.Stdout
	var file *os.File
	if out != "-" {
		if file, err = os.Create(out); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriter(w)
	n, err := exportReports(ctx, ecogridv1.NewFieldServiceClient(conn), req, bw)
	if err != nil {
		if file != nil {
			os.Remove(out) // never leave a truncated export that looks complete
		}
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if file != nil {
		if err := file.Sync(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "exported %d bytes\n", n)
	return nil
}

// exportReports copies the export stream to w and returns the byte count.
func exportReports(ctx context.Context, cl ecogridv1.FieldServiceClient, req *ecogridv1.ExportReportsRequest, w io.Writer) (int64, error) {
	stream, err := cl.ExportReports(ctx, req)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		k, err := w.Write(msg.GetData())
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
}
