package waters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/structerr"
)

// Store keeps water bodies, reaches and chiefs in PostgreSQL. It asks the
// grid about nodes through grid's Go API.
type Store struct {
	pool *pgxpool.Pool
	grid *grid.Store
}

// NewStore returns the store; nodes are checked through gridStore.
func NewStore(pool *pgxpool.Pool, gridStore *grid.Store) *Store {
	return &Store{pool: pool, grid: gridStore}
}

// writeLockKey serialises reach imports so two of them cannot both find a
// code new and insert it.
const writeLockKey = 0x7761_7465_7273 // "waters"

// Tolerances of the geometry checks: GIS layers of rivers are drawn from
// other sources than the grid, so a reach may stray a little outside its
// county, and consecutive reaches may miss each other by a few metres.
const (
	outsideToleranceM  = 20.0  // metres of a line outside its county
	outsideToleranceM2 = 500.0 // square metres of an area outside it
	gapToleranceM      = 5.0   // distance between consecutive reaches
)

const reachColumns = `r.id, r.code, r.name, r.body_code, b.name, b.kind, r.seq, r.node_id, r.node_code,
	r.node_level, r.geom, r.length_m, r.version, r.valid_from, r.valid_to`

func scanReach(row pgx.Row) (Reach, error) {
	var r Reach
	var level int16
	var kind string
	err := row.Scan(&r.ID, &r.Code, &r.Name, &r.BodyCode, &r.BodyName, &kind, &r.Seq, &r.NodeID, &r.NodeCode,
		&level, &r.Geometry, &r.LengthM, &r.Version, &r.ValidFrom, &r.ValidTo)
	r.NodeLevel, r.BodyKind = grid.Level(level), Kind(kind)
	return r, err
}

// ReachAt returns the version of a reach in force at t, or NotFound.
func (s *Store) ReachAt(ctx context.Context, code string, t time.Time) (Reach, error) {
	return reachAt(ctx, s.pool, code, t)
}

func reachAt(ctx context.Context, q database.Querier, code string, t time.Time) (Reach, error) {
	r, err := scanReach(q.QueryRow(ctx, `SELECT `+reachColumns+` FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code
		WHERE r.code = $1 AND r.valid_from <= $2 AND (r.valid_to IS NULL OR r.valid_to > $2)`, code, t))
	if errors.Is(err, pgx.ErrNoRows) {
		return Reach{}, structerr.NewNotFound("reach %.70q not found", code)
	}
	return r, err
}

// CurrentReaches returns every current reach of a county ("" for all), in
// body and seq order.
func (s *Store) CurrentReaches(ctx context.Context, county string) ([]Reach, error) {
	return s.reachesAt(ctx, county, time.Time{})
}

// reachesAt lists the reaches in force at t (zero: the current ones).
func (s *Store) reachesAt(ctx context.Context, county string, t time.Time) ([]Reach, error) {
	var rows pgx.Rows
	var err error
	const order = ` ORDER BY r.county_code, r.body_code, r.seq, r.code`
	if t.IsZero() {
		rows, err = s.pool.Query(ctx, `SELECT `+reachColumns+` FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code
			WHERE r.valid_to IS NULL AND ($1 = '' OR r.county_code = $1)`+order, county)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+reachColumns+` FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code
			WHERE ($1 = '' OR r.county_code = $1) AND r.valid_from <= $2 AND (r.valid_to IS NULL OR r.valid_to > $2)`+order, county, t)
	}
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Reach, error) { return scanReach(r) })
}

// Versions returns every version of a reach, oldest first.
func (s *Store) Versions(ctx context.Context, code string) ([]Reach, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reachColumns+` FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code
		WHERE r.code = $1 ORDER BY r.version`, code)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Reach, error) { return scanReach(r) })
}

// ImportOptions say who imports, when changes take effect, and what the
// caller may write.
type ImportOptions struct {
	DryRun    bool
	Effective time.Time // zero: now
	ActorID   uuid.UUID // uuid.Nil for the system
	// MayWrite reports whether the caller may write reaches owned by the
	// node with this code; nil allows everything.
	MayWrite func(nodeCode string) bool
}

// ImportResult reports what an accepted import did (or, dry, would do).
type ImportResult struct {
	Created, Updated, Unchanged int
	Warnings                    grid.Problems
	DryRun                      bool
}

