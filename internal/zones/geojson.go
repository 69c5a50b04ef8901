package zones

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/twpayne/go-geom"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/grid"
	"ecogrid/internal/structerr"
)

// Feature is one parsed zone of an import file.
type Feature struct {
	Index      int // position in the FeatureCollection
	Code       string
	Kind       Kind
	Name       string
	LegalBasis string
	Geometry   *geom.MultiPolygon
}

// Problem is one thing wrong with an import, named so that a GIS officer
// finds it: the feature's position in the file and its code.
type Problem struct {
	Feature int // zero-based; -1 for the file as a whole
	Code    string
	Message string
}

func (p Problem) String() string {
	where := "file"
	if p.Feature >= 0 {
		where = fmt.Sprintf("feature %d", p.Feature)
	}
	if p.Code != "" {
		where += " (" + p.Code + ")"
	}
	return where + ": " + p.Message
}

// Limits of one import.
const (
	// MaxFeatures is the most zones one file may hold.
	MaxFeatures = 50_000
	// maxProblems bounds the problems one refusal lists in its details.
	maxProblems = 1000
	// maxProblemMessage bounds one problem's message.
	maxProblemMessage = 200
	maxTextField      = 500
)

// RejectedError is an import refused with every problem found (up to
// maxProblems): InvalidArgument whose message, capped like every status
// message, names the first problems and how many there are, and whose
// BadRequest details carry each one.
type RejectedError struct{ Problems []Problem }

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "import refused, nothing was written: %d problem(s): ", len(e.Problems))
	for i, p := range e.Problems {
		s := p.String()
		if b.Len()+len(s) > structerr.MaxMessageBytes-40 {
			fmt.Fprintf(&b, "and %d more", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// GRPCStatus makes the rejection an InvalidArgument with details.
func (e *RejectedError) GRPCStatus() *status.Status {
	st := status.New(codes.InvalidArgument, structerr.NewInvalidArgument("%s", e.Error()).Error())
	br := &errdetails.BadRequest{}
	for _, p := range e.Problems {
		field := "file"
		if p.Feature >= 0 {
			field = fmt.Sprintf("features[%d]", p.Feature)
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: p.String()})
	}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

// problems collects an import's problems, capped.
type problems struct {
	list []Problem
	n    int // every problem added, also those past the cap
}

func (ps *problems) add(feature int, code, format string, args ...any) {
	ps.n++
	if len(ps.list) >= maxProblems {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxProblemMessage {
		msg = clip(msg, maxProblemMessage) + "…"
	}
	ps.list = append(ps.list, Problem{Feature: feature, Code: clip(code, 64), Message: msg})
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ParseFeatureCollection reads an RFC 7946 FeatureCollection of zones: each
// feature has a Polygon or MultiPolygon geometry (EPSG:4326) and
// properties code, kind and name, optionally legal_basis. It checks every
// feature and returns every problem (up to a thousand) with the features
// that parsed; kinds are checked against the county's by the import.
func ParseFeatureCollection(r io.Reader) ([]Feature, []Problem) {
	var ps problems
	var doc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		ps.add(-1, "", "not a GeoJSON FeatureCollection: %v", err)
		return nil, ps.list
	}
	if _, err := dec.Token(); err != io.EOF {
		ps.add(-1, "", "unexpected data after the FeatureCollection")
	}
	if doc.Type != "FeatureCollection" {
		ps.add(-1, "", "type is %.40q, want \"FeatureCollection\"", doc.Type)
	}
	if doc.Features == nil {
		ps.add(-1, "", "no \"features\" array")
	}
	if len(doc.Features) > MaxFeatures {
		ps.add(-1, "", "%d features in one file, at most %d; split it", len(doc.Features), MaxFeatures)
		return nil, ps.list
	}
	var out []Feature
	seen := map[string]int{}
	for i, raw := range doc.Features {
		f, ok := parseFeature(i, raw, &ps)
		if !ok {
			continue
		}
		if first, dup := seen[f.Code]; dup {
			ps.add(i, f.Code, "code %s appears twice (also feature %d)", f.Code, first)
			continue
		}
		seen[f.Code] = i
		out = append(out, f)
	}
	return out, ps.list
}

func parseFeature(i int, raw json.RawMessage, ps *problems) (Feature, bool) {
	var rf struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Geometry   json.RawMessage            `json:"geometry"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&rf); err != nil {
		ps.add(i, "", "not a GeoJSON feature: %v", err)
		return Feature{}, false
	}
	f := Feature{Index: i}
	f.Code = prop(rf.Properties, "code")
	before := ps.n
	if rf.Type != "Feature" {
		ps.add(i, f.Code, "type is %.40q, want \"Feature\"", rf.Type)
	}
	f.Kind = Kind(prop(rf.Properties, "kind"))
	f.Name = prop(rf.Properties, "name")
	f.LegalBasis = prop(rf.Properties, "legal_basis")
	switch {
	case f.Code == "":
		ps.add(i, "", "properties.code is missing")
	case !ValidCode(f.Code):
		ps.add(i, f.Code, "code %.64q is not 1–64 letters, digits, '.', '_' or '-'", f.Code)
	}
	switch {
	case f.Kind == "":
		ps.add(i, f.Code, "properties.kind is missing")
	case !ValidKindName(string(f.Kind)):
		ps.add(i, f.Code, "kind %.40q is not a kind name (lower-case letters, digits, '_')", f.Kind)
	}
	if strings.TrimSpace(f.Name) == "" {
		ps.add(i, f.Code, "properties.name is missing")
	}
	if len(f.Name) > maxTextField || len(f.LegalBasis) > maxTextField {
		ps.add(i, f.Code, "name and legal_basis may have at most %d bytes", maxTextField)
	}
	if !utf8.ValidString(f.Name) || !utf8.ValidString(f.LegalBasis) {
		ps.add(i, f.Code, "name and legal_basis must be UTF-8")
	}
	if len(rf.Geometry) == 0 || string(rf.Geometry) == "null" {
		ps.add(i, f.Code, "geometry is missing")
	} else {
		mp, err := grid.ParseGeometry(string(rf.Geometry), grid.ParseLimits{})
		if err != nil {
			ps.add(i, f.Code, "geometry: %v", err)
		} else {
			f.Geometry = mp
		}
	}
	return f, ps.n == before
}

// prop reads a string property ("" when absent or not a string).
func prop(props map[string]json.RawMessage, key string) string {
	raw, ok := props[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}
