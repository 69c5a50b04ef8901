package grid

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// Config holds the grid's validation tolerances and limits.
type Config struct {
	// OutsideToleranceM is how far (metres) a child may stick out of its
	// parent before an import is refused (default 10).
	OutsideToleranceM float64
	// OverlapToleranceM is how wide (metres) an overlap between siblings may
	// be before an import is refused (default 10): slivers narrower than
	// this along a shared border are digitising noise.
	OverlapToleranceM float64
	// GapToleranceM is how wide a gap between children must be before it is
	// reported as a coverage warning (default 10).
	GapToleranceM float64
	// Limits bounds the size of one import.
	Limits ParseLimits
}

// DefaultConfig returns the tolerances a county GIS office expects.
func DefaultConfig() Config {
	return Config{OutsideToleranceM: 10, OverlapToleranceM: 10, GapToleranceM: 10}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.OutsideToleranceM <= 0 {
		c.OutsideToleranceM = d.OutsideToleranceM
	}
	if c.OverlapToleranceM <= 0 {
		c.OverlapToleranceM = d.OverlapToleranceM
	}
	if c.GapToleranceM <= 0 {
		c.GapToleranceM = d.GapToleranceM
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Store reads and writes grid nodes in PostgreSQL. It is the grid's Go API
// for the other contexts too (NodeByID, NodeByCode, Ancestry, LocateAt).
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
}

// NewStore returns a store on pool with the given tolerances (zero fields
// take DefaultConfig's).
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	return &Store{pool: pool, cfg: cfg.withDefaults()}
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// writeLockKey serialises grid writers so that change_seq order is commit
// order, which the replicas' index refresh relies on.
const writeLockKey = 0x6772_6964_7772 // "gridwr"

const nodeColumns = `id, code, level, name, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'),
	geom, area_ha, tasks, version, valid_from, retired_at, updated_at`

func scanNode(row pgx.Row, withGeom bool) (*Node, error) {
	var n Node
	var level int16
	var mp *geom.MultiPolygon
	if err := row.Scan(&n.ID, &n.Code, &level, &n.Name, &n.ParentID, &mp, &n.AreaHa, &n.Tasks, &n.Version, &n.ValidFrom, &n.RetiredAt, &n.UpdatedAt); err != nil {
		return nil, err
	}
	n.Level = Level(level)
	if withGeom {
		n.Geometry = mp
	}
	return &n, nil
}

// NodeByID returns the current state of a node (retired ones included,
// with RetiredAt set), or a NotFound error.
func (s *Store) NodeByID(ctx context.Context, id uuid.UUID) (*Node, error) {
	n, err := scanNode(s.pool.QueryRow(ctx, `SELECT `+nodeColumns+` FROM grid.nodes WHERE id = $1`, id), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, structerr.NewNotFound("grid node %s not found", id)
	}
	return n, err
}

// NodeByCode returns the node with an official code, or NotFound.
func (s *Store) NodeByCode(ctx context.Context, code string) (*Node, error) {
	n, err := scanNode(s.pool.QueryRow(ctx, `SELECT `+nodeColumns+` FROM grid.nodes WHERE code = $1`, code), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, structerr.NewNotFound("grid node %s not found", code)
	}
	return n, err
}

// RegionsAbove returns the regions recorded above a county, the province
// first then the prefecture (none when its file named no parent), or
// NotFound for an unknown county.
func (s *Store) RegionsAbove(ctx context.Context, countyCode string) ([]string, error) {
	var region *string
	err := s.pool.QueryRow(ctx, `SELECT region_code FROM grid.nodes WHERE code = $1 AND level = 1`, countyCode).Scan(&region)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, structerr.NewNotFound("county %s not found", countyCode)
	}
	if err != nil || region == nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE up AS (
			SELECT code, parent_code, 0 AS depth FROM grid.regions WHERE code = $1
			UNION ALL SELECT r.code, r.parent_code, up.depth + 1 FROM grid.regions r JOIN up ON r.code = up.parent_code)
		SELECT code FROM up ORDER BY depth DESC`, *region)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Children returns the current children of a node ordered by code, without
// geometry unless withGeom.
func (s *Store) Children(ctx context.Context, parent uuid.UUID, withGeom bool) ([]*Node, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+nodeColumns+` FROM grid.nodes
		WHERE parent_id = $1 AND retired_at IS NULL ORDER BY code`, parent)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := scanNode(rows, withGeom)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Ancestry returns the chain of nodes from the county down to and
// including the node.
func (s *Store) Ancestry(ctx context.Context, id uuid.UUID) ([]Ref, error) {
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE up AS (
			SELECT id, code, name, level, parent_id, 0 AS depth FROM grid.nodes WHERE id = $1
			UNION ALL
			SELECT n.id, n.code, n.name, n.level, n.parent_id, up.depth + 1
			FROM grid.nodes n JOIN up ON n.id = up.parent_id WHERE up.depth < 16
		)
		SELECT id, code, name, level FROM up ORDER BY depth DESC`, id)
	if err != nil {
		return nil, err
	}
	refs, err := scanRefs(rows)
	if err == nil && len(refs) == 0 {
		return nil, structerr.NewNotFound("grid node %s not found", id)
	}
	return refs, err
}

