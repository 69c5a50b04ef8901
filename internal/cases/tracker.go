package cases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
	"ecogrid/internal/monitoring"
	"ecogrid/internal/outbox"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// eventNamespace derives CaseEvent ids from transition ids, and case and
// creation-transition ids from report and event ids, so that doing the same
// thing twice yields the same ids.
var eventNamespace = uuid.MustParse("5d3b1a8e-2f0c-4c7b-9d5e-6a1f0b2c3d4e")

// Tracker runs the case workflow against the database: every change of a
// case, its timeline entry, its ledger record and its CaseEvent commit in
// one transaction.
type Tracker struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
}

// NewTracker returns a tracker over pool.
func NewTracker(pool *pgxpool.Pool, log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{pool: pool, log: log, now: time.Now}
}

// Source says where a violation event came from, for the inbox.
type Source struct {
	Subject   string
	Kind      string // "jetstream" or "reconciler"
	StreamSeq uint64
}

// Opened is the outcome of handing a violation to OpenFromViolation.
type Opened struct {
	CaseID string
	// Created is false when the event or its report had been handled before.
	Created bool
}

// OpenFromViolation turns a reported violation into a case, exactly once:
// the event id goes into cases.inbox in the same transaction, and the case
// id is derived from the report id, so a redelivered, republished or
// reconciled event changes nothing. A malformed event is a *PoisonError.
func (t *Tracker) OpenFromViolation(ctx context.Context, ev *eventsv1.ViolationReported, src Source) (Opened, error) {
	out, err := t.OpenFromViolations(ctx, []*eventsv1.ViolationReported{ev}, []Source{src})
	if err != nil {
		return Opened{}, err
	}
	return out[0], nil
}

// OpenFromViolations is OpenFromViolation for several violations of one
// county in one transaction: one commit (one fsync) and one hold of the
// county's ledger chain for the lot, which is what lets cased keep up with
// a busy province. Either every violation is handled or none is: one that
// is not authentic fails the lot with its *PoisonError (OpenBatch leaves
// it out instead).
func (t *Tracker) OpenFromViolations(ctx context.Context, evs []*eventsv1.ViolationReported, srcs []Source) ([]Opened, error) {
	out, _, err := t.open(ctx, evs, srcs, false)
	return out, err
}

// OpenBatch is OpenFromViolations for the consumer: a violation that is
// not authentic (forged, republished under another id, altered) is left
// out of the transaction and reported by its *PoisonError in poison[i]
// (out[i] is then zero), and the others are handled; err fails them all.
func (t *Tracker) OpenBatch(ctx context.Context, evs []*eventsv1.ViolationReported, srcs []Source) (out []Opened, poison []error, err error) {
	return t.open(ctx, evs, srcs, true)
}

