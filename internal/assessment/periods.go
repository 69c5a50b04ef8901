package assessment

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"ecogrid/internal/structerr"
)

// chinaTime is where months, quarters and years begin for a county
// office: the 1st at 00:00 China Standard Time (UTC+8, no DST).
var chinaTime = time.FixedZone("CST", 8*3600)

// Period kinds.
const (
	Month   = "month"
	Quarter = "quarter"
	Year    = "year"
)

// Period is a month ("2026-03"), quarter ("2026-Q1") or year ("2026") of
// one county, named by its label; From and To follow from the label.
type Period struct {
	County string    `json:"county"`
	Label  string    `json:"label"`
	Kind   string    `json:"kind"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// ParsePeriod reads a county's period label.
func ParsePeriod(county, label string) (Period, error) {
	if len(county) != 6 || strings.Trim(county, "0123456789") != "" {
		return Period{}, structerr.NewInvalidArgument("county code %.40q is not six digits", county)
	}
	bad := structerr.NewInvalidArgument("period %.20q is not a month (2026-03), a quarter (2026-Q1) or a year (2026)", label)
	y, rest, _ := strings.Cut(label, "-")
	year, err := strconv.Atoi(y)
	if err != nil || len(y) != 4 || year < 2000 || year > 2200 {
		return Period{}, bad
	}
	p := Period{County: county, Label: label}
	switch {
	case rest == "" && !strings.Contains(label, "-"):
		p.Kind = Year
		p.From = time.Date(year, 1, 1, 0, 0, 0, 0, chinaTime)
		p.To = p.From.AddDate(1, 0, 0)
	case len(rest) == 2 && rest[0] == 'Q' && rest[1] >= '1' && rest[1] <= '4':
		p.Kind = Quarter
		p.From = time.Date(year, time.Month(int(rest[1]-'1')*3+1), 1, 0, 0, 0, 0, chinaTime)
		p.To = p.From.AddDate(0, 3, 0)
	case len(rest) == 2:
		m, err := strconv.Atoi(rest)
		if err != nil || m < 1 || m > 12 {
			return Period{}, bad
		}
		p.Kind = Month
		p.From = time.Date(year, time.Month(m), 1, 0, 0, 0, 0, chinaTime)
		p.To = p.From.AddDate(0, 1, 0)
	default:
		return Period{}, bad
	}
	return p, nil
}

// Prev returns the period of the same kind before p.
func (p Period) Prev() Period {
	q := Period{County: p.County, Kind: p.Kind, To: p.From}
	switch p.Kind {
	case Year:
		q.From = p.From.AddDate(-1, 0, 0)
		q.Label = fmt.Sprintf("%04d", q.From.Year())
	case Quarter:
		q.From = p.From.AddDate(0, -3, 0)
		q.Label = fmt.Sprintf("%04d-Q%d", q.From.Year(), (int(q.From.Month())-1)/3+1)
	default:
		q.From = p.From.AddDate(0, -1, 0)
		q.Label = fmt.Sprintf("%04d-%02d", q.From.Year(), int(q.From.Month()))
	}
	return q
}

// Months returns the start of each month of the period (patrol quotas are
// monthly).
func (p Period) Months() []time.Time {
	var out []time.Time
	for t := p.From; t.Before(p.To); t = t.AddDate(0, 1, 0) {
		out = append(out, t)
	}
	return out
}

func (p Period) subjectID() string { return p.County + "/" + p.Label }
