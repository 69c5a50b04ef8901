package grid

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/wkb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/ledger"
	"ecogrid/internal/structerr"
)

// ImportMode says whether an import may create nodes, update them, or both.
type ImportMode int

// Import modes: GeoJSON imports upsert; CreateNode and UpdateNode use the
// same validation with a stricter mode.
const (
	ImportUpsert ImportMode = iota
	ImportCreateOnly
	ImportUpdateOnly
)

// ImportOptions controls one import.
type ImportOptions struct {
	Mode ImportMode
	// EffectiveFrom is when changed boundaries take effect (valid_from of
	// the new versions); zero means the transaction time.
	EffectiveFrom time.Time
	// DryRun validates and reports without writing.
	DryRun bool
	// Actor is the person recorded as author of the new versions and in
	// the accountability ledger, with the role and node they act from
	// (uuid.Nil: the system itself, e.g. the dev stack's demo load).
	Actor         uuid.UUID
	ActorRole     string
	ActorNodeCode string
	// Level is the level of features without a level property (a file per
	// level); LevelUnspecified takes it from the property or the code length.
	Level Level
	// ReplaceUnder, when set, makes the import the complete new state of
	// that node's subtree: current nodes strictly below it that the import
	// lacks are retired as of EffectiveFrom (townships merged, villages
	// abolished). Their history stays.
	ReplaceUnder string
	// MayWrite reports whether the caller may write the node with this
	// code; nil allows everything. Features it refuses are problems.
	MayWrite func(code string) bool
	// SourceSRID is the EPSG code of the file's coordinates, overriding
	// its "crs" member (0: the member, else WGS-84). Anything else than
	// WGS-84 is transformed in PostGIS before the checks.
	SourceSRID int
}

// ImportResult reports what an accepted import did.
type ImportResult struct {
	Created, Updated, Unchanged int
	Retired                     int      // nodes retired by ReplaceUnder
	Warnings                    Problems // coverage gaps
	Nodes                       []Ref    // every node of the import, in code order
	DryRun                      bool
}

// RejectedError is an import refused with every problem found. It is an
// InvalidArgument whose message names the features and problems and whose
// details carry each problem as a BadRequest field violation
// ("features[7]" → message).
type RejectedError struct{ Problems Problems }

// Error names as many problems as fit in structerr.MaxMessageBytes and
// counts the rest; the details list up to maxDetailProblems of them.
func (e *RejectedError) Error() string {
	errs := e.Problems.Errors()
	head := fmt.Sprintf("import refused, nothing was written: %d problem(s): ", len(errs))
	return head + errs.summaryWithin(structerr.MaxMessageBytes-len(head))
}

// GRPCStatus makes the rejection an InvalidArgument with details.
func (e *RejectedError) GRPCStatus() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	br := &errdetails.BadRequest{}
	listed, more := e.Problems.Listed()
	for _, p := range listed {
		field := "file"
		if p.Feature >= 0 {
			field = fmt.Sprintf("features[%d]", p.Feature)
		}
		desc := p.String()
		if p.Warning {
			desc = "warning: " + desc
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: field, Description: desc, Reason: string(p.Kind)})
	}
	if more > 0 {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: "file",
			Description: fmt.Sprintf("… and %d more problems", more), Reason: "more"})
	}
	if withDetails, err := st.WithDetails(br); err == nil {
		return withDetails
	}
	return st
}

