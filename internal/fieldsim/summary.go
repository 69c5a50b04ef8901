package fieldsim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// WriteSummary prints the result for a person: the workload, throughput
// and latency per RPC, errors by code, and every reconciliation with its
// verdict.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "fieldsim run %s — county %s: %d townships, %d villages, %d inspectors, %d supervisors\n",
		r.RunID, r.County, r.Townships, r.Villages, r.Inspectors, r.Supervisors)
	fmt.Fprintf(w, "setup %.1fs, logins %.1fs, workload %.1fs\n\n", r.SetupSeconds, r.LoginSeconds, r.RunSeconds)
	wl := r.Workload
	fmt.Fprintf(w, "workload: %d patrols walked (%d track points in %d batches, %d batches replayed, %d points rejected)\n",
		wl.Patrols, wl.TrackPointsSent, wl.TrackBatchesSent, wl.TrackReplays, wl.TrackRejected)
	fmt.Fprintf(w, "          %d reports (%d violations, %d replayed from offline queues in %d batches), %d photos (%d uploads resumed)\n",
		wl.Reports, wl.Violations, wl.ReportsOffline, wl.Batches, wl.Photos, wl.UploadsResumed)
	fmt.Fprintf(w, "          cases: %d accepted, %d rejected, %d closed, %d left rectified (no second inspector in the cell); %d calls refused\n",
		wl.CasesAccepted, wl.CasesRejected, wl.CasesClosed, wl.CasesUnverified, wl.Refused)
	fmt.Fprintf(w, "throughput: %.1f calls/s, %.1f reports/s\n\n", r.CallsPerSecond, r.ReportsPerSec)

	fmt.Fprintf(w, "%-44s %8s %9s %9s %9s  %s\n", "rpc", "ok", "p50 ms", "p99 ms", "max ms", "errors by code")
	for _, s := range r.RPCs {
		var errs []string
		for c, n := range s.Errors {
			errs = append(errs, fmt.Sprintf("%s=%d", c, n))
		}
		sort.Strings(errs)
		fmt.Fprintf(w, "%-44s %8d %9.1f %9.1f %9.1f  %s\n", s.RPC, s.OK, s.P50ms, s.P99ms, s.MaxMs, strings.Join(errs, " "))
	}
	for _, s := range r.RPCs {
		for _, c := range slices.Sorted(maps.Keys(s.FirstErrors)) {
			fmt.Fprintf(w, "first %s %s: %.200s\n", s.RPC, c, s.FirstErrors[c])
		}
	}
	for _, s := range r.RefusedSamples {
		fmt.Fprintf(w, "refused: %s\n", s)
	}

	if !r.Reconciled {
		fmt.Fprintln(w, "\ninterrupted: no reconciliation")
		return
	}
	c := r.Reconciliation
	fmt.Fprintln(w, "\nreconciliation against PostgreSQL:")
	check := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	check(c.ReportsStored == c.ReportsAcknowledged && c.ReportsMissing == 0 && c.ReportsContentDiffers == 0,
		"reports: %d acknowledged, %d stored, %d missing, %d differing (%d more stored whose answer was lost)",
		c.ReportsAcknowledged, c.ReportsStored, c.ReportsMissing, c.ReportsContentDiffers, c.ReportsStoredUnacknowledged)
	check(c.ReportsDuplicated == 0, "duplicates: %d", c.ReportsDuplicated)
	check(c.PhotosHashMatching == c.PhotosAcknowledged && c.PhotosStored == c.PhotosAcknowledged,
		"photos: %d acknowledged, %d stored, %d read back with matching SHA-256", c.PhotosAcknowledged, c.PhotosStored, c.PhotosHashMatching)
	check(c.PatrolsExact == c.PatrolsAcknowledged, "patrols: %d fully acknowledged, %d with exactly their distinct track points", c.PatrolsAcknowledged, c.PatrolsExact)
	check(c.ViolationsWithOneCase == c.Violations && c.CasesForNonViolations == 0,
		"cases: %d violations, %d with exactly one case, %d cases for non-violations (pipeline drained in %.1fs)",
		c.Violations, c.ViolationsWithOneCase, c.CasesForNonViolations, c.DrainSeconds)
	check(c.CaseStepsRecorded == c.CaseStepsAcknowledged && c.CasesClosedStored == c.CasesClosedAck,
		"case steps: %d acknowledged, %d in the timeline; %d closed acknowledged, %d closed stored",
		c.CaseStepsAcknowledged, c.CaseStepsRecorded, c.CasesClosedAck, c.CasesClosedStored)
	check(c.ViolationLedgerRecords == c.Violations && c.CasesLedgerMismatch == 0,
		"ledger records: %d of %d violations recorded once; %d cases whose timeline and ledger differ",
		c.ViolationLedgerRecords, c.Violations, c.CasesLedgerMismatch)
	for _, l := range c.Ledger {
		check(l.OK, "ledger chain %s: %d records, %d checkpoints verified %s", l.County, l.Records, l.Checkpoints, l.Message)
	}
	for _, p := range c.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	if c.Exact {
		fmt.Fprintln(w, "\nEXACT: every acknowledged report, photo, patrol, case and ledger record is in the database exactly once.")
	} else {
		fmt.Fprintln(w, "\nNOT EXACT: see the problems above.")
	}
}
