// Package web holds the console's sources (TypeScript, built by Vite) and
// embeds its built files, committed in dist/ so that `go build ./...` needs
// no Node. scripts/test.sh rebuilds dist/ and fails when it differs.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built console: index.html and its hashed assets.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time; it is always there
	}
	return sub
}