// existingNode is what the import needs to know about a stored node.
type existingNode struct {
	id        uuid.UUID
	code      string
	level     Level
	validFrom time.Time
	retired   bool
}

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// Import validates features (already parsed; parseProblems are the
// parser's findings, reported together with the database checks) and, if
// nothing but warnings was found, writes them in one transaction: new
// nodes get version 1, changed boundaries, names or parents a new version
// valid from opts.EffectiveFrom, task changes update the node. Nothing is
// written when anything is wrong; the *RejectedError lists every problem.
//
// The geometric checks run in PostGIS inside the transaction (ST_IsValid
// with its reason, child outside parent beyond Config.OutsideToleranceM,
// sibling overlap wider than OverlapToleranceM, gaps wider than
// GapToleranceM as warnings), against the import merged with the current
// nodes it touches: parents, siblings and children.
func (s *Store) Import(ctx context.Context, features []Feature, parseProblems Problems, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	problems := append(Problems(nil), parseProblems...)
	if len(features) == 0 && len(problems) == 0 {
		return res, &RejectedError{Problems: Problems{{Feature: -1, Kind: ProblemMissingField, Message: "the FeatureCollection has no features"}}}
	}
	transformed, err := s.transformToWGS84(ctx, features)
	if err != nil {
		return res, err
	}
	if len(transformed) > 0 {
		problems = append(problems, transformed...)
		return res, &RejectedError{Problems: problems}
	}
	// Parents before children, so that parent ids exist when children are written.
	sort.SliceStable(features, func(i, j int) bool { return features[i].Level < features[j].Level })
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var effective time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&effective); err != nil {
			return err
		}
		if !opts.EffectiveFrom.IsZero() {
			effective = opts.EffectiveFrom
		}
		existing, err := loadExisting(ctx, tx, features)
		if err != nil {
			return err
		}
		checked := s.checkStructure(features, existing, opts, effective, &problems)
		retire, err := s.planRetire(ctx, tx, features, opts, effective, &problems)
		if err != nil {
			return err
		}
		if err := s.checkGeometry(ctx, tx, features, checked, &problems); err != nil {
			return err
		}
		if len(problems.Errors()) > 0 {
			return &RejectedError{Problems: problems}
		}
		res.Warnings = problems.Warnings()
		if err := s.write(ctx, tx, features, existing, opts, effective, &res); err != nil {
			return err
		}
		if err := retireNodes(ctx, tx, retire, opts, effective); err != nil {
			return err
		}
		res.Retired = len(retire)
		if opts.DryRun {
			res.DryRun = true
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
	// Report nodes in code order.
	sort.SliceStable(res.Nodes, func(i, j int) bool { return res.Nodes[i].Code < res.Nodes[j].Code })
	return res, nil
}

// ImportGeoJSON parses a FeatureCollection from r (within the store's
// limits) and imports it. A file that cannot be read as GeoJSON is refused
// with its parse problems before the database is asked anything.
func (s *Store) ImportGeoJSON(ctx context.Context, r io.Reader, opts ImportOptions) (ImportResult, error) {
	limits := s.cfg.Limits
	limits.DefaultLevel = opts.Level
	limits.SourceSRID = opts.SourceSRID
	features, problems := ParseFeatureCollection(r, limits)
	for _, p := range problems {
		if p.Kind == ProblemMalformed || p.Kind == ProblemTooLarge && p.Feature < 0 {
			return ImportResult{}, &RejectedError{Problems: problems}
		}
	}
	return s.Import(ctx, features, problems, opts)
}

