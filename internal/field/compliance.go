package field

import (
	"context"
	"slices"
	"strings"
	"time"

	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Period is the bucket compliance is counted in. Values match
// ecogrid.v1.CompliancePeriod.
type Period int

// Compliance periods.
const (
	PeriodWeek  Period = 1
	PeriodMonth Period = 2
)

// chinaTime is where weeks and months begin for a county office: Monday
// 00:00 and the 1st at 00:00 China Standard Time (UTC+8, no DST).
var chinaTime = time.FixedZone("CST", 8*3600)

// periodStart returns the start of the period containing t.
func periodStart(p Period, t time.Time) time.Time {
	t = t.In(chinaTime)
	y, m, d := t.Date()
	if p == PeriodMonth {
		return time.Date(y, m, 1, 0, 0, 0, 0, chinaTime)
	}
	day := time.Date(y, m, d, 0, 0, 0, 0, chinaTime)
	wd := (int(day.Weekday()) + 6) % 7 // Monday = 0
	return day.AddDate(0, 0, -wd)
}

func nextPeriod(p Period, t time.Time) time.Time {
	if p == PeriodMonth {
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 7)
}

// maxPeriods bounds one compliance question.
const maxPeriods = 106

// ComplianceRow is one inspector in one cell in one period.
type ComplianceRow struct {
	InspectorID string
	CellCode    string
	PeriodStart time.Time
	Required    int
	Done        int
	Implausible int
}

// Compliant reports whether enough plausible patrols were done.
func (r ComplianceRow) Compliant() bool { return r.Done >= r.Required }

// PatrolCompliance counts, for each inspector assigned under node (or
// who patrolled there) and each cell and period in [from, to), the
// plausible patrols that passed through the cell against the cell's rule;
// flagged patrols are counted apart. Supervisors within their scope; an
// inspector about their own patrols in their own cells.
func (cm *Compliance) PatrolCompliance(ctx context.Context, c scope.Caller, node string, p Period, from, to time.Time) ([]ComplianceRow, error) {
	if p != PeriodWeek && p != PeriodMonth {
		return nil, structerr.NewInvalidArgument("period must be week or month")
	}
	if from.IsZero() || to.IsZero() || !to.After(from) {
		return nil, structerr.NewInvalidArgument("give a time range with from before to")
	}
	// An inspector (without a supervising grant) reads their own rows
	// only, in their own cells.
	var roots []string
	own := false
	if node == "" {
		roots = c.Roots(supervisorRoles...)
		if len(roots) == 0 {
			roots, own = c.Roots(scope.RoleInspector), true
		}
	} else {
		if strings.Trim(node, "0123456789") != "" || len(node) < 6 {
			return nil, structerr.NewInvalidArgument("node code %.40q is not a grid code", node)
		}
		switch {
		case c.Covers(node, supervisorRoles...):
		case c.Covers(node, scope.RoleInspector):
			own = true
		default:
			return nil, structerr.NewNotFound("grid node %s not found", node)
		}
		roots = []string{node}
	}
	if len(roots) == 0 {
		return nil, structerr.NewPermissionDenied("patrol compliance is for supervisors and for inspectors about their own patrols")
	}
	var periods []time.Time
	for t := periodStart(p, from); t.Before(to); t = nextPeriod(p, t) {
		periods = append(periods, t)
		if len(periods) > maxPeriods {
			return nil, structerr.NewInvalidArgument("the time range spans more than %d periods", maxPeriods)
		}
	}
	rangeFrom, rangeTo := periods[0], nextPeriod(p, periods[len(periods)-1])

	type key struct {
		inspector, cell string
		period          int64
	}
	counts := map[key]*ComplianceRow{}
	pairs := map[[2]string]bool{}
	// An assignment's own patrol task is the inspector's quota in the
	// cell, before the cell's (定任务 set per post, kept across transfers).
	ownRule := map[[2]string]PatrolRule{}
	for _, root := range roots {
		assignees, err := people.InspectorsUnder(ctx, cm.pool, root, rangeTo)
		if err != nil {
			return nil, err
		}
		for _, a := range assignees {
			if strings.HasPrefix(a.NodeCode, root) || strings.HasPrefix(root, a.NodeCode) {
				pairs[[2]string{a.PersonID, a.NodeCode}] = true
				if r, ok := patrolRuleOf(a.TaskRules); ok {
					ownRule[[2]string{a.PersonID, a.NodeCode}] = r
				}
			}
		}
		done, err := patrolCounts(ctx, cm.pool, root, p, rangeFrom, rangeTo)
		if err != nil {
			return nil, err
		}
		for _, d := range done {
			pairs[[2]string{d.InspectorID, d.CellCode}] = true
			k := key{d.InspectorID, d.CellCode, d.PeriodStart.Unix()}
			if r := counts[k]; r != nil {
				r.Done += d.Done
				r.Implausible += d.Implausible
			} else {
				d := d
				counts[k] = &d
			}
		}
	}
	var cells []string
	for pr := range pairs {
		if !slices.Contains(cells, pr[1]) {
			cells = append(cells, pr[1])
		}
	}
	rules, err := patrolRules(ctx, cm.pool, cells)
	if err != nil {
		return nil, err
	}
	var out []ComplianceRow
	for pr := range pairs {
		if own && pr[0] != c.PersonID {
			continue
		}
		for _, ps := range periods {
			rule, hasOwn := ownRule[pr]
			if !hasOwn {
				rule = rules[pr[1]]
			}
			row := ComplianceRow{InspectorID: pr[0], CellCode: pr[1], PeriodStart: ps, Required: rule.Required(p)}
			if d := counts[key{pr[0], pr[1], ps.Unix()}]; d != nil {
				row.Done, row.Implausible = d.Done, d.Implausible
			}
			out = append(out, row)
		}
	}
	slices.SortFunc(out, func(a, b ComplianceRow) int {
		if c := strings.Compare(a.CellCode, b.CellCode); c != 0 {
			return c
		}
		if c := strings.Compare(a.InspectorID, b.InspectorID); c != 0 {
			return c
		}
		return a.PeriodStart.Compare(b.PeriodStart)
	})
	return out, nil
}
