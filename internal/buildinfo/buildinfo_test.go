package buildinfo

import (
	"runtime/debug"
	"testing"
)

// The -ldflags stamps win over what the toolchain recorded (a Docker build
// context has no .git), and a build with neither says so.
func TestStampsAndFallbacks(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	if in := FromBuildInfo(bi); in.ShortRevision() != "0123456789ab+dirty" || in.Version != "(devel)" {
		t.Fatalf("recorded: %+v", in)
	}
	version, revision = "v1.4.0", "fedcba9876543210fedc"
	defer func() { version, revision = "", "" }()
	if in := FromBuildInfo(bi); in.Version != "v1.4.0" || in.Revision != "fedcba9876543210fedc" || in.String() != "v1.4.0 (fedcba987654+dirty) go1.26.8" {
		t.Fatalf("stamped: %+v %q", in, in.String())
	}
	version, revision = "", ""
	if in := FromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8"}); in.ShortRevision() != "unknown" || in.String() != "(devel) go1.26.8" {
		t.Fatalf("nothing recorded: %+v", in)
	}
}
