package gridd

import (
	"context"
	"time"

	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/people"
)

// directory answers field's questions about people from the people
// context: who is responsible for a cell, and which inspectors work under
// a node.
type directory struct{}

var _ field.Directory = directory{}

func (directory) ResponsibleAt(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]field.Responsible, error) {
	rs, err := people.ResponsibleAt(ctx, q, nodeCode, at)
	if err != nil {
		return nil, err
	}
	out := make([]field.Responsible, len(rs))
	for i, r := range rs {
		out[i] = field.Responsible{PersonID: r.PersonID, Name: r.Name, Role: r.Role, NodeCode: r.NodeCode}
	}
	return out, nil
}

func (directory) InspectorsUnder(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]field.Assignee, error) {
	as, err := people.InspectorsUnder(ctx, q, nodeCode, at)
	if err != nil {
		return nil, err
	}
	out := make([]field.Assignee, len(as))
	for i, a := range as {
		out[i] = field.Assignee{PersonID: a.PersonID, NodeCode: a.NodeCode}
	}
	return out, nil
}