// open runs the batch as a pipelined transaction of three round trips,
// whatever its size:
//
//  1. BEGIN, field's record of every violation (authenticity) and the
//     people responsible where the ledger records need them;
//  2. the inbox rows, the cases and their timelines in one statement
//     (cases are created only for events new to the inbox and reports
//     without a case: the case id derives from the report id), and the
//     lock of the county's ledger chain;
//  3. the CaseEvents and the ledger records of the cases created, in one
//     statement per table, and COMMIT.
//
// The chain is thus held for one round trip and the commit's WAL flush.
func (t *Tracker) open(ctx context.Context, evs []*eventsv1.ViolationReported, srcs []Source, leaveOut bool) ([]Opened, []error, error) {
	now := t.now()
	list := make([]*Case, len(evs))
	for i, ev := range evs {
		c, err := caseFromViolation(ev, now)
		if err != nil {
			return nil, nil, err
		}
		if i > 0 && c.CountyCode != list[0].CountyCode {
			return nil, nil, fmt.Errorf("violations of counties %s and %s in one transaction", list[0].CountyCode, c.CountyCode)
		}
		list[i] = c
	}
	out := make([]Opened, len(evs))
	poison := make([]error, len(evs))
	if len(list) == 0 {
		return out, poison, nil
	}
	county := list[0].CountyCode
	tx, err := database.BeginPipe(ctx, t.pool)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(ctx)

	// 1. BEGIN, authenticity, responsible people.
	b := &pgx.Batch{}
	var fieldIDs []string
	for i, ev := range evs {
		if ev.GetSource() != monitoring.Source {
			fieldIDs = append(fieldIDs, list[i].ViolationEventID)
		}
	}
	recorded := make(map[string]field.StoredViolation, len(fieldIDs))
	field.QueueLookupViolations(b, fieldIDs, recorded)
	responsible := map[string]*[]ledger.Responsible{}
	for i, ev := range evs {
		c := list[i]
		if len(c.Responsible) > 0 && c.EscalatedAt == nil && !ev.GetEscalateNow() {
			continue // the opening record names the event's people
		}
		if _, ok := responsible[c.NodeCode]; ok {
			continue
		}
		r := new([]ledger.Responsible)
		if err := people.QueueResponsibleAt(b, c.NodeCode, c.CreatedAt, r); err != nil {
			return nil, nil, err
		}
		responsible[c.NodeCode] = r
	}
	if err := tx.Send(ctx, b); err != nil {
		return nil, nil, err
	}
	keep := make([]bool, len(list))
	for i, ev := range evs {
		c := list[i]
		var err error
		if ev.GetSource() == monitoring.Source {
			err = checkMonitoring(ctx, tx, ev, c)
		} else if v, ok := recorded[c.ViolationEventID]; !ok {
			err = &PoisonError{Reason: fmt.Sprintf("no violation with event id %s was recorded by the field service (forged or foreign event)", c.ViolationEventID)}
		} else {
			err = compareRecorded(ev, c, v)
		}
		var pe *PoisonError
		switch {
		case err == nil:
			keep[i] = true
		case errors.As(err, &pe) && leaveOut:
			poison[i] = err
		default:
			return nil, nil, err
		}
	}
	responsibleAt := func(node string, at time.Time) ([]ledger.Responsible, error) {
		if r, ok := responsible[node]; ok && at.Equal(now.UTC()) {
			return *r, nil
		}
		r, err := people.ResponsibleAt(ctx, tx, node, at)
		if err == nil {
			responsible[node] = &r
		}
		return r, err
	}

	// 2. Inbox, cases and timelines in one statement; the chain's lock.
	rows := newOpeningRows(county, now.UTC())
	firstOfEvent := map[string]int{}
	firstOfCase := map[string]int{}
	for i, c := range list {
		if !keep[i] {
			continue
		}
		if j, ok := firstOfEvent[c.ViolationEventID]; ok {
			// The same event twice in one batch (a redelivery while the
			// first was queued): handled once, as if one after the other.
			keep[i] = false
			out[i] = Opened{CaseID: list[j].ID}
			continue
		}
		firstOfEvent[c.ViolationEventID] = i
		// Only the first event of a report can create its case; a later
		// one (republished under another event id) is recorded in the inbox.
		_, seen := firstOfCase[c.ID]
		if !seen {
			firstOfCase[c.ID] = i
		}
		if err := rows.add(c, srcs[i], !seen); err != nil {
			return nil, nil, err
		}
	}
	b = &pgx.Batch{}
	created := map[string]bool{}
	rows.queue(b, created)
	lock := ledger.QueueLockHead(b, county)
	if err := tx.Send(ctx, b); err != nil {
		return nil, nil, err
	}
	head, err := lock()
	if err != nil {
		return nil, nil, err
	}

	// 3. CaseEvents, ledger records, COMMIT.
	var events []outbox.Event
	var entries []ledger.Entry
	for i, c := range list {
		if !keep[i] {
			continue
		}
		out[i] = Opened{CaseID: c.ID, Created: created[c.ID] && firstOfCase[c.ID] == i}
		if !out[i].Created {
			// The event was handled before, or its report already has a
			// case (republished under another event id).
			continue
		}
		for _, st := range openingSteps(c, srcs[i]) {
			actor := SystemActor(c.CountyCode)
			st.entry.setActor(actor)
			id, ev := caseEvent(c, st.entry, st.event)
			events = append(events, outbox.Event{CountyCode: c.CountyCode, Subject: messaging.CaseSubject(c.CountyCode, st.event),
				Type: outbox.EventCase, ID: id, Msg: ev})
			var who []ledger.Responsible
			if needsResponsible(c, st.entry) {
				if who, err = responsibleAt(c.NodeCode, st.entry.At); err != nil {
					return nil, nil, err
				}
			}
			entries = append(entries, ledgerEntryOf(c, st.entry, actor, st.event, who))
		}
	}
	b = &pgx.Batch{}
	if err := outbox.QueueEnqueueMany(b, events); err != nil {
		return nil, nil, err
	}
	if len(entries) > 0 {
		if err := head.Repair(ctx, tx); err != nil {
			return nil, nil, err
		}
	}
	recs, err := head.QueueAppend(b, entries)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(ctx, b); err != nil {
		if len(recs) > 0 {
			err = ledger.AppendError(recs, err)
		}
		return nil, nil, err
	}
	return out, poison, nil
}

