package grid

import (
	"fmt"
	"strings"
)

// ProblemKind classifies an import problem so that clients can group them.
type ProblemKind string

// The problems an import reports.
const (
	ProblemMalformed     ProblemKind = "malformed"      // not parseable GeoJSON
	ProblemMissingField  ProblemKind = "missing_field"  // code, name, level or geometry missing
	ProblemBadCode       ProblemKind = "bad_code"       // not digits, wrong length for the level
	ProblemCodeParent    ProblemKind = "code_parent"    // code does not extend the parent's, parent unknown
	ProblemDuplicateCode ProblemKind = "duplicate_code" // the same code twice in one import
	ProblemInvalidGeom   ProblemKind = "invalid_geometry"
	ProblemTooLarge      ProblemKind = "too_large"       // vertex or feature limit exceeded
	ProblemOutsideParent ProblemKind = "outside_parent"  // sticks out of its parent beyond the tolerance
	ProblemOverlap       ProblemKind = "sibling_overlap" // overlaps a sibling beyond the tolerance
	ProblemGap           ProblemKind = "coverage_gap"    // warning: part of a parent no child covers
	ProblemBadTask       ProblemKind = "bad_task"
)

// Problem is one thing wrong with an import, named so that a GIS officer can
// find and fix it: the feature's position in the file, its code and name.
type Problem struct {
	Feature int    // zero-based index in the FeatureCollection; -1 for the file as a whole
	Code    string // the feature's code, when known
	Name    string // the feature's name, when known
	Kind    ProblemKind
	Message string
	Warning bool    // a warning does not stop the import (coverage gaps)
	AreaM2  float64 // area concerned, for overlaps, protrusions and gaps
}

// String renders the problem as one line naming the feature.
func (p Problem) String() string {
	var b strings.Builder
	if p.Feature < 0 {
		b.WriteString("file")
	} else {
		fmt.Fprintf(&b, "feature %d", p.Feature)
	}
	switch {
	case p.Code != "" && p.Name != "":
		fmt.Fprintf(&b, " (%s %s)", p.Code, p.Name)
	case p.Code != "":
		fmt.Fprintf(&b, " (%s)", p.Code)
	case p.Name != "":
		fmt.Fprintf(&b, " (%s)", p.Name)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// Problems is the full list an import reports in one response.
type Problems []Problem

// Errors returns the problems that are not warnings.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Warnings returns the warnings.
func (ps Problems) Warnings() Problems {
	var out Problems
	for _, p := range ps {
		if p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Summary joins up to limit problems into one message, saying how many more
// there are.
func (ps Problems) Summary(limit int) string {
	var parts []string
	for i, p := range ps {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-limit))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}