func loadExisting(ctx context.Context, tx pgx.Tx, features []Feature) (map[string]*existingNode, error) {
	var codes []string
	var ids []uuid.UUID
	for _, f := range features {
		codes = append(codes, f.Code)
		if f.ParentCode != "" {
			codes = append(codes, f.ParentCode)
		}
		if f.ID != uuid.Nil {
			ids = append(ids, f.ID)
		}
	}
	rows, err := tx.Query(ctx, `SELECT id, code, level, valid_from, retired_at IS NOT NULL FROM grid.nodes
		WHERE code = ANY($1) OR id = ANY($2)`, codes, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*existingNode{}
	for rows.Next() {
		var e existingNode
		var level int16
		if err := rows.Scan(&e.id, &e.code, &level, &e.validFrom, &e.retired); err != nil {
			return nil, err
		}
		e.level = Level(level)
		out[e.code] = &e
		out["id:"+e.id.String()] = &e
	}
	return out, rows.Err()
}

// checkStructure runs the checks that need no geometry: scope, duplicate
// codes and ids, parents, modes and effective dates. It returns which
// features may go on to the geometric checks as members of the merged grid.
func (s *Store) checkStructure(features []Feature, existing map[string]*existingNode, opts ImportOptions, effective time.Time, problems *Problems) map[int]bool {
	ok := map[int]bool{}
	inFile := map[string]int{}
	ids := map[uuid.UUID]int{}
	for _, f := range features {
		add := func(kind ProblemKind, format string, args ...any) {
			*problems = append(*problems, Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: kind, Message: fmt.Sprintf(format, args...)})
		}
		before := len(*problems)
		if opts.MayWrite != nil && !opts.MayWrite(f.Code) {
			add(ProblemCodeParent, "code %s is outside the area you may edit", f.Code)
		}
		if first, dup := inFile[f.Code]; dup {
			add(ProblemDuplicateCode, "code %s already appears at feature %d", f.Code, first)
		} else {
			inFile[f.Code] = f.Index
		}
		if f.ID != uuid.Nil {
			if first, dup := ids[f.ID]; dup {
				add(ProblemDuplicateCode, "id %s already appears at feature %d", f.ID, first)
			}
			ids[f.ID] = f.Index
		}
		ex := existing[f.Code]
		if f.ID != uuid.Nil {
			if byID := existing["id:"+f.ID.String()]; byID != nil && byID.code != f.Code {
				add(ProblemDuplicateCode, "id %s belongs to node %s; a node's code cannot change through an import", f.ID, byID.code)
			}
			if ex != nil && ex.id != f.ID {
				add(ProblemDuplicateCode, "code %s already belongs to another node (%s)", f.Code, ex.id)
			}
		}
		switch {
		case ex != nil && ex.retired:
			add(ProblemDuplicateCode, "code %s belongs to a retired node", f.Code)
		case ex != nil && opts.Mode == ImportCreateOnly && f.ID == uuid.Nil:
			add(ProblemDuplicateCode, "code %s already exists", f.Code)
		case ex == nil && opts.Mode == ImportUpdateOnly:
			add(ProblemCodeParent, "node %s does not exist", f.Code)
		case ex != nil && !effective.After(ex.validFrom):
			add(ProblemCodeParent, "the change would take effect at %s, not after the current version's start %s",
				effective.UTC().Format(time.RFC3339), ex.validFrom.UTC().Format(time.RFC3339))
		}
		if ex != nil && ex.level != f.Level {
			add(ProblemBadCode, "node %s is a %s, not a %s", f.Code, ex.level, f.Level)
		}
		if f.Level > LevelCounty {
			_, parentInFile := inFile[f.ParentCode]
			if p := existing[f.ParentCode]; !parentInFile && (p == nil || p.retired) {
				add(ProblemCodeParent, "parent %s %s does not exist; import it first or in the same file", f.Level-1, f.ParentCode)
			}
		}
		ok[f.Index] = len(*problems) == before
	}
	return ok
}

// retiree is a current node an import with ReplaceUnder retires.
type retiree struct {
	id        uuid.UUID
	code      string
	name      string
	level     Level
	validFrom time.Time
}

// planRetire finds the nodes a ReplaceUnder import retires, reports what
// forbids it, and records their codes in the temporary table grid_retire
// so that the geometric checks see the grid without them.
func (s *Store) planRetire(ctx context.Context, tx pgx.Tx, features []Feature, opts ImportOptions, effective time.Time, problems *Problems) ([]retiree, error) {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE grid_retire (code text PRIMARY KEY) ON COMMIT DROP`); err != nil {
		return nil, err
	}
	root := opts.ReplaceUnder
	if root == "" {
		return nil, nil
	}
	fileProblem := func(format string, args ...any) {
		*problems = append(*problems, Problem{Feature: -1, Code: root, Kind: ProblemCodeParent, Message: fmt.Sprintf(format, args...)})
	}
	level, ok := LevelForCode(root)
	if !ok || CheckCode(root, level) != nil {
		fileProblem("replace_under_code %q is not a grid code", root)
		return nil, nil
	}
	if opts.MayWrite != nil && !opts.MayWrite(root) {
		fileProblem("%s is outside the area you may edit", root)
		return nil, nil
	}
	var rootRetired bool
	err := tx.QueryRow(ctx, `SELECT retired_at IS NOT NULL FROM grid.nodes WHERE code = $1`, root).Scan(&rootRetired)
	if errors.Is(err, pgx.ErrNoRows) || rootRetired {
		fileProblem("replace_under_code %s is not a current node", root)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	inFile := map[string]bool{}
	var codes []string
	for _, f := range features {
		inFile[f.Code] = true
		codes = append(codes, f.Code)
		if !strings.HasPrefix(f.Code, root) {
			*problems = append(*problems, Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: ProblemCodeParent,
				Message: fmt.Sprintf("is outside %s, the subtree this import replaces", root)})
		}
	}
	rows, err := tx.Query(ctx, `SELECT id, code, name, level, valid_from FROM grid.nodes
		WHERE code LIKE $1 || '%' AND code <> $1 AND retired_at IS NULL AND NOT (code = ANY($2)) ORDER BY code`, root, codes)
	if err != nil {
		return nil, err
	}
	var out []retiree
	for rows.Next() {
		var r retiree
		var lv int16
		if err := rows.Scan(&r.id, &r.code, &r.name, &lv, &r.validFrom); err != nil {
			rows.Close()
			return nil, err
		}
		r.level = Level(lv)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	retired := map[string]bool{}
	for _, r := range out {
		retired[r.code] = true
		if !effective.After(r.validFrom) {
			*problems = append(*problems, Problem{Feature: -1, Code: r.code, Name: r.name, Kind: ProblemCodeParent,
				Message: fmt.Sprintf("would be retired at %s, not after its current version's start %s",
					effective.UTC().Format(time.RFC3339), r.validFrom.UTC().Format(time.RFC3339))})
		}
	}
	for _, f := range features {
		if retired[f.ParentCode] {
			*problems = append(*problems, Problem{Feature: f.Index, Code: f.Code, Name: f.Name, Kind: ProblemCodeParent,
				Message: fmt.Sprintf("its parent %s is not in the file and would be retired", f.ParentCode)})
		}
	}
	if len(out) > 0 {
		var rc []string
		for _, r := range out {
			rc = append(rc, r.code)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO grid_retire SELECT unnest($1::text[])`, rc); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// retireNodes ends the current version of each node and marks it retired,
