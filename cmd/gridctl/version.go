package main

import (
	"runtime/debug"

	"ecogrid/internal/buildinfo"
)

// versionLine is what `gridctl --version` prints: the module version, the
// VCS revision and time it was built from (with "+dirty" for uncommitted
// changes) and the Go version, as the build recorded them (or the
// -ldflags stamps of internal/buildinfo).
func versionLine() string { return "gridctl " + buildinfo.Read().String() }

// describeBuild renders bi as "VERSION (REVISION TIME) GOVERSION".
func describeBuild(bi *debug.BuildInfo) string { return buildinfo.FromBuildInfo(bi).String() }
