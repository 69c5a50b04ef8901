package audit

import (
	"context"
	"strings"
	"time"

	"ecogrid/internal/field"
)

// PatrolMonth is the audited person's patrol compliance in one cell of one
// of their posts for one month: the quota of the cell against the
// plausible patrols they made through it.
//
// Patrols are not ledgered (a patrol is field data, not an act of
// responsibility), so this section is informational like the names: it is
// not covered by the inclusion proofs nor by the digest, and the quota is
// the cell's patrol task in the grid today (the grid keeps no history of
// tasks outside boundary imports).
type PatrolMonth struct {
	AssignmentID string   `json:"assignment_id"`
	CellCode     string   `json:"cell_code"`
	CellName     string   `json:"cell_name"`
	Month        string   `json:"month"` // 2026-03, China Standard Time
	Required     int      `json:"required"`
	Done         int      `json:"done"`    // plausible patrols through the cell
	Flagged      int      `json:"flagged"` // flagged patrols (too fast, too short...), not counted
	Compliant    bool     `json:"compliant"`
	Patrols      []string `json:"patrols"` // patrol ids counted
}

// patrolRoles are the posts with patrol quotas.
var patrolRoles = map[string]bool{"inspector": true, "grid_chief": true}

// patrolCompliance computes the patrol section of a report from field's
// patrols of the person and the cells' patrol rules.
func (a *Auditor) patrolCompliance(ctx context.Context, f Facts) ([]PatrolMonth, error) {
	out := []PatrolMonth{}
	patrols, err := field.PatrolsOfPerson(ctx, a.pool, f.PersonID, f.Params.From, f.Params.To)
	if err != nil {
		return nil, err
	}
	var cells []string
	for _, p := range f.Posts {
		if patrolRoles[p.Role] && len(p.NodeCode) >= 12 {
			cells = append(cells, p.NodeCode)
		}
	}
	if len(cells) == 0 {
		return out, nil
	}
	rules, err := field.PatrolRules(ctx, a.pool, cells)
	if err != nil {
		return nil, err
	}
	for _, p := range f.Posts {
		rule, ok := rules[p.NodeCode]
		if !patrolRoles[p.Role] || len(p.NodeCode) < 12 || !ok {
			continue
		}
		from, to := p.ValidFrom, f.Params.To
		if p.ValidTo != nil && p.ValidTo.Before(to) {
			to = *p.ValidTo
		}
		if from.Before(f.Params.From) {
			from = f.Params.From
		}
		from = from.In(chinaTime)
		for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, chinaTime); m.Before(to); m = m.AddDate(0, 1, 0) {
			end := m.AddDate(0, 1, 0)
			pm := PatrolMonth{AssignmentID: p.AssignmentID, CellCode: p.NodeCode, Month: m.Format("2006-01"),
				Required: rule.Required(field.PeriodMonth), Patrols: []string{}}
			for _, pp := range patrols {
				if pp.StartedAt.Before(m) || !pp.StartedAt.Before(end) || pp.StartedAt.Before(p.ValidFrom) || (p.ValidTo != nil && !pp.StartedAt.Before(*p.ValidTo)) {
					continue
				}
				through := false
				for _, c := range pp.Cells {
					through = through || strings.HasPrefix(c, p.NodeCode)
				}
				if !through {
					continue
				}
				if pp.Plausible {
					pm.Done++
					pm.Patrols = append(pm.Patrols, pp.PatrolID)
				} else {
					pm.Flagged++
				}
			}
			pm.Compliant = pm.Done >= pm.Required
			out = append(out, pm)
		}
	}
	return out, nil
}