// with a ledger record each.
func retireNodes(ctx context.Context, tx pgx.Tx, retire []retiree, opts ImportOptions, effective time.Time) error {
	var actor *uuid.UUID
	if opts.Actor != uuid.Nil {
		actor = &opts.Actor
	}
	for _, r := range retire {
		if _, err := tx.Exec(ctx, `UPDATE grid.node_versions SET valid_to = $2 WHERE node_id = $1 AND valid_to IS NULL`, r.id, effective); err != nil {
			return fmt.Errorf("retiring %s: %w", r.code, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE grid.nodes SET retired_at = $2, updated_by = $3 WHERE id = $1`, r.id, effective, actor); err != nil {
			return fmt.Errorf("retiring %s: %w", r.code, err)
		}
		e := opts.ledgerEntry(ActionNodeRetired, r.code, r.id,
			map[string]string{"code": r.code, "name": r.name, "level": r.level.String(), "retired_at": effective.UTC().Format(time.RFC3339Nano), "replaced_under": opts.ReplaceUnder})
		if _, err := ledger.Append(ctx, tx, e); err != nil {
			return fmt.Errorf("ledger record for retiring grid node %s: %w", r.code, err)
		}
	}
	return nil
}

// checkGeometry loads the features into a temporary table and runs the
// PostGIS checks in turn: validity, then — on the grid as it would be
// after the import — children inside their parents, siblings apart, and
// parents covered by their children.
func (s *Store) checkGeometry(ctx context.Context, tx pgx.Tx, features []Feature, structOK map[int]bool, problems *Problems) error {
	g := &geometryCheck{tx: tx, cfg: s.cfg, byIndex: make(map[int]*Feature, len(features)), problems: problems}
	for i := range features {
		g.byIndex[features[i].Index] = &features[i]
	}
	for _, step := range []func(context.Context) error{
		func(ctx context.Context) error { return g.load(ctx, features, structOK) },
		g.validity,
		g.mergeWithCurrent,
		g.childrenInsideParents,
		g.siblingsApart,
		g.gaps,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// geometryCheck is one import's PostGIS checks, sharing the temporary
// tables grid_import (the features) and grid_eff (the merged grid).
type geometryCheck struct {
	tx       pgx.Tx
	cfg      Config
	byIndex  map[int]*Feature
	problems *Problems
}

func (g *geometryCheck) add(idx int, kind ProblemKind, warning bool, areaM2 float64, format string, args ...any) {
	f := g.byIndex[idx]
	*g.problems = append(*g.problems, Problem{Feature: idx, Code: f.Code, Name: f.Name, Kind: kind, Warning: warning, AreaM2: areaM2, Message: fmt.Sprintf(format, args...)})
}

// load copies the features into grid_import.
func (g *geometryCheck) load(ctx context.Context, features []Feature, structOK map[int]bool) error {
	if _, err := g.tx.Exec(ctx, `CREATE TEMP TABLE grid_import (
			idx int PRIMARY KEY, code text NOT NULL, parent_code text NOT NULL, struct_ok boolean NOT NULL,
			geom geometry NOT NULL, valid boolean) ON COMMIT DROP`); err != nil {
		return err
	}
	rows := make([][]any, 0, len(features))
	for _, f := range features {
		rows = append(rows, []any{f.Index, f.Code, f.ParentCode, structOK[f.Index], f.Geometry})
	}
	if _, err := g.tx.CopyFrom(ctx, pgx.Identifier{"grid_import"}, []string{"idx", "code", "parent_code", "struct_ok", "geom"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("loading import: %w", err)
	}
	return nil
}

// validity marks each feature valid or not, with PostGIS's reason (e.g.
// "Self-intersection[114.45 38.07]") in words.
func (g *geometryCheck) validity(ctx context.Context) error {
	rows, err := g.tx.Query(ctx, `UPDATE grid_import SET valid = ST_IsValid(geom) RETURNING idx, valid, CASE WHEN valid THEN '' ELSE ST_IsValidReason(geom) END`)
	if err != nil {
		return err
	}
	var idx int
	var valid bool
	var reason string
	_, err = pgx.ForEachRow(rows, []any{&idx, &valid, &reason}, func() error {
		if !valid {
			g.add(idx, ProblemInvalidGeom, false, 0, "invalid polygon: %s", describeInvalid(reason))
		}
		return nil
	})
	return err
}

// mergeWithCurrent builds grid_eff, the grid as it would be: the valid
// imported features, and the current nodes they touch (parents, siblings,
// children) that the import does not replace.
func (g *geometryCheck) mergeWithCurrent(ctx context.Context) error {
	_, err := g.tx.Exec(ctx, `
		CREATE TEMP TABLE grid_eff ON COMMIT DROP AS
		SELECT idx, code, parent_code, geom, true AS imported FROM grid_import WHERE valid AND struct_ok
		UNION ALL
		SELECT NULL, n.code, coalesce(p.code, ''), n.geom, false
		FROM grid.nodes n LEFT JOIN grid.nodes p ON p.id = n.parent_id
		WHERE n.retired_at IS NULL AND n.code NOT IN (SELECT code FROM grid_import)
		  AND n.code NOT IN (SELECT code FROM grid_retire)
		  AND (n.code IN (SELECT parent_code FROM grid_import)
		    OR coalesce(p.code, '') IN (SELECT parent_code FROM grid_import)
		    OR p.code IN (SELECT code FROM grid_import));
		CREATE INDEX ON grid_eff USING gist (geom);
		CREATE INDEX ON grid_eff (parent_code);
		ANALYZE grid_eff`)
	return err
}

// childrenInsideParents finds children sticking out of their parent by
// more than the tolerance, imported children or existing children of an
// imported parent.
func (g *geometryCheck) childrenInsideParents(ctx context.Context) error {
	tol := g.cfg.OutsideToleranceM
	rows, err := g.tx.Query(ctx, `
		WITH pairs AS MATERIALIZED (
			SELECT c.idx AS cidx, c.code AS ccode, c.imported AS cimp, c.geom AS cgeom,
			       p.idx AS pidx, p.code AS pcode, p.geom AS pgeom
			FROM grid_eff c JOIN grid_eff p ON p.code = c.parent_code
			WHERE (c.imported OR p.imported) AND NOT ST_CoveredBy(c.geom, p.geom)
		), beyond AS (
			SELECT *, ST_Difference(cgeom, ST_Buffer(pgeom::geography, $1)::geometry) AS outside FROM pairs
		)
		SELECT cidx, ccode, cimp, pidx, pcode,
		       ST_Area(ST_Difference(cgeom, pgeom)::geography),
		       (SELECT max(ST_Distance(d.geom::geography, pgeom::geography)) FROM ST_DumpPoints(ST_Difference(cgeom, pgeom)) d)
		FROM beyond WHERE NOT ST_IsEmpty(outside) AND ST_Area(outside::geography) > 0.01`, tol)
	if err != nil {
		return err
	}
	var cidx, pidx *int
	var ccode, pcode string
	var cimp bool
	var area, dist float64
	_, err = pgx.ForEachRow(rows, []any{&cidx, &ccode, &cimp, &pidx, &pcode, &area, &dist}, func() error {
		if cimp {
			g.add(*cidx, ProblemOutsideParent, false, area, "sticks out of its parent %s by up to %.0f m (%.2f ha outside; tolerance %.0f m)", pcode, dist, area/1e4, tol)
		} else {
			g.add(*pidx, ProblemOutsideParent, false, area, "existing child %s would stick out of the new boundary by up to %.0f m (%.2f ha outside; tolerance %.0f m)", ccode, dist, area/1e4, tol)
		}
		return nil
	})
	return err
}

// siblingsApart finds siblings overlapping in a region wider than the
// tolerance.
func (g *geometryCheck) siblingsApart(ctx context.Context) error {
	tol := g.cfg.OverlapToleranceM
	rows, err := g.tx.Query(ctx, `
		WITH pairs AS MATERIALIZED (
			SELECT a.idx AS aidx, a.code AS acode, a.imported AS aimp, b.idx AS bidx, b.code AS bcode, b.imported AS bimp,
			       ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS i
			FROM grid_eff a JOIN grid_eff b
			  ON a.parent_code = b.parent_code AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
			WHERE (a.imported OR b.imported) AND NOT ST_Touches(a.geom, b.geom)
		)
		SELECT aidx, acode, aimp, bidx, bcode, bimp, ST_Area(i::geography),
		       ST_AsText(ST_PointOnSurface(i), 6)
		FROM pairs
		WHERE NOT ST_IsEmpty(i) AND NOT ST_IsEmpty(ST_Buffer(i::geography, -$1::float8 / 2)::geometry)`, tol)
	if err != nil {
		return err
	}
	var aidx, bidx *int
	var acode, bcode, where string
	var aimp, bimp bool
	var area float64
	_, err = pgx.ForEachRow(rows, []any{&aidx, &acode, &aimp, &bidx, &bcode, &bimp, &area, &where}, func() error {
		if aimp {
			g.add(*aidx, ProblemOverlap, false, area, "overlaps sibling %s over %.2f ha near %s (tolerance %.0f m)", bcode, area/1e4, where, tol)
		} else {
			g.add(*bidx, ProblemOverlap, false, area, "overlaps sibling %s over %.2f ha near %s (tolerance %.0f m)", acode, area/1e4, where, tol)
		}
		return nil
	})
	return err
}

// gaps warns about parts of a parent no child covers.
func (g *geometryCheck) gaps(ctx context.Context) error {
	rows, err := g.tx.Query(ctx, `
		WITH kids AS (
			SELECT parent_code, ST_Union(geom) AS u, bool_or(imported) AS any_imported, min(idx) AS first_idx
			FROM grid_eff WHERE parent_code <> '' GROUP BY parent_code
		), gap AS MATERIALIZED (
			SELECT p.idx AS pidx, p.code AS pcode, k.first_idx,
			       ST_CollectionExtract(ST_Difference(p.geom, k.u), 3) AS g
			FROM kids k JOIN grid_eff p ON p.code = k.parent_code
			WHERE k.any_imported OR p.imported
		)
		SELECT pidx, pcode, first_idx, ST_Area(g::geography), ST_AsText(ST_PointOnSurface(g), 6)
		FROM gap WHERE NOT ST_IsEmpty(g) AND NOT ST_IsEmpty(ST_Buffer(g::geography, -$1::float8 / 2)::geometry)`, g.cfg.GapToleranceM)
	if err != nil {
		return err
	}
	var pidx, first *int
	var pcode, where string
	var area float64
	_, err = pgx.ForEachRow(rows, []any{&pidx, &pcode, &first, &area, &where}, func() error {
		// Reported on the parent when it is imported, else on its first
		// imported child.
		idx := -1
		switch {
		case pidx != nil:
			idx = *pidx
		case first != nil:
			idx = *first
		}
		if idx >= 0 {
			g.add(idx, ProblemGap, true, area, "%.2f ha of %s is covered by none of its children (near %s)", area/1e4, pcode, where)
		}
		return nil
	})
	return err
}

// describeInvalid turns PostGIS's reason ("Self-intersection[114.45 38.07]")
// into words a GIS officer knows.
func describeInvalid(reason string) string {
	kind, where, _ := strings.Cut(reason, "[")
	where = strings.TrimSuffix(where, "]")
	if where != "" {
		where = " at " + where
	}
	switch kind {
	case "Self-intersection":
		return "the boundary crosses itself (self-intersection, e.g. a bow-tie)" + where
	case "Ring Self-intersection":
		return "a ring touches itself" + where
	case "Too few points in geometry component":
		return "a ring has too few distinct points" + where
	case "Hole lies outside shell":
		return "a hole lies outside its polygon" + where
	case "Nested shells":
		return "polygons of the MultiPolygon are nested" + where
	case "Interior is disconnected":
		return "holes cut the polygon into pieces" + where
	}
	return reason
}

// write applies the accepted import.
func (s *Store) write(ctx context.Context, tx pgx.Tx, features []Feature, existing map[string]*existingNode, opts ImportOptions, effective time.Time, res *ImportResult) error {
	ids := map[string]uuid.UUID{}
	for code, e := range existing {
		if !strings.HasPrefix(code, "id:") {
			ids[code] = e.id
		}
	}
	var actor *uuid.UUID
	if opts.Actor != uuid.Nil {
		actor = &opts.Actor
	}
	for _, f := range features {
		var parent *uuid.UUID
		if f.Level > LevelCounty {
			p := ids[f.ParentCode]
			parent = &p
		}
		tasks := f.Tasks
		if tasks == nil {
			tasks = []Task{}
		}
		ex := existing[f.Code]
		if ex == nil {
			id := f.ID
			if id == uuid.Nil {
				id = newID()
			}
			ids[f.Code] = id
			if _, err := tx.Exec(ctx, `
				INSERT INTO grid.nodes (id, county_code, code, level, name, parent_id, geom, area_ha, tasks, version, valid_from, updated_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7::geometry, ST_Area($7::geometry::geography) / 10000, $8, 1, $9, $10)`,
				id, CountyCode(f.Code), f.Code, int16(f.Level), f.Name, parent, f.Geometry, tasks, effective, actor); err != nil {
				return fmt.Errorf("creating node %s: %w", f.Code, err)
			}
			if _, err := insertVersion(ctx, tx, id, actor); err != nil {
				return err
			}
			if err := recordChange(ctx, tx, opts, ActionNodeCreated, id, f, 1, effective); err != nil {
				return err
			}
			res.Created++
			res.Nodes = append(res.Nodes, Ref{ID: id, Code: f.Code, Name: f.Name, Level: f.Level})
			if err := setRegion(ctx, tx, id, f.RegionCode); err != nil {
				return fmt.Errorf("region of county %s: %w", f.Code, err)
			}
			continue
		}
		var boundaryChanged, tasksChanged bool
		err := tx.QueryRow(ctx, `SELECT name <> $2 OR NOT (geom = $3::geometry) OR parent_id IS DISTINCT FROM $4, tasks <> $5::jsonb
			FROM grid.nodes WHERE id = $1`, ex.id, f.Name, f.Geometry, parent, tasks).Scan(&boundaryChanged, &tasksChanged)
		if err != nil {
			return fmt.Errorf("comparing node %s: %w", f.Code, err)
		}
		if !f.HasTasks {
			tasksChanged = false
		}
		res.Nodes = append(res.Nodes, Ref{ID: ex.id, Code: f.Code, Name: f.Name, Level: f.Level})
		switch {
		case boundaryChanged:
			if _, err := tx.Exec(ctx, `UPDATE grid.node_versions SET valid_to = $2 WHERE node_id = $1 AND valid_to IS NULL`, ex.id, effective); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				UPDATE grid.nodes SET name = $2, geom = $3::geometry, area_ha = ST_Area($3::geometry::geography) / 10000, parent_id = $4,
					tasks = CASE WHEN $5 THEN $6::jsonb ELSE tasks END,
					version = version + 1, valid_from = $7, updated_by = $8
				WHERE id = $1`, ex.id, f.Name, f.Geometry, parent, f.HasTasks, tasks, effective, actor); err != nil {
				return fmt.Errorf("updating node %s: %w", f.Code, err)
			}
			version, err := insertVersion(ctx, tx, ex.id, actor)
			if err != nil {
				return err
			}
			if err := recordChange(ctx, tx, opts, ActionBoundaryChanged, ex.id, f, version, effective); err != nil {
				return err
			}
			res.Updated++
		case tasksChanged:
			var version int
			if err := tx.QueryRow(ctx, `UPDATE grid.nodes SET tasks = $2, updated_by = $3 WHERE id = $1 RETURNING version`, ex.id, tasks, actor).Scan(&version); err != nil {
				return err
			}
			if err := recordChange(ctx, tx, opts, ActionTasksChanged, ex.id, f, version, effective); err != nil {
				return err
			}
			res.Updated++
		default:
			res.Unchanged++
		}
		if err := setRegion(ctx, tx, ex.id, f.RegionCode); err != nil {
			return fmt.Errorf("region of county %s: %w", f.Code, err)
		}
	}
	return nil
}

