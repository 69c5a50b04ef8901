// Command cased runs ecogrid's case-tracking service (violations → cases, case workflow).
// Configuration comes from flags with environment fallbacks: cased -help.
package main

import (
	"context"
	"log/slog"

	"ecogrid/internal/cased"
	"ecogrid/internal/server"
)

func main() {
	var cfg cased.Config
	server.Main("cased", cfg.RegisterFlags, func(ctx context.Context, log *slog.Logger) error {
		return cased.Run(ctx, cfg, log)
	})
}