// RejectedError is grid's: every problem found, as an InvalidArgument whose
// message names the first ones and whose details carry all.
type RejectedError = grid.RejectedError

// ImportGeoJSON parses and imports a FeatureCollection of reaches.
func (s *Store) ImportGeoJSON(ctx context.Context, data []byte, limits ParseLimits, opts ImportOptions) (ImportResult, error) {
	features, problems := ParseFeatureCollection(data, limits)
	return s.Import(ctx, features, problems, opts)
}

// Import writes the features all or nothing: when any problem is found
// (including those the parser found) nothing is written and the error is a
// *RejectedError listing every problem.
func (s *Store) Import(ctx context.Context, features []Feature, parseProblems grid.Problems, opts ImportOptions) (ImportResult, error) {
	if opts.Effective.IsZero() {
		opts.Effective = time.Now()
	}
	problems := append(grid.Problems(nil), parseProblems...)
	res := ImportResult{DryRun: opts.DryRun}
	err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(writeLockKey)); err != nil {
			return err
		}
		imp := &importer{s: s, tx: tx, opts: opts, features: features, problems: &problems, nodes: map[string]*grid.Node{}, counties: map[string]*grid.Node{}}
		if err := imp.check(ctx); err != nil {
			return err
		}
		if len(problems.Errors()) > 0 {
			return &RejectedError{Problems: problems}
		}
		res.Warnings = problems.Warnings()
		if err := imp.write(ctx, &res); err != nil {
			return err
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

var errDryRun = errors.New("dry run")

// importer checks and writes one import inside its transaction.
type importer struct {
	s        *Store
	tx       pgx.Tx
	opts     ImportOptions
	features []Feature
	problems *grid.Problems
	nodes    map[string]*grid.Node // by code, current nodes named by the file
	counties map[string]*grid.Node // by county code, with geometry
	existing map[string]Reach      // current stored reach by code
	bad      map[int]bool          // features with a problem already
}

func (imp *importer) add(f Feature, kind grid.ProblemKind, format string, args ...any) {
	*imp.problems = append(*imp.problems, grid.Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: kind, Message: fmt.Sprintf(format, args...)})
	imp.bad[f.Index] = true
}

// check runs every check; each adds problems rather than stopping, so that
// one import lists everything wrong with the file.
func (imp *importer) check(ctx context.Context) error {
	imp.bad = map[int]bool{}
	imp.checkCodes()
	if err := imp.checkNodes(ctx); err != nil {
		return err
	}
	if err := imp.loadExisting(ctx); err != nil {
		return err
	}
	if err := imp.checkGeometry(ctx); err != nil {
		return err
	}
	return imp.checkGaps(ctx)
}

// checkCodes finds duplicate reach codes and bodies described two ways.
func (imp *importer) checkCodes() {
	seen := map[string]int{}
	bodies := map[string]Feature{}
	for _, f := range imp.features {
		if first, dup := seen[f.Code]; dup {
			imp.add(f, grid.ProblemDuplicateCode, "reach code %s is also feature %d's", f.Code, first)
		} else {
			seen[f.Code] = f.Index
		}
		if b, ok := bodies[f.BodyCode]; ok && (b.BodyKind != f.BodyKind || b.BodyName != f.BodyName) {
			imp.add(f, ProblemBodyConflict, "water body %s is %s %s in feature %d but %s %s here", f.BodyCode, b.BodyKind, b.BodyName, b.Index, f.BodyKind, f.BodyName)
		} else if !ok {
			bodies[f.BodyCode] = f
		}
	}
}

// checkNodes asks the grid for every node and county the file names.
func (imp *importer) checkNodes(ctx context.Context) error {
	for _, f := range imp.features {
		n, err := imp.node(ctx, f.NodeCode)
		if err != nil {
			return err
		}
		if n == nil {
			imp.add(f, ProblemUnknownNode, "grid node %s does not exist (or is retired)", f.NodeCode)
			continue
		}
		if imp.opts.MayWrite != nil && !imp.opts.MayWrite(f.NodeCode) {
			imp.add(f, ProblemNotYours, "you may not import reaches of grid node %s", f.NodeCode)
			continue
		}
		county := grid.CountyCode(f.NodeCode)
		if _, ok := imp.counties[county]; !ok {
			c, err := imp.node(ctx, county)
			if err != nil {
				return err
			}
			imp.counties[county] = c
		}
	}
	return nil
}

