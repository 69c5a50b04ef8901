package main

import (
	"runtime/debug"
	"strings"
)

// versionLine is what `gridctl --version` prints: the module version, the
// VCS revision and time it was built from (with "+dirty" for uncommitted
// changes) and the Go version, as the build recorded them.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "gridctl (no build information)"
	}
	return "gridctl " + describeBuild(bi)
}

// describeBuild renders bi as "VERSION (REVISION TIME) GOVERSION".
func describeBuild(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	var b strings.Builder
	b.WriteString(version)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" (" + rev)
		if dirty {
			b.WriteString("+dirty")
		}
		if at != "" {
			b.WriteString(" " + at)
		}
		b.WriteString(")")
	}
	b.WriteString(" " + bi.GoVersion)
	return b.String()
}
