package grid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database"
	"ecogrid/internal/textcheck"
)

// ParseLimits bounds what one import may contain, so that a hostile or
// broken file cannot exhaust the server. Zero fields take the defaults.
type ParseLimits struct {
	MaxFeatures        int // default 250,000 (a province of villages)
	MaxRingVertices    int // default 100,000 per ring
	MaxFeatureVertices int // default 500,000 per feature
	DefaultLevel       Level
	// SourceSRID is the EPSG code of the file's coordinates when the
	// caller knows it (gridctl -s-srs); it wins over the file's "crs"
	// member. 0: the "crs" member, else WGS-84 (RFC 7946).
	SourceSRID int
}

// Default parse limits.
const (
	DefaultMaxFeatures        = 250_000
	DefaultMaxRingVertices    = 100_000
	DefaultMaxFeatureVertices = 500_000
)

func (l ParseLimits) withDefaults() ParseLimits {
	if l.MaxFeatures <= 0 {
		l.MaxFeatures = DefaultMaxFeatures
	}
	if l.MaxRingVertices <= 0 {
		l.MaxRingVertices = DefaultMaxRingVertices
	}
	if l.MaxFeatureVertices <= 0 {
		l.MaxFeatureVertices = DefaultMaxFeatureVertices
	}
	return l
}

// Feature is one parsed GeoJSON feature describing a grid node.
type Feature struct {
	Index      int       // position in the FeatureCollection
	ID         uuid.UUID // from properties.id or the feature id when it is a uuid; else uuid.Nil
	Code       string
	Name       string
	Level      Level
	ParentCode string // given, or implied by the code; empty for a county
	// RegionCode is the prefecture or province a county file names as the
	// county's parent (parent_code 360300 for 芦溪县 360323); empty when
	// not given. It is stored with the county, which stays the root of
	// its shard.
	RegionCode string
	Tasks      []Task
	HasTasks   bool // tasks given (an empty list clears them)
	Geometry   *geom.MultiPolygon
	Vertices   int
	// SRID is the coordinate system Geometry is in: 4326 (or 0) when it is
	// WGS-84 longitude/latitude, else the EPSG code of a projected or other
	// CRS that the importer transforms in PostGIS before any check.
	SRID int
	// outOfRange holds the longitude/latitude range problems of the
	// geometry, kept until the file's CRS is known ("crs" may follow
	// "features"): they are problems only when the file is geographic.
	outOfRange []string
}

// ParseFeatureCollection reads an RFC 7946 FeatureCollection of grid nodes.
// Each feature has a Polygon or MultiPolygon geometry and properties code,
// name and level (level may be omitted when limits.DefaultLevel is set, for
// a file per level, or when the code's length implies it), optionally
// parent_code, id (uuid) and tasks. It never stops at the first problem:
// every feature is checked and every structural problem returned, with the
// features that parsed. A file that is not JSON at all is one problem.
func ParseFeatureCollection(r io.Reader, limits ParseLimits) ([]Feature, Problems) {
	limits = limits.withDefaults()
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var problems Problems
	fileProblem := func(format string, args ...any) {
		problems = append(problems, Problem{Feature: -1, Kind: ProblemMalformed, Message: fmt.Sprintf(format, args...)})
	}
	tok, err := dec.Token()
	if err != nil {
		fileProblem("not a GeoJSON document: %s", jsonErr(err, dec))
		return nil, problems
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		fileProblem("not a GeoJSON object: the file must start with {")
		return nil, problems
	}
	var features []Feature
	var typ string
	var declaredSRID int
	sawFeatures := false
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			fileProblem("malformed JSON: %s", jsonErr(err, dec))
			return features, problems
		}
		key, _ := keyTok.(string)
		switch key {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				fileProblem("malformed \"type\": %s", jsonErr(err, dec))
				return features, problems
			}
		case "crs":
			var crs struct {
				Type       string `json:"type"`
				Properties struct {
					Name string `json:"name"`
				} `json:"properties"`
			}
			if err := dec.Decode(&crs); err != nil {
				fileProblem("malformed \"crs\": %s", jsonErr(err, dec))
				return features, problems
			}
			srid, err := ParseCRS(crs.Properties.Name)
			if err != nil {
				fileProblem("\"crs\": %v", err)
				return features, problems
			}
			declaredSRID = srid
		case "features":
			sawFeatures = true
			tok, err := dec.Token()
			if err != nil {
				fileProblem("malformed JSON in \"features\": %s", jsonErr(err, dec))
				return features, problems
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				fileProblem("\"features\" is not an array")
				return features, problems
			}
			for i := 0; dec.More(); i++ {
				if i >= limits.MaxFeatures {
					problems = append(problems, Problem{Feature: i, Kind: ProblemTooLarge,
						Message: fmt.Sprintf("more than %d features in one import; split the file", limits.MaxFeatures)})
					return features, problems
				}
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					problems = append(problems, Problem{Feature: i, Kind: ProblemMalformed,
						Message: "malformed JSON (truncated file?): " + jsonErr(err, dec)})
					return features, problems
				}
				f, ps := parseFeature(i, raw, limits)
				problems = append(problems, ps...)
				if len(ps) == 0 {
					features = append(features, f)
				}
			}
			if _, err := dec.Token(); err != nil {
				fileProblem("malformed JSON after the features: %s", jsonErr(err, dec))
				return features, problems
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				fileProblem("malformed JSON in %q: %s", key, jsonErr(err, dec))
				return features, problems
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		fileProblem("malformed JSON (truncated file?): %s", jsonErr(err, dec))
		return features, problems
	}
	if _, err := dec.Token(); err != io.EOF {
		fileProblem("unexpected data after the FeatureCollection")
	}
	if typ != "FeatureCollection" {
		fileProblem("type is %q, want \"FeatureCollection\"", typ)
	}
	if !sawFeatures {
		fileProblem("no \"features\" array")
	}
	return settleCRS(features, problems, limits.SourceSRID, declaredSRID)
}