// setRegion records the province or prefecture a county file names as the
// county's parent: the regions (the province first) are added when new,
// and the county points at the one named. A county's region is metadata,
// not its position in the grid: the county stays the root of its shard.
func setRegion(ctx context.Context, tx pgx.Tx, county uuid.UUID, region string) error {
	if region == "" {
		return nil // not given: whatever was recorded stays
	}
	province := ProvinceCode(region)
	if _, err := tx.Exec(ctx, `INSERT INTO grid.regions (code, kind) VALUES ($1, 'province') ON CONFLICT (code) DO NOTHING`, province); err != nil {
		return err
	}
	if region != province {
		if _, err := tx.Exec(ctx, `INSERT INTO grid.regions (code, kind, parent_code) VALUES ($1, 'prefecture', $2) ON CONFLICT (code) DO NOTHING`, region, province); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE grid.nodes SET region_code = $2 WHERE id = $1 AND region_code IS DISTINCT FROM $2`, county, region)
	return err
}

func insertVersion(ctx context.Context, tx pgx.Tx, id uuid.UUID, actor *uuid.UUID) (int, error) {
	var version int
	err := tx.QueryRow(ctx, `
		INSERT INTO grid.node_versions (node_id, version, county_code, code, level, name, parent_id, geom, area_ha, valid_from, created_by)
		SELECT id, version, county_code, code, level, name, parent_id, geom, area_ha, valid_from, $2 FROM grid.nodes WHERE id = $1
		RETURNING version`, id, actor).Scan(&version)
	if err != nil {
		return 0, fmt.Errorf("recording version of node %s: %w", id, err)
	}
	return version, nil
}

// Ledger actions for grid changes.
const (
	ActionNodeCreated     = "grid_node.created"
	ActionBoundaryChanged = "grid_node.boundary_changed" // name, boundary or parent: a new version
	ActionTasksChanged    = "grid_node.tasks_changed"
	ActionNodeRetired     = "grid_node.retired"
)

// ledgerPayload is what the accountability ledger keeps of a grid change:
// enough to prove later which boundary was in force (the SHA-256 of its
// WKB) without copying the geometry into the chain.
type ledgerPayload struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	Level       string `json:"level"`
	ParentCode  string `json:"parent_code,omitempty"`
	Version     int    `json:"version"`
	ValidFrom   string `json:"valid_from"`
	GeometryWKB string `json:"geometry_wkb_sha256"`
	Vertices    int    `json:"vertices"`
	Tasks       []Task `json:"tasks,omitempty"`
}

// ledgerEntry is the accountability record of an import's act on the grid
// node code (id), under the importing actor; an actor given without a role
// is recorded with role "unknown".
func (opts ImportOptions) ledgerEntry(action, code string, id uuid.UUID, payload any) ledger.Entry {
	e := ledger.Entry{
		CountyCode: CountyCode(code), ActorRole: opts.ActorRole, ActorNodeCode: opts.ActorNodeCode,
		Action: action, SubjectType: "grid_node", SubjectID: id.String(), NodeCode: code, Payload: payload,
	}
	if opts.Actor != uuid.Nil {
		e.ActorID = opts.Actor.String()
		if e.ActorRole == "" {
			e.ActorRole = "unknown"
		}
	}
	return e
}

// recordChange appends the change to the county's accountability ledger in
// the import's transaction: no boundary change without its record.
func recordChange(ctx context.Context, tx pgx.Tx, opts ImportOptions, action string, id uuid.UUID, f Feature, version int, effective time.Time) error {
	sum, err := geometryDigest(f.Geometry)
	if err != nil {
		return err
	}
	e := opts.ledgerEntry(action, f.Code, id, ledgerPayload{Code: f.Code, Name: f.Name, Level: f.Level.String(), ParentCode: f.ParentCode, Version: version,
		ValidFrom: effective.UTC().Format(time.RFC3339Nano), GeometryWKB: sum, Vertices: len(f.Geometry.FlatCoords()) / 2, Tasks: f.Tasks})
	if _, err := ledger.Append(ctx, tx, e); err != nil {
		return fmt.Errorf("ledger record for grid node %s: %w", f.Code, err)
	}
	return nil
}

func geometryDigest(mp *geom.MultiPolygon) (string, error) {
	b, err := wkb.Marshal(mp, binary.LittleEndian)
	if err != nil {
		return "", fmt.Errorf("encoding geometry: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
