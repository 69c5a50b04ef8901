package people

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/ledger"
	"ecogrid/internal/structerr"
)

// Handover says whose open duties move to whom when an assignment ends or
// is transferred (交接). It is handed to DutyHandover inside the transaction
// that ends the assignment, so no duty is ever left with a person who no
// longer holds the post.
type Handover struct {
	CountyCode   string    // chain of the ledger records written for the handover
	NodeCode     string    // grid node of the assignment that ends
	FromPersonID string    // the person leaving the post
	ToPersonID   string    // the named successor (or the node's supervisor)
	Actor        Actor     // who ends or transfers the assignment
	Reason       string    // as given on the end or transfer request
	At           time.Time // when the assignment ends
}

// DutyHandover moves a person's open duties at a node (cases they handle,
// supervise or must verify) to a successor within tx, writing a case step
// and a ledger record for each, and returns what it moved. The cases context
// implements it; people declares it because people lies below cases and
// must not import it.
type DutyHandover interface {
	HandOver(ctx context.Context, tx pgx.Tx, h Handover) ([]HandoverCase, error)
}

// handOver hands the open duties the leaving person held under the node of
// the ended assignment a to their successor, inside tx, and returns what
// moved, who received it and the handover's (交接) ledger entry — nil when
// nothing moved. Without a DutyHandover (no cases context) it does nothing.
func (s *Store) handOver(ctx context.Context, tx pgx.Tx, actor Actor, a Assignment, successorID, reason string, at time.Time) ([]HandoverCase, string, *ledger.Entry, error) {
	if s.handover == nil {
		return nil, "", nil, nil
	}
	to, err := successor(ctx, tx, actor, a, successorID)
	if err != nil {
		return nil, "", nil, err
	}
	if to == "" {
		// Nobody supervises the node and the system itself acts: there is
		// no one to hand to, so the duties must be named explicitly.
		to = uuid.Nil.String()
	}
	moved, err := s.handover.HandOver(ctx, tx, Handover{
		CountyCode: a.CountyCode, NodeCode: a.NodeCode, FromPersonID: a.PersonID, ToPersonID: to,
		Actor: actor, Reason: reason, At: at,
	})
	if err != nil {
		return nil, "", nil, err
	}
	if len(moved) == 0 {
		return nil, "", nil, nil
	}
	if to == uuid.Nil.String() {
		return nil, "", nil, structerr.NewFailedPrecondition("%s holds %d open cases under node %s and nobody supervises it: name a successor", a.PersonID, len(moved), a.NodeCode)
	}
	from, err := GetPerson(ctx, tx, a.PersonID)
	if err != nil {
		return nil, "", nil, err
	}
	succ, err := GetPerson(ctx, tx, to)
	if err != nil {
		return nil, "", nil, err
	}
	ids := make([]string, 0, len(moved))
	for _, c := range moved {
		ids = append(ids, c.CaseID)
	}
	e := &ledger.Entry{
		CountyCode: a.CountyCode, Action: "assignment.handover", SubjectType: "assignment", SubjectID: a.ID, NodeCode: a.NodeCode,
		Responsible: []ledger.Responsible{
			{PersonID: from.ID, Name: from.Name, Role: string(a.Role), NodeCode: a.NodeCode},
			{PersonID: succ.ID, Name: succ.Name, Role: "successor", NodeCode: a.NodeCode},
		},
		Payload: map[string]any{
			"from_person_id": from.ID, "from_person_name": from.Name, "to_person_id": succ.ID, "to_person_name": succ.Name,
			"node_code": a.NodeCode, "role": string(a.Role), "case_ids": ids, "reason": reason,
			"at": at.UTC().Format(time.RFC3339Nano),
		},
	}
	return moved, to, e, nil
}

// successor is who takes over a's duties: the named person, who must hold
// an assignment in force at the node or above it; else the nearest
// township supervisor or county officer over the node; else the actor.
// "" when none of these exists.
func successor(ctx context.Context, tx pgx.Tx, actor Actor, a Assignment, named string) (string, error) {
	if named != "" {
		id, err := NormaliseID("successor person id", named)
		if err != nil {
			return "", err
		}
		if id == a.PersonID {
			return "", structerr.NewInvalidArgument("the successor must be someone other than the person leaving the post")
		}
		var ok bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM people.assignments
			WHERE person_id = $1 AND node_code = ANY($2) AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now()))`,
			id, AncestorCodes(a.NodeCode)).Scan(&ok)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", structerr.NewFailedPrecondition("the successor holds no assignment at node %s or above it: assign them first", a.NodeCode)
		}
		return id, nil
	}
	var id string
	err := tx.QueryRow(ctx, `SELECT person_id::text FROM people.assignments
		WHERE node_code = ANY($1) AND person_id <> $2 AND role IN ('township_supervisor', 'county_officer')
		  AND valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
		ORDER BY length(node_code) DESC, array_position(ARRAY['township_supervisor', 'county_officer'], role), valid_from, person_id
		LIMIT 1`, AncestorCodes(a.NodeCode), a.PersonID).Scan(&id)
	switch {
	case err == nil:
		return id, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return "", err
	}
	if actor.PersonID != "" && actor.PersonID != a.PersonID {
		return actor.PersonID, nil
	}
	return "", nil
}
