// Package cases owns the case-tracking context of cased: the case workflow
// as an explicit state machine, the consumer that turns each reported
// violation into exactly one case, the reconciler and overdue sweeper, the
// store over schema cases, and CaseService.
//
// PostgreSQL decides what happened: a case, its timeline entry, its
// accountability record in the ledger, its inbox row and its outgoing
// CaseEvent commit in one transaction, so NATS only carries facts.
package cases

import (
	"slices"
	"strings"
	"time"

	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// State is where a case stands in its workflow.
type State string

// The states of a case, in the order a case normally passes them.
const (
	StateReported   State = "reported"    // created from a violation, waiting for the township
	StateAccepted   State = "accepted"    // the township takes it on; waits for dispatch
	StateRejected   State = "rejected"    // not a case (false report, not our competence)
	StateDispatched State = "dispatched"  // given to a handler with a deadline
	StateInProgress State = "in_progress" // the handler is rectifying
	StateRectified  State = "rectified"   // rectification done, evidence submitted
	StateVerified   State = "verified"    // an inspector checked the rectification on site
	StateClosed     State = "closed"      // closed by the township
	// StateTransferred: handed to a department (移送), waiting for it to accept or refuse.
	StateTransferred State = "transferred"
	// StateDepartmentHandling: a lead department (and any joint ones) handle the case.
	StateDepartmentHandling State = "department_handling"
)

// AllStates lists every state, for matrix tests and validation.
var AllStates = []State{StateReported, StateAccepted, StateRejected, StateDispatched,
	StateInProgress, StateRectified, StateVerified, StateClosed, StateTransferred, StateDepartmentHandling}

// Open reports whether work on the case is still outstanding.
func (s State) Open() bool { return s != StateClosed && s != StateRejected }

// Action is a step a person (or the overdue sweeper) takes on a case.
type Action string

// The actions of the workflow. Their event names (past tense) are the last
// subject token of the CaseEvent published for them.
const (
	ActionCreate              Action = "create"
	ActionAccept              Action = "accept"
	ActionReject              Action = "reject"
	ActionDispatch            Action = "dispatch"
	ActionStartWork           Action = "start_work"
	ActionSubmitRectification Action = "submit_rectification"
	ActionVerify              Action = "verify"
	ActionClose               Action = "close"
	ActionReturn              Action = "return"
	ActionRequestExtension    Action = "request_extension"
	ActionApproveExtension    Action = "approve_extension"
	ActionDeclineExtension    Action = "decline_extension"
	ActionReopen              Action = "reopen"
	ActionEscalate            Action = "escalate"
	ActionReassign            Action = "reassign"
)

// Transition is one rule of the state machine: which action may be taken
// from which states, by which roles, and where it leads.
type Transition struct {
	Action Action
	From   []State
	// To is the state after the action; empty keeps the current state.
	To    State
	Roles []scope.Role
	// Event is the CaseEvent type and ledger action suffix.
	Event string
	// Guard is an extra precondition on the case beyond its state; it
	// returns a message a field app can show, or "".
	Guard func(c *Case) string
	// What tells a person in the UI what the step is.
	What string
}

var (
	township   = []scope.Role{scope.RoleTownshipSupervisor, scope.RoleCountyOfficer}
	fieldStaff = []scope.Role{scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor}
	county     = []scope.Role{scope.RoleCountyOfficer}
	// onSite may confirm a rectification: an inspector or grid chief of the
	// cell on site (DESIGN.md), or the township; never the handler or the
	// one who rectified (see bindings).
	onSite  = []scope.Role{scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer}
	allOpen = []State{StateReported, StateAccepted, StateDispatched, StateInProgress, StateRectified, StateVerified,
		StateTransferred, StateDepartmentHandling}
)

// Workflow is the case state machine. Scope comes on top of the roles: the
// acting grant must cover the case's grid node (a supervisor's township, an
// inspector's cells, an officer's county).
var Workflow = []Transition{
	{Action: ActionAccept, From: []State{StateReported}, To: StateAccepted, Roles: township, Event: "accepted",
		What: "accept the case for the township"},
	{Action: ActionReject, From: []State{StateReported}, To: StateRejected, Roles: township, Event: "rejected",
		What: "reject the report as not a case"},
	{Action: ActionDispatch, From: []State{StateAccepted}, To: StateDispatched, Roles: township, Event: "dispatched",
		What: "dispatch to a handler with a deadline"},
	{Action: ActionStartWork, From: []State{StateDispatched}, To: StateInProgress, Roles: fieldStaff, Event: "work_started",
		What: "start rectification"},
	{Action: ActionSubmitRectification, From: []State{StateInProgress}, To: StateRectified, Roles: fieldStaff, Event: "rectified",
		What: "submit rectification evidence"},
	{Action: ActionVerify, From: []State{StateRectified}, To: StateVerified, Roles: onSite, Event: "verified",
		What: "confirm the rectification on site"},
	{Action: ActionClose, From: []State{StateVerified}, To: StateClosed, Roles: township, Event: "closed",
		What: "close the case"},
	{Action: ActionReturn, From: []State{StateDispatched, StateInProgress, StateRectified}, To: StateAccepted,
		Roles: []scope.Role{scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer},
		Event: "returned", What: "return for re-dispatch"},
	{Action: ActionRequestExtension, From: []State{StateDispatched, StateInProgress}, Roles: fieldStaff, Event: "extension_requested",
		Guard: func(c *Case) string {
			if c.PendingExtensionDays > 0 {
				return "an extension request is already waiting for approval"
			}
			return ""
		}, What: "request a deadline extension"},
	{Action: ActionApproveExtension, From: []State{StateDispatched, StateInProgress}, Roles: township, Event: "extension_approved",
		Guard: noPendingExtension, What: "approve the requested extension"},
	{Action: ActionDeclineExtension, From: []State{StateDispatched, StateInProgress}, Roles: township, Event: "extension_declined",
		Guard: noPendingExtension, What: "decline the requested extension"},
	{Action: ActionReopen, From: []State{StateClosed, StateRejected}, To: StateAccepted, Roles: township, Event: "reopened",
		What: "reopen on recurrence"},
	{Action: ActionReassign, From: []State{StateAccepted, StateDispatched, StateInProgress, StateRectified, StateVerified},
		Roles: township, Event: "reassigned",
		What: "take the case over (and change its handler) when its holder leaves"},
	{Action: ActionEscalate, From: allOpen, Roles: county, Event: "escalated",
		Guard: func(c *Case) string {
			if c.EscalatedAt != nil {
				return "the case is already under county supervision"
			}
			return ""
		}, What: "escalate to county supervision (督办)"},
}

func noPendingExtension(c *Case) string {
	if c.PendingExtensionDays == 0 {
		return "no extension request is waiting for approval"
	}
	return ""
}

// Rule returns the workflow rule of an action.
func Rule(a Action) (Transition, bool) {
	i := slices.IndexFunc(Workflow, func(t Transition) bool { return t.Action == a })
	if i < 0 {
		return Transition{}, false
	}
	return Workflow[i], true
}

// NextSteps lists the actions the case's state and guards allow, whoever
// asks: the grid's steps, then the departments' (dept_workflow.go).
func NextSteps(c *Case) []Action {
	var out []Action
	for _, t := range Workflow {
		if slices.Contains(t.From, c.State) && (t.Guard == nil || t.Guard(c) == "") {
			out = append(out, t.Action)
		}
	}
	for _, t := range DepartmentWorkflow {
		if slices.Contains(t.From, c.State) {
			out = append(out, t.Action)
		}
	}
	return out
}

// Actor is who takes an action, as the ledger records it: the person, the
// role and the grid node of the grant they act under.
type Actor struct {
	PersonID string
	Role     string
	NodeCode string
}

// SystemActor is the overdue sweeper and the violation consumer: no person,
// role "system" (as the ledger records acts of the system itself).
func SystemActor(countyCode string) Actor {
	return Actor{PersonID: "", Role: "system", NodeCode: countyCode}
}

// Visible reports whether the caller may see the case at all: any grant
// whose subtree holds the case's node.
func Visible(caller scope.Caller, c *Case) bool { return caller.Covers(c.NodeCode) }

// Authorize checks that caller may take action on c now, and returns the
// actor it is recorded under. Order: a case outside every grant is
// NotFound; an action the state does not allow is FailedPrecondition naming
// the allowed next steps; a role that may not take it here is
// PermissionDenied naming who may. Bind adds the person rules on top (the
// handler's own steps, and checks made by someone else); Tracker.Transition
// applies both.
func Authorize(caller scope.Caller, c *Case, a Action) (Actor, Transition, error) {
	if !Visible(caller, c) {
		return Actor{}, Transition{}, structerr.NewNotFound("case %s not found", c.ID)
	}
	t, ok := Rule(a)
	if !ok {
		return Actor{}, Transition{}, structerr.NewInvalidArgument("unknown case action %.40q", a)
	}
	if !slices.Contains(t.From, c.State) {
		return Actor{}, t, structerr.NewFailedPrecondition("cannot %s while the case is %s; %s", t.What, c.State, nextStepsText(c))
	}
	if t.Guard != nil {
		if msg := t.Guard(c); msg != "" {
			return Actor{}, t, structerr.NewFailedPrecondition("cannot %s: %s; %s", t.What, msg, nextStepsText(c))
		}
	}
	g, ok := caller.GrantFor(c.NodeCode, t.Roles...)
	if !ok {
		return Actor{}, t, structerr.NewPermissionDenied("only %s covering %s may %s", rolesText(t.Roles), c.NodeCode, t.What)
	}
	return Actor{PersonID: caller.PersonID, Role: string(g.Role), NodeCode: g.NodeCode}, t, nil
}

// Binding is who a case step is bound to beyond role and scope: the
// people who already hold a part of the case.
type Binding struct {
	// RectifiedBy is the person who submitted the rectification now on the
	// case ("" when none is).
	RectifiedBy string
}

// bindings are the person rules of the steps (issue 13): the handler's
// own steps are the handler's alone — a supervisor acting for an absent
// handler first reassigns the case to someone, which is a recorded step —
// and every check of someone's work is made by someone else. Each returns
// the refusal a field app shows, or "".
var bindings = map[Action]func(actor Actor, c *Case, b Binding) string{
	ActionStartWork:           handlerOnly("start the rectification"),
	ActionSubmitRectification: handlerOnly("submit the rectification"),
	ActionRequestExtension:    handlerOnly("request an extension"),
	ActionVerify: func(actor Actor, c *Case, b Binding) string {
		switch actor.PersonID {
		case c.HandlerID:
			return "the case's handler cannot verify their own rectification; another inspector of the cell or a supervisor of the township must check it"
		case b.RectifiedBy:
			return "whoever submitted the rectification cannot verify it; another inspector of the cell or a supervisor of the township must check it"
		}
		return ""
	},
	ActionReturn: func(actor Actor, c *Case, _ Binding) string {
		// Field staff give back only a case that is theirs; the township
		// sends any rectification back.
		if (actor.Role == string(scope.RoleInspector) || actor.Role == string(scope.RoleGridChief)) && actor.PersonID != c.HandlerID {
			return "only the case's handler or a supervisor of the township may return it"
		}
		return ""
	},
	ActionApproveExtension: notRequester("approve"),
	ActionDeclineExtension: notRequester("decline"),
}

func handlerOnly(what string) func(Actor, *Case, Binding) string {
	return func(actor Actor, c *Case, _ Binding) string {
		if actor.PersonID == "" || actor.PersonID != c.HandlerID {
			return "only the case's handler may " + what + "; a supervisor acting for an absent handler reassigns the case first"
		}
		return ""
	}
}

func notRequester(what string) func(Actor, *Case, Binding) string {
	return func(actor Actor, c *Case, _ Binding) string {
		if actor.PersonID != "" && actor.PersonID == c.PendingExtensionBy {
			return "the person who requested the extension cannot " + what + " it; another supervisor of the township decides"
		}
		return ""
	}
}

// Bind checks the person rules of action a on c for the actor Authorize
// returned: PermissionDenied naming who may act instead.
func Bind(actor Actor, c *Case, a Action, b Binding) error {
	rule, ok := bindings[a]
	if !ok {
		return nil
	}
	if msg := rule(actor, c, b); msg != "" {
		return structerr.NewPermissionDenied("%s", msg)
	}
	return nil
}

func nextStepsText(c *Case) string {
	steps := NextSteps(c)
	if len(steps) == 0 {
		return "no further steps are possible"
	}
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = string(s)
	}
	return "allowed next steps: " + strings.Join(names, ", ")
}