type openingStep struct {
	entry *TimelineEntry
	event string
}

// openingSteps are the timeline entries of a new case: opened, and for a
// critical violation or one inside a zone whose rule says so escalated at
// once.
func openingSteps(c *Case, src Source) []openingStep {
	details := map[string]any{"event_id": c.ViolationEventID, "report_id": c.ReportID, "source": src.Kind,
		"category": c.Category, "severity": c.Severity}
	zoneDetails(c, details)
	steps := []openingStep{{event: "opened", entry: &TimelineEntry{
		ID: uuid.NewSHA1(eventNamespace, []byte("open:"+c.ViolationEventID)).String(), CaseID: c.ID,
		Action: ActionCreate, From: "", To: StateReported, Note: "opened from violation report " + c.ReportID,
		Details: details,
		At:      c.CreatedAt,
	}}}
	if c.EscalatedAt != nil {
		steps = append(steps, openingStep{event: "escalated", entry: &TimelineEntry{
			ID: uuid.NewSHA1(eventNamespace, []byte("critical:"+c.ViolationEventID)).String(), CaseID: c.ID,
			Action: ActionEscalate, From: StateReported, To: StateReported, Note: c.EscalationReason, At: c.CreatedAt,
		}})
	}
	return steps
}

// PoisonError is a message that can never be turned into a case; the
// consumer parks it on the dead-letter subject instead of retrying.
type PoisonError struct{ Reason string }

func (e *PoisonError) Error() string { return "unusable violation event: " + e.Reason }

