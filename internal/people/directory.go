package people

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
)

// AssignedInspector is an inspector assigned to a cell at some moment.
type AssignedInspector struct {
	PersonID string
	NodeCode string
	// TaskRules are the assignment's structured tasks; a patrol task among
	// them is this inspector's quota in the node, before the node's own.
	TaskRules []grid.Task
}

// InspectorsUnder returns the inspectors assigned at time at to the node
// with code nodeCode or to any node below it: whose patrols a supervisor's
// compliance view covers.
func InspectorsUnder(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]AssignedInspector, error) {
	if err := CheckNodeCode(nodeCode); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT person_id::text, node_code, task_rules FROM people.assignments
		WHERE role = 'inspector' AND county_code = left($1, 6) AND node_code LIKE $1 || '%'
		  AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)
		ORDER BY node_code, person_id`, nodeCode, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AssignedInspector, error) {
		var a AssignedInspector
		return a, r.Scan(&a.PersonID, &a.NodeCode, &a.TaskRules)
	})
}