// settleCRS applies the file's coordinate system once it is known: for a
// geographic CRS the longitude/latitude range problems found while parsing
// stand (with a hint when they look like projected coordinates); for any
// other CRS they were never problems, and every feature is marked for
// transformation.
func settleCRS(features []Feature, problems Problems, given, declared int) ([]Feature, Problems) {
	srid := given
	if srid == 0 {
		srid = declared
	}
	if srid == 0 {
		srid = database.SRID
	}
	if !geographicSRID(srid) {
		for i := range features {
			features[i].SRID, features[i].outOfRange = srid, nil
		}
		return features, problems
	}
	keep := features[:0]
	bad := 0
	for _, f := range features {
		if len(f.outOfRange) == 0 {
			if srid != database.SRID {
				f.SRID = srid
			}
			keep = append(keep, f)
			continue
		}
		bad++
		for _, msg := range f.outOfRange {
			problems = append(problems, Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: ProblemInvalidGeom, Message: msg})
		}
	}
	if bad > 0 && given == 0 && declared == 0 {
		problems = append(problems, Problem{Feature: -1, Kind: ProblemInvalidGeom, Message: fmt.Sprintf(
			"%d features have coordinates outside longitude ±180 / latitude ±90: if the file is in a projected CRS "+
				"(e.g. CGCS2000 3-degree Gauss-Krüger, EPSG:4513–4554), declare it in the file's \"crs\" member or give it "+
				"with the import (gridctl grid import -s-srs EPSG:4547) and it is transformed to WGS-84", bad)})
	}
	return keep, problems
}

// geographicSRID reports whether coordinates in srid are longitude and
// latitude in degrees: WGS-84, CGCS2000 and the older Chinese datums.
func geographicSRID(srid int) bool {
	switch srid {
	case 4326, 4490, 4214, 4610, 4555:
		return true
	}
	return false
}

