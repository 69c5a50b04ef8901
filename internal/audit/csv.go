package audit

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteCSV writes a report's cases as CSV, one row per case, after a
// header block of the summary (lines starting with "#"), for spreadsheets.
// The CSV is a view: the JSON report is what verifies.
func WriteCSV(w io.Writer, r *Report) error {
	f := r.Facts
	s := f.Summary
	if _, err := fmt.Fprintf(w, "# tenure audit %s of %s (%s), %s to %s\n# posts=%d cases=%d closed_on_time=%d closed_late=%d overdue=%d overdue_days=%d escalated=%d reopened=%d open_at_end=%d reports_filed=%d acts=%d\n",
		r.ReportID, f.PersonName, f.PersonID, f.Params.From.Format(time.RFC3339), f.Params.To.Format(time.RFC3339),
		s.Posts, s.Cases, s.ClosedOnTime, s.ClosedLate, s.Overdue, s.OverdueDays, s.Escalated, s.Reopened, s.OpenAtEnd, s.ReportsFiled, s.Acts); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"case_id", "county", "node_code", "node_name", "severity", "opened_at", "accepted_at", "response_hours",
		"deadline", "closed_at", "closed_on_time", "overdue_days", "escalated", "reopened", "state_at_end", "open_at_end",
		"state_now", "responsible", "ledger_records"})
	for _, c := range f.Cases {
		cites := make([]string, len(c.Cites))
		for i, x := range c.Cites {
			cites[i] = x.County + "/" + strconv.FormatInt(x.Seq, 10)
		}
		_ = cw.Write([]string{c.CaseID, c.County, c.NodeCode, r.NodeNames[c.NodeCode], c.Severity, timeCell(c.OpenedAt), timeCell(c.AcceptedAt),
			floatCell(c.ResponseHours), timeCell(c.Deadline), timeCell(c.ClosedAt), boolCell(c.ClosedOnTime), strconv.Itoa(c.OverdueDays),
			strconv.FormatBool(c.Escalated), strconv.Itoa(c.Reopened), c.StateAtEnd, strconv.FormatBool(c.OpenAtEnd), c.StateNow,
			strings.Join(c.Responsible, "; "), strings.Join(cites, " ")})
	}
	cw.Flush()
	return cw.Error()
}

func timeCell(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func floatCell(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', 2, 64)
}

func boolCell(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}
