package zones

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/structerr"
)

// Store reads and writes the zones schema.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns the store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ImportOptions say how an import is applied.
type ImportOptions struct {
	DryRun bool
	// EffectiveFrom is when new and changed zones take effect (zero: now).
	EffectiveFrom time.Time
	// ReplaceAll ends the current zones of the county the file lacks.
	ReplaceAll bool
	// Actor is the person importing (uuid.Nil for the operator's CLI).
	Actor uuid.UUID
}

// ImportResult says what an accepted import did.
type ImportResult struct {
	Created, Updated, Unchanged, Ended int
	DryRun                             bool
}

var errDryRun = errors.New("dry run")

type currentZone struct {
	version   int
	kind      Kind
	name      string
	legal     string
	geom      *geom.MultiPolygon
	validFrom time.Time
}

// ImportGeoJSON parses r and imports it into county (see Import).
func (s *Store) ImportGeoJSON(ctx context.Context, county string, r io.Reader, opts ImportOptions) (ImportResult, error) {
	features, ps := ParseFeatureCollection(r)
	return s.Import(ctx, county, features, ps, opts)
}

// Import writes a county's zones all or nothing, in one transaction: a new
// code gets version 1, a changed kind, name, legal basis or polygon ends
// the current version at opts.EffectiveFrom and adds the next. Every
// problem — the parser's (parseProblems), an unknown kind, a polygon
// PostGIS finds invalid, an effective time before a current version — is
// listed in a *RejectedError and nothing is written.
func (s *Store) Import(ctx context.Context, county string, features []Feature, parseProblems []Problem, opts ImportOptions) (ImportResult, error) {
	if !ValidCounty(county) {
		return ImportResult{}, structerr.NewInvalidArgument("county_code %.20q is not six digits", county)
	}
	effective := opts.EffectiveFrom
	if effective.IsZero() {
		effective = time.Now()
	}
	effective = effective.UTC().Truncate(time.Microsecond)
	ps := problems{list: slices.Clone(parseProblems), n: len(parseProblems)}
	var res ImportResult
	err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('zones.import:' || $1))`, county); err != nil {
			return err
		}
		kinds, err := countyKinds(ctx, tx, county)
		if err != nil {
			return err
		}
		current, err := currentZones(ctx, tx, county)
		if err != nil {
			return err
		}
		// Polygon validity, in PostGIS as QGIS users will see it.
		b := &pgx.Batch{}
		for _, f := range features {
			b.Queue(`SELECT ST_IsValidReason($1::geometry)`, f.Geometry)
		}
		br := tx.SendBatch(ctx, b)
		for _, f := range features {
			var reason string
			if err := br.QueryRow().Scan(&reason); err != nil {
				br.Close()
				return err
			}
			if reason != "Valid Geometry" {
				ps.add(f.Index, f.Code, "invalid polygon: %s", reason)
			}
			if !kinds[f.Kind] {
				ps.add(f.Index, f.Code, "kind %s is not a kind of county %s (built-in or added with DefineZoneKind)", f.Kind, county)
			}
			if c, ok := current[f.Code]; ok && !effective.After(c.validFrom) && changed(c, f) {
				ps.add(f.Index, f.Code, "takes effect %s, not after its current version (from %s)", effective.Format(time.RFC3339), c.validFrom.Format(time.RFC3339))
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		if ps.n > 0 {
			return &RejectedError{Problems: ps.list}
		}
		inFile := map[string]bool{}
		for _, f := range features {
			inFile[f.Code] = true
			c, ok := current[f.Code]
			switch {
			case !ok:
				res.Created++
				err = insertVersion(ctx, tx, county, f, 1, effective, opts.Actor)
			case changed(c, f):
				res.Updated++
				if err = endVersion(ctx, tx, county, f.Code, effective); err == nil {
					err = insertVersion(ctx, tx, county, f, c.version+1, effective, opts.Actor)
				}
			default:
				res.Unchanged++
			}
			if err != nil {
				return err
			}
		}
		if opts.ReplaceAll {
			for code, c := range current {
				if inFile[code] {
					continue
				}
				if !effective.After(c.validFrom) {
					return &RejectedError{Problems: []Problem{{Feature: -1, Code: code, Message: "cannot end zone before its current version starts"}}}
				}
				if err := endVersion(ctx, tx, county, code, effective); err != nil {
					return err
				}
				res.Ended++
			}
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		res.DryRun, err = true, nil
	}
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

func changed(c currentZone, f Feature) bool {
	return c.kind != f.Kind || c.name != f.Name || c.legal != f.LegalBasis || !sameGeometry(c.geom, f.Geometry)
}

func sameGeometry(a, b *geom.MultiPolygon) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Stride() == b.Stride() && slices.Equal(a.FlatCoords(), b.FlatCoords()) && slices.EqualFunc(a.Endss(), b.Endss(), slices.Equal)
}

func insertVersion(ctx context.Context, tx pgx.Tx, county string, f Feature, version int, from time.Time, actor uuid.UUID) error {
	_, err := tx.Exec(ctx, `INSERT INTO zones.zones (county_code, code, version, kind, name, legal_basis, geom, valid_from, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		county, f.Code, version, string(f.Kind), f.Name, f.LegalBasis, f.Geometry, from, nullUUID(actor))
	return err
}

