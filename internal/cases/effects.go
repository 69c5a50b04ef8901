package cases

import (
	"strings"
	"time"
	"unicode/utf8"

	"ecogrid/internal/structerr"
)

// step is what an effect works with: who acts, what they supplied, the
// deadline rule of the case's severity, the time, and the details kept in
// the timeline.
type step struct {
	actor   Actor
	in      Input
	rule    DeadlineRule
	now     time.Time
	details map[string]any
}

// needNote refuses a step whose required note is missing.
func (s *step) needNote(what string) error {
	if s.in.Note == "" {
		return structerr.NewInvalidArgument("a %s is required", what)
	}
	if n := utf8.RuneCountInString(s.in.Note); n > MaxNoteRunes {
		return structerr.NewInvalidArgument("the %s has %d characters, at most %d are allowed", what, n, MaxNoteRunes)
	}
	return nil
}

// effect changes a case for one action, after Authorize allowed it.
type effect func(c *Case, s *step) error

// effects is what each action of the Workflow does to a case; the state
// change itself is the transition's To.
var effects = map[Action]effect{
	ActionAccept:              func(c *Case, s *step) error { c.SupervisorID = s.actor.PersonID; return nil },
	ActionReject:              reject,
	ActionDispatch:            dispatch,
	ActionStartWork:           func(*Case, *step) error { return nil },
	ActionSubmitRectification: submitRectification,
	ActionVerify:              verify,
	ActionClose:               func(c *Case, s *step) error { c.ClosedAt = &s.now; return nil },
	ActionReturn:              giveBack,
	ActionRequestExtension:    requestExtension,
	ActionApproveExtension:    approveExtension,
	ActionDeclineExtension: func(c *Case, s *step) error {
		s.details["days"] = c.PendingExtensionDays
		c.clearPendingExtension()
		return nil
	},
	ActionReopen:   reopen,
	ActionReassign: reassign,
	ActionEscalate: escalate,
}

// Apply performs the effect of an authorized transition on c at now,
// validating the input, and returns the details kept in the timeline. It
// does not check the state or the actor: Authorize did.
func Apply(c *Case, t Transition, actor Actor, in Input, rule DeadlineRule, now time.Time) (map[string]any, error) {
	in.Note = strings.TrimSpace(in.Note)
	do, ok := effects[t.Action]
	if !ok {
		return nil, structerr.NewInvalidArgument("unknown case action %.40q", t.Action)
	}
	s := &step{actor: actor, in: in, rule: rule, now: now, details: map[string]any{}}
	if err := do(c, s); err != nil {
		return nil, err
	}
	if t.To != "" {
		c.State = t.To
	}
	c.UpdatedAt = now
	return s.details, nil
}

func reject(c *Case, s *step) error {
	if err := s.needNote("reason for the rejection"); err != nil {
		return err
	}
	c.SupervisorID = s.actor.PersonID
	c.ClosedAt = &s.now
	return nil
}

func dispatch(c *Case, s *step) error {
	if strings.TrimSpace(s.in.HandlerID) == "" {
		return structerr.NewInvalidArgument("a handler is required to dispatch a case")
	}
	deadline := zoneCappedDeadline(c, s.rule.Deadline(s.now), s.now)
	if dl := s.in.Deadline; dl != nil {
		if !dl.After(s.now) {
			return structerr.NewInvalidArgument("the deadline must be in the future")
		}
		if dl.After(deadline) {
			return structerr.NewInvalidArgument("the deadline for a %s case is at most %s; later needs an approved extension",
				severityName(c), deadline.In(chinaTime).Format("2006-01-02 15:04"))
		}
		deadline = dl.UTC()
	}
	c.SupervisorID = s.actor.PersonID
	c.HandlerID = s.in.HandlerID
	c.DispatchedAt = &s.now
	c.Deadline = &deadline
	c.ExtensionDays = 0
	s.details["handler_id"] = s.in.HandlerID
	s.details["deadline"] = deadline
	return nil
}

func submitRectification(c *Case, s *step) error {
	if err := s.needNote("description of the rectification"); err != nil {
		return err
	}
	if len(s.in.Photos) == 0 {
		return structerr.NewInvalidArgument("at least one photo of the rectified site is required")
	}
	for _, p := range s.in.Photos {
		if !IsSHA256(p) {
			return structerr.NewInvalidArgument("photo %.70q is not a SHA-256 in hex", p)
		}
	}
	c.RectificationNote = s.in.Note
	c.RectificationPhotos = normalizePhotos(s.in.Photos)
	c.RectifiedAt = &s.now
	s.details["photos"] = c.RectificationPhotos
	return nil
}

