package field

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
	"ecogrid/internal/waters"
)

// Tracks is field's read side for waters' reach patrol coverage: the
// track of a patrol, and a person's patrols in a period. It implements
// waters.TrackSource (waters sits below field and cannot import it).
type Tracks struct{ Q database.Querier }

var _ waters.TrackSource = Tracks{}

// PatrolTrack returns a patrol's track, or NotFound.
func (t Tracks) PatrolTrack(ctx context.Context, patrolID string) (waters.PatrolTrack, error) {
	if _, err := checkUUID("patrol_id", patrolID); err != nil {
		return waters.PatrolTrack{}, err
	}
	p, _, err := getPatrol(ctx, t.Q, strings.ToLower(patrolID), false)
	if errors.Is(err, pgx.ErrNoRows) {
		return waters.PatrolTrack{}, structerr.NewNotFound("patrol %s not found", patrolID)
	}
	if err != nil {
		return waters.PatrolTrack{}, err
	}
	return t.track(ctx, p)
}

// PatrolsOf returns the tracks of a person's ended patrols started in
// [from, to), oldest first.
func (t Tracks) PatrolsOf(ctx context.Context, personID string, from, to time.Time) ([]waters.PatrolTrack, error) {
	rows, err := t.Q.Query(ctx, `SELECT `+patrolColumns+` FROM field.patrols
		WHERE inspector_id = $1 AND started_at >= $2 AND started_at < $3 AND ended_at IS NOT NULL ORDER BY started_at`, personID, from, to)
	if err != nil {
		return nil, err
	}
	var patrols []Patrol
	for rows.Next() {
		p, _, err := scanPatrol(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		patrols = append(patrols, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]waters.PatrolTrack, 0, len(patrols))
	for _, p := range patrols {
		tr, err := t.track(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

func (t Tracks) track(ctx context.Context, p Patrol) (waters.PatrolTrack, error) {
	pts, err := trackCoordinates(ctx, t.Q, p.ID)
	if err != nil {
		return waters.PatrolTrack{}, err
	}
	return waters.PatrolTrack{PatrolID: p.ID, PersonID: p.InspectorID, CountyCode: p.CountyCode, CellCodes: p.CellCodes,
		StartedAt: p.StartedAt, Ended: p.EndedAt != nil, Points: pts}, nil
}
