package main

import (
	"context"
	"flag"
	"fmt"

	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
)

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl migrate", flag.ContinueOnError)
	var url string
	flagenv.String(fs, &url, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL")
	var create bool
	fs.BoolVar(&create, "create", true, "create the database when it does not exist")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if create {
		if err := database.CreateIfMissing(ctx, url); err != nil {
			return err
		}
	}
	pool, err := database.Open(ctx, database.Config{URL: url, ApplicationName: "gridctl"})
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := database.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	for _, a := range applied {
		fmt.Println("applied", a)
	}
	fmt.Printf("database %s is up to date (%d applied)\n", database.Redact(url), len(applied))
	return nil
}
