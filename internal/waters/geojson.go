package waters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"

	"ecogrid/internal/grid"
)

// The problems a reach import reports besides grid's (malformed,
// missing_field, bad_code, duplicate_code, invalid_geometry, too_large).
const (
	ProblemSelfCrossing  grid.ProblemKind = "self_crossing"       // a line crosses itself
	ProblemOutsideCounty grid.ProblemKind = "outside_county"      // the reach leaves its node's county
	ProblemGap           grid.ProblemKind = "reach_gap"           // consecutive reaches of a river do not join
	ProblemUnknownNode   grid.ProblemKind = "unknown_node"        // node_code names no current grid node
	ProblemBodyConflict  grid.ProblemKind = "body_conflict"       // one body code with two kinds or names
	ProblemGeometryKind  grid.ProblemKind = "wrong_geometry_type" // a line for a lake, a polygon for a river
	ProblemNotYours      grid.ProblemKind = "outside_scope"       // a county the caller may not write
)

// ParseLimits bounds what one import may hold, so that a hostile or broken
// file costs bounded memory and time.
type ParseLimits struct {
	MaxBytes           int64 // default 4 MiB (the largest gRPC message)
	MaxFeatures        int   // default 20,000
	MaxFeatureVertices int   // default 200,000
	MaxTotalVertices   int   // default 2,000,000
}

func (l ParseLimits) withDefaults() ParseLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 4 << 20
	}
	if l.MaxFeatures <= 0 {
		l.MaxFeatures = 20000
	}
	if l.MaxFeatureVertices <= 0 {
		l.MaxFeatureVertices = 200000
	}
	if l.MaxTotalVertices <= 0 {
		l.MaxTotalVertices = 2000000
	}
	return l
}

// Feature is one reach as a file describes it.
type Feature struct {
	Index    int // position in the FeatureCollection
	Code     string
	Name     string
	BodyCode string
	BodyName string
	BodyKind Kind
	NodeCode string
	Seq      int
	// Geometry is a *geom.MultiLineString or *geom.MultiPolygon (a
	// LineString or Polygon in the file is promoted), SRID 4326.
	Geometry geom.T
}

var codePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseFeatureCollection reads a GeoJSON FeatureCollection of reaches and
// returns the features it could read and every problem it found; a feature
// with a problem is not returned.
func ParseFeatureCollection(data []byte, limits ParseLimits) ([]Feature, grid.Problems) {
	limits = limits.withDefaults()
	file := func(format string, args ...any) grid.Problems {
		return grid.Problems{{Feature: -1, Kind: grid.ProblemMalformed, Message: fmt.Sprintf(format, args...)}}
	}
	if int64(len(data)) > limits.MaxBytes {
		return nil, grid.Problems{{Feature: -1, Kind: grid.ProblemTooLarge, Message: fmt.Sprintf("the file has %d bytes; at most %d are accepted", len(data), limits.MaxBytes)}}
	}
	if !utf8.Valid(data) {
		return nil, file("the file is not UTF-8 text")
	}
	var doc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, file("not GeoJSON: %s", clip(err.Error(), 120))
	}
	if doc.Type != "FeatureCollection" {
		return nil, file("the file is a %.40q, not a FeatureCollection", doc.Type)
	}
	if len(doc.Features) > limits.MaxFeatures {
		return nil, grid.Problems{{Feature: -1, Kind: grid.ProblemTooLarge, Message: fmt.Sprintf("%d features; at most %d per import", len(doc.Features), limits.MaxFeatures)}}
	}
	var out []Feature
	var problems grid.Problems
	total := 0
	for i, raw := range doc.Features {
		f, n, ps := parseFeature(i, raw, limits)
		total += n
		if total > limits.MaxTotalVertices {
			problems = append(problems, grid.Problem{Feature: -1, Kind: grid.ProblemTooLarge, Message: fmt.Sprintf("more than %d vertices in the file", limits.MaxTotalVertices)})
			return nil, problems
		}
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		out = append(out, f)
	}
	return out, problems
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func parseFeature(i int, raw json.RawMessage, limits ParseLimits) (Feature, int, grid.Problems) {
	f := Feature{Index: i}
	var rf struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Geometry   json.RawMessage            `json:"geometry"`
	}
	var ps grid.Problems
	add := func(kind grid.ProblemKind, format string, args ...any) {
		ps = append(ps, grid.Problem{Feature: i, Code: f.Code, Name: f.Name, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		add(grid.ProblemMalformed, "not a GeoJSON feature: %s", clip(err.Error(), 120))
		return f, 0, ps
	}
	if rf.Type != "Feature" {
		add(grid.ProblemMalformed, "a %.40q, not a Feature", rf.Type)
		return f, 0, ps
	}
	f.Code = clip(propString(rf.Properties, "code"), 64)
	f.Name = clip(propString(rf.Properties, "name"), 100)
	f.BodyCode = propString(rf.Properties, "body_code")
	f.BodyName = propString(rf.Properties, "body_name")
	f.BodyKind = Kind(propString(rf.Properties, "body_kind"))
	f.NodeCode = propString(rf.Properties, "node_code")
	for _, req := range []struct{ key, v string }{{"code", f.Code}, {"name", f.Name}, {"body_code", f.BodyCode}, {"body_name", f.BodyName}, {"body_kind", string(f.BodyKind)}, {"node_code", f.NodeCode}} {
		if req.v == "" {
			add(grid.ProblemMissingField, "property %s is missing", req.key)
		}
	}
	if f.Code != "" && !codePattern.MatchString(f.Code) {
		add(grid.ProblemBadCode, "reach code %.70q: use 1 to 64 letters, digits, '-' or '_'", f.Code)
	}
	if f.BodyCode != "" && !codePattern.MatchString(f.BodyCode) {
		add(grid.ProblemBadCode, "body code %.70q: use 1 to 64 letters, digits, '-' or '_'", f.BodyCode)
	}
	if utf8.RuneCountInString(f.Name) > 100 || utf8.RuneCountInString(f.BodyName) > 100 {
		add(grid.ProblemMalformed, "names are at most 100 characters")
	}
	if f.BodyKind != "" && !f.BodyKind.Valid() {
		add(grid.ProblemMalformed, "body_kind %.40q is not river, stream, reservoir, lake or pond", f.BodyKind)
	}
	if f.NodeCode != "" {
		if l, ok := grid.LevelForCode(f.NodeCode); !ok || grid.CheckCode(f.NodeCode, l) != nil {
			add(grid.ProblemBadCode, "node_code %.40q is not a grid code (6, 9 or 12 digits)", f.NodeCode)
		}
	}
	if s, ok := rf.Properties["seq"]; ok && string(s) != "null" {
		n, err := strconv.Atoi(string(s))
		if err != nil || n < 0 || n > 1_000_000 {
			add(grid.ProblemMalformed, "seq must be a whole number from 0")
		}
		f.Seq = n
	}
	if len(rf.Geometry) == 0 || string(rf.Geometry) == "null" {
		add(grid.ProblemMissingField, "the feature has no geometry")
		return f, 0, ps
	}
	g, n, msg := parseGeometry(rf.Geometry, limits)
	if msg != "" {
		kind := grid.ProblemInvalidGeom
		if n > limits.MaxFeatureVertices {
			kind = grid.ProblemTooLarge
		}
		add(kind, "%s", msg)
		return f, n, ps
	}
	f.Geometry = g
	if f.BodyKind.Valid() {
		_, isLine := g.(*geom.MultiLineString)
		if isLine != f.BodyKind.Linear() {
			want := "a Polygon or MultiPolygon"
			if f.BodyKind.Linear() {
				want = "a LineString or MultiLineString"
			}
			add(ProblemGeometryKind, "a %s reach needs %s", f.BodyKind, want)
		}
	}
	return f, n, ps
}

// propString returns a string property, or a number's text (codes are
// sometimes written as numbers by GIS tools).
func propString(props map[string]json.RawMessage, key string) string {
	raw, ok := props[key]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	return ""
}

// parseGeometry decodes a geometry, promotes single parts to multi, and
// checks what can be checked without PostGIS: coordinates finite and on the
// globe, lines of two distinct points or more, closed rings of four.
func parseGeometry(raw json.RawMessage, limits ParseLimits) (geom.T, int, string) {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, 0, "the geometry is not GeoJSON: " + clip(err.Error(), 100)
	}
	switch probe.Type {
	case "LineString", "MultiLineString", "Polygon", "MultiPolygon":
	default:
		return nil, 0, fmt.Sprintf("a %.40q geometry; a reach is a LineString, MultiLineString, Polygon or MultiPolygon", probe.Type)
	}
	if n := bytes.Count(raw, []byte("[")); n > 4*limits.MaxFeatureVertices {
		return nil, n, fmt.Sprintf("more than %d vertices in one reach", limits.MaxFeatureVertices)
	}
	var g geom.T
	if err := geojson.Unmarshal(raw, &g); err != nil {
		return nil, 0, "the geometry is not GeoJSON: " + clip(err.Error(), 100)
	}
	if g.Layout() != geom.XY {
		return nil, 0, "coordinates must be [longitude, latitude] pairs"
	}
	n := len(g.FlatCoords()) / 2
	if n > limits.MaxFeatureVertices {
		return nil, n, fmt.Sprintf("%d vertices; at most %d in one reach", n, limits.MaxFeatureVertices)
	}
	for k := 0; k+1 < len(g.FlatCoords()); k += 2 {
		x, y := g.FlatCoords()[k], g.FlatCoords()[k+1]
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) || x < -180 || x > 180 || y < -90 || y > 90 {
			return nil, n, "a coordinate is off the globe (want [longitude, latitude] in degrees)"
		}
	}
	switch t := g.(type) {
	case *geom.LineString:
		ml := geom.NewMultiLineString(geom.XY)
		if err := ml.Push(t); err != nil {
			return nil, n, "the line is malformed"
		}
		g = ml
	case *geom.Polygon:
		mp := geom.NewMultiPolygon(geom.XY)
		if err := mp.Push(t); err != nil {
			return nil, n, "the polygon is malformed"
		}
		g = mp
	}
	switch t := g.(type) {
	case *geom.MultiLineString:
		if t.NumLineStrings() == 0 {
			return nil, n, "the line has no parts"
		}
		for i := 0; i < t.NumLineStrings(); i++ {
			if !twoDistinct(t.LineString(i).FlatCoords()) {
				return nil, n, fmt.Sprintf("line part %d needs two distinct points", i+1)
			}
		}
	case *geom.MultiPolygon:
		if t.NumPolygons() == 0 {
			return nil, n, "the polygon has no parts"
		}
		for i := 0; i < t.NumPolygons(); i++ {
			p := t.Polygon(i)
			if p.NumLinearRings() == 0 {
				return nil, n, fmt.Sprintf("polygon part %d has no ring", i+1)
			}
			for j := 0; j < p.NumLinearRings(); j++ {
				f := p.LinearRing(j).FlatCoords()
				if len(f) < 8 || f[0] != f[len(f)-2] || f[1] != f[len(f)-1] {
					return nil, n, fmt.Sprintf("ring %d of polygon part %d must be closed and have four points or more", j+1, i+1)
				}
			}
		}
	}
	g, _ = geom.SetSRID(g, 4326)
	return g, n, ""
}

func twoDistinct(f []float64) bool {
	for k := 2; k+1 < len(f); k += 2 {
		if f[k] != f[0] || f[k+1] != f[1] {
			return true
		}
	}
	return false
}
