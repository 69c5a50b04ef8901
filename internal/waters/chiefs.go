package waters

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// ChiefRole is what a chief answers for.
type ChiefRole string

// The chief roles.
const (
	RoleReachChief      ChiefRole = "reach_chief"       // 河长 of a river reach, 库长 of a reservoir or lake area
	RoleChiefRiverChief ChiefRole = "chief_river_chief" // 总河长 of a county
)

// PeriodQuarter extends grid's task periods for county chiefs, whose patrol
// quota is counted per quarter (县级河长每季度巡河).
const PeriodQuarter grid.TaskPeriod = "quarter"

// Task kinds of a chief.
const (
	TaskPatrol   = "patrol"   // 巡河/巡库
	TaskCleaning = "cleaning" // 保洁, done by a named cleaner (保洁员)
)

// ChiefTask is a standing duty of a chief: a patrol quota, or cleaning by a
// named cleaner.
type ChiefTask struct {
	Kind         string          `json:"kind"`
	Period       grid.TaskPeriod `json:"period"`
	Count        int             `json:"count"`
	CleanerName  string          `json:"cleaner_name,omitempty"`
	CleanerPhone string          `json:"cleaner_phone,omitempty"`
}

// Check reports why a task cannot be kept.
func (t ChiefTask) Check() error {
	switch t.Kind {
	case TaskPatrol, TaskCleaning:
	default:
		return structerr.NewInvalidArgument("task kind %.40q is not patrol or cleaning", t.Kind)
	}
	switch t.Period {
	case grid.PeriodDay, grid.PeriodWeek, grid.PeriodMonth, PeriodQuarter:
	default:
		return structerr.NewInvalidArgument("task period %.40q is not day, week, month or quarter", t.Period)
	}
	if t.Count < 1 || t.Count > 100 {
		return structerr.NewInvalidArgument("task count %d is not between 1 and 100", t.Count)
	}
	if t.Kind == TaskCleaning && strings.TrimSpace(t.CleanerName) == "" {
		return structerr.NewInvalidArgument("a cleaning task names its cleaner (保洁员)")
	}
	if utf8.RuneCountInString(t.CleanerName) > 100 || len(t.CleanerPhone) > 32 {
		return structerr.NewInvalidArgument("the cleaner's name is at most 100 characters and phone 32")
	}
	return nil
}

// Duty renders the task as a line of the public sign.
func (t ChiefTask) Duty() string {
	period := map[grid.TaskPeriod]string{grid.PeriodDay: "每日", grid.PeriodWeek: "每周", grid.PeriodMonth: "每月", PeriodQuarter: "每季度"}[t.Period]
	if t.Kind == TaskCleaning {
		s := fmt.Sprintf("保洁 %s%d次 保洁员 %s", period, t.Count, t.CleanerName)
		if t.CleanerPhone != "" {
			s += " " + t.CleanerPhone
		}
		return s
	}
	return fmt.Sprintf("巡查 %s不少于%d次", period, t.Count)
}

// DefaultTasks are the duties of a reach chief at a level when the
// appointment names none: a village chief patrols weekly (and must name a
// cleaner for the daily cleaning), a township chief monthly, a county chief
// quarterly.
func DefaultTasks(level grid.Level) []ChiefTask {
	switch level {
	case grid.LevelVillage, grid.LevelCell:
		return []ChiefTask{{Kind: TaskPatrol, Period: grid.PeriodWeek, Count: 1}}
	case grid.LevelTownship:
		return []ChiefTask{{Kind: TaskPatrol, Period: grid.PeriodMonth, Count: 1}}
	default:
		return []ChiefTask{{Kind: TaskPatrol, Period: PeriodQuarter, Count: 1}}
	}
}

// Chief is one appointment of a chief, kept for life.
type Chief struct {
	ID        uuid.UUID
	PersonID  uuid.UUID
	Name      string
	Phone     string
	Post      string
	Role      ChiefRole
	ReachCode string // "" for the chief river chief
	NodeCode  string // the reach's node, or the county
	Tasks     []ChiefTask
	ValidFrom time.Time
	ValidTo   *time.Time
	EndReason string
	// BodyKind is the kind of the reach's water body ("" for the chief
	// river chief), for the title.
	BodyKind Kind
}

