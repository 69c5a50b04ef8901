package field

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// ExportFormat is the file format of an export.
type ExportFormat int

// Export formats; values match ecogrid.v1.ExportFormat.
const (
	ExportGeoJSON ExportFormat = 1
	ExportCSV     ExportFormat = 2
)

// exportColumns are the CSV columns and GeoJSON properties, in order.
var exportColumns = []string{
	"report_id", "reporter_id", "county_code", "township_code", "village_code", "category", "severity",
	"violation", "outside_assigned_area", "observed_at", "received_at", "latitude", "longitude", "accuracy_m",
	"original_latitude", "original_longitude", "original_coordinate_system", "patrol_id", "photo_sha256",
	"photo_exif_mismatch", "description",
}

func exportValues(r Report) []any {
	return []any{
		r.ID, r.ReporterID, r.Location.CountyCode, r.Location.TownshipCode, r.Location.VillageCode, r.Category,
		strings.TrimPrefix(r.Severity.String(), "SEVERITY_"), r.Violation, r.OutsideArea,
		r.ObservedAt.UTC().Format(time.RFC3339), r.ReceivedAt.UTC().Format(time.RFC3339Nano), r.Lat, r.Lon,
		r.Position.AccuracyM, r.Position.Lat, r.Position.Lon, r.Position.System.String(), r.PatrolID,
		r.PhotoSHA256, r.ExifMismatch, r.Description,
	}
}

// ExportReports writes the reports the caller may see that match fl to w,
// oldest observation first, streaming rows from the database as they come
// (memory does not grow with the export).
func (rs *Reports) ExportReports(ctx context.Context, c scope.Caller, format ExportFormat, fl ReportFilter, w io.Writer) error {
	if err := fl.check(); err != nil {
		return err
	}
	var enc reportEncoder
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case ExportGeoJSON:
		enc = &geoJSONEncoder{w: bw}
	case ExportCSV:
		enc = &csvEncoder{w: csv.NewWriter(bw)}
	default:
		return structerr.NewInvalidArgument("export format must be GeoJSON or CSV")
	}
	roots := visibleRoots(c, fl.NodeCode)
	own := ""
	if fl.NodeCode == "" {
		own = c.PersonID
	}
	if err := enc.begin(); err != nil {
		return err
	}
	if len(roots) > 0 || own != "" {
		where, args := reportQuery(roots, own, fl)
		rows, err := rs.pool.Query(ctx, `SELECT `+reportColumns+` FROM field.reports r WHERE `+where+` ORDER BY r.observed_at, r.id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, _, err := scanReport(rows)
			if err != nil {
				return err
			}
			if err := enc.report(r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if err := enc.end(); err != nil {
		return err
	}
	return bw.Flush()
}

type reportEncoder interface {
	begin() error
	report(Report) error
	end() error
}

// geoJSONEncoder writes an RFC 7946 FeatureCollection: WGS-84 longitude,
// latitude order, no crs member.
type geoJSONEncoder struct {
	w     *bufio.Writer
	count int
}

func (g *geoJSONEncoder) begin() error {
	_, err := g.w.WriteString(`{"type":"FeatureCollection","features":[`)
	return err
}

type feature struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Geometry   pointGeometry  `json:"geometry"`
	Properties map[string]any `json:"properties"`
}

type pointGeometry struct {
	Type        string     `json:"type"`
	Coordinates [2]float64 `json:"coordinates"`
}

func (g *geoJSONEncoder) report(r Report) error {
	props := make(map[string]any, len(exportColumns))
	for i, v := range exportValues(r) {
		props[exportColumns[i]] = v
	}
	if r.PhotoSHA256 == nil {
		props["photo_sha256"] = []string{}
	}
	if r.ExifMismatch == nil {
		props["photo_exif_mismatch"] = []string{}
	}
	b, err := json.Marshal(feature{
		Type: "Feature", ID: r.ID,
		Geometry:   pointGeometry{Type: "Point", Coordinates: [2]float64{r.Lon, r.Lat}},
		Properties: props,
	})
	if err != nil {
		return err
	}
	if g.count > 0 {
		if err := g.w.WriteByte(','); err != nil {
			return err
		}
	}
	g.count++
	if err := g.w.WriteByte('\n'); err != nil {
		return err
	}
	_, err = g.w.Write(b)
	return err
}

func (g *geoJSONEncoder) end() error {
	_, err := g.w.WriteString("\n]}\n")
	return err
}

// csvEncoder writes RFC 4180 CSV with a header row. Cells that a
// spreadsheet would run as a formula are prefixed with a quote.
type csvEncoder struct {
	w *csv.Writer
}

func (c *csvEncoder) begin() error { return c.w.Write(exportColumns) }

func (c *csvEncoder) report(r Report) error {
	vals := exportValues(r)
	rec := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			rec[i] = v
		case bool:
			rec[i] = strconv.FormatBool(v)
		case float64:
			rec[i] = strconv.FormatFloat(v, 'f', -1, 64)
		case []string:
			rec[i] = strings.Join(v, ";")
		default:
			rec[i] = fmt.Sprint(v)
		}
		if rec[i] != "" && strings.ContainsRune("=+-@\t\r", rune(rec[i][0])) {
			if _, err := strconv.ParseFloat(rec[i], 64); err != nil {
				rec[i] = "'" + rec[i]
			}
		}
	}
	return c.w.Write(rec)
}

func (c *csvEncoder) end() error {
	c.w.Flush()
	return c.w.Error()
}