func endVersion(ctx context.Context, tx pgx.Tx, county, code string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE zones.zones SET valid_to = $3 WHERE county_code = $1 AND code = $2 AND valid_to IS NULL`, county, code, at)
	return err
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

func currentZones(ctx context.Context, q database.Querier, county string) (map[string]currentZone, error) {
	rows, err := q.Query(ctx, `SELECT code, version, kind, name, legal_basis, geom, valid_from FROM zones.zones
		WHERE county_code = $1 AND valid_to IS NULL`, county)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]currentZone{}
	for rows.Next() {
		var code, kind string
		var c currentZone
		if err := rows.Scan(&code, &c.version, &kind, &c.name, &c.legal, &c.geom, &c.validFrom); err != nil {
			return nil, err
		}
		c.kind = Kind(kind)
		out[code] = c
	}
	return out, rows.Err()
}

// countyKinds is the set of kinds usable in county: the built-in ones and
// those it added.
func countyKinds(ctx context.Context, q database.Querier, county string) (map[Kind]bool, error) {
	out := map[Kind]bool{}
	for _, b := range BuiltinKinds {
		out[b.Kind] = true
	}
	rows, err := q.Query(ctx, `SELECT kind FROM zones.kinds WHERE county_code = $1`, county)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[Kind(k)] = true
	}
	return out, rows.Err()
}

const zoneColumns = `county_code, code, version, kind, name, legal_basis, geom, valid_from, valid_to`

func scanZones(rows pgx.Rows) ([]Zone, error) {
	defer rows.Close()
	var out []Zone
	for rows.Next() {
		var z Zone
		var kind string
		var to *time.Time
		if err := rows.Scan(&z.CountyCode, &z.Code, &z.Version, &kind, &z.Name, &z.LegalBasis, &z.Geometry, &z.ValidFrom, &to); err != nil {
			return nil, err
		}
		if to != nil {
			z.ValidTo = *to
		}
		z.Kind = Kind(kind)
		out = append(out, z)
	}
	return out, rows.Err()
}

// CurrentZones lists the county's current zones in code order, of one
// kind unless kind is "".
func (s *Store) CurrentZones(ctx context.Context, county string, kind Kind) ([]Zone, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+zoneColumns+` FROM zones.zones
		WHERE county_code = $1 AND valid_to IS NULL AND ($2 = '' OR kind = $2) ORDER BY code`, county, string(kind))
	if err != nil {
		return nil, err
	}
	return scanZones(rows)
}

// ZonesAtSQL is ZonesAt answered by PostGIS (ST_Covers on the GiST
// index), the reference the in-memory Index is tested against, and the
// answer for a past time: the versions in force at at.
func ZonesAtSQL(ctx context.Context, q database.Querier, lat, lon float64, at time.Time) ([]Zone, error) {
	rows, err := q.Query(ctx, `SELECT `+zoneColumns+` FROM zones.zones
		WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))
		  AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)
		ORDER BY county_code, code`, lon, lat, at)
	if err != nil {
		return nil, err
	}
	return scanZones(rows)
}

// ExportGeoJSON writes the county's current zones as a FeatureCollection
// that ImportGeoJSON reads back unchanged.
func (s *Store) ExportGeoJSON(ctx context.Context, county string, w io.Writer) error {
	zs, err := s.CurrentZones(ctx, county, "")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, `{"type":"FeatureCollection","features":[`); err != nil {
		return err
	}
	for i, z := range zs {
		if i > 0 {
			if _, err := io.WriteString(w, ",\n"); err != nil {
				return err
			}
		}
		b, err := FeatureJSON(z)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "]}\n")
	return err
}

// FeatureJSON renders one zone as a GeoJSON Feature.
func FeatureJSON(z Zone) ([]byte, error) {
	props, err := json.Marshal(map[string]any{
		"code": z.Code, "kind": z.Kind, "name": z.Name, "legal_basis": z.LegalBasis,
		"county_code": z.CountyCode, "version": z.Version, "valid_from": z.ValidFrom.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, err
	}
	return []byte(`{"type":"Feature","properties":` + string(props) + `,"geometry":` + grid.GeometryJSON(z.Geometry) + `}`), nil
}

// DefineKind adds a kind to a county; defining it again renames it.
func (s *Store) DefineKind(ctx context.Context, county string, kind Kind, name string, actor uuid.UUID) error {
	if kind.IsBuiltin() {
		return structerr.NewAlreadyExists("%s is a built-in kind", kind)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO zones.kinds (county_code, kind, name, created_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (county_code, kind) DO UPDATE SET name = excluded.name`, county, string(kind), name, nullUUID(actor))
	return err
}