// Level is the grid level the chief answers at.
func (c Chief) Level() grid.Level {
	l, _ := grid.LevelForCode(c.NodeCode)
	return l
}

// Title is what the sign calls the chief: 总河长, or the level and 河长/库长.
func (c Chief) Title() string {
	if c.Role == RoleChiefRiverChief {
		return "总河长"
	}
	level := map[grid.Level]string{grid.LevelCounty: "县级", grid.LevelTownship: "乡级", grid.LevelVillage: "村级"}[c.Level()]
	return level + c.BodyKind.ChiefTitle()
}

// Responsible is the chief as the ledger names the people responsible.
func (c Chief) Responsible() ledger.Responsible {
	return ledger.Responsible{PersonID: c.PersonID.String(), Name: c.Name, Role: string(c.Role), NodeCode: c.NodeCode}
}

// ActiveAt reports whether the appointment holds at t.
func (c Chief) ActiveAt(t time.Time) bool {
	return !c.ValidFrom.After(t) && (c.ValidTo == nil || c.ValidTo.After(t))
}

// NewChief is an appointment as requested.
type NewChief struct {
	ID         string
	PersonID   string
	Name       string
	Phone      string
	Post       string
	Role       ChiefRole
	ReachCode  string
	CountyCode string
	Tasks      []ChiefTask
	ValidFrom  time.Time // zero: now
}

// Check validates the request on its own, before the database is asked.
func (n *NewChief) Check() error {
	if _, err := uuid.Parse(n.ID); err != nil {
		return structerr.NewInvalidArgument("chief_id %.40q is not a UUID", n.ID)
	}
	if _, err := uuid.Parse(n.PersonID); err != nil {
		return structerr.NewInvalidArgument("person_id %.40q is not a UUID", n.PersonID)
	}
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" || utf8.RuneCountInString(n.Name) > 100 || !utf8.ValidString(n.Name) {
		return structerr.NewInvalidArgument("give the chief's name (at most 100 characters)")
	}
	if len(n.Phone) > 32 || utf8.RuneCountInString(n.Post) > 100 {
		return structerr.NewInvalidArgument("phone is at most 32 characters and post 100")
	}
	switch n.Role {
	case RoleReachChief:
		if !codePattern.MatchString(n.ReachCode) {
			return structerr.NewInvalidArgument("give the reach_code of a reach chief")
		}
	case RoleChiefRiverChief:
		if grid.CheckCode(n.CountyCode, grid.LevelCounty) != nil {
			return structerr.NewInvalidArgument("give the six-digit county_code of the chief river chief")
		}
	default:
		return structerr.NewInvalidArgument("role must be a reach chief or the chief river chief")
	}
	if len(n.Tasks) > 10 {
		return structerr.NewInvalidArgument("at most 10 tasks")
	}
	for _, t := range n.Tasks {
		if err := t.Check(); err != nil {
			return err
		}
	}
	return nil
}

// Actor is who appoints or ends a chief, under which grant.
type Actor struct {
	PersonID string
	Role     string
	NodeCode string
}

// assigners may appoint chiefs within their county; an administrator anywhere.
var assigners = []scope.Role{scope.RoleCountyOfficer}

// assignerGrant finds the caller's grant allowing appointments at node, or
// the error to answer: NotFound outside the caller's view, PermissionDenied
// inside it.
func assignerGrant(c scope.Caller, nodeCode string) (Actor, error) {
	if g, ok := c.GrantFor(nodeCode, assigners...); ok {
		return Actor{PersonID: c.PersonID, Role: string(g.Role), NodeCode: g.NodeCode}, nil
	}
	if Visible(c, nodeCode) {
		return Actor{}, structerr.NewPermissionDenied("only the county office appoints chiefs of %s", nodeCode)
	}
	return Actor{}, structerr.NewNotFound("grid node %s not found", nodeCode)
}

