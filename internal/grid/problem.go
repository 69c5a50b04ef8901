package grid

import (
	"fmt"
	"strings"

	"ecogrid/internal/textcheck"
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

// Bounds on what a problem repeats of its input, so that a report about a
// huge name or code (or ten thousand features) stays readable and small.
const (
	maxCodeBytes      = 32  // longer than any administrative code
	maxProblemField   = 60  // bytes of a code or name repeated in a problem
	maxProblemMessage = 300 // bytes of one problem's text
	maxDetailProblems = 100 // problems spelled out in a response; the rest are counted
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
	p = p.capped()
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
	return textcheck.Clip(b.String(), maxProblemMessage)
}

// capped is the problem with its code, name and message cut to their
// bounds (each ends in "…" when cut).
func (p Problem) capped() Problem {
	p.Code = textcheck.Clip(p.Code, maxProblemField)
	p.Name = textcheck.Clip(p.Name, maxProblemField)
	p.Message = textcheck.Clip(p.Message, maxProblemMessage)
	return p
}

// Listed returns at most maxDetailProblems problems, capped, and how many
// were left off: what a response spells out.
func (ps Problems) Listed() (Problems, int) {
	n := min(len(ps), maxDetailProblems)
	out := make(Problems, 0, n)
	for _, p := range ps[:n] {
		out = append(out, p.capped())
	}
	return out, len(ps) - n
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

// summaryWithin joins as many problems as fit in max bytes, ending with
// "… and N more" when some were left off; a first problem too long on its
// own is cut.
func (ps Problems) summaryWithin(max int) string {
	const reserve = len("; … and 1000000 more")
	var b strings.Builder
	for i, p := range ps {
		s := p.String()
		if i > 0 {
			s = "; " + s
		}
		if b.Len()+len(s) > max-reserve {
			if i == 0 {
				b.WriteString(textcheck.Clip(s, max-reserve))
				if len(ps) == 1 {
					return b.String()
				}
				i = 1
			}
			fmt.Fprintf(&b, "; … and %d more", len(ps)-i)
			return b.String()
		}
		b.WriteString(s)
	}
	return b.String()
}

// Summary joins up to limit problems into one message, saying how many more
// there are.
func (ps Problems) Summary(limit int) string {
	var parts []string
	for i, p := range ps {
		if i == limit {
			parts = append(parts, fmt.Sprintf("… and %d more", len(ps)-limit))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}
