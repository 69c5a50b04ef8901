package waters

import (
	"context"
	"time"

	"ecogrid/internal/database"
)

// ReachesHeldBy returns the codes of the reaches a person is reach chief
// (河长/库长) of at t, sorted. Cases calls it, inside its own reads, so a
// chief sees the cases on their reach beside the cell's supervisor.
func ReachesHeldBy(ctx context.Context, q database.Querier, personID string, t time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT reach_code FROM waters.chiefs
		WHERE person_id::text = $1 AND role = 'reach_chief' AND reach_code IS NOT NULL
		  AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)
		ORDER BY reach_code`, personID, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return nil, err
		}
		out = append(out, code)
	}
	return out, rows.Err()
}
