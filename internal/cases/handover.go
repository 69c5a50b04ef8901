package cases

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/people"
	"ecogrid/internal/structerr"
)

// The tracker is the one implementation of people's handover hook.
var _ people.DutyHandover = (*Tracker)(nil)

// HandOver moves the open cases the leaving person holds under the node of
// the ending assignment — as handler, as supervisor, or as the person whose
// extension request waits — to the successor, in tx (the transaction that
// ends the assignment), with a reassignment step, its ledger record and its
// CaseEvent for each: no duty stays with someone who no longer holds the
// post, and the record says who handed what to whom and why. A case
// already handed over in this handover is not moved twice (the step id is
// derived from the handover), so a retried transaction is harmless.
func (t *Tracker) HandOver(ctx context.Context, tx pgx.Tx, h people.Handover) ([]people.HandoverCase, error) {
	from, err := uuid.Parse(h.FromPersonID)
	if err != nil {
		return nil, structerr.NewInvalidArgument("leaving person %.40q is not a person id", h.FromPersonID)
	}
	to, err := uuid.Parse(h.ToPersonID)
	if err != nil {
		return nil, structerr.NewInvalidArgument("successor %.40q is not a person id", h.ToPersonID)
	}
	if from == to {
		return nil, structerr.NewInvalidArgument("a person cannot hand their duties over to themselves")
	}
	at := h.At.UTC().Truncate(time.Microsecond)
	if h.At.IsZero() {
		at = t.now().UTC().Truncate(time.Microsecond)
	}
	rows, err := tx.Query(ctx, `
		SELECT c.id::text FROM cases.cases c
		WHERE c.state NOT IN ('closed', 'rejected') AND c.node_code LIKE $2 || '%'
		  AND (c.supervisor_id = $1 OR c.handler_id = $1 OR c.pending_extension_by = $1)
		ORDER BY c.created_at, c.id`, from.String(), h.NodeCode)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	actor := Actor{PersonID: h.Actor.PersonID, Role: h.Actor.Role, NodeCode: h.Actor.NodeCode}
	if actor.Role == "" {
		actor = SystemActor(h.CountyCode)
	}
	reason := strings.TrimSpace(h.Reason)
	if reason == "" {
		reason = "assignment ended"
	}
	out := make([]people.HandoverCase, 0, len(ids))
	for _, id := range ids {
		c, err := getCase(ctx, tx, id, true)
		if err != nil {
			return nil, err
		}
		stepID := uuid.NewSHA1(eventNamespace, []byte("handover:"+c.ID+":"+from.String()+":"+at.Format(time.RFC3339Nano))).String()
		if _, _, done, err := findTransition(ctx, tx, stepID); err != nil {
			return nil, err
		} else if done {
			continue
		}
		details := map[string]any{"handover": true, "from_person_id": from.String(), "to_person_id": to.String(),
			"assignment_node_code": h.NodeCode}
		var moved []string
		if c.HandlerID == from.String() {
			// The successor must reach the case, or the handover would leave it
			// with nobody able to act: their assignment goes in first.
			if err := checkHandler(ctx, tx, c, to.String(), at); err != nil {
				return nil, err
			}
			c.HandlerID = to.String()
			details["previous_handler_id"], details["handler_id"] = from.String(), to.String()
			moved = append(moved, "handler")
		}
		if c.SupervisorID == from.String() {
			c.SupervisorID = to.String()
			details["previous_supervisor_id"], details["supervisor_id"] = from.String(), to.String()
			moved = append(moved, "supervisor")
		}
		if c.PendingExtensionBy == from.String() {
			c.PendingExtensionBy = to.String()
			moved = append(moved, "extension request")
		}
		details["moved"] = moved
		c.UpdatedAt = at
		if err := updateCase(ctx, tx, c); err != nil {
			return nil, err
		}
		e := &TimelineEntry{ID: stepID, CaseID: c.ID, Action: ActionReassign, From: c.State, To: c.State,
			Note: "handover (交接): " + reason, Details: details, At: at}
		if err := t.record(ctx, tx, c, e, actor, "reassigned"); err != nil {
			return nil, err
		}
		out = append(out, people.HandoverCase{CaseID: c.ID, NodeCode: c.NodeCode, Status: string(c.State), Title: c.Title()})
	}
	return out, nil
}

// HandoverLister adapts the tracker to people.OpenCaseLister: when a
// supervisor's or handler's last assignment ends, the people service lists
// the open cases they hold so that they can be handed to someone else.
func (t *Tracker) HandoverLister() people.OpenCaseLister {
	return people.OpenCaseListerFunc(func(ctx context.Context, personID string) ([]people.HandoverCase, error) {
		list, err := t.OpenCasesHeldBy(ctx, personID)
		if err != nil {
			return nil, err
		}
		out := make([]people.HandoverCase, 0, len(list))
		for _, c := range list {
			out = append(out, people.HandoverCase{CaseID: c.ID, NodeCode: c.NodeCode, Status: string(c.State), Title: c.Title()})
		}
		return out, nil
	})
}

// Title is a one-line description of the case for lists.
func (c *Case) Title() string {
	title := strings.ReplaceAll(c.Category, "_", " ")
	if d := strings.Join(strings.Fields(c.Description), " "); d != "" {
		if utf8.RuneCountInString(d) > 60 {
			d = string([]rune(d)[:60]) + "…"
		}
		title += ": " + d
	}
	return title
}
