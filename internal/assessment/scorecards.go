package assessment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// lookBack is how far before a period case records are read: to time the
// response of a case opened earlier and accepted in the period, and to
// know the deadlines of cases still open at its end.
const lookBack = 120 * 24 * time.Hour

// MaxTrend bounds the previous periods a trend compares with.
const MaxTrend = 6

// bounds fix what a computation may see: everything now (open periods),
// or exactly what a closed period counted.
type bounds struct {
	upToSeq  int64     // last ledger record counted; -1: no bound
	endedBy  time.Time // patrols ended by then; zero: any
	closedAt time.Time
}

var now = bounds{upToSeq: -1}

// closedPeriod is a level's frozen scorecards as stored.
type closedPeriod struct {
	Period     Period      `json:"period"`
	Level      string      `json:"level"`
	UpToSeq    int64       `json:"up_to_seq"`
	ClosedAt   time.Time   `json:"closed_at"`
	Scorecards []Scorecard `json:"scorecards"`
	seq        int64
	digest     string
}

// closedRecord is the payload of the period_closed ledger record.
type closedRecord struct {
	Period   Period            `json:"period"`
	UpToSeq  int64             `json:"up_to_seq"`
	ClosedAt time.Time         `json:"closed_at"`
	Digests  map[string]string `json:"sha256"` // per level, of the stored scorecards
	Counts   map[string]int    `json:"scorecards"`
}

func closedRow(ctx context.Context, q database.Querier, p Period, level string) (closedPeriod, bool, error) {
	var blob []byte
	var cp closedPeriod
	err := q.QueryRow(ctx, `SELECT scorecards, digest, up_to_seq, ledger_seq, closed_at FROM assessment.closed_periods
		WHERE county_code = $1 AND period = $2 AND level = $3`, p.County, p.Label, level).Scan(&blob, &cp.digest, &cp.UpToSeq, &cp.seq, &cp.ClosedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, err
	}
	sum := sha256.Sum256(blob)
	if hex.EncodeToString(sum[:]) != cp.digest {
		return cp, false, structerr.NewFailedPrecondition("the frozen scorecards of %s %s were altered (their SHA-256 differs from the ledgered one)", p.County, p.Label)
	}
	if err := json.Unmarshal(blob, &cp.Scorecards); err != nil {
		return cp, false, fmt.Errorf("assessment: closed period %s %s: %w", p.County, p.Label, err)
	}
	cp.Period, cp.Level = p, level
	return cp, true, nil
}

// frozen returns a closed level after checking its digest against the
// period_closed ledger record.
func (a *Assessor) frozen(ctx context.Context, p Period, level string) (closedPeriod, bool, error) {
	cp, ok, err := closedRow(ctx, a.pool, p, level)
	if err != nil || !ok {
		return cp, ok, err
	}
	rs, _, err := a.ledger.SubjectHistory(ctx, "assessment_period", p.subjectID(),
		ledger.HistoryQuery{Scope: []string{p.County}, Actions: []string{ActionPeriodClosed}, Limit: 1})
	if err != nil {
		return cp, false, err
	}
	var rec closedRecord
	if len(rs) == 0 || rs[0].Seq != cp.seq || json.Unmarshal(rs[0].Payload, &rec) != nil || rec.Digests[level] != cp.digest {
		return cp, false, structerr.NewFailedPrecondition("the frozen scorecards of %s %s do not match their ledger record (verify the ledger)", p.County, p.Label)
	}
	return cp, true, nil
}

