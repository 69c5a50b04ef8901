package cases

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// CountyRule is a deadline rule with where it comes from.
type CountyRule struct {
	DeadlineRule
	// CountySpecific is false when the county uses the default.
	CountySpecific bool
}

// Severities in order, as the deadline rules know them.
var Severities = []string{"SEVERITY_MINOR", "SEVERITY_NORMAL", "SEVERITY_SERIOUS", "SEVERITY_CRITICAL"}

// Rules returns the rule in force for every severity in a county the
// caller works in.
func (t *Tracker) Rules(ctx context.Context, caller scope.Caller, county string) ([]CountyRule, error) {
	if !digits(county, 6) {
		return nil, structerr.NewInvalidArgument("county code %.40q is not 6 digits", county)
	}
	if !caller.Covers(county) && !coversBelow(caller, county) {
		return nil, structerr.NewNotFound("county %s not found", county)
	}
	return readRules(ctx, t.pool, county)
}

// coversBelow reports whether the caller works somewhere inside county (a
// township supervisor or an inspector reads their county's rules).
func coversBelow(caller scope.Caller, county string) bool {
	return slices.ContainsFunc(caller.Roots(), func(r string) bool { return len(r) >= len(county) && r[:len(county)] == county })
}

func readRules(ctx context.Context, q database.Querier, county string) ([]CountyRule, error) {
	out := make([]CountyRule, 0, len(Severities))
	for _, sev := range Severities {
		var r CountyRule
		r.Severity = sev
		var owner string
		err := q.QueryRow(ctx, `
			SELECT county_code, rectify_days, max_days FROM cases.deadline_rules
			WHERE county_code IN ($1, '') AND severity = $2 ORDER BY county_code DESC LIMIT 1`, county, sev).
			Scan(&owner, &r.RectifyDays, &r.MaxDays)
		if err == pgx.ErrNoRows {
			r.DeadlineRule = DefaultDeadlineRules[sev]
		} else if err != nil {
			return nil, err
		}
		r.CountySpecific = owner != ""
		out = append(out, r)
	}
	return out, nil
}

// SetRule sets a county's deadline rule for one severity; county officers
// of that county only. The change is recorded in the ledger: deadlines
// decide who was late.
func (t *Tracker) SetRule(ctx context.Context, caller scope.Caller, county string, r DeadlineRule) (CountyRule, error) {
	if !digits(county, 6) {
		return CountyRule{}, structerr.NewInvalidArgument("county code %.40q is not 6 digits", county)
	}
	g, ok := caller.GrantFor(county, scope.RoleCountyOfficer)
	if !ok {
		if caller.Covers(county) || coversBelow(caller, county) {
			return CountyRule{}, structerr.NewPermissionDenied("only county officers may set deadline rules")
		}
		return CountyRule{}, structerr.NewNotFound("county %s not found", county)
	}
	err := database.InTx(ctx, t.pool, func(tx pgx.Tx) error {
		if err := SetDeadlineRule(ctx, tx, county, r); err != nil {
			return err
		}
		_, err := ledger.Append(ctx, tx, ledger.Entry{
			CountyCode: county, ActorID: caller.PersonID, ActorRole: string(g.Role), ActorNodeCode: g.NodeCode,
			Action: "case_deadline_rule.set", SubjectType: "deadline_rule", SubjectID: county + "/" + r.Severity,
			NodeCode: county,
			Payload:  map[string]any{"severity": r.Severity, "rectify_days": r.RectifyDays, "max_days": r.MaxDays},
		})
		return err
	})
	if err != nil {
		return CountyRule{}, err
	}
	return CountyRule{DeadlineRule: r, CountySpecific: true}, nil
}
