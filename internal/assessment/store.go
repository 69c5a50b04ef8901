package assessment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Ledger actions written by this package.
const (
	ActionIndicatorDefined = "assessment.indicator_defined"
	ActionWeightsSet       = "assessment.weights_set"
	ActionNodeKindSet      = "assessment.node_kind_set"
	ActionValueRecorded    = "assessment.value_recorded"
	ActionPeriodClosed     = "assessment.period_closed"
)

// MaxAttachment is the largest evidence attachment kept with a value.
const MaxAttachment = 2 << 20

// Assessor keeps the county's catalogue, computes scorecards and closes
// periods.
type Assessor struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	grid   *grid.Store
	now    func() time.Time
}

// New returns an Assessor.
func New(pool *pgxpool.Pool, l *ledger.Ledger) *Assessor {
	return &Assessor{pool: pool, ledger: l, grid: grid.NewStore(pool, grid.Config{}), now: time.Now}
}

// office returns the caller's county-office grant for county, NotFound
// otherwise (another county's objects do not exist for the caller).
func office(c scope.Caller, county string) (scope.Grant, error) {
	g, ok := c.GrantFor(county, scope.RoleCountyOfficer)
	if !ok {
		return g, structerr.NewNotFound("county %s not found", county)
	}
	return g, nil
}

func checkCounty(county string) error {
	if len(county) != 6 || !digits(county) {
		return structerr.NewInvalidArgument("county code %.40q is not six digits", county)
	}
	return nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (a *Assessor) record(ctx context.Context, tx pgx.Tx, c scope.Caller, g scope.Grant, county, action, subjectType, subjectID, node string, payload any) (ledger.Record, error) {
	return ledger.Append(ctx, tx, ledger.Entry{CountyCode: county, ActorID: c.PersonID, ActorRole: string(g.Role), ActorNodeCode: g.NodeCode,
		Action: action, SubjectType: subjectType, SubjectID: subjectID, NodeCode: node, Payload: payload})
}

// Catalogue returns a county's indicators: the built-in ones (as the
// county redefined them) then the county's external ones, by code.
func (a *Assessor) Catalogue(ctx context.Context, c scope.Caller, county string) ([]Indicator, error) {
	if err := checkCounty(county); err != nil {
		return nil, err
	}
	if _, err := office(c, county); err != nil {
		return nil, err
	}
	return catalogue(ctx, a.pool, county)
}

func catalogue(ctx context.Context, q database.Querier, county string) ([]Indicator, error) {
	rows, err := q.Query(ctx, `SELECT code, name, definition, unit, direction, best, worst, source
		FROM assessment.indicators WHERE county_code = $1 ORDER BY code`, county)
	if err != nil {
		return nil, err
	}
	own, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Indicator, error) {
		var ind Indicator
		err := r.Scan(&ind.Code, &ind.Name, &ind.Definition, &ind.Unit, &ind.Direction, &ind.Best, &ind.Worst, &ind.Source)
		return ind, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Indicator, 0, len(BuiltinIndicators)+len(own))
	for _, b := range BuiltinIndicators {
		for _, o := range own {
			if o.Code == b.Code {
				b = o
			}
		}
		out = append(out, b)
	}
	for _, o := range own {
		if o.Source == External {
			out = append(out, o)
		}
	}
	return out, nil
}