// node returns the current grid node with code, or nil.
func (imp *importer) node(ctx context.Context, code string) (*grid.Node, error) {
	if n, ok := imp.nodes[code]; ok {
		return n, nil
	}
	n, err := imp.s.grid.NodeByCode(ctx, code)
	if structerr.Code(err) == codes.NotFound {
		n, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if n != nil && n.RetiredAt != nil {
		n = nil
	}
	imp.nodes[code] = n
	return n, nil
}

// loadExisting reads the current stored reaches of the bodies the file
// touches and of the codes it names.
func (imp *importer) loadExisting(ctx context.Context) error {
	var codes, bodies []string
	for _, f := range imp.features {
		codes = append(codes, f.Code)
		bodies = append(bodies, f.BodyCode)
	}
	rows, err := imp.tx.Query(ctx, `SELECT `+reachColumns+` FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code
		WHERE r.valid_to IS NULL AND (r.code = ANY($1) OR r.body_code = ANY($2))`, codes, bodies)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Reach, error) { return scanReach(r) })
	if err != nil {
		return err
	}
	imp.existing = make(map[string]Reach, len(list))
	for _, r := range list {
		imp.existing[r.Code] = r
	}
	for _, f := range imp.features {
		if r, ok := imp.existing[f.Code]; ok && r.BodyCode != f.BodyCode {
			imp.add(f, ProblemBodyConflict, "reach %s belongs to water body %s; it cannot move to %s", f.Code, r.BodyCode, f.BodyCode)
		}
	}
	return nil
}

// checkGeometry asks PostGIS whether each geometry is valid, whether a line
// crosses itself, and how much of it lies outside its node's county. The
// county boundary comes from grid's Go API and is passed as a parameter.
func (imp *importer) checkGeometry(ctx context.Context) error {
	for _, f := range imp.features {
		if imp.bad[f.Index] {
			continue
		}
		county := imp.counties[grid.CountyCode(f.NodeCode)]
		var valid, simple bool
		var reason string
		var outside float64
		var countyGeom geom.T
		if county != nil && county.Geometry != nil {
			countyGeom = county.Geometry
		}
		err := imp.tx.QueryRow(ctx, `SELECT ST_IsValid(g), ST_IsValidReason(g), ST_IsSimple(g),
			CASE WHEN NOT ST_IsValid(g) OR c IS NULL THEN 0
			     WHEN GeometryType(g) = 'MULTILINESTRING' THEN ST_Length(ST_Difference(g, c)::geography)
			     ELSE ST_Area(ST_Difference(g, c)::geography) END
			FROM (SELECT $1::geometry AS g, $2::geometry AS c) s`, f.Geometry, countyGeom).Scan(&valid, &reason, &simple, &outside)
		if err != nil {
			return err
		}
		_, isLine := f.Geometry.(*geom.MultiLineString)
		switch {
		case !valid:
			imp.add(f, grid.ProblemInvalidGeom, "invalid geometry: %s", clip(reason, 120))
		case isLine && !simple:
			imp.add(f, ProblemSelfCrossing, "the line crosses itself")
		case isLine && outside > outsideToleranceM:
			imp.add(f, ProblemOutsideCounty, "%.0f m of the reach lie outside county %s", outside, grid.CountyCode(f.NodeCode))
		case !isLine && outside > outsideToleranceM2:
			imp.add(f, ProblemOutsideCounty, "%.0f m² of the area lie outside county %s", outside, grid.CountyCode(f.NodeCode))
		}
	}
	return nil
}