// gather reads what Compute needs for a period within bounds b.
func (a *Assessor) gather(ctx context.Context, p Period, b bounds) (Input, error) {
	in := Input{Period: p, LateAfter: -1}
	var err error
	if in.Catalogue, err = catalogue(ctx, a.pool, p.County); err != nil {
		return in, err
	}
	if in.Weights, err = weightSets(ctx, a.pool, p.County); err != nil {
		return in, err
	}
	kinds, err := nodeKinds(ctx, a.pool, p.County)
	if err != nil {
		return in, err
	}
	var villages []string
	err = a.grid.Subtree(ctx, grid.SubtreeQuery{RootCode: p.County, MaxLevel: grid.LevelVillage}, func(n *grid.Node) error {
		if n.Level != grid.LevelTownship && n.Level != grid.LevelVillage {
			return nil
		}
		kind := kinds[n.Code]
		if kind == "" && len(n.Code) > 9 {
			kind = kinds[n.Code[:9]]
		}
		if kind == "" {
			kind = DefaultKind
		}
		in.Nodes = append(in.Nodes, Node{Code: n.Code, Name: n.Name, AreaKm2: n.AreaHa / 100, Kind: kind})
		if n.Level == grid.LevelVillage {
			villages = append(villages, n.Code)
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	rules, err := field.PatrolRules(ctx, a.pool, villages)
	if err != nil {
		return in, err
	}
	for i := range in.Nodes {
		if r, ok := rules[in.Nodes[i].Code]; ok {
			in.Nodes[i].QuotaPerMonth = r.Required(field.PeriodMonth)
		}
	}
	if in.Posts, err = a.posts(ctx, p, b); err != nil {
		return in, err
	}
	// The previous period's close: data recorded after it about earlier
	// times counts here, flagged.
	prev := p.Prev()
	prevClosed, isClosed, err := closedRow(ctx, a.pool, prev, LevelVillage)
	if err != nil {
		return in, err
	}
	if isClosed {
		in.LateAfter = prevClosed.UpToSeq
	}
	err = a.ledger.Scan(ctx, ledger.ScanQuery{NodePrefix: p.County, Actions: []string{"case.*", "violation.reported"},
		From: p.From.Add(-lookBack), To: p.To, AlsoAfterSeq: in.LateAfter, UpToSeq: b.upToSeq, PersonIDsOnly: true}, func(r *ledger.Record) error {
		in.Records = append(in.Records, r)
		return nil
	})
	if err != nil {
		return in, err
	}
	if in.Patrols, err = field.PatrolsOfCounty(ctx, a.pool, p.County, p.From, p.To, b.endedBy); err != nil {
		return in, err
	}
	if in.Values, err = periodValues(ctx, a.pool, p.County, p.Label, b.upToSeq); err != nil {
		return in, err
	}
	if isClosed {
		late, err := periodValues(ctx, a.pool, p.County, prev.Label, b.upToSeq)
		if err != nil {
			return in, err
		}
		for _, v := range late {
			if v.Seq > prevClosed.UpToSeq {
				v.Late = true
				in.Values = append(in.Values, v)
			}
		}
	}
	return in, nil
}

// posts reads the county's posts from the assignment records of its chain.
func (a *Assessor) posts(ctx context.Context, p Period, b bounds) ([]Post, error) {
	byID := map[string]*Post{}
	var order []string
	err := a.ledger.Scan(ctx, ledger.ScanQuery{NodePrefix: p.County, Actions: []string{"assignment.*"}, To: p.To, AlsoAfterSeq: -1, UpToSeq: b.upToSeq},
		func(r *ledger.Record) error {
			var pl struct {
				PersonID   string `json:"person_id"`
				PersonName string `json:"person_name"`
				Role       string `json:"role"`
				NodeCode   string `json:"node_code"`
				ValidFrom  string `json:"valid_from"`
				ValidTo    string `json:"valid_to"`
			}
			if json.Unmarshal(r.Payload, &pl) != nil || pl.PersonID == "" {
				return nil
			}
			post := byID[r.SubjectID]
			if post == nil {
				post = &Post{AssignmentID: r.SubjectID, PersonID: pl.PersonID, Name: pl.PersonName, Role: pl.Role, NodeCode: pl.NodeCode}
				if post.NodeCode == "" {
					post.NodeCode = r.NodeCode
				}
				byID[r.SubjectID] = post
				order = append(order, r.SubjectID)
			}
			if t, err := time.Parse(time.RFC3339Nano, pl.ValidFrom); err == nil {
				post.From = t
			}
			if t, err := time.Parse(time.RFC3339Nano, pl.ValidTo); err == nil {
				post.To = &t
			}
			return nil
		})
	out := make([]Post, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out, err
}

// Query asks for the scorecards of one level of a county's period.
type Query struct {
	County string
	Period string
	Level  string // village, township, person
	// Parent narrows to the scorecards under a township (villages,
	// people) or, for townships, is the county; "": all.
	Parent string
	// Trend is how many previous periods to compare with (0..MaxTrend).
	Trend int
}

func (q Query) check() (Period, error) {
	p, err := ParsePeriod(q.County, q.Period)
	if err != nil {
		return p, err
	}
	if q.Level != LevelVillage && q.Level != LevelTownship && q.Level != LevelPerson {
		return p, structerr.NewInvalidArgument("level must be village, township or person")
	}
	if q.Parent != "" && (!digits(q.Parent) || !strings.HasPrefix(q.Parent, q.County) || len(q.Parent) > 32) {
		return p, structerr.NewInvalidArgument("parent %.40q is not a grid code in county %s", q.Parent, q.County)
	}
	if q.Trend < 0 || q.Trend > MaxTrend {
		return p, structerr.NewInvalidArgument("trend compares with 0 to %d previous periods", MaxTrend)
	}
	return p, nil
}

// Scorecards returns a level's scorecards: the frozen ones when the
// period is closed (closed=true), computed now otherwise; without items
// (see Detail).
func (a *Assessor) Scorecards(ctx context.Context, c scope.Caller, q Query) ([]Scorecard, bool, error) {
	p, err := q.check()
	if err != nil {
		return nil, false, err
	}
	if _, err := office(c, p.County); err != nil {
		return nil, false, err
	}
	cards, closed, err := a.level(ctx, p, q.Level)
	if err != nil {
		return nil, false, err
	}
	cards = underParent(cards, q.Parent)
	prev := p
	for range q.Trend {
		prev = prev.Prev()
		old, _, err := a.level(ctx, prev, q.Level)
		if err != nil {
			return nil, false, err
		}
		totals := map[string]float64{}
		for _, o := range old {
			totals[o.Code] = o.Total
		}
		for i := range cards {
			t, ok := totals[cards[i].Code]
			cards[i].Trend = append(cards[i].Trend, TrendPoint{Period: prev.Label, Total: t, Found: ok})
		}
	}
	return cards, closed, nil
}

func underParent(cards []Scorecard, parent string) []Scorecard {
	if parent == "" {
		return cards
	}
	out := cards[:0:0]
	for _, c := range cards {
		if strings.HasPrefix(c.Parent, parent) || (c.Level != LevelPerson && strings.HasPrefix(c.Code, parent)) {
			out = append(out, c)
		}
	}
	return out
}

// level returns a level's scorecards without items.
func (a *Assessor) level(ctx context.Context, p Period, level string) ([]Scorecard, bool, error) {
	if cp, ok, err := a.frozen(ctx, p, level); err != nil || ok {
		return cp.Scorecards, ok, err
	}
	in, err := a.gather(ctx, p, now)
	if err != nil {
		return nil, false, err
	}
	in.NoItems = true
	cards := Compute(in).Level(level)
	stripItems(cards)
	return cards, false, nil
}

func stripItems(cards []Scorecard) {
	for i := range cards {
		for j := range cards[i].Figures {
			cards[i].Figures[j].Items = nil
		}
	}
}

// Detail returns one figure of one scorecard with the items it counts
// (the drill-down). For a closed period the items are recomputed from
// exactly what it counted and the figure is the frozen one.
func (a *Assessor) Detail(ctx context.Context, c scope.Caller, q Query, code, indicator string) (Figure, bool, error) {
	p, err := q.check()
	if err != nil {
		return Figure{}, false, err
	}
	if _, err := office(c, p.County); err != nil {
		return Figure{}, false, err
	}
	b := now
	cp, closed, err := a.frozen(ctx, p, q.Level)
	if err != nil {
		return Figure{}, false, err
	}
	if closed {
		b = bounds{upToSeq: cp.UpToSeq, endedBy: cp.ClosedAt}
	}
	in, err := a.gather(ctx, p, b)
	if err != nil {
		return Figure{}, false, err
	}
	for _, s := range Compute(in).Level(q.Level) {
		if s.Code != code {
			continue
		}
		f := s.Figure(indicator)
		if f.Code == "" {
			return Figure{}, false, structerr.NewNotFound("indicator %.40q not found", indicator)
		}
		if closed {
			for _, fs := range cp.Scorecards {
				if fs.Code == code {
					items := f.Items
					f = fs.Figure(indicator)
					f.Items = items
				}
			}
		}
		return f, closed, nil
	}
	return Figure{}, false, structerr.NewNotFound("no %s scorecard %.40q in %s %s", q.Level, code, p.County, p.Label)
}

// ClosePeriod freezes a period that has ended: its scorecards at every
// level are stored with their SHA-256, which a period_closed ledger
// record carries (then signed by a checkpoint when this server can sign).
// Closing a closed period returns the record of its close.
func (a *Assessor) ClosePeriod(ctx context.Context, c scope.Caller, county, label string) (ledger.Record, error) {
	p, err := ParsePeriod(county, label)
	if err != nil {
		return ledger.Record{}, err
	}
	g, err := office(c, p.County)
	if err != nil {
		return ledger.Record{}, err
	}
	if at := a.now(); p.To.After(at) {
		return ledger.Record{}, structerr.NewFailedPrecondition("period %s has not ended yet (it ends %s)", p.Label, p.To.Format(time.RFC3339))
	}
	if rec, ok, err := a.closeRecord(ctx, p); err != nil || ok {
		return rec, err
	}
	size, err := a.ledger.ChainSize(ctx, p.County)
	if err != nil {
		return ledger.Record{}, err
	}
	closedAt := a.now().UTC().Truncate(time.Microsecond)
	b := bounds{upToSeq: size - 1, endedBy: closedAt}
	in, err := a.gather(ctx, p, b)
	if err != nil {
		return ledger.Record{}, err
	}
	in.NoItems = true
	res := Compute(in)
	rec := closedRecord{Period: p, UpToSeq: b.upToSeq, ClosedAt: closedAt, Digests: map[string]string{}, Counts: map[string]int{}}
	blobs := map[string][]byte{}
	for _, level := range []string{LevelVillage, LevelTownship, LevelPerson} {
		cards := res.Level(level)
		stripItems(cards)
		if cards == nil {
			cards = []Scorecard{}
		}
		blob, err := json.Marshal(cards)
		if err != nil {
			return ledger.Record{}, err
		}
		sum := sha256.Sum256(blob)
		blobs[level], rec.Digests[level], rec.Counts[level] = blob, hex.EncodeToString(sum[:]), len(cards)
	}
	var out ledger.Record
	err = database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		var err error
		out, err = a.record(ctx, tx, c, g, p.County, ActionPeriodClosed, "assessment_period", p.subjectID(), p.County, rec)
		if err != nil {
			return err
		}
		for level, blob := range blobs {
			tag, err := tx.Exec(ctx, `INSERT INTO assessment.closed_periods (county_code, period, level, scorecards, digest, up_to_seq, ledger_seq, closed_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`, p.County, p.Label, level, blob, rec.Digests[level], b.upToSeq, out.Seq, closedAt)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errAlreadyClosed
			}
		}
		return nil
	})
	if errors.Is(err, errAlreadyClosed) {
		rec, _, err := a.closeRecord(ctx, p)
		return rec, err
	}
	if err != nil {
		return ledger.Record{}, err
	}
	// Sign it now when this server can; otherwise (or if signing fails)
	// the periodic checkpointer signs it with the rest of the chain. The
	// close itself is committed either way.
	if a.ledger.Keys().Signer() != nil {
		_, _ = a.ledger.Checkpoint(ctx, p.County)
	}
	return out, nil
}

var errAlreadyClosed = errors.New("assessment: period closed concurrently")

func (a *Assessor) closeRecord(ctx context.Context, p Period) (ledger.Record, bool, error) {
	rs, _, err := a.ledger.SubjectHistory(ctx, "assessment_period", p.subjectID(),
		ledger.HistoryQuery{Scope: []string{p.County}, Actions: []string{ActionPeriodClosed}, Limit: 1})
	if err != nil || len(rs) == 0 {
		return ledger.Record{}, false, err
	}
	return rs[0], true, nil
}
