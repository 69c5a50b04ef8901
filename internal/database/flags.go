package database

import (
	"flag"

	"ecogrid/internal/flagenv"
)

// RegisterFlags defines the database flags of a service named app (shown
// in pg_stat_activity).
func (c *Config) RegisterFlags(fs *flag.FlagSet, app string) {
	flagenv.String(fs, &c.URL, "database-url", "DATABASE_URL", DefaultURL, "PostgreSQL URL")
	flagenv.Int(fs, &c.MaxConns, "database-max-conns", "DATABASE_MAX_CONNS", 16, "pool size: RPCs in flight plus background workers")
	flagenv.Bool(fs, &c.MigrateOnStart, "migrate", "ECOGRID_MIGRATE", false, "apply pending migrations at start")
	c.ApplicationName = app
}
