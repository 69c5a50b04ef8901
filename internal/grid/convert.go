package grid

import (
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

func nodeProto(n *Node, withGeom bool) *ecogridv1.GridNode {
	out := &ecogridv1.GridNode{
		Id:         n.ID.String(),
		Code:       n.Code,
		Level:      ecogridv1.GridLevel(n.Level),
		Name:       n.Name,
		ParentCode: ParentCode(n.Code),
		AreaHa:     n.AreaHa,
		Tasks:      tasksProto(n.Tasks),
		Version:    int32(n.Version),
		ValidFrom:  timestamppb.New(n.ValidFrom),
	}
	if n.ParentID.String() != "00000000-0000-0000-0000-000000000000" {
		out.ParentId = n.ParentID.String()
	}
	if n.ValidTo != nil {
		out.ValidTo = timestamppb.New(*n.ValidTo)
	}
	if !n.UpdatedAt.IsZero() {
		out.UpdateTime = timestamppb.New(n.UpdatedAt)
	}
	if withGeom && n.Geometry != nil {
		out.GeometryGeojson = GeometryJSON(n.Geometry)
	}
	return out
}

func refProto(r Ref) *ecogridv1.GridNodeRef {
	return &ecogridv1.GridNodeRef{Id: r.ID.String(), Code: r.Code, Name: r.Name, Level: ecogridv1.GridLevel(r.Level)}
}

var periodToProto = map[TaskPeriod]ecogridv1.TaskPeriod{
	PeriodDay: ecogridv1.TaskPeriod_TASK_PERIOD_DAY, PeriodWeek: ecogridv1.TaskPeriod_TASK_PERIOD_WEEK, PeriodMonth: ecogridv1.TaskPeriod_TASK_PERIOD_MONTH,
}

// TasksProto converts tasks to protobuf (people's assignments carry them too).
func TasksProto(ts []Task) []*ecogridv1.GridTask { return tasksProto(ts) }

// TasksFromProto converts protobuf tasks; Task.Check says what is wrong.
func TasksFromProto(ts []*ecogridv1.GridTask) []Task { return tasksFromProto(ts) }

func tasksProto(ts []Task) []*ecogridv1.GridTask {
	out := make([]*ecogridv1.GridTask, 0, len(ts))
	for _, t := range ts {
		out = append(out, &ecogridv1.GridTask{Kind: t.Kind, Count: int32(t.Count), Period: periodToProto[t.Period], Note: t.Note,
			MinMinutes: int32(t.MinMinutes), MinDistanceM: t.MinDistanceM})
	}
	return out
}

func tasksFromProto(ts []*ecogridv1.GridTask) []Task {
	out := make([]Task, 0, len(ts))
	for _, t := range ts {
		var period TaskPeriod
		for k, v := range periodToProto {
			if v == t.GetPeriod() {
				period = k
			}
		}
		out = append(out, Task{Kind: t.GetKind(), Count: int(t.GetCount()), Period: period, Note: t.GetNote(),
			MinMinutes: int(t.GetMinMinutes()), MinDistanceM: t.GetMinDistanceM()})
	}
	return out
}

func problemsProto(ps Problems) []*ecogridv1.ImportProblem {
	listed, more := ps.Listed()
	out := make([]*ecogridv1.ImportProblem, 0, len(listed)+1)
	for _, p := range listed {
		out = append(out, &ecogridv1.ImportProblem{Feature: int32(p.Feature), Code: p.Code, Name: p.Name, Kind: string(p.Kind),
			Message: p.Message, Warning: p.Warning, AreaM2: p.AreaM2})
	}
	if more > 0 {
		out = append(out, &ecogridv1.ImportProblem{Feature: -1, Kind: "more", Message: fmt.Sprintf("… and %d more", more), Warning: listed[len(listed)-1].Warning})
	}
	return out
}
