package field

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/tabular"
)

// ExportFormat is the file format of an export.
type ExportFormat int

// Export formats; values match ecogrid.v1.ExportFormat.
const (
	ExportGeoJSON ExportFormat = 1
	ExportCSV     ExportFormat = 2
	ExportXLSX    ExportFormat = 3
)

// exportColumns are the CSV columns and GeoJSON properties, in order.
// One convention across the county's exports (issue 14, as the cases CSV):
// names beside codes, enums in lower case, times in the county's time
// zone with their offset (exportZone), CSV in UTF-8 with a BOM so that a
// zh-CN Excel opens it as UTF-8.
var exportColumns = []string{
	"report_id", "reporter_id", "reporter_name", "county_code", "township_code", "township_name",
	"village_code", "village_name", "category", "severity", "violation", "outside_assigned_area", "observed_at", "received_at", "latitude", "longitude", "accuracy_m",
	"original_latitude", "original_longitude", "original_coordinate_system", "patrol_id", "photo_sha256",
	"photo_exif_mismatch", "description",
}

// exportZone is the time zone export times are written in: the counties
// served are all on China Standard Time (Asia/Shanghai, +08:00).
var exportZone = chinaTime

// exportTime is t, written in the county's time zone with layout, or nil
// when t is unset (null in GeoJSON, an empty cell in CSV and XLSX).
func exportTime(t time.Time, layout string) any {
	if t.IsZero() {
		return nil
	}
	return tabular.Time{T: t, Layout: layout}
}

// round7 keeps 7 decimals of a degree (about 1 cm), what a GPS fix holds.
func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

func exportValues(r Report, n exportNames) []any {
	return []any{
		r.ID, r.ReporterID, n.reporter, r.Location.CountyCode, r.Location.TownshipCode, n.township,
		r.Location.VillageCode, n.village, r.Category,
		strings.ToLower(strings.TrimPrefix(r.Severity.String(), "SEVERITY_")), r.Violation, r.OutsideArea,
		exportTime(r.ObservedAt, time.RFC3339), exportTime(r.ReceivedAt, time.RFC3339Nano), round7(r.Lat), round7(r.Lon),
		r.Position.AccuracyM, round7(r.Position.Lat), round7(r.Position.Lon), strings.ToLower(r.Position.System.String()), r.PatrolID,
		r.PhotoSHA256, r.ExifMismatch, r.Description,
	}
}

// exportNames are the names written beside a report's codes.
type exportNames struct{ reporter, township, village string }

// nameBook looks up, once per export and code, the names of grid nodes
// (grid's Go API) and reporters (people's); an unknown code has no name.
type nameBook struct {
	grid   *grid.Store
	pool   database.Querier
	nodes  map[string]string
	people map[string]string
}

func newNameBook(pool *pgxpool.Pool) *nameBook {
	return &nameBook{grid: grid.NewStore(pool, grid.Config{}), pool: pool, nodes: map[string]string{}, people: map[string]string{}}
}

func (b *nameBook) names(ctx context.Context, r Report) (exportNames, error) {
	node := func(code string) (string, error) {
		if code == "" {
			return "", nil
		}
		if name, ok := b.nodes[code]; ok {
			return name, nil
		}
		n, err := b.grid.NodeByCode(ctx, code)
		if structerr.Code(err) == codes.NotFound {
			b.nodes[code] = ""
			return "", nil
		}
		if err != nil {
			return "", err
		}
		b.nodes[code] = n.Name
		return n.Name, nil
	}
	var out exportNames
	var err error
	if out.township, err = node(r.Location.TownshipCode); err != nil {
		return out, err
	}
	if out.village, err = node(r.Location.VillageCode); err != nil {
		return out, err
	}
	name, ok := b.people[r.ReporterID]
	if !ok {
		p, err := people.GetPerson(ctx, b.pool, r.ReporterID)
		switch {
		case err == nil:
			name = p.Name
		case errors.Is(err, pgx.ErrNoRows) || structerr.Code(err) == codes.NotFound || structerr.Code(err) == codes.InvalidArgument:
		default:
			return out, err
		}
		b.people[r.ReporterID] = name
	}
	out.reporter = name
	return out, nil
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
	case ExportCSV, ExportXLSX:
		enc = &tableEncoder{w: bw, format: tabular.CSV}
		if format == ExportXLSX {
			enc = &tableEncoder{w: bw, format: tabular.XLSX}
		}
	default:
		return structerr.NewInvalidArgument("export format must be GeoJSON, CSV or XLSX")
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
		book := newNameBook(rs.pool)
		for rows.Next() {
			r, _, err := scanReport(rows)
			if err != nil {
				return err
			}
			names, err := book.names(ctx, r)
			if err != nil {
				return err
			}
			if err := enc.report(r, names); err != nil {
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
	report(Report, exportNames) error
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

func (g *geoJSONEncoder) report(r Report, n exportNames) error {
	props := make(map[string]any, len(exportColumns))
	for i, v := range exportValues(r, n) {
		if t, ok := v.(tabular.Time); ok {
			v = tabular.Text(t, exportZone)
		}
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
		Geometry:   pointGeometry{Type: "Point", Coordinates: [2]float64{round7(r.Lon), round7(r.Lat)}},
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

// tableEncoder writes the reports as a table (CSV or XLSX) in the county
// convention of internal/tabular: the same columns as the GeoJSON
// properties.
type tableEncoder struct {
	w      io.Writer
	format tabular.Format
	t      tabular.Writer
}

func (e *tableEncoder) begin() error {
	var err error
	e.t, err = tabular.New(e.format, e.w, exportZone, "reports", exportColumns)
	return err
}

func (e *tableEncoder) report(r Report, n exportNames) error {
	return e.t.Row(exportValues(r, n)...)
}

func (e *tableEncoder) end() error { return e.t.Close() }