func scanRefs(rows pgx.Rows) ([]Ref, error) {
	defer rows.Close()
	var out []Ref
	for rows.Next() {
		var r Ref
		var level int16
		if err := rows.Scan(&r.ID, &r.Code, &r.Name, &level); err != nil {
			return nil, err
		}
		r.Level = Level(level)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SubtreeQuery selects nodes for Subtree and export.
type SubtreeQuery struct {
	RootCode     string // the subtree's root code; "" for every node (admins)
	MaxLevel     Level  // deepest level to include; 0 for all
	WithGeometry bool
	AsOf         *time.Time // nodes as they were at that time; nil for now
	After        string     // only codes after this one (paging)
	Limit        int        // at most this many nodes; 0 for all
}

// Subtree calls fn for the root and every current descendant in code
// order (parents before children), streaming from the database so that a
// national export does not sit in memory.
func (s *Store) Subtree(ctx context.Context, q SubtreeQuery, fn func(*Node) error) error {
	maxLevel := int(q.MaxLevel)
	if maxLevel == 0 {
		maxLevel = 99
	}
	limit := q.Limit
	if limit <= 0 {
		limit = math.MaxInt32
	}
	var rows pgx.Rows
	var err error
	if q.AsOf == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+nodeColumns+` FROM grid.nodes
			WHERE code LIKE $1 || '%' AND level <= $2 AND retired_at IS NULL AND code > $3
			ORDER BY code LIMIT $4`, q.RootCode, maxLevel, q.After, limit)
	} else {
		rows, err = s.pool.Query(ctx, `
			SELECT v.node_id, v.code, v.level, v.name, coalesce(v.parent_id, '00000000-0000-0000-0000-000000000000'),
				v.geom, v.area_ha, n.tasks, v.version, v.valid_from, n.retired_at, v.created_at
			FROM grid.node_versions v JOIN grid.nodes n ON n.id = v.node_id
			WHERE v.code LIKE $1 || '%' AND v.level <= $2
			  AND v.valid_from <= $3 AND (v.valid_to IS NULL OR v.valid_to > $3) AND v.code > $4
			ORDER BY v.code LIMIT $5`, q.RootCode, maxLevel, *q.AsOf, q.After, limit)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanNode(rows, q.WithGeometry)
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Versions returns every version of a node's boundary, oldest first.
func (s *Store) Versions(ctx context.Context, id uuid.UUID, withGeom bool) ([]*Node, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT node_id, code, level, name, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'),
			geom, area_ha, version, valid_from, valid_to
		FROM grid.node_versions WHERE node_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		var n Node
		var level int16
		var mp *geom.MultiPolygon
		if err := rows.Scan(&n.ID, &n.Code, &level, &n.Name, &n.ParentID, &mp, &n.AreaHa, &n.Version, &n.ValidFrom, &n.ValidTo); err != nil {
			return nil, err
		}
		n.Level = Level(level)
		if withGeom {
			n.Geometry = mp
		}
		out = append(out, &n)
	}
	return out, rows.Err()
}

// LocateAt answers LocatePoint for a past moment from the boundary history
// in PostGIS (ST_Covers on the versions valid at t): the deepest node and
// its ancestors as they were then. A point on an edge shared by two cells
// is given to the same cell Index.Locate would choose (the half-open rule,
// then the smallest code), so "now" and "as of now" agree.
//
// Index.LocateAt answers the same from memory when it can; this is its
// PostGIS fallback and reference.
func (s *Store) LocateAt(ctx context.Context, lat, lon float64, t time.Time) (Location, bool, error) {
	return locateAt(ctx, s.pool, lat, lon, t)
}

func locateAt(ctx context.Context, q database.Querier, lat, lon float64, t time.Time) (Location, bool, error) {
	rows, err := q.Query(ctx, `
		SELECT node_id, code, name, level, geom FROM grid.node_versions
		WHERE valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)
		  AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($2, $1), 4326))
		ORDER BY level DESC, code`, lat, lon, t)
	if err != nil {
		return Location{}, false, err
	}
	defer rows.Close()
	var refs []Ref
	var geoms []*geom.MultiPolygon
	for rows.Next() {
		var r Ref
		var level int16
		var mp *geom.MultiPolygon
		if err := rows.Scan(&r.ID, &r.Code, &r.Name, &level, &mp); err != nil {
			return Location{}, false, err
		}
		r.Level = Level(level)
		refs = append(refs, r)
		geoms = append(geoms, mp)
	}
	if err := rows.Err(); err != nil || len(refs) == 0 {
		return Location{}, false, err
	}
	// Several cells of the deepest level cover the point only when it lies
	// on their common boundary: settle it as the index does.
	for i := 1; i < len(refs) && refs[i].Level == refs[0].Level; i++ {
		if i == 1 && halfOpenContains(geoms[0], lon, lat) {
			break
		}
		if halfOpenContains(geoms[i], lon, lat) {
			refs[0], refs[i] = refs[i], refs[0]
			break
		}
	}
	return chainFrom(refs), true, nil
}

// halfOpenContains applies Index.Locate's point-in-polygon rule to a
// MultiPolygon.
func halfOpenContains(mp *geom.MultiPolygon, x, y float64) bool {
	if mp == nil {
		return false
	}
	for i := range mp.NumPolygons() {
		p := mp.Polygon(i)
		stride, flat := p.Stride(), p.FlatCoords()
		in, on, start := false, false, 0
		for _, end := range p.Ends() {
			ring := make([]float64, 0, (end-start)/stride*2)
			for k := start; k+1 < end; k += stride {
				ring = append(ring, flat[k], flat[k+1])
			}
			in, on = ringCrossings(ring, x, y, in, on)
			start = end
		}
		if in {
			return true
		}
	}
	return false
}

// chainFrom builds a Location from covering nodes ordered deepest first:
// the first is the cell, and each shallower level contributes the node
// whose code prefixes the cell's.
func chainFrom(refs []Ref) Location {
	cell := refs[0]
	loc := Location{Cell: cell}
	for _, r := range refs {
		if len(r.Code) <= len(cell.Code) && cell.Code[:len(r.Code)] == r.Code {
			if len(loc.Path) > 0 && loc.Path[len(loc.Path)-1].Level == r.Level {
				continue
			}
			loc.Path = append(loc.Path, r)
		}
	}
	for i, j := 0, len(loc.Path)-1; i < j; i, j = i+1, j-1 {
		loc.Path[i], loc.Path[j] = loc.Path[j], loc.Path[i]
	}
	return loc
}

// LocateSQL is the PostGIS reference for Index.Locate on current
// boundaries: ST_Covers over the GiST index of grid.nodes. Tests and
// benchmarks compare the two.
func (s *Store) LocateSQL(ctx context.Context, q database.Querier, lat, lon float64) (Location, bool, error) {
	rows, err := q.Query(ctx, `
		SELECT id, code, name, level FROM grid.nodes
		WHERE retired_at IS NULL AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($2, $1), 4326))
		ORDER BY level DESC, code`, lat, lon)
	if err != nil {
		return Location{}, false, err
	}
	refs, err := scanRefs(rows)
	if err != nil || len(refs) == 0 {
		return Location{}, false, err
	}
	return chainFrom(refs), true, nil
}

// inTx runs fn in a transaction holding the grid write lock.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(writeLockKey)); err != nil {
			return fmt.Errorf("grid write lock: %w", err)
		}
		return fn(tx)
	})
}
