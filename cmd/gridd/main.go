// Command gridd runs ecogrid's field-facing service (grid, people, auth, patrols, reports, photos).
// Configuration comes from flags with environment fallbacks: gridd -help.
package main

import (
	"context"
	"log/slog"

	"ecogrid/internal/gridd"
	"ecogrid/internal/server"
)

func main() {
	var cfg gridd.Config
	server.Main("gridd", cfg.RegisterFlags, func(ctx context.Context, log *slog.Logger) error {
		return gridd.Run(ctx, cfg, log)
	})
}
