package field

import (
	"context"
	"time"

	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
)

// PeopleDirectory is the Directory of internal/people: assignments as they
// were at a moment, read inside the caller's transaction when given one.
type PeopleDirectory struct{}

var _ Directory = PeopleDirectory{}

// ResponsibleAt implements Directory.
func (PeopleDirectory) ResponsibleAt(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]ledger.Responsible, error) {
	return people.ResponsibleAt(ctx, q, nodeCode, at)
}

// InspectorsUnder implements Directory.
func (PeopleDirectory) InspectorsUnder(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]Assignee, error) {
	as, err := people.InspectorsUnder(ctx, q, nodeCode, at)
	if err != nil {
		return nil, err
	}
	out := make([]Assignee, len(as))
	for i, a := range as {
		out[i] = Assignee{PersonID: a.PersonID, NodeCode: a.NodeCode}
	}
	return out, nil
}
