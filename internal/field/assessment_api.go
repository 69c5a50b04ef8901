package field

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// PatrolPass is one ended patrol and the cells it passed, as the
// assessment (考核) counts patrol quota compliance and cell coverage.
type PatrolPass struct {
	PatrolID    string
	InspectorID string
	StartedAt   time.Time
	EndedAt     time.Time
	Cells       []string
	// Plausible is false for a flagged patrol (too fast, too short, outside
	// the area...): it is not counted against a quota.
	Plausible bool
}

// PatrolsOfCounty returns the patrols of a county started in [from, to)
// that had ended by endedBy (zero: any time), oldest first. It is the
// read-only Go API of the assessment; callers check authority.
func PatrolsOfCounty(ctx context.Context, q database.Querier, county string, from, to, endedBy time.Time) ([]PatrolPass, error) {
	if len(county) != 6 {
		return nil, structerr.NewInvalidArgument("%.40q is not a county code", county)
	}
	var by *time.Time
	if !endedBy.IsZero() {
		by = &endedBy
	}
	rows, err := q.Query(ctx, `SELECT id::text, inspector_id, started_at, ended_at, cell_codes, cardinality(flags) = 0
		FROM field.patrols
		WHERE county_code = $1 AND started_at >= $2 AND started_at < $3 AND ended_at IS NOT NULL
		  AND ($4::timestamptz IS NULL OR ended_at <= $4)
		ORDER BY started_at, id`, county, from, to, by)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPatrolPass)
}

// PatrolRules returns the patrol rules of cells as field reads them from
// the grid's tasks (cells without a patrol task are absent): the quota in
// force today.
func PatrolRules(ctx context.Context, q database.Querier, cellCodes []string) (map[string]PatrolRule, error) {
	return patrolRules(ctx, q, cellCodes)
}

// PatrolsOfPerson returns a person's patrols started in [from, to) that
// have ended, oldest first: the tenure audit's patrol compliance.
func PatrolsOfPerson(ctx context.Context, q database.Querier, personID string, from, to time.Time) ([]PatrolPass, error) {
	rows, err := q.Query(ctx, `SELECT id::text, inspector_id, started_at, ended_at, cell_codes, cardinality(flags) = 0
		FROM field.patrols
		WHERE inspector_id = $1 AND started_at >= $2 AND started_at < $3 AND ended_at IS NOT NULL
		ORDER BY started_at, id`, personID, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPatrolPass)
}

// scanPatrolPass reads the columns both patrol queries select: id,
// inspector, start, end, cells and whether the patrol has no flags.
func scanPatrolPass(row pgx.CollectableRow) (PatrolPass, error) {
	var p PatrolPass
	err := row.Scan(&p.PatrolID, &p.InspectorID, &p.StartedAt, &p.EndedAt, &p.Cells, &p.Plausible)
	return p, err
}
