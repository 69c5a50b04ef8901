// Command fieldsim drives a running ecogrid stack on this machine as a
// county's inspectors and supervisors would, prints throughput, latency
// and errors per RPC, and reconciles every acknowledgement against the
// database. It exits non-zero when a reconciliation is not exact.
// fieldsim -help lists the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"ecogrid/internal/fieldsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fieldsim.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fieldsim:", err)
		os.Exit(1)
	}
}
