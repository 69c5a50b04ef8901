package monitoring

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
)

// maxWindowsPerSweep bounds the windows one sweep checks per point, so a
// point created with a schedule start years ago catches up over a few
// sweeps instead of holding one long transaction.
const maxWindowsPerSweep = 200

// RunSweeper sweeps every SweepInterval until ctx ends (gridd runs it with
// p.Go). A failed sweep is logged and retried at the next tick.
func (m *Monitor) RunSweeper(ctx context.Context) error {
	t := time.NewTicker(m.SweepInterval)
	defer t.Stop()
	for {
		if n, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("monitoring sweep failed", slog.Any("error", err))
		} else if n > 0 {
			m.log.Info("missed samples raised", slog.Int("violations", n))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sweep checks the sampling windows that have closed since the last sweep
// of every scheduled point: a window [start, start+every) with no sample
// taken in it is a miss, recorded once (monitoring.misses) with its
// violation and event in the same transaction. Each point is swept in its
// own transaction holding the point's row lock, so concurrent sweepers (two
// gridd replicas) never both raise a window, and sweeping again raises
// nothing new. It returns the number of violations raised.
func (m *Monitor) Sweep(ctx context.Context) (int, error) {
	now := m.now()
	rows, err := m.pool.Query(ctx, `SELECT id FROM monitoring.points
		WHERE sample_every_hours > 0 AND swept_until + make_interval(hours => sample_every_hours) <= $1`, now)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, err
	}
	raised := 0
	for _, id := range ids {
		n, err := m.sweepPoint(ctx, id, now)
		if err != nil {
			return raised, fmt.Errorf("sweeping point %s: %w", id, err)
		}
		raised += n
	}
	return raised, nil
}

func (m *Monitor) sweepPoint(ctx context.Context, id uuid.UUID, now time.Time) (int, error) {
	raised := 0
	err := database.InTx(ctx, m.pool, func(tx pgx.Tx) error {
		raised = 0
		var sweptUntil time.Time
		p, err := scanPoint(tx.QueryRow(ctx, `SELECT `+pointColumns+` FROM monitoring.points WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT swept_until FROM monitoring.points WHERE id = $1`, id).Scan(&sweptUntil); err != nil {
			return err
		}
		if p.Every <= 0 {
			return nil
		}
		start := sweptUntil
		for i := 0; i < maxWindowsPerSweep; i++ {
			end := start.Add(p.Every)
			if end.After(now) {
				break
			}
			var sampled bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM monitoring.samples WHERE point_id = $1 AND sampled_at >= $2 AND sampled_at < $3)`,
				id, start, end).Scan(&sampled); err != nil {
				return err
			}
			if !sampled {
				n, err := m.raiseMiss(ctx, tx, p, start, end)
				if err != nil {
					return err
				}
				raised += n
			}
			start = end
		}
		_, err = tx.Exec(ctx, `UPDATE monitoring.points SET swept_until = $2 WHERE id = $1`, id, start)
		return err
	})
	return raised, err
}

func (m *Monitor) raiseMiss(ctx context.Context, tx pgx.Tx, p Point, start, end time.Time) (int, error) {
	eventID := MissEventID(p.ID, start)
	tag, err := tx.Exec(ctx, `INSERT INTO monitoring.misses (point_id, window_start, window_end, event_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, p.ID, start, end, eventID)
	if err != nil || tag.RowsAffected() == 0 {
		return 0, err
	}
	desc := fmt.Sprintf("no sample at %s %s in the scheduled window %s – %s", p.Code, p.Name,
		start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	err = m.raise(ctx, tx, violation{Violation{EventID: eventID, CountyCode: p.CountyCode, TownshipCode: p.TownshipCode,
		VillageCode: p.VillageCode, PointID: p.ID, WindowStart: start, Category: Category, Severity: ecogridv1.Severity_SEVERITY_NORMAL,
		Lat: p.Lat, Lon: p.Lon, OccurredAt: end, Description: desc}})
	return 1, err
}