// Visible reports whether a reach (or chief) owned by nodeCode is visible
// to the caller: it is in the caller's subtree, or its node is an ancestor
// of the caller's (a village inspector sees the township's reach of the
// river through the village).
func Visible(c scope.Caller, nodeCode string) bool {
	for _, g := range c.Grants {
		if g.Role == scope.RoleAdmin || strings.HasPrefix(nodeCode, g.NodeCode) || strings.HasPrefix(g.NodeCode, nodeCode) {
			return true
		}
	}
	return false
}

func (n NewChief) hash() []byte {
	b, _ := json.Marshal(n)
	h := sha256.Sum256(b)
	return h[:]
}

const chiefColumns = `c.id, c.person_id, c.name, c.phone, c.post, c.role, coalesce(c.reach_code, ''), c.node_code, c.tasks,
	c.valid_from, c.valid_to, c.end_reason,
	coalesce((SELECT b.kind FROM waters.reaches r JOIN waters.bodies b ON b.code = r.body_code WHERE r.code = c.reach_code ORDER BY r.version DESC LIMIT 1), '')`

func scanChief(row pgx.Row) (Chief, error) {
	var c Chief
	var role, kind string
	err := row.Scan(&c.ID, &c.PersonID, &c.Name, &c.Phone, &c.Post, &role, &c.ReachCode, &c.NodeCode, &c.Tasks,
		&c.ValidFrom, &c.ValidTo, &c.EndReason, &kind)
	c.Role, c.BodyKind = ChiefRole(role), Kind(kind)
	return c, err
}

func getChief(ctx context.Context, q database.Querier, id uuid.UUID, lock bool) (Chief, []byte, error) {
	sql := `SELECT ` + chiefColumns + `, c.request_hash FROM waters.chiefs c WHERE c.id = $1`
	if lock {
		sql += ` FOR UPDATE OF c`
	}
	var hash []byte
	var c Chief
	var role, kind string
	err := q.QueryRow(ctx, sql, id).Scan(&c.ID, &c.PersonID, &c.Name, &c.Phone, &c.Post, &role, &c.ReachCode, &c.NodeCode, &c.Tasks,
		&c.ValidFrom, &c.ValidTo, &c.EndReason, &kind, &hash)
	c.Role, c.BodyKind = ChiefRole(role), Kind(kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return Chief{}, nil, structerr.NewNotFound("chief appointment %s not found", id)
	}
	return c, hash, err
}