func caseFromViolation(ev *eventsv1.ViolationReported, now time.Time) (*Case, error) {
	eventID, err := uuid.Parse(ev.GetEventId())
	if err != nil {
		return nil, &PoisonError{Reason: fmt.Sprintf("event id %q is not a UUID", ev.GetEventId())}
	}
	reportID, err := uuid.Parse(ev.GetReportId())
	if err != nil {
		return nil, &PoisonError{Reason: fmt.Sprintf("report id %q is not a UUID", ev.GetReportId())}
	}
	county, township, village := ev.GetCountyCode(), ev.GetTownshipCode(), ev.GetVillageCode()
	if !digits(county, 6) {
		return nil, &PoisonError{Reason: fmt.Sprintf("county code %q is not 6 digits", county)}
	}
	if len(township) <= len(county) || !strings.HasPrefix(township, county) || !digits(township, len(township)) {
		return nil, &PoisonError{Reason: fmt.Sprintf("township code %q is not inside county %s", township, county)}
	}
	node := township
	if village != "" {
		if len(village) <= len(township) || !strings.HasPrefix(village, township) || !digits(village, len(village)) {
			return nil, &PoisonError{Reason: fmt.Sprintf("village code %q is not inside township %s", village, township)}
		}
		node = village
	}
	c := &Case{
		ID:               uuid.NewSHA1(eventNamespace, []byte("case:"+reportID.String())).String(),
		ReportID:         reportID.String(),
		ViolationEventID: eventID.String(),
		CountyCode:       county,
		TownshipCode:     township,
		VillageCode:      village,
		NodeCode:         node,
		Category:         ev.GetCategory(),
		Severity:         ev.GetSeverity(),
		Description:      ev.GetDescription(),
		ReporterID:       ev.GetReporterId(),
		PhotoSHA256:      ev.GetPhotoSha256(),
		State:            StateReported,
		CreatedAt:        now.UTC(),
		UpdatedAt:        now.UTC(),
		Version:          1,
	}
	if c.Category == "" {
		c.Category = "uncategorised"
	}
	if _, ok := DefaultDeadlineRules[c.Severity]; !ok {
		// A violation with an unknown severity is still a violation: handle it as normal.
		c.Severity = "SEVERITY_NORMAL"
	}
	if lat, lon := ev.GetLatitude(), ev.GetLongitude(); (lat != 0 || lon != 0) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 {
		c.Latitude, c.Longitude, c.HasLocation = lat, lon, true
	}
	if ev.GetObservedAt() != nil {
		t := ev.GetObservedAt().AsTime()
		c.ObservedAt = &t
	}
	c.ReportedAt = c.CreatedAt
	if ev.GetReceivedAt() != nil {
		c.ReportedAt = ev.GetReceivedAt().AsTime()
	}
	for _, p := range ev.GetResponsible() {
		c.Responsible = append(c.Responsible, ledger.Responsible{PersonID: p.GetPersonId(), Name: p.GetName(), Role: p.GetRole(), NodeCode: p.GetNodeCode()})
	}
	if c.Severity == "SEVERITY_CRITICAL" {
		c.EscalatedAt = &c.CreatedAt
		c.EscalationReason = "critical violation: under county supervision from the start"
	}
	return c, nil
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// record writes the timeline entry, the ledger record and the CaseEvent of
// one step of c (already updated) inside tx.
func (t *Tracker) record(ctx context.Context, tx pgx.Tx, c *Case, e *TimelineEntry, actor Actor, event string) error {
	// The timeline entry and the event go in one round trip, before the
	// ledger append: its chain lock is then held only until the commit.
	e.setActor(actor)
	b := &pgx.Batch{}
	if err := queueTimelineAndEvent(b, c, e, event); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return t.appendLedger(ctx, tx, c, e, actor, event)
}

// appendLedger writes the accountability record of a step whose timeline
// entry e already names actor.
func (t *Tracker) appendLedger(ctx context.Context, tx pgx.Tx, c *Case, e *TimelineEntry, actor Actor, event string) error {
	entry, err := ledgerEntry(ctx, tx, c, e, actor, event)
	if err != nil {
		return err
	}
	_, err = ledger.Append(ctx, tx, entry)
	return err
}

// ledgerEntry is the accountability record of a step whose timeline entry
// e already names actor.
func ledgerEntry(ctx context.Context, tx pgx.Tx, c *Case, e *TimelineEntry, actor Actor, event string) (ledger.Entry, error) {
	var responsible []ledger.Responsible
	if needsResponsible(c, e) {
		var err error
		if responsible, err = people.ResponsibleAt(ctx, tx, c.NodeCode, e.At); err != nil {
			return ledger.Entry{}, err
		}
	}
	return ledgerEntryOf(c, e, actor, event, responsible), nil
}

// needsResponsible reports whether the record of step e names the people
// responsible for the case's cell now (people.ResponsibleAt): every step
// but the opening, and an opening whose violation named nobody. A
// violation raised by monitoring names nobody: its opening record names
// the point's cell's people at the time.
func needsResponsible(c *Case, e *TimelineEntry) bool {
	return e.Action != ActionCreate || len(c.Responsible) == 0
}

// ledgerEntryOf is the accountability record of a step whose timeline
// entry e already names actor, with the people responsible now (see
// needsResponsible); for a cell nobody holds any more, those named when
// the violation was reported.
func ledgerEntryOf(c *Case, e *TimelineEntry, actor Actor, event string, responsible []ledger.Responsible) ledger.Entry {
	payload := map[string]any{
		"request_id": e.ID, "from_state": string(e.From), "to_state": string(e.To), "state": string(c.State),
		"note": e.Note, "details": e.Details, "report_id": c.ReportID, "severity": c.Severity,
	}
	if c.HandlerID != "" {
		payload["handler_id"] = c.HandlerID
	}
	if c.Deadline != nil {
		payload["deadline"] = c.Deadline.UTC().Format(time.RFC3339)
	}
	if len(responsible) == 0 {
		responsible = c.Responsible
	}
	return ledger.Entry{
		CountyCode:    c.CountyCode,
		ActorID:       actor.PersonID,
		ActorRole:     actor.Role,
		ActorNodeCode: actor.NodeCode,
		Action:        "case." + event,
		SubjectType:   "case",
		SubjectID:     c.ID,
		NodeCode:      c.NodeCode,
		Responsible:   responsible,
		Payload:       payload,
		At:            e.At,
	}
}

// queueTimelineAndEvent queues a step's timeline entry and its CaseEvent
// outbox row on b (the actor is already set on e).
func queueTimelineAndEvent(b *pgx.Batch, c *Case, e *TimelineEntry, event string) error {
	eventID, ev := caseEvent(c, e, event)
	if err := queueTransition(b, e); err != nil {
		return err
	}
	return outbox.QueueEnqueue(b, c.CountyCode, messaging.CaseSubject(c.CountyCode, event), outbox.EventCase, eventID, ev)
}

// caseEvent is the CaseEvent announcing step e of c, and its id (derived
// from the step's id, so that the same step announces itself once).
func caseEvent(c *Case, e *TimelineEntry, event string) (uuid.UUID, *eventsv1.CaseEvent) {
	eventID := uuid.NewSHA1(eventNamespace, []byte("event:"+e.ID))
	ev := &eventsv1.CaseEvent{
		EventId:      eventID.String(),
		CaseId:       c.ID,
		CountyCode:   c.CountyCode,
		TownshipCode: c.TownshipCode,
		VillageCode:  c.VillageCode,
		ReportId:     c.ReportID,
		EventType:    event,
		FromState:    string(e.From),
		ToState:      string(e.To),
		ActorId:      e.ActorID,
		OccurredAt:   timestamppb.New(e.At),
		HandlerId:    c.HandlerID,
		Note:         e.Note,
	}
	if c.Deadline != nil {
		ev.Deadline = timestamppb.New(*c.Deadline)
	}
	return eventID, ev
}

// checkHandler refuses to dispatch a case to someone who cannot reach it:
// the handler's current assignments (people's Go API) must cover the case's
// grid node, so that the case lands with a person who works there and can
// be held to account for it — not an inspector of another village.
func checkHandler(ctx context.Context, tx pgx.Tx, c *Case, handlerID string, now time.Time) error {
	id, err := uuid.Parse(strings.TrimSpace(handlerID))
	if err != nil {
		return structerr.NewInvalidArgument("handler id %.40q is not a person id", handlerID)
	}
	grants, err := people.ActiveGrants(ctx, tx, id.String(), now)
	if err != nil {
		return err
	}
	reach := scope.Caller{PersonID: id.String(), Grants: slices.DeleteFunc(grants, func(g scope.Grant) bool { return g.Role == scope.RoleAdmin })}
	if reach.Covers(c.NodeCode) {
		return nil
	}
	if len(reach.Grants) == 0 {
		return structerr.NewFailedPrecondition("the handler holds no current assignment, so cannot take case %s at %s", c.ID, c.NodeCode)
	}
	return structerr.NewFailedPrecondition("the handler's current assignments (%s) do not cover the case's grid node %s: dispatch to someone assigned there",
		strings.Join(reach.Roots(), ", "), c.NodeCode)
}

// binding reads who holds parts of c for Bind: the submitter of the
// rectification now on the case.
func binding(ctx context.Context, tx database.Querier, c *Case) (Binding, error) {
	var b Binding
	if c.State != StateRectified {
		return b, nil
	}
	err := tx.QueryRow(ctx, `SELECT actor_id FROM cases.transitions
		WHERE case_id = $1 AND action = $2 ORDER BY seq DESC LIMIT 1`, c.ID, string(ActionSubmitRectification)).Scan(&b.RectifiedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, nil
	}
	return b, err
}

// Transition takes action a on a case for caller. requestID is the
// client's id for this step: repeating a request returns the case as it is
// now without acting twice.
func (t *Tracker) Transition(ctx context.Context, caller scope.Caller, caseID, requestID string, a Action, in Input) (*Case, error) {
	if _, err := uuid.Parse(caseID); err != nil {
		return nil, structerr.NewInvalidArgument("case id %.40q is not a UUID", caseID)
	}
	rid, err := uuid.Parse(requestID)
	if err != nil {
		return nil, structerr.NewInvalidArgument("request id %.40q is not a UUID: generate one per step on the device", requestID)
	}
	if in, err = NormalizeInput(in); err != nil {
		return nil, err
	}
	var out *Case
	err = database.InTx(ctx, t.pool, func(tx pgx.Tx) error {
		c, err := getCase(ctx, tx, caseID, true)
		if err != nil {
			return err
		}
		if !Visible(caller, c) {
			return structerr.NewNotFound("case %s not found", caseID)
		}
		prevCase, prevAction, replay, err := findTransition(ctx, tx, rid.String())
		if err != nil {
			return err
		}
		if replay {
			if prevCase != c.ID || prevAction != a {
				return structerr.NewAlreadyExists("request id %s was already used for another step", rid)
			}
			out = c
			return nil
		}
		actor, tr, err := Authorize(caller, c, a)
		if err != nil {
			return err
		}
		b, err := binding(ctx, tx, c)
		if err != nil {
			return err
		}
		if err := Bind(actor, c, a, b); err != nil {
			return err
		}
		rule, err := deadlineRule(ctx, tx, c.CountyCode, c.Severity)
		if err != nil {
			return err
		}
		from := c.State
		now := t.now().UTC().Truncate(time.Microsecond)
		if a == ActionDispatch || (a == ActionReassign && strings.TrimSpace(in.HandlerID) != "") {
			if err := checkHandler(ctx, tx, c, in.HandlerID, now); err != nil {
				return err
			}
		}
		details, err := Apply(c, tr, actor, in, rule, now)
		if err != nil {
			return err
		}
		if a == ActionSubmitRectification {
			// Evidence must be photos the handler uploaded (or of a report of
			// the county); linking them lets the case's viewers download them.
			if err := field.LinkEvidence(ctx, tx, field.Evidence{CaseID: c.ID, CountyCode: c.CountyCode, NodeCode: c.NodeCode,
				SubmittedBy: actor.PersonID, PhotoSHA256: c.RectificationPhotos}); err != nil {
				return err
			}
		}
		if err := updateCase(ctx, tx, c); err != nil {
			return err
		}
		e := &TimelineEntry{ID: rid.String(), CaseID: c.ID, Action: a, From: from, To: c.State,
			Note: strings.TrimSpace(in.Note), Details: details, At: now}
		if err := t.record(ctx, tx, c, e, actor, tr.Event); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}
