package cases

import (
	"slices"

	"ecogrid/internal/scope"
)

// Department steps (issue 16): a supervisor transfers a case to a
// department (移送), the department accepts or refuses it with a reason, a
// supervisor opens joint handling (联合执法) with several departments, each
// completes its own task with its own evidence, and the lead department
// closes the case when it has verified the result and every joint task is
// done.
const (
	ActionTransfer         Action = "transfer"
	ActionAcceptTransfer   Action = "accept_transfer"
	ActionRefuseTransfer   Action = "refuse_transfer"
	ActionOpenJoint        Action = "open_joint_handling"
	ActionCompleteJoint    Action = "complete_joint_task"
	ActionDepartmentVerify Action = "department_verify"
)

// Who takes a department step: the township (by grid grant, as in
// Workflow), the department the pending transfer names, the department of
// the joint task, or the lead department.
const (
	byTownship           = "township"
	byTransferDepartment = "transfer_department"
	byTaskDepartment     = "task_department"
	byLeadDepartment     = "lead_department"
)

// DepartmentTransition is one rule of the department steps. Department
// staff hold no grid grant: who may act is a department membership whose
// department covers the case (departments.Reach), else the case is not
// found for them.
type DepartmentTransition struct {
	Action Action
	From   []State
	// To is the state after the step; empty keeps the current state.
	To State
	// By is who acts (the by* constants); Roles are the grid roles when By is byTownship.
	By    string
	Roles []scope.Role
	// Event is the CaseEvent type and ledger action suffix.
	Event string
	What  string
}

// DepartmentWorkflow is the department half of the case state machine.
var DepartmentWorkflow = []DepartmentTransition{
	{Action: ActionTransfer, From: []State{StateAccepted}, To: StateTransferred, By: byTownship, Roles: township,
		Event: "transferred", What: "transfer the case to a department (移送)"},
	{Action: ActionAcceptTransfer, From: []State{StateTransferred}, To: StateDepartmentHandling, By: byTransferDepartment,
		Event: "transfer_accepted", What: "accept the transferred case for the department"},
	{Action: ActionRefuseTransfer, From: []State{StateTransferred}, To: StateAccepted, By: byTransferDepartment,
		Event: "transfer_refused", What: "refuse the transferred case, with the reason"},
	{Action: ActionOpenJoint, From: []State{StateAccepted, StateDepartmentHandling}, To: StateDepartmentHandling, By: byTownship,
		Roles: township, Event: "joint_task_opened", What: "open joint handling (联合执法) with several departments"},
	{Action: ActionCompleteJoint, From: []State{StateDepartmentHandling}, By: byTaskDepartment,
		Event: "joint_task_completed", What: "complete the department's joint task with its evidence"},
	{Action: ActionDepartmentVerify, From: []State{StateDepartmentHandling}, To: StateClosed, By: byLeadDepartment,
		Event: "department_verified", What: "verify the result as lead department and close the case"},
}

// DepartmentRule returns the rule of a department step.
func DepartmentRule(a Action) (DepartmentTransition, bool) {
	i := slices.IndexFunc(DepartmentWorkflow, func(t DepartmentTransition) bool { return t.Action == a })
	if i < 0 {
		return DepartmentTransition{}, false
	}
	return DepartmentWorkflow[i], true
}