// AssignChief appoints a chief for the caller (a county officer within
// their county, or an administrator) and records it in the ledger in the
// same transaction. A repeat of the same request returns the appointment
// with created false; the same id with another content is AlreadyExists.
func (s *Store) AssignChief(ctx context.Context, c scope.Caller, n NewChief) (Chief, bool, error) {
	if err := n.Check(); err != nil {
		return Chief{}, false, err
	}
	hash := n.hash() // before defaulting valid_from, so a retry matches
	if n.ValidFrom.IsZero() {
		n.ValidFrom = time.Now()
	}
	n.ValidFrom = n.ValidFrom.UTC().Truncate(time.Microsecond)
	id := uuid.MustParse(n.ID)
	if prev, prevHash, err := getChief(ctx, s.pool, id, false); err == nil {
		if string(prevHash) != string(hash) {
			return Chief{}, false, structerr.NewAlreadyExists("chief appointment %s exists with other content", id)
		}
		if !Visible(c, prev.NodeCode) {
			return Chief{}, false, structerr.NewNotFound("chief appointment %s not found", id)
		}
		return prev, false, nil
	} else if structerr.Code(err) != codes.NotFound {
		return Chief{}, false, err
	}

	ch := Chief{ID: id, PersonID: uuid.MustParse(n.PersonID), Name: n.Name, Phone: n.Phone, Post: n.Post, Role: n.Role, ValidFrom: n.ValidFrom, Tasks: n.Tasks}
	var level grid.Level
	if n.Role == RoleReachChief {
		r, err := s.ReachAt(ctx, n.ReachCode, time.Now())
		if err != nil {
			return Chief{}, false, err
		}
		if !Visible(c, r.NodeCode) {
			return Chief{}, false, structerr.NewNotFound("reach %.70q not found", n.ReachCode)
		}
		ch.ReachCode, ch.NodeCode, ch.BodyKind, level = r.Code, r.NodeCode, r.BodyKind, r.NodeLevel
	} else {
		county, err := s.grid.NodeByCode(ctx, n.CountyCode)
		if err != nil || county.RetiredAt != nil || !Visible(c, n.CountyCode) {
			if err != nil && structerr.Code(err) != codes.NotFound {
				return Chief{}, false, err
			}
			return Chief{}, false, structerr.NewNotFound("county %s not found", n.CountyCode)
		}
		ch.NodeCode, level = county.Code, grid.LevelCounty
	}
	actor, err := assignerGrant(c, ch.NodeCode)
	if err != nil {
		return Chief{}, false, err
	}
	if len(ch.Tasks) == 0 && ch.Role == RoleReachChief {
		ch.Tasks = DefaultTasks(level)
	}
	if ch.Role == RoleReachChief && level >= grid.LevelVillage && !hasTask(ch.Tasks, TaskCleaning) {
		return Chief{}, false, structerr.NewInvalidArgument("a village reach chief's duties include daily cleaning: add a cleaning task naming the cleaner (保洁员)")
	}
	if ch.Tasks == nil {
		ch.Tasks = []ChiefTask{}
	}
	var reach *string
	if ch.ReachCode != "" {
		reach = &ch.ReachCode
	}
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO waters.chiefs (id, request_hash, person_id, name, phone, post, role, county_code, reach_code, node_code, tasks, valid_from, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			ch.ID, hash, ch.PersonID, ch.Name, ch.Phone, ch.Post, string(ch.Role), grid.CountyCode(ch.NodeCode), reach, ch.NodeCode, ch.Tasks, ch.ValidFrom, nullUUID(actor.PersonID))
		if structerr.IsUniqueViolation(err, "chiefs_open") {
			return structerr.NewAlreadyExists("%s is already a chief of %s", ch.Name, firstNonEmpty(ch.ReachCode, ch.NodeCode))
		}
		if structerr.IsUniqueViolation(err, "chiefs_pkey") {
			return structerr.NewAborted("chief appointment %s was written concurrently; retry", ch.ID)
		}
		if err != nil {
			return err
		}
		return recordChief(ctx, tx, actor, "water_chief.assigned", ch)
	})
	if err != nil {
		return Chief{}, false, err
	}
	return ch, true, nil
}

func hasTask(ts []ChiefTask, kind string) bool {
	for _, t := range ts {
		if t.Kind == kind {
			return true
		}
	}
	return false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func nullUUID(s string) *uuid.UUID {
	id, err := uuid.Parse(s)
	if err != nil {
		return nil
	}
	return &id
}

func recordChief(ctx context.Context, tx pgx.Tx, a Actor, action string, ch Chief) error {
	actorRole := a.Role
	if actorRole == "" {
		actorRole = ledger.SystemActor
	}
	_, err := ledger.Append(ctx, tx, ledger.Entry{
		CountyCode: grid.CountyCode(ch.NodeCode), ActorID: a.PersonID, ActorRole: actorRole, ActorNodeCode: a.NodeCode,
		Action: action, SubjectType: "water_chief", SubjectID: ch.ID.String(), NodeCode: ch.NodeCode,
		Responsible: []ledger.Responsible{ch.Responsible()},
		Payload: map[string]any{"role": ch.Role, "reach_code": ch.ReachCode, "tasks": ch.Tasks, "valid_from": ch.ValidFrom,
			"valid_to": ch.ValidTo, "end_reason": ch.EndReason},
	})
	return err
}

// EndChief ends an appointment at validTo (zero: now), recorded in the
// ledger. Ending an ended appointment is FailedPrecondition.
func (s *Store) EndChief(ctx context.Context, c scope.Caller, id string, validTo time.Time, reason string) (Chief, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Chief{}, structerr.NewInvalidArgument("chief_id %.40q is not a UUID", id)
	}
	if utf8.RuneCountInString(reason) > 400 || !utf8.ValidString(reason) {
		return Chief{}, structerr.NewInvalidArgument("the reason is at most 400 characters")
	}
	if validTo.IsZero() {
		validTo = time.Now()
	}
	validTo = validTo.UTC().Truncate(time.Microsecond)
	var ch Chief
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		ch, _, err = getChief(ctx, tx, uid, true)
		if err != nil {
			return err
		}
		if !Visible(c, ch.NodeCode) {
			return structerr.NewNotFound("chief appointment %s not found", uid)
		}
		actor, err := assignerGrant(c, ch.NodeCode)
		if err != nil {
			return err
		}
		if ch.ValidTo != nil {
			return structerr.NewFailedPrecondition("the appointment ended on %s", ch.ValidTo.Format(time.DateOnly))
		}
		if validTo.Before(ch.ValidFrom) {
			return structerr.NewInvalidArgument("an appointment cannot end before it began (%s)", ch.ValidFrom.Format(time.RFC3339))
		}
		if _, err := tx.Exec(ctx, `UPDATE waters.chiefs SET valid_to = $2, ended_at = now(), ended_by = $3, end_reason = $4 WHERE id = $1`,
			uid, validTo, nullUUID(actor.PersonID), reason); err != nil {
			return err
		}
		ch.ValidTo, ch.EndReason = &validTo, reason
		return recordChief(ctx, tx, actor, "water_chief.ended", ch)
	})
	return ch, err
}