func verify(c *Case, s *step) error {
	if s.actor.PersonID != "" && s.actor.PersonID == c.HandlerID {
		return structerr.NewFailedPrecondition("the handler cannot verify their own rectification; a supervisor of the township must check it")
	}
	c.VerifiedBy = s.actor.PersonID
	c.VerifiedAt = &s.now
	return nil
}

// giveBack returns the case for re-dispatch (a rectification sent back, or
// a handler who cannot do it). The timeline keeps who had it, until when,
// and what they submitted; the redo path is dispatch again, to the same
// handler or another, with a fresh deadline.
func giveBack(c *Case, s *step) error {
	if err := s.needNote("reason for returning the case"); err != nil {
		return err
	}
	s.details["previous_handler_id"] = c.HandlerID
	if c.Deadline != nil {
		s.details["previous_deadline"] = c.Deadline.UTC()
	}
	if c.DispatchedAt != nil {
		s.details["previous_dispatched_at"] = c.DispatchedAt.UTC()
	}
	if c.ExtensionDays > 0 {
		s.details["previous_extension_days"] = c.ExtensionDays
	}
	if c.RectifiedAt != nil {
		s.details["returned_rectification"] = map[string]any{"note": c.RectificationNote, "photos": c.RectificationPhotos,
			"at": c.RectifiedAt.UTC()}
	}
	s.details["next_step"] = string(ActionDispatch)
	c.clearDispatch()
	return nil
}

func requestExtension(c *Case, s *step) error {
	if err := s.needNote("reason for the extension"); err != nil {
		return err
	}
	if s.in.ExtensionDays <= 0 {
		return structerr.NewInvalidArgument("request at least one day of extension")
	}
	if err := c.checkExtension(s.in.ExtensionDays, s.rule); err != nil {
		return err
	}
	c.PendingExtensionDays = s.in.ExtensionDays
	c.PendingExtensionReason = s.in.Note
	c.PendingExtensionBy = s.actor.PersonID
	s.details["days"] = s.in.ExtensionDays
	return nil
}

func approveExtension(c *Case, s *step) error {
	if err := c.checkExtension(c.PendingExtensionDays, s.rule); err != nil {
		return err
	}
	d := c.Deadline.Add(time.Duration(c.PendingExtensionDays) * 24 * time.Hour)
	c.Deadline = &d
	c.ExtensionDays += c.PendingExtensionDays
	s.details["days"] = c.PendingExtensionDays
	s.details["deadline"] = d
	c.clearPendingExtension()
	return nil
}

func reopen(c *Case, s *step) error {
	if err := s.needNote("reason for reopening (the recurrence observed)"); err != nil {
		return err
	}
	c.ReopenCount++
	c.clearDispatch()
	c.VerifiedBy, c.VerifiedAt, c.ClosedAt = "", nil, nil
	c.EscalatedAt, c.EscalationReason = nil, ""
	return nil
}

// reassign is how a supervisor takes a case over, and acts for an absent
// handler: an explicit, recorded change of supervisor and handler.
func reassign(c *Case, s *step) error {
	if err := s.needNote("reason for the reassignment"); err != nil {
		return err
	}
	s.details["previous_supervisor_id"] = c.SupervisorID
	c.SupervisorID = s.actor.PersonID
	if h := strings.TrimSpace(s.in.HandlerID); h != "" {
		if c.State != StateDispatched && c.State != StateInProgress {
			return structerr.NewInvalidArgument("the handler can only be changed while the case is dispatched or in progress")
		}
		s.details["previous_handler_id"] = c.HandlerID
		s.details["handler_id"] = h
		c.HandlerID = h
	}
	return nil
}

func escalate(c *Case, s *step) error {
	if s.in.Note == "" {
		s.in.Note = "escalated by the county office"
	}
	c.EscalatedAt = &s.now
	c.EscalationReason = s.in.Note
	return nil
}

func severityName(c *Case) string {
	return strings.ToLower(strings.TrimPrefix(c.Severity, "SEVERITY_"))
}