// checkGaps finds consecutive reaches (by seq) of a river or stream, in the
// file or stored, that do not join within gapToleranceM.
func (imp *importer) checkGaps(ctx context.Context) error {
	type member struct {
		f      Feature
		stored bool
	}
	byBody := map[string][]member{}
	inFile := map[string]bool{}
	for _, f := range imp.features {
		inFile[f.Code] = true
		if f.BodyKind.Linear() && !imp.bad[f.Index] {
			byBody[f.BodyCode] = append(byBody[f.BodyCode], member{f: f})
		}
	}
	for _, r := range imp.existing {
		if _, touched := byBody[r.BodyCode]; touched && !inFile[r.Code] && r.BodyKind.Linear() {
			byBody[r.BodyCode] = append(byBody[r.BodyCode], member{f: Feature{Index: -1, Code: r.Code, Name: r.Name, Seq: r.Seq, Geometry: r.Geometry}, stored: true})
		}
	}
	bodyCodes := make([]string, 0, len(byBody))
	for b := range byBody {
		bodyCodes = append(bodyCodes, b)
	}
	sort.Strings(bodyCodes)
	for _, b := range bodyCodes {
		ms := byBody[b]
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].f.Seq != ms[j].f.Seq {
				return ms[i].f.Seq < ms[j].f.Seq
			}
			return ms[i].f.Code < ms[j].f.Code
		})
		for i := 1; i < len(ms); i++ {
			a, c := ms[i-1], ms[i]
			if a.stored && c.stored {
				continue
			}
			var d float64
			if err := imp.tx.QueryRow(ctx, `SELECT ST_Distance($1::geometry::geography, $2::geometry::geography)`, a.f.Geometry, c.f.Geometry).Scan(&d); err != nil {
				return err
			}
			if d > gapToleranceM {
				f := c.f
				if c.stored {
					f = a.f
				}
				imp.add(f, ProblemGap, "reaches %s (seq %d) and %s (seq %d) of %s are %.0f m apart; consecutive reaches must join", a.f.Code, a.f.Seq, c.f.Code, c.f.Seq, b, d)
			}
		}
	}
	return nil
}

// write upserts the bodies and, per reach, keeps an unchanged version,
// ends a changed one and adds the next, or adds a new reach.
func (imp *importer) write(ctx context.Context, res *ImportResult) error {
	for _, f := range imp.features {
		county := grid.CountyCode(f.NodeCode)
		if _, err := imp.tx.Exec(ctx, `INSERT INTO waters.bodies (code, county_code, kind, name) VALUES ($1, $2, $3, $4)
			ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name WHERE waters.bodies.name <> EXCLUDED.name`,
			f.BodyCode, county, string(f.BodyKind), f.BodyName); err != nil {
			return err
		}
		node := imp.nodes[f.NodeCode]
		version := 1
		if old, ok := imp.existing[f.Code]; ok {
			if sameReach(old, f) {
				res.Unchanged++
				continue
			}
			if !imp.opts.Effective.After(old.ValidFrom) {
				return &RejectedError{Problems: grid.Problems{{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: grid.ProblemMalformed,
					Message: fmt.Sprintf("the change must take effect after the current version's start (%s)", old.ValidFrom.Format(time.RFC3339))}}}
			}
			if _, err := imp.tx.Exec(ctx, `UPDATE waters.reaches SET valid_to = $2 WHERE id = $1`, old.ID, imp.opts.Effective); err != nil {
				return err
			}
			version = old.Version + 1
			res.Updated++
		} else {
			res.Created++
		}
		var actor *uuid.UUID
		if imp.opts.ActorID != uuid.Nil {
			actor = &imp.opts.ActorID
		}
		if _, err := imp.tx.Exec(ctx, `INSERT INTO waters.reaches (id, code, version, body_code, seq, name, county_code, node_id, node_code,
				node_level, geom, length_m, valid_from, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
				CASE WHEN GeometryType($11::geometry) = 'MULTILINESTRING' THEN ST_Length($11::geometry::geography) ELSE 0 END, $12, $13)`,
			uuid.New(), f.Code, version, f.BodyCode, f.Seq, f.Name, county, node.ID, f.NodeCode, int16(node.Level), f.Geometry,
			imp.opts.Effective, actor); err != nil {
			return err
		}
	}
	return nil
}

// sameReach reports whether a feature describes the stored version as it is.
func sameReach(r Reach, f Feature) bool {
	if r.Name != f.Name || r.Seq != f.Seq || r.NodeCode != f.NodeCode || r.BodyCode != f.BodyCode {
		return false
	}
	a, err1 := wkb.Marshal(r.Geometry, wkb.NDR)
	b, err2 := wkb.Marshal(f.Geometry, wkb.NDR)
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}