// DefineIndicator adds an external indicator to a county's catalogue or
// redefines one (its name, definition, unit and scoring rule); a built-in
// indicator keeps its code, source and direction.
func (a *Assessor) DefineIndicator(ctx context.Context, c scope.Caller, county string, ind Indicator) (Indicator, error) {
	if err := checkCounty(county); err != nil {
		return ind, err
	}
	g, err := office(c, county)
	if err != nil {
		return ind, err
	}
	if IsBuiltin(ind.Code) {
		for _, b := range BuiltinIndicators {
			if b.Code == ind.Code && (ind.Source != Builtin || ind.Direction != b.Direction) {
				return ind, structerr.NewInvalidArgument("%s is a built-in indicator: its source and direction (%s is better) cannot change", ind.Code, b.Direction)
			}
		}
	} else if ind.Source != External {
		return ind, structerr.NewInvalidArgument("a county's own indicator %s must have source external (built-in ones are computed by the system)", ind.Code)
	}
	if err := ind.Check(); err != nil {
		return ind, err
	}
	err = database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment.indicators (county_code, code, name, definition, unit, direction, best, worst, source)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (county_code, code) DO UPDATE SET name = $3, definition = $4, unit = $5, direction = $6, best = $7, worst = $8, updated_at = now()`,
			county, ind.Code, ind.Name, ind.Definition, ind.Unit, ind.Direction, ind.Best, ind.Worst, ind.Source); err != nil {
			return err
		}
		_, err := a.record(ctx, tx, c, g, county, ActionIndicatorDefined, "assessment_indicator", county+"/"+ind.Code, county, ind)
		return err
	})
	return ind, err
}

// WeightSets returns a county's weight sets by kind of area: its own
// where it set them, the built-in ones otherwise.
func (a *Assessor) WeightSets(ctx context.Context, c scope.Caller, county string) (map[AreaKind]Weights, error) {
	if err := checkCounty(county); err != nil {
		return nil, err
	}
	if _, err := office(c, county); err != nil {
		return nil, err
	}
	return weightSets(ctx, a.pool, county)
}

func weightSets(ctx context.Context, q database.Querier, county string) (map[AreaKind]Weights, error) {
	out := map[AreaKind]Weights{}
	for k, w := range DefaultWeights {
		out[k] = w
	}
	rows, err := q.Query(ctx, `SELECT area_kind, indicator, weight FROM assessment.weights WHERE county_code = $1`, county)
	if err != nil {
		return nil, err
	}
	own := map[AreaKind]Weights{}
	var kind AreaKind
	var code string
	var w float64
	_, err = pgx.ForEachRow(rows, []any{&kind, &code, &w}, func() error {
		if own[kind] == nil {
			own[kind] = Weights{}
		}
		own[kind][code] = w
		return nil
	})
	for k, ws := range own {
		out[k] = ws
	}
	return out, err
}

// SetWeights replaces a county's weight set for a kind of area. Weights
// are between 0 and 1 and at least one is positive; every code must be
// in the county's catalogue.
func (a *Assessor) SetWeights(ctx context.Context, c scope.Caller, county string, kind AreaKind, w Weights) error {
	if err := checkCounty(county); err != nil {
		return err
	}
	g, err := office(c, county)
	if err != nil {
		return err
	}
	if !codeRE.MatchString(string(kind)) {
		return structerr.NewInvalidArgument("kind of area %.40q must be 2-40 lower-case letters, digits or _", kind)
	}
	cat, err := catalogue(ctx, a.pool, county)
	if err != nil {
		return err
	}
	positive := false
	for code, x := range w {
		found := false
		for _, ind := range cat {
			found = found || ind.Code == code
		}
		if !found {
			return structerr.NewInvalidArgument("indicator %.40q is not in county %s's catalogue", code, county)
		}
		if math.IsNaN(x) || x < 0 || x > 1 {
			return structerr.NewInvalidArgument("weight of %s must be between 0 and 1", code)
		}
		positive = positive || x > 0
	}
	if !positive {
		return structerr.NewInvalidArgument("a weight set needs at least one positive weight")
	}
	return database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM assessment.weights WHERE county_code = $1 AND area_kind = $2`, county, kind); err != nil {
			return err
		}
		for code, x := range w {
			if _, err := tx.Exec(ctx, `INSERT INTO assessment.weights (county_code, area_kind, indicator, weight) VALUES ($1, $2, $3, $4)`,
				county, kind, code, x); err != nil {
				return err
			}
		}
		_, err := a.record(ctx, tx, c, g, county, ActionWeightsSet, "assessment_weights", county+"/"+string(kind), county,
			map[string]any{"kind": kind, "weights": w})
		return err
	})
}