// ChiefsOn returns the people responsible for a reach on day, as the
// ledger names them: the chiefs of the reach, the chiefs of the same water
// body's reaches owned by the ancestors of its node (the township and
// county chiefs of that stretch), and the county's chief river chief, from
// the county down. Cases call it to name the chiefs in a violation's
// record; an unknown reach is NotFound.
func (s *Store) ChiefsOn(ctx context.Context, reachCode string, day time.Time) ([]ledger.Responsible, error) {
	chiefs, err := s.ChiefsAt(ctx, reachCode, day)
	if err != nil {
		return nil, err
	}
	out := make([]ledger.Responsible, len(chiefs))
	for i, c := range chiefs {
		out[i] = c.Responsible()
	}
	return out, nil
}

// ChiefsAt is ChiefsOn with the whole appointments.
func (s *Store) ChiefsAt(ctx context.Context, reachCode string, day time.Time) ([]Chief, error) {
	r, err := s.ReachAt(ctx, reachCode, day)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+chiefColumns+` FROM waters.chiefs c
		WHERE c.valid_from <= $1 AND (c.valid_to IS NULL OR c.valid_to > $1) AND (
			(c.role = 'reach_chief' AND c.reach_code IN (
				SELECT r.code FROM waters.reaches r
				WHERE r.body_code = $2 AND r.valid_from <= $1 AND (r.valid_to IS NULL OR r.valid_to > $1)
				  AND (r.code = $3 OR (length(r.node_code) < length($4) AND left($4, length(r.node_code)) = r.node_code))))
			OR (c.role = 'chief_river_chief' AND c.county_code = $5))
		ORDER BY c.role = 'reach_chief', length(c.node_code), c.valid_from, c.id`, day, r.BodyCode, r.Code, r.NodeCode, r.CountyCode())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Chief, error) { return scanChief(row) })
}

// Sign is the data of a reach's public sign (河长公示牌).
type Sign struct {
	Reach    Reach
	NodeName string
	Chiefs   []Chief
}

// SignOf returns the sign of a current reach: the reach, its node's name and
// today's chiefs from the chief river chief down.
func (s *Store) SignOf(ctx context.Context, reachCode string) (Sign, error) {
	now := time.Now()
	r, err := s.ReachAt(ctx, reachCode, now)
	if err != nil {
		return Sign{}, err
	}
	chiefs, err := s.ChiefsAt(ctx, reachCode, now)
	if err != nil {
		return Sign{}, err
	}
	sign := Sign{Reach: r, Chiefs: chiefs}
	if n, err := s.grid.NodeByCode(ctx, r.NodeCode); err == nil {
		sign.NodeName = n.Name
	}
	return sign, nil
}