func rolesText(roles []scope.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = strings.ReplaceAll(string(r), "_", " ") + "s"
	}
	return strings.Join(names, " or ")
}

// chinaTime is China Standard Time (no daylight saving): "the same day"
// means the same calendar day where the county is.
var chinaTime = time.FixedZone("CST", 8*60*60)

// DeadlineRule is a county's rectification deadline for one severity.
type DeadlineRule struct {
	Severity string
	// RectifyDays after dispatch; 0 is the end of the same day.
	RectifyDays int
	// MaxDays bounds the deadline with all approved extensions, counted from dispatch.
	MaxDays int
}

// Deadline is the rectification deadline for a case dispatched at t.
func (r DeadlineRule) Deadline(t time.Time) time.Time {
	if r.RectifyDays == 0 {
		local := t.In(chinaTime)
		y, m, d := local.Date()
		return time.Date(y, m, d, 23, 59, 59, 0, chinaTime).UTC()
	}
	return t.Add(time.Duration(r.RectifyDays) * 24 * time.Hour).UTC()
}

// Limit is the latest deadline extensions may reach for a case dispatched at t.
func (r DeadlineRule) Limit(t time.Time) time.Time {
	return t.Add(time.Duration(r.MaxDays) * 24 * time.Hour).UTC()
}