// ParseCRS reads a coordinate system as GeoJSON files, GDAL and people
// write it: "EPSG:4547", "urn:ogc:def:crs:EPSG::4547",
// "urn:ogc:def:crs:OGC:1.3:CRS84" (WGS-84) or a bare EPSG number. It
// returns the EPSG code; whether PostGIS knows it is checked on import.
func ParseCRS(text string) (int, error) {
	t := strings.TrimSpace(text)
	upper := strings.ToUpper(t)
	switch upper {
	case "URN:OGC:DEF:CRS:OGC:1.3:CRS84", "URN:OGC:DEF:CRS:OGC::CRS84", "CRS84", "OGC:CRS84", "WGS84":
		return database.SRID, nil
	case "CGCS2000":
		return 4490, nil
	}
	num := upper
	for _, prefix := range []string{"URN:OGC:DEF:CRS:EPSG::", "URN:OGC:DEF:CRS:EPSG:", "EPSG::", "EPSG:"} {
		if strings.HasPrefix(upper, prefix) {
			num = strings.TrimPrefix(upper, prefix)
			// urn:ogc:def:crs:EPSG:6.6:4326 carries a version before the code.
			if i := strings.LastIndex(num, ":"); i >= 0 {
				num = num[i+1:]
			}
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 999999 {
		return 0, fmt.Errorf("coordinate system %.60q is not an EPSG code (write it as EPSG:4547 or urn:ogc:def:crs:EPSG::4547)", t)
	}
	return n, nil
}

// jsonErr describes a decoding error with its byte offset.
func jsonErr(err error, dec *json.Decoder) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Sprintf("file ends unexpectedly at byte %d", dec.InputOffset())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	return fmt.Sprintf("%v near byte %d", err, dec.InputOffset())
}

type rawFeature struct {
	Type       string                     `json:"type"`
	ID         any                        `json:"id"`
	Properties map[string]json.RawMessage `json:"properties"`
	Geometry   *struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	} `json:"geometry"`
}