// SetNodeKind chooses the kind of area of a township or village (its
// villages inherit a township's kind unless set themselves).
func (a *Assessor) SetNodeKind(ctx context.Context, c scope.Caller, node string, kind AreaKind) error {
	if len(node) < 9 || !digits(node) || len(node) > 32 {
		return structerr.NewInvalidArgument("%.40q is not the code of a township or village", node)
	}
	g, err := office(c, node[:6])
	if err != nil {
		return err
	}
	if !codeRE.MatchString(string(kind)) {
		return structerr.NewInvalidArgument("kind of area %.40q must be 2-40 lower-case letters, digits or _", kind)
	}
	if _, err := a.grid.NodeByCode(ctx, node); err != nil {
		return structerr.NewNotFound("grid node %s not found", node)
	}
	return database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment.node_kinds (node_code, area_kind) VALUES ($1, $2)
			ON CONFLICT (node_code) DO UPDATE SET area_kind = $2, updated_at = now()`, node, kind); err != nil {
			return err
		}
		_, err := a.record(ctx, tx, c, g, node[:6], ActionNodeKindSet, "grid_node", node, node, map[string]any{"kind": kind})
		return err
	})
}

func nodeKinds(ctx context.Context, q database.Querier, county string) (map[string]AreaKind, error) {
	rows, err := q.Query(ctx, `SELECT node_code, area_kind FROM assessment.node_kinds WHERE node_code LIKE $1 || '%'`, county)
	if err != nil {
		return nil, err
	}
	out := map[string]AreaKind{}
	var code string
	var kind AreaKind
	_, err = pgx.ForEachRow(rows, []any{&code, &kind}, func() error { out[code] = kind; return nil })
	return out, err
}

// ValueInput is a value another department supplies.
type ValueInput struct {
	ID             string // client-generated uuid (idempotency)
	Period         string
	NodeCode       string
	Indicator      string
	Value          float64
	EvidenceNote   string
	AttachmentName string
	AttachmentType string
	Attachment     []byte
}

// RecordValue enters an external indicator's value for a node and period,
// with its evidence, and ledgers it. A value for a closed period is kept
// and counted in the next period, flagged late. Repeating an id returns
// the value first entered under it.
func (a *Assessor) RecordValue(ctx context.Context, c scope.Caller, in ValueInput) (Value, error) {
	if _, err := uuid.Parse(in.ID); err != nil || len(in.ID) != 36 {
		return Value{}, structerr.NewInvalidArgument("value id %.40q is not a uuid", in.ID)
	}
	if len(in.NodeCode) < 9 || !digits(in.NodeCode) || len(in.NodeCode) > 32 {
		return Value{}, structerr.NewInvalidArgument("%.40q is not the code of a township or village", in.NodeCode)
	}
	p, err := ParsePeriod(in.NodeCode[:6], in.Period)
	if err != nil {
		return Value{}, err
	}
	g, err := office(c, p.County)
	if err != nil {
		return Value{}, err
	}
	switch {
	case math.IsNaN(in.Value) || math.IsInf(in.Value, 0):
		return Value{}, structerr.NewInvalidArgument("the value must be a finite number")
	case in.EvidenceNote == "" || utf8.RuneCountInString(in.EvidenceNote) > 2000 || !utf8.ValidString(in.EvidenceNote):
		return Value{}, structerr.NewInvalidArgument("an evidence note (who measured it, where it is documented; at most 2000 characters) is required")
	case len(in.Attachment) > MaxAttachment:
		return Value{}, structerr.NewInvalidArgument("the attachment is larger than %d bytes", MaxAttachment)
	case len(in.Attachment) > 0 && (in.AttachmentName == "" || len(in.AttachmentName) > 200 || !utf8.ValidString(in.AttachmentName)):
		return Value{}, structerr.NewInvalidArgument("an attachment needs a file name of at most 200 bytes")
	case len(in.AttachmentType) > 100:
		return Value{}, structerr.NewInvalidArgument("attachment type too long")
	}
	if prior, ok, err := valueByID(ctx, a.pool, in.ID); err != nil || ok {
		if ok && (prior.NodeCode != in.NodeCode || prior.Indicator != in.Indicator || prior.Period != in.Period) {
			return Value{}, structerr.NewAlreadyExists("value id %s was already used for another value", in.ID)
		}
		return prior, err
	}
	cat, err := catalogue(ctx, a.pool, p.County)
	if err != nil {
		return Value{}, err
	}
	external := false
	for _, ind := range cat {
		external = external || (ind.Code == in.Indicator && ind.Source == External)
	}
	if !external {
		return Value{}, structerr.NewInvalidArgument("%.40q is not an external indicator of county %s (define it first)", in.Indicator, p.County)
	}
	if _, err := a.grid.NodeByCode(ctx, in.NodeCode); err != nil {
		return Value{}, structerr.NewNotFound("grid node %s not found", in.NodeCode)
	}
	v := Value{ID: in.ID, Period: in.Period, NodeCode: in.NodeCode, Indicator: in.Indicator, Value: in.Value,
		EvidenceNote: in.EvidenceNote, AttachmentName: in.AttachmentName, EnteredBy: c.PersonID}
	if len(in.Attachment) > 0 {
		sum := sha256.Sum256(in.Attachment)
		v.AttachmentSHA = hex.EncodeToString(sum[:])
	}
	err = database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		rec, err := a.record(ctx, tx, c, g, p.County, ActionValueRecorded, "indicator_value", v.ID, v.NodeCode, v)
		if err != nil {
			return err
		}
		v.Seq, v.EnteredAt = rec.Seq, rec.RecordedAt
		var att []byte
		if len(in.Attachment) > 0 {
			att = in.Attachment
		}
		_, err = tx.Exec(ctx, `INSERT INTO assessment.external_values (id, county_code, period, node_code, indicator, value, evidence_note,
				attachment_name, attachment_type, attachment, attachment_sha256, entered_by, ledger_seq, entered_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			v.ID, p.County, v.Period, v.NodeCode, v.Indicator, v.Value, v.EvidenceNote, v.AttachmentName, in.AttachmentType, att,
			v.AttachmentSHA, v.EnteredBy, v.Seq, v.EnteredAt)
		return err
	})
	if err != nil {
		return Value{}, err
	}
	if _, closed, err := closedRow(ctx, a.pool, p, LevelVillage); err == nil && closed {
		v.Late = true
	}
	return v, nil
}