// DefaultDeadlineRules are the rules used when neither the county nor the
// defaults row in cases.deadline_rules says otherwise.
var DefaultDeadlineRules = map[string]DeadlineRule{
	"SEVERITY_MINOR":    {Severity: "SEVERITY_MINOR", RectifyDays: 0, MaxDays: 15},
	"SEVERITY_NORMAL":   {Severity: "SEVERITY_NORMAL", RectifyDays: 3, MaxDays: 15},
	"SEVERITY_SERIOUS":  {Severity: "SEVERITY_SERIOUS", RectifyDays: 7, MaxDays: 15},
	"SEVERITY_CRITICAL": {Severity: "SEVERITY_CRITICAL", RectifyDays: 1, MaxDays: 15},
}

// StepsFor lists the steps of NextSteps that caller may take on c now:
// the grid steps Authorize and Bind let through, and the township's
// department steps (transfer, joint handling) their grant allows.
// Department staff act through their department's queue, so the steps of
// a department are never offered here. The console shows only these; the
// server still checks each step when it is taken.
func StepsFor(caller scope.Caller, c *Case, b Binding) []Action {
	var out []Action
	for _, a := range NextSteps(c) {
		if t, ok := DepartmentRule(a); ok {
			if t.By == byTownship && Visible(caller, c) {
				if _, ok := caller.GrantFor(c.NodeCode, t.Roles...); ok {
					out = append(out, a)
				}
			}
			continue
		}
		actor, _, err := Authorize(caller, c, a)
		if err != nil || Bind(actor, c, a, b) != nil {
			continue
		}
		out = append(out, a)
	}
	return out
}
