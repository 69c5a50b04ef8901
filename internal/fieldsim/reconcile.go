package fieldsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
)

// Reconciliation compares what the servers acknowledged with what
// PostgreSQL holds. Every count pair must be equal and every "bad" count
// zero for the run to be exact.
type Reconciliation struct {
	ReportsAcknowledged int `json:"reports_acknowledged"`
	ReportsStored       int `json:"reports_stored"`
	ReportsMissing      int `json:"reports_missing"`
	// ReportsDuplicated counts extra rows of one filed report (the same
	// unique description stored under more than one id).
	ReportsDuplicated int `json:"reports_duplicated"`
	// ReportsContentDiffers counts stored reports whose violation flag or
	// photo list differ from what was acknowledged.
	ReportsContentDiffers int `json:"reports_content_differs"`
	// ReportsStoredUnacknowledged were stored although their last answer
	// was lost (allowed: the app gave up at the end of the run).
	ReportsStoredUnacknowledged int `json:"reports_stored_unacknowledged"`

	PhotosAcknowledged int `json:"photos_acknowledged"`
	PhotosStored       int `json:"photos_stored"`
	PhotosHashMatching int `json:"photos_hash_matching"`

	PatrolsAcknowledged int `json:"patrols_acknowledged"`
	PatrolsExact        int `json:"patrols_exact"`

	Violations             int `json:"violations"`
	ViolationsWithOneCase  int `json:"violations_with_one_case"`
	ViolationLedgerRecords int `json:"violation_ledger_records"`
	CasesForNonViolations  int `json:"cases_for_non_violations"`
	// CasesLedgerMismatch counts cases whose timeline entries and ledger
	// records differ in number (an act without its record or the reverse).
	CasesLedgerMismatch int     `json:"cases_ledger_mismatch"`
	DrainSeconds        float64 `json:"drain_seconds"`

	CaseStepsAcknowledged int `json:"case_steps_acknowledged"`
	CaseStepsRecorded     int `json:"case_steps_recorded"`
	CasesClosedAck        int `json:"cases_closed_acknowledged"`
	CasesClosedStored     int `json:"cases_closed_stored"`

	Ledger []ChainCheck `json:"ledger"`

	Problems []string `json:"problems,omitempty"`
	Exact    bool     `json:"exact"`
}

// ChainCheck is VerifyChain's answer for one county.
type ChainCheck struct {
	County      string `json:"county"`
	OK          bool   `json:"ok"`
	Records     int64  `json:"records"`
	Checkpoints int32  `json:"checkpoints"`
	FirstBadSeq int64  `json:"first_bad_seq,omitempty"`
	Message     string `json:"message,omitempty"`
}