const valueColumns = `id::text, period, node_code, indicator, value, evidence_note, attachment_name, attachment_sha256, entered_by::text, entered_at, ledger_seq`

func scanValue(r pgx.CollectableRow) (Value, error) {
	var v Value
	err := r.Scan(&v.ID, &v.Period, &v.NodeCode, &v.Indicator, &v.Value, &v.EvidenceNote, &v.AttachmentName, &v.AttachmentSHA, &v.EnteredBy, &v.EnteredAt, &v.Seq)
	return v, err
}

func valueByID(ctx context.Context, q database.Querier, id string) (Value, bool, error) {
	rows, err := q.Query(ctx, `SELECT `+valueColumns+` FROM assessment.external_values WHERE id = $1`, id)
	if err != nil {
		return Value{}, false, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanValue)
	if errors.Is(err, pgx.ErrNoRows) {
		return Value{}, false, nil
	}
	return v, err == nil, err
}

// periodValues returns the values entered for a period up to seq upTo
// (negative: all).
func periodValues(ctx context.Context, q database.Querier, county, period string, upTo int64) ([]Value, error) {
	rows, err := q.Query(ctx, `SELECT `+valueColumns+` FROM assessment.external_values
		WHERE county_code = $1 AND period = $2 AND ($3 < 0 OR ledger_seq <= $3) ORDER BY ledger_seq`, county, period, upTo)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanValue)
}

// Attachment returns a value's evidence attachment.
func (a *Assessor) Attachment(ctx context.Context, c scope.Caller, id string) (name, contentType string, data []byte, err error) {
	if _, err := uuid.Parse(id); err != nil {
		return "", "", nil, structerr.NewInvalidArgument("value id %.40q is not a uuid", id)
	}
	var county string
	err = a.pool.QueryRow(ctx, `SELECT county_code, attachment_name, attachment_type, COALESCE(attachment, '')
		FROM assessment.external_values WHERE id = $1`, id).Scan(&county, &name, &contentType, &data)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !c.Covers(county, scope.RoleCountyOfficer)) {
		return "", "", nil, structerr.NewNotFound("indicator value %s not found", id)
	}
	return name, contentType, data, err
}