// RulesFor returns the rules of every kind in county: the county's own,
// the built-in defaults for built-in kinds it set no rule for. q may be a
// transaction of the caller's.
func RulesFor(ctx context.Context, q database.Querier, county string) ([]Rule, error) {
	rows, err := q.Query(ctx, `SELECT kind, min_severity, deadline_hours, escalate_now, patrols_per_month, note
		FROM zones.rules WHERE county_code = $1 ORDER BY kind`, county)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[Kind]Rule{}
	for rows.Next() {
		r := Rule{CountyCode: county}
		var kind string
		var sev int16
		var hours int32
		if err := rows.Scan(&kind, &sev, &hours, &r.EscalateNow, &r.PatrolsPerMonth, &r.Note); err != nil {
			return nil, err
		}
		r.Kind, r.MinSeverity, r.Deadline = Kind(kind), ecogridv1.Severity(sev), time.Duration(hours)*time.Hour
		set[r.Kind] = r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Rule
	for _, d := range DefaultRules(county) {
		if r, ok := set[d.Kind]; ok {
			out = append(out, r)
			delete(set, d.Kind)
		} else {
			out = append(out, d)
		}
	}
	for _, r := range set {
		out = append(out, r)
	}
	slices.SortFunc(out[len(DefaultRules(county)):], func(a, b Rule) int { return compareKinds(a.Kind, b.Kind) })
	return out, nil
}

func compareKinds(a, b Kind) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetRule stores what a kind means in its county. The kind must be
// built-in or defined for the county.
func (s *Store) SetRule(ctx context.Context, r Rule, actor uuid.UUID) error {
	if err := checkRule(r); err != nil {
		return err
	}
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		kinds, err := countyKinds(ctx, tx, r.CountyCode)
		if err != nil {
			return err
		}
		if !kinds[r.Kind] {
			return structerr.NewFailedPrecondition("kind %s is not defined in county %s: DefineZoneKind first", r.Kind, r.CountyCode)
		}
		_, err = tx.Exec(ctx, `INSERT INTO zones.rules (county_code, kind, min_severity, deadline_hours, escalate_now, patrols_per_month, note, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (county_code, kind) DO UPDATE SET min_severity = excluded.min_severity, deadline_hours = excluded.deadline_hours,
				escalate_now = excluded.escalate_now, patrols_per_month = excluded.patrols_per_month, note = excluded.note,
				updated_by = excluded.updated_by, updated_at = now()`,
			r.CountyCode, string(r.Kind), int16(r.MinSeverity), int32(r.Deadline/time.Hour), r.EscalateNow, r.PatrolsPerMonth, r.Note, nullUUID(actor))
		return err
	})
}

// checkRule refuses a rule a county could not mean.
func checkRule(r Rule) error {
	switch {
	case !ValidCounty(r.CountyCode):
		return structerr.NewInvalidArgument("county_code %.20q is not six digits", r.CountyCode)
	case !ValidKindName(string(r.Kind)):
		return structerr.NewInvalidArgument("kind %.40q is not a kind name", r.Kind)
	case r.MinSeverity < 0 || r.MinSeverity > ecogridv1.Severity_SEVERITY_CRITICAL:
		return structerr.NewInvalidArgument("min_severity %d is not a severity", r.MinSeverity)
	case r.Deadline < 0 || r.Deadline > 365*24*time.Hour || r.Deadline%time.Hour != 0:
		return structerr.NewInvalidArgument("deadline_hours must be 0 to 8760")
	case r.PatrolsPerMonth < 0 || r.PatrolsPerMonth > 1000:
		return structerr.NewInvalidArgument("patrols_per_month must be 0 to 1000")
	case len(r.Note) > maxTextField:
		return structerr.NewInvalidArgument("note may have at most %d bytes", maxTextField)
	}
	return nil
}