func (r *Reconciliation) problem(format string, args ...any) {
	if len(r.Problems) < 50 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// reconcile runs the checks on a read-only connection pool.
func (s *Sim) reconcile(ctx context.Context) (*Reconciliation, error) {
	pool, err := database.Open(ctx, database.Config{URL: s.cfg.DatabaseURL, ApplicationName: "fieldsim-reconcile"})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	rc := &Reconciliation{}
	a := s.acks
	a.mu.Lock()
	reports := make(map[string]ackReport, len(a.reports))
	for k, v := range a.reports {
		reports[k] = v
	}
	photos := make(map[string]ackPhoto, len(a.photos))
	for k, v := range a.photos {
		photos[k] = v
	}
	patrols := slices.Clone(a.patrols)
	steps := slices.Clone(a.steps)
	closed := slices.Clone(a.closed)
	a.mu.Unlock()

	ids := make([]string, 0, len(reports))
	var violations []string
	for id, r := range reports {
		ids = append(ids, id)
		if r.violation {
			violations = append(violations, id)
		}
	}
	sort.Strings(ids)
	rc.ReportsAcknowledged, rc.Violations = len(ids), len(violations)

	if err := s.reconcileReports(ctx, pool, rc, ids, reports); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	if err := s.reconcilePhotos(ctx, pool, rc, photos); err != nil {
		return nil, fmt.Errorf("photos: %w", err)
	}
	if err := s.reconcilePatrols(ctx, pool, rc, patrols); err != nil {
		return nil, fmt.Errorf("patrols: %w", err)
	}
	if err := s.reconcileCases(ctx, pool, rc, ids, reports); err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	if err := s.reconcileSteps(ctx, pool, rc, steps, closed); err != nil {
		return nil, fmt.Errorf("case steps: %w", err)
	}
	if err := s.reconcileLedger(ctx, pool, rc, ids, reports); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	rc.Exact = len(rc.Problems) == 0
	return rc, nil
}

// readOnly runs f in a read-only transaction: reconciliation must never
// change what it is checking.
func readOnly(ctx context.Context, pool *pgxpool.Pool, f func(q database.Querier) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only; nothing to keep
	if _, err := tx.Exec(ctx, `SET TRANSACTION READ ONLY`); err != nil {
		return err
	}
	return f(tx)
}

func (s *Sim) reconcileReports(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, ids []string, acked map[string]ackReport) error {
	return readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT id::text, violation, photo_sha256 FROM field.reports WHERE id = ANY($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			var violation bool
			var ph []string
			if err := rows.Scan(&id, &violation, &ph); err != nil {
				rows.Close()
				return err
			}
			seen[id] = true
			want := acked[id]
			a, b := slices.Clone(ph), slices.Clone(want.photos)
			slices.Sort(a)
			slices.Sort(b)
			if violation != want.violation || !slices.Equal(a, b) {
				rc.ReportsContentDiffers++
				rc.problem("report %s stored with violation=%v photos=%v, acknowledged with violation=%v photos=%v", id, violation, ph, want.violation, want.photos)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rc.ReportsStored = len(seen)
		for _, id := range ids {
			if !seen[id] {
				rc.ReportsMissing++
				rc.problem("acknowledged report %s is not stored", id)
			}
		}
		// Each report's description is unique to this run; a second row
		// with the same text is a duplicate under another id.
		var total, distinct int
		if err := q.QueryRow(ctx, `SELECT count(*), count(DISTINCT description) FROM field.reports WHERE description LIKE $1`,
			"fieldsim "+s.runID+" report %").Scan(&total, &distinct); err != nil {
			return err
		}
		rc.ReportsDuplicated = total - distinct
		if rc.ReportsDuplicated > 0 {
			rc.problem("%d reports stored more than once", rc.ReportsDuplicated)
		}
		rc.ReportsStoredUnacknowledged = max(0, distinct-rc.ReportsStored)
		return nil
	})
}

func (s *Sim) reconcilePhotos(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, acked map[string]ackPhoto) error {
	rc.PhotosAcknowledged = len(acked)
	shas := make([]string, 0, len(acked))
	for sha := range acked {
		shas = append(shas, sha)
	}
	sizes := map[string]int64{}
	err := readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT sha256, size FROM field.photos WHERE sha256 = ANY($1)`, shas)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sha string
			var size int64
			if err := rows.Scan(&sha, &size); err != nil {
				return err
			}
			sizes[sha] = size
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	rc.PhotosStored = len(sizes)
	// Read every blob back through the API its uploader uses and hash it.
	var mu sync.Mutex
	err = parallel(ctx, shas, 8, func(ctx context.Context, sha string) error {
		p := acked[sha]
		size, ok := sizes[sha]
		if !ok {
			mu.Lock()
			rc.problem("acknowledged photo %s has no row in field.photos", sha)
			mu.Unlock()
			return nil
		}
		got, n, err := s.download(ctx, p.by, sha)
		if status.Code(err) == codes.NotFound {
			// The county office sees every photo a report in the county
			// references.
			got, n, err = s.download(ctx, s.admin, sha)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rc.problem("photo %s: download: %v", sha, err)
		case got != sha || n != p.size || size != p.size:
			rc.problem("photo %s: stored blob hashes to %s, %d bytes (row says %d, uploaded %d)", sha, got, n, size, p.size)
		default:
			rc.PhotosHashMatching++
		}
		return nil
	})
	return err
}

func (s *Sim) download(ctx context.Context, sess *session, sha string) (string, int64, error) {
	var sum string
	var n int64
	err := s.do(ctx, sess, "FieldService/DownloadPhoto", func(ctx context.Context) error {
		stream, err := s.field.DownloadPhoto(ctx, &ecogridv1.DownloadPhotoRequest{Sha256: sha})
		if err != nil {
			return err
		}
		h := sha256.New()
		n = 0
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if msg.GetOffset() != n {
				return fmt.Errorf("piece at offset %d, want %d", msg.GetOffset(), n)
			}
			h.Write(msg.GetData())
			n += int64(len(msg.GetData()))
		}
		sum = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return sum, n, err
}

func (s *Sim) reconcilePatrols(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, acked []ackPatrol) error {
	rc.PatrolsAcknowledged = len(acked)
	want := map[string]int{}
	ids := make([]string, 0, len(acked))
	for _, p := range acked {
		want[p.id] = p.points
		ids = append(ids, p.id)
	}
	return readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT p.id::text, p.point_count, p.ended_at IS NOT NULL,
				(SELECT count(*) FROM field.track_points t WHERE t.patrol_id = p.id)
			FROM field.patrols p WHERE p.id = ANY($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			var count, stored int64
			var ended bool
			if err := rows.Scan(&id, &count, &ended, &stored); err != nil {
				return err
			}
			seen[id] = true
			if int(count) == want[id] && int(stored) == want[id] && ended {
				rc.PatrolsExact++
			} else {
				rc.problem("patrol %s: %d points acknowledged, point_count %d, %d stored, ended %v", id, want[id], count, stored, ended)
			}
		}
		for _, id := range ids {
			if !seen[id] {
				rc.problem("acknowledged patrol %s is not stored", id)
			}
		}
		return rows.Err()
	})
}

// reconcileCases waits (up to DrainTimeout) for every acknowledged
// violation to have its case, then checks one case per violation, none
// for other reports, and a ledger record for every timeline entry.
func (s *Sim) reconcileCases(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, ids []string, acked map[string]ackReport) error {
	start := time.Now()
	deadline := start.Add(s.cfg.DrainTimeout)
	var perReport map[string]int
	for {
		perReport = map[string]int{}
		err := readOnly(ctx, pool, func(q database.Querier) error {
			rows, err := q.Query(ctx, `SELECT report_id::text, count(*) FROM cases.cases WHERE report_id = ANY($1::uuid[]) GROUP BY 1`, ids)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					return err
				}
				perReport[id] = n
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		missing := 0
		for id, r := range acked {
			if r.violation && perReport[id] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		fmt.Fprintf(s.cfg.Progress, "  waiting for %d violations to get their case\n", missing)
		if !sleepCtx(ctx, 2*time.Second) {
			return ctx.Err()
		}
	}
	rc.DrainSeconds = time.Since(start).Seconds()
	for id, r := range acked {
		n := perReport[id]
		switch {
		case r.violation && n == 1:
			rc.ViolationsWithOneCase++
		case r.violation:
			rc.problem("violation %s has %d cases, want 1", id, n)
		case n > 0:
			rc.CasesForNonViolations++
			rc.problem("report %s is no violation but has %d cases", id, n)
		}
	}
	return readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT c.id::text,
				(SELECT count(*) FROM cases.transitions t WHERE t.case_id = c.id),
				(SELECT count(*) FROM ledger.records l WHERE l.subject_type = 'case' AND l.subject_id = c.id::text)
			FROM cases.cases c WHERE c.report_id = ANY($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var steps, records int
			if err := rows.Scan(&id, &steps, &records); err != nil {
				return err
			}
			if steps != records {
				rc.CasesLedgerMismatch++
				rc.problem("case %s: %d timeline entries but %d ledger records", id, steps, records)
			}
		}
		return rows.Err()
	})
}

// stepActions maps the CaseService RPC of a step to the action its
// timeline entry records.
var stepActions = map[string]string{
	"AcceptCase": "accept", "RejectCase": "reject", "DispatchCase": "dispatch", "StartWork": "start_work",
	"SubmitRectification": "submit_rectification", "VerifyRectification": "verify", "CloseCase": "close",
}

func (s *Sim) reconcileSteps(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, steps []ackStep, closed []string) error {
	rc.CaseStepsAcknowledged, rc.CasesClosedAck = len(steps), len(closed)
	ids := make([]string, 0, len(steps))
	want := map[string]ackStep{}
	for _, st := range steps {
		ids = append(ids, st.id)
		want[st.id] = st
	}
	return readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT id::text, case_id::text, action FROM cases.transitions WHERE id = ANY($1::uuid[])`, ids)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for rows.Next() {
			var id, caseID, action string
			if err := rows.Scan(&id, &caseID, &action); err != nil {
				rows.Close()
				return err
			}
			seen[id] = true
			w := want[id]
			if caseID != w.caseID || action != stepActions[w.action] {
				rc.problem("step %s recorded as %s on case %s, acknowledged as %s on %s", id, action, caseID, w.action, w.caseID)
				continue
			}
			rc.CaseStepsRecorded++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if !seen[id] {
				rc.problem("acknowledged %s step %s on case %s is not in the timeline", want[id].action, id, want[id].caseID)
			}
		}
		if err := q.QueryRow(ctx, `SELECT count(*) FROM cases.cases WHERE id = ANY($1::uuid[]) AND state = 'closed'`, closed).Scan(&rc.CasesClosedStored); err != nil {
			return err
		}
		if rc.CasesClosedStored != len(closed) {
			rc.problem("%d cases acknowledged closed, %d closed in the database", len(closed), rc.CasesClosedStored)
		}
		return nil
	})
}

