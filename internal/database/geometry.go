package database

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
)

// SRID is the spatial reference of every stored geometry: WGS-84 / CGCS2000.
const SRID = 4326

// registerTypes teaches a new connection the PostGIS geometry type, so that
// go-geom values (geom.T and the concrete *geom.Point, *geom.MultiPolygon,
// ...) can be passed as parameters and scanned from geometry columns as
// EWKB. Before the postgis extension exists (a fresh database about to be
// migrated) there is nothing to register; Migrate resets the pool afterwards.
func registerTypes(ctx context.Context, conn *pgx.Conn) error {
	var oid *uint32
	if err := conn.QueryRow(ctx, `SELECT to_regtype('geometry')::oid`).Scan(&oid); err != nil {
		return err
	}
	if oid == nil {
		return nil
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "geometry", OID: *oid, Codec: GeometryCodec{}})
	return nil
}

// GeometryCodec encodes and decodes PostGIS geometry as EWKB with go-geom.
type GeometryCodec struct{}

// FormatSupported implements pgtype.Codec.
func (GeometryCodec) FormatSupported(format int16) bool {
	return format == pgtype.BinaryFormatCode || format == pgtype.TextFormatCode
}

// PreferredFormat implements pgtype.Codec.
func (GeometryCodec) PreferredFormat() int16 { return pgtype.BinaryFormatCode }

// PlanEncode implements pgtype.Codec.
func (GeometryCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(geom.T); !ok {
		return nil
	}
	return geometryEncodePlan{text: format == pgtype.TextFormatCode}
}

type geometryEncodePlan struct{ text bool }

func (p geometryEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	g := value.(geom.T)
	if g.SRID() == 0 {
		g = withSRID(g)
	}
	b, err := ewkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return nil, fmt.Errorf("encoding geometry: %w", err)
	}
	if p.text {
		return append(buf, hex.EncodeToString(b)...), nil
	}
	return append(buf, b...), nil
}

// withSRID returns a copy of g tagged with SRID 4326; geometries built in
// Go without an SRID are WGS-84 by convention.
func withSRID(g geom.T) geom.T {
	switch g := g.(type) {
	case *geom.Point:
		return geom.NewPointFlat(g.Layout(), g.FlatCoords()).SetSRID(SRID)
	case *geom.LineString:
		return geom.NewLineStringFlat(g.Layout(), g.FlatCoords()).SetSRID(SRID)
	case *geom.Polygon:
		return geom.NewPolygonFlat(g.Layout(), g.FlatCoords(), g.Ends()).SetSRID(SRID)
	case *geom.MultiPoint:
		return geom.NewMultiPointFlat(g.Layout(), g.FlatCoords()).SetSRID(SRID)
	case *geom.MultiLineString:
		return geom.NewMultiLineStringFlat(g.Layout(), g.FlatCoords(), g.Ends()).SetSRID(SRID)
	case *geom.MultiPolygon:
		return geom.NewMultiPolygonFlat(g.Layout(), g.FlatCoords(), g.Endss()).SetSRID(SRID)
	}
	return g
}

// PlanScan implements pgtype.Codec.
func (GeometryCodec) PlanScan(_ *pgtype.Map, _ uint32, format int16, target any) pgtype.ScanPlan {
	switch target.(type) {
	case *geom.T, **geom.Point, **geom.LineString, **geom.Polygon, **geom.MultiPoint,
		**geom.MultiLineString, **geom.MultiPolygon, *geom.Point, *geom.LineString,
		*geom.Polygon, *geom.MultiPolygon:
		return geometryScanPlan{text: format == pgtype.TextFormatCode}
	}
	return nil
}

type geometryScanPlan struct{ text bool }

func (p geometryScanPlan) Scan(src []byte, target any) error {
	if src == nil {
		switch t := target.(type) {
		case *geom.T:
			*t = nil
		case **geom.Point:
			*t = nil
		case **geom.LineString:
			*t = nil
		case **geom.Polygon:
			*t = nil
		case **geom.MultiPoint:
			*t = nil
		case **geom.MultiLineString:
			*t = nil
		case **geom.MultiPolygon:
			*t = nil
		default:
			return fmt.Errorf("cannot scan NULL geometry into %T", target)
		}
		return nil
	}
	g, err := decodeGeometry(src, p.text)
	if err != nil {
		return err
	}
	switch t := target.(type) {
	case *geom.T:
		*t = g
		return nil
	case **geom.Point:
		return assign(t, g)
	case **geom.LineString:
		return assign(t, g)
	case **geom.Polygon:
		return assign(t, g)
	case **geom.MultiPoint:
		return assign(t, g)
	case **geom.MultiLineString:
		return assign(t, g)
	case **geom.MultiPolygon:
		return assign(t, g)
	case *geom.Point:
		return assignValue(t, g)
	case *geom.LineString:
		return assignValue(t, g)
	case *geom.Polygon:
		return assignValue(t, g)
	case *geom.MultiPolygon:
		return assignValue(t, g)
	}
	return fmt.Errorf("cannot scan geometry into %T", target)
}

func assign[G any](t **G, g geom.T) error {
	v, ok := any(g).(*G)
	if !ok {
		return fmt.Errorf("geometry is %T, want %T", g, *t)
	}
	*t = v
	return nil
}

func assignValue[G any](t *G, g geom.T) error {
	v, ok := any(g).(*G)
	if !ok {
		return fmt.Errorf("geometry is %T, want %T", g, t)
	}
	*t = *v
	return nil
}

func decodeGeometry(src []byte, text bool) (geom.T, error) {
	if text {
		b, err := hex.DecodeString(string(src))
		if err != nil {
			return nil, fmt.Errorf("decoding geometry hex: %w", err)
		}
		src = b
	}
	g, err := ewkb.Unmarshal(src)
	if err != nil {
		return nil, fmt.Errorf("decoding geometry: %w", err)
	}
	return g, nil
}

// DecodeDatabaseSQLValue implements pgtype.Codec.
func (GeometryCodec) DecodeDatabaseSQLValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (driver.Value, error) {
	if src == nil {
		return nil, nil
	}
	if format == pgtype.TextFormatCode {
		return string(src), nil
	}
	return hex.EncodeToString(src), nil
}

// DecodeValue implements pgtype.Codec.
func (GeometryCodec) DecodeValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	return decodeGeometry(src, format == pgtype.TextFormatCode)
}
