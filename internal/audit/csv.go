package audit

import (
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"ecogrid/internal/tabular"
)

// tableColumns are the columns of a report's case table.
var tableColumns = []string{"case_id", "county", "node_code", "node_name", "severity", "opened_at", "accepted_at", "response_hours",
	"deadline", "closed_at", "closed_on_time", "overdue_days", "escalated", "reopened", "state_at_end", "open_at_end",
	"state_now", "responsible", "ledger_records"}

// exportZone is the county's time zone (China Standard Time).
var exportZone = time.FixedZone("CST", 8*3600)

// WriteCSV writes a report's cases as CSV, one row per case, in the
// county's table convention (internal/tabular: UTF-8 with a BOM, times
// with their +08:00 offset). The summary counts are in the JSON report
// and the PDF; the CSV is a view, and the JSON report is what verifies.
func WriteCSV(w io.Writer, r *Report) error { return WriteTable(w, r, tabular.CSV) }

// WriteTable writes the case table as CSV or XLSX.
func WriteTable(w io.Writer, r *Report, format tabular.Format) error {
	t, err := tabular.New(format, w, exportZone, "tenure audit", tableColumns)
	if err != nil {
		return err
	}
	for _, c := range r.Facts.Cases {
		cites := make([]string, len(c.Cites))
		for i, x := range c.Cites {
			cites[i] = x.County + "/" + strconv.FormatInt(x.Seq, 10)
		}
		if err := t.Row(c.CaseID, c.County, c.NodeCode, r.NodeNames[c.NodeCode],
			strings.ToLower(strings.TrimPrefix(c.Severity, "SEVERITY_")), timeCell(c.OpenedAt), timeCell(c.AcceptedAt),
			floatCell(c.ResponseHours), timeCell(c.Deadline), timeCell(c.ClosedAt), boolCell(c.ClosedOnTime), c.OverdueDays,
			c.Escalated, c.Reopened, c.StateAtEnd, c.OpenAtEnd, c.StateNow,
			strings.Join(c.Responsible, "; "), strings.Join(cites, " ")); err != nil {
			return err
		}
	}
	return t.Close()
}

func timeCell(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

func floatCell(f *float64) any {
	if f == nil {
		return nil
	}
	return math.Round(*f*100) / 100
}

func boolCell(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