// reconcileLedger checks one violation.reported record per violation and
// none for other reports, then has gridd verify every county's chain.
func (s *Sim) reconcileLedger(ctx context.Context, pool *pgxpool.Pool, rc *Reconciliation, ids []string, acked map[string]ackReport) error {
	counties := []string{s.county}
	err := readOnly(ctx, pool, func(q database.Querier) error {
		rows, err := q.Query(ctx, `SELECT subject_id, count(*) FROM ledger.records
			WHERE subject_type = 'report' AND action = 'violation.reported' AND subject_id = ANY($1::text[]) GROUP BY 1`, ids)
		if err != nil {
			return err
		}
		got := map[string]int{}
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return err
			}
			got[id] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for id, r := range acked {
			n := got[id]
			switch {
			case r.violation && n == 1:
				rc.ViolationLedgerRecords++
			case r.violation:
				rc.problem("violation %s has %d ledger records, want 1", id, n)
			case n > 0:
				rc.problem("report %s is no violation but has %d violation ledger records", id, n)
			}
		}
		rows, err = q.Query(ctx, `SELECT county_code FROM ledger.chains ORDER BY 1`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return err
			}
			if c != s.county {
				counties = append(counties, c)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, c := range counties {
		var resp *ecogridv1.VerifyChainResponse
		err := s.do(ctx, s.admin, "AccountabilityService/VerifyChain", func(ctx context.Context) (err error) {
			resp, err = s.acct.VerifyChain(ctx, &ecogridv1.VerifyChainRequest{CountyCode: c})
			return err
		})
		if err != nil {
			// An administrator of one county cannot verify another's chain.
			if code := status.Code(err); c != s.county && (code == codes.NotFound || code == codes.PermissionDenied) {
				continue
			}
			rc.Ledger = append(rc.Ledger, ChainCheck{County: c, Message: err.Error()})
			rc.problem("ledger of %s: VerifyChain: %v", c, err)
			continue
		}
		cc := ChainCheck{County: c, OK: resp.GetOk(), Records: resp.GetRecords(), Checkpoints: resp.GetCheckpoints(), Message: resp.GetReason()}
		if !cc.OK {
			cc.FirstBadSeq = resp.GetFirstBadSeq()
		}
		rc.Ledger = append(rc.Ledger, cc)
		if !cc.OK {
			rc.problem("ledger of %s does not verify (first bad record %d)", c, cc.FirstBadSeq)
		}
	}
	return nil
}
