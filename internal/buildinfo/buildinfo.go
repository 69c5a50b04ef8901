// Package buildinfo says which build a binary is: its version and the VCS
// revision it was built from, for `--version` and the ecogrid_build_info
// metric. The Go toolchain records both (module version, -buildvcs); a
// release build whose tree has no .git (a Docker build context, or
// GOFLAGS=-buildvcs=false) stamps them with
//
//	-ldflags "-X ecogrid/internal/buildinfo.version=v1.4.0 -X ecogrid/internal/buildinfo.revision=$(git rev-parse HEAD)"
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Set by -ldflags -X; they take precedence over what the toolchain recorded.
var (
	version  string
	revision string
)

// Info is a build's identity.
type Info struct {
	Version   string // module version, "(devel)" for a build from a work tree
	Revision  string // VCS revision, "" when unknown
	Time      string // VCS commit time (RFC 3339), "" when unknown
	Dirty     bool   // the tree had uncommitted changes
	GoVersion string
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo is Read for a given debug.BuildInfo (and the -X stamps).
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Dirty = s.Value == "true"
		}
	}
	if version != "" {
		in.Version = version
	}
	if revision != "" {
		in.Revision = revision
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	return in
}

// ShortRevision is the first 12 characters of the revision, with "+dirty"
// for a build from uncommitted changes; "unknown" when there is none.
func (in Info) ShortRevision() string {
	rev := in.Revision
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if in.Dirty {
		rev += "+dirty"
	}
	return rev
}

// String renders "VERSION (REVISION TIME) GOVERSION".
func (in Info) String() string {
	var b strings.Builder
	b.WriteString(in.Version)
	if in.Revision != "" {
		b.WriteString(" (" + in.ShortRevision())
		if in.Time != "" {
			b.WriteString(" " + in.Time)
		}
		b.WriteString(")")
	}
	b.WriteString(" " + in.GoVersion)
	return b.String()
}