func parseFeature(index int, raw json.RawMessage, limits ParseLimits) (Feature, Problems) {
	f := Feature{Index: index}
	var problems Problems
	add := func(kind ProblemKind, format string, args ...any) {
		problems = append(problems, Problem{Feature: index, Code: f.Code, Name: f.Name, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
	var rf rawFeature
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&rf); err != nil {
		add(ProblemMalformed, "not a GeoJSON Feature: %v", err)
		return f, problems
	}
	if rf.Type != "Feature" {
		add(ProblemMalformed, "type is %q, want \"Feature\"", rf.Type)
	}
	props := rf.Properties
	f.Code = propString(props, "code")
	if f.Code == "" {
		f.Code = propString(props, "adcode")
	}
	f.Code = NormalizeCode(f.Code)
	f.Name = strings.TrimSpace(propString(props, "name"))
	if f.Code == "" {
		add(ProblemMissingField, "property \"code\" is missing")
	} else if err := textcheck.Line("code", f.Code); err != nil || len(f.Code) > maxCodeBytes {
		f.Code = textcheck.Clip(f.Code, maxProblemField)
		add(ProblemBadCode, "code is not a short line of digits")
	}
	if f.Name == "" {
		add(ProblemMissingField, "property \"name\" is missing")
	} else if len(f.Name) > 200 {
		f.Name = textcheck.Clip(f.Name, maxProblemField)
		add(ProblemMissingField, "name is longer than 200 bytes")
		f.Name = ""
	} else if err := textcheck.Line("name", f.Name); err != nil {
		f.Name = ""
		add(ProblemMissingField, "%s", err.Error())
	}
	if lv := propString(props, "level"); lv != "" {
		l, ok := ParseLevel(lv)
		if !ok {
			add(ProblemMissingField, "level %q is not county, township, village or cell", lv)
		}
		f.Level = l
	} else if limits.DefaultLevel.Valid() {
		f.Level = limits.DefaultLevel
	} else if l, ok := LevelForCode(f.Code); ok {
		f.Level = l
	} else if f.Code != "" {
		add(ProblemMissingField, "property \"level\" is missing and code %q does not imply one", f.Code)
	}
	if f.Code != "" && f.Level.Valid() {
		if err := CheckCode(f.Code, f.Level); err != nil {
			add(ProblemBadCode, "%v", err)
		} else {
			implied := ParentCode(f.Code)
			pc := NormalizeCode(propString(props, "parent_code"))
			switch {
			case f.Level == LevelCounty && pc != "":
				if err := CheckCountyRegion(f.Code, pc); err != nil {
					add(ProblemCodeParent, "%v", err)
				} else {
					f.RegionCode = pc
				}
			case pc != "" && pc != implied:
				add(ProblemCodeParent, "code %s does not extend its parent's code %s", f.Code, pc)
			}
			f.ParentCode = implied
		}
	}
	idText := propString(props, "id")
	if idText == "" {
		if s, ok := rf.ID.(string); ok {
			idText = s
		}
	}
	if idText != "" {
		if id, err := uuid.Parse(idText); err == nil {
			f.ID = id
		} else if propString(props, "id") != "" {
			add(ProblemMissingField, "property \"id\" %q is not a UUID", idText)
		}
	}
	if rawTasks, ok := props["tasks"]; ok && string(rawTasks) != "null" {
		f.HasTasks = true
		if err := json.Unmarshal(rawTasks, &f.Tasks); err != nil {
			add(ProblemBadTask, "tasks is not a list of {kind, count, period}: %v", err)
		}
		for _, t := range f.Tasks {
			if err := t.Check(); err != nil {
				add(ProblemBadTask, "%v", err)
			}
		}
	}
	if rf.Geometry == nil {
		add(ProblemMissingField, "geometry is missing")
		return f, problems
	}
	mp, n, gps, outOfRange := parseGeometry(rf.Geometry.Type, rf.Geometry.Coordinates, limits)
	f.outOfRange = outOfRange
	for _, msg := range gps {
		kind := ProblemInvalidGeom
		if strings.Contains(msg, "limit") {
			kind = ProblemTooLarge
		}
		add(kind, "%s", msg)
	}
	f.Geometry, f.Vertices = mp, n
	return f, problems
}

// propString returns a property as text: strings as they are, numbers in
// their JSON spelling (codes are sometimes numbers in the wild).
func propString(props map[string]json.RawMessage, key string) string {
	raw, ok := props[key]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	return ""
}

// ringSizes scans raw coordinates without decoding them and returns the
// number of positions in the largest ring and in total, so that a ring of a
// million vertices is refused before a million slices are allocated.
// positionDepth is the bracket depth of a position (3 for a Polygon, 4 for a
// MultiPolygon).
func ringSizes(raw []byte, positionDepth int) (maxRing, total int) {
	depth, ring := 0, 0
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[':
			depth++
			if depth == positionDepth-1 {
				ring = 0
			}
			if depth == positionDepth {
				ring++
				total++
				maxRing = max(maxRing, ring)
			}
		case ']':
			depth--
		}
	}
	return maxRing, total
}

// parseGeometry decodes a Polygon or MultiPolygon and checks its structure:
// finite coordinates in range, closed rings of at least four positions, the
// vertex limits. Topology (self-intersection, holes outside shells) is
// checked by PostGIS in the import transaction.
//
// Positions outside longitude ±180 / latitude ±90 are kept and described
// in outOfRange (one per ring) rather than in msgs: they are wrong only if
// the file turns out to be geographic (see settleCRS).
func parseGeometry(typ string, raw json.RawMessage, limits ParseLimits) (mp *geom.MultiPolygon, total int, msgs, outOfRange []string) {
	var depth int
	switch typ {
	case "Polygon":
		depth = 3
	case "MultiPolygon":
		depth = 4
	case "":
		return nil, 0, []string{"geometry has no type"}, nil
	default:
		return nil, 0, []string{fmt.Sprintf("geometry is a %s; a grid node needs a Polygon or MultiPolygon", typ)}, nil
	}
	maxRing, total := ringSizes(raw, depth)
	if maxRing > limits.MaxRingVertices {
		return nil, total, []string{fmt.Sprintf("a ring has %d vertices, over the limit of %d; simplify the boundary", maxRing, limits.MaxRingVertices)}, nil
	}
	if total > limits.MaxFeatureVertices {
		return nil, total, []string{fmt.Sprintf("the geometry has %d vertices, over the limit of %d; simplify the boundary", total, limits.MaxFeatureVertices)}, nil
	}
	var polys [][][][]json.Number
	if depth == 3 {
		var p [][][]json.Number
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, total, []string{"Polygon coordinates are not an array of rings of [longitude, latitude] positions"}, nil
		}
		polys = [][][][]json.Number{p}
	} else if err := json.Unmarshal(raw, &polys); err != nil {
		return nil, total, []string{"MultiPolygon coordinates are not an array of polygons of rings of [longitude, latitude] positions"}, nil
	}
	if len(polys) == 0 {
		return nil, total, []string{"geometry is empty"}, nil
	}
	mp = geom.NewMultiPolygon(geom.XY)
	for pi, p := range polys {
		where := func(ri int) string {
			if depth == 3 {
				return fmt.Sprintf("ring %d", ri+1)
			}
			return fmt.Sprintf("polygon %d ring %d", pi+1, ri+1)
		}
		if len(p) == 0 {
			msgs = append(msgs, fmt.Sprintf("polygon %d has no rings", pi+1))
			continue
		}
		n := 0
		for _, ring := range p {
			n += len(ring)
		}
		flat := make([]float64, 0, 2*n)
		var ends []int
		ok := true
		for ri, ring := range p {
			bad, ringOutOfRange := false, false
			for vi, pos := range ring {
				if len(pos) < 2 {
					msgs = append(msgs, fmt.Sprintf("%s position %d has %d numbers, want [longitude, latitude]", where(ri), vi+1, len(pos)))
					bad = true
					break
				}
				lon, err1 := strconv.ParseFloat(string(pos[0]), 64)
				lat, err2 := strconv.ParseFloat(string(pos[1]), 64)
				switch {
				case err1 != nil || err2 != nil || math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0):
					msgs = append(msgs, fmt.Sprintf("%s position %d [%s, %s] is not a finite number", where(ri), vi+1, pos[0], pos[1]))
					bad = true
				case (lon < -180 || lon > 180 || lat < -90 || lat > 90) && !ringOutOfRange:
					outOfRange = append(outOfRange, fmt.Sprintf("%s position %d [%s, %s] is out of range (longitude ±180, latitude ±90)", where(ri), vi+1, pos[0], pos[1]))
					ringOutOfRange = true
				}
				if bad {
					break
				}
				flat = append(flat, lon, lat)
			}
			if bad {
				ok = false
				continue
			}
			switch {
			case ringOutOfRange:
				// Judged once the CRS is known: a geographic file reports
				// the range, a projected one is checked again by PostGIS.
			case len(ring) < 4:
				msgs = append(msgs, fmt.Sprintf("%s has %d positions; a closed ring needs at least 4", where(ri), len(ring)))
				ok = false
			case !sameNumber(ring[0][0], ring[len(ring)-1][0]) || !sameNumber(ring[0][1], ring[len(ring)-1][1]):
				msgs = append(msgs, fmt.Sprintf("%s is not closed: its last position differs from its first", where(ri)))
				ok = false
			}
			ends = append(ends, len(flat))
		}
		if !ok {
			continue
		}
		poly := geom.NewPolygonFlat(geom.XY, flat, ends)
		if err := mp.Push(poly); err != nil {
			msgs = append(msgs, fmt.Sprintf("polygon %d: %v", pi+1, err))
		}
	}
	if len(msgs) > 0 {
		return nil, total, msgs, outOfRange
	}
	if len(outOfRange) > 0 {
		// Not degrees, or wrong degrees: the extent says nothing yet.
		return mp, total, nil, outOfRange
	}
	if b := mp.Bounds(); b.Max(0)-b.Min(0) > MaxExtentDegrees || b.Max(1)-b.Min(1) > MaxExtentDegrees {
		return nil, total, []string{fmt.Sprintf("the boundary spans %.1f° of longitude and %.1f° of latitude; a grid node is at most %g° across (is a coordinate wrong, or does it cross the antimeridian?)",
			b.Max(0)-b.Min(0), b.Max(1)-b.Min(1), MaxExtentDegrees)}, nil
	}
	return mp, total, nil, nil
}

// MaxExtentDegrees bounds a node's bounding box: the largest Chinese county
// (Ruoqiang, Xinjiang) spans about 6° × 4°, so anything wider is a wrong
// coordinate; it also keeps PostGIS geography functions away from
// antipodal edges, which they refuse.
const MaxExtentDegrees = 20.0

func sameNumber(a, b json.Number) bool {
	x, err1 := strconv.ParseFloat(string(a), 64)
	y, err2 := strconv.ParseFloat(string(b), 64)
	return err1 == nil && err2 == nil && x == y
}

// ParseGeometry reads one GeoJSON Polygon or MultiPolygon geometry object
// (as sent in CreateNode/UpdateNode) with the same checks and limits as an
// import.
func ParseGeometry(text string, limits ParseLimits) (*geom.MultiPolygon, error) {
	limits = limits.withDefaults()
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	if err := d.Decode(&g); err != nil {
		return nil, fmt.Errorf("geometry is not a GeoJSON object: %v", err)
	}
	mp, _, msgs, outOfRange := parseGeometry(g.Type, g.Coordinates, limits)
	msgs = append(msgs, outOfRange...)
	if len(msgs) > 0 {
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return mp, nil
}

// GeometryJSON renders a MultiPolygon as a GeoJSON geometry object.
func GeometryJSON(mp *geom.MultiPolygon) string {
	return `{"type":"MultiPolygon","coordinates":` + string(multiPolygonCoords(&Node{Geometry: mp})) + `}`
}
