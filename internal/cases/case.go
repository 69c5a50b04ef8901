package cases

import (
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"ecogrid/internal/structerr"

	"github.com/google/uuid"
)

// Responsible is a person answerable for the case's cell when the
// violation was reported, as the reporting service named them.
type Responsible struct {
	PersonID string `json:"person_id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	NodeCode string `json:"node_code"`
}

// Case is one violation being dealt with, from report to closure.
type Case struct {
	ID               string
	ReportID         string
	ViolationEventID string
	CountyCode       string
	TownshipCode     string
	VillageCode      string
	// NodeCode is the deepest grid node the case lies in; it is the case's scope.
	NodeCode    string
	Category    string
	Severity    string
	Description string
	// Latitude and Longitude are WGS-84; HasLocation is false when the report had none.
	Latitude, Longitude float64
	HasLocation         bool
	ReporterID          string
	PhotoSHA256         []string
	Responsible         []Responsible
	ObservedAt          *time.Time
	ReportedAt          time.Time

	State                  State
	SupervisorID           string
	HandlerID              string
	DispatchedAt           *time.Time
	Deadline               *time.Time
	ExtensionDays          int
	PendingExtensionDays   int
	PendingExtensionReason string
	PendingExtensionBy     string
	RectificationNote      string
	RectificationPhotos    []string
	RectifiedAt            *time.Time
	VerifiedBy             string
	VerifiedAt             *time.Time
	ClosedAt               *time.Time
	EscalatedAt            *time.Time
	EscalationReason       string
	ReopenCount            int
	CreatedAt              time.Time
	UpdatedAt              time.Time
	Version                int
}

// Overdue reports whether rectification is late at now: the case is with
// its handler and the deadline has passed.
func (c *Case) Overdue(now time.Time) bool {
	return (c.State == StateDispatched || c.State == StateInProgress) && c.Deadline != nil && now.After(*c.Deadline)
}

// OverdueDays is how many started days the rectification is or was late:
// for a case still with its handler, up to now; for a rectified one, up to
// the rectification. 0 when on time.
func (c *Case) OverdueDays(now time.Time) int {
	if c.Deadline == nil {
		return 0
	}
	end := now
	switch {
	case c.State == StateDispatched || c.State == StateInProgress:
	case c.RectifiedAt != nil:
		end = *c.RectifiedAt
	default:
		return 0
	}
	late := end.Sub(*c.Deadline)
	if late <= 0 {
		return 0
	}
	return int(math.Ceil(late.Hours() / 24))
}

// Input carries what a person supplies with an action.
type Input struct {
	// Note is the reason or remark; required for reject, return, reopen and
	// extension requests, and the evidence text of a rectification.
	Note string
	// HandlerID is the person a case is dispatched to.
	HandlerID string
	// Deadline, when set on dispatch, tightens the severity's deadline.
	Deadline *time.Time
	// ExtensionDays requested.
	ExtensionDays int
	// Photos are the SHA-256 of rectification photos uploaded to the field service.
	Photos []string
}

// Limits on what a client may put into one case step.
const (
	MaxNoteRunes     = 4000
	MaxStepPhotos    = 20
	MaxExtensionDays = 366
)

// NormalizeInput refuses a step's input that no state could accept: text
// the database cannot store (NUL), oversize notes, a handler that is not a
// person id, photo references that are not SHA-256, extension days out of
// range; and returns it with the handler id in canonical form. It runs
// before the case is read, so a bad request costs nothing.
func NormalizeInput(in Input) (Input, error) {
	if err := checkInput(in); err != nil {
		return in, err
	}
	if h := strings.TrimSpace(in.HandlerID); h != "" {
		in.HandlerID = uuid.MustParse(h).String()
	} else {
		in.HandlerID = ""
	}
	return in, nil
}

func checkInput(in Input) error {
	if !utf8.ValidString(in.Note) || strings.ContainsRune(in.Note, 0) {
		return structerr.NewInvalidArgument("the note contains a NUL character or is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(in.Note); n > MaxNoteRunes {
		return structerr.NewInvalidArgument("the note has %d characters, at most %d are allowed", n, MaxNoteRunes)
	}
	if h := strings.TrimSpace(in.HandlerID); h != "" {
		if _, err := uuid.Parse(h); err != nil {
			return structerr.NewInvalidArgument("handler id %.40q is not a person id", in.HandlerID)
		}
	}
	if len(in.Photos) > MaxStepPhotos {
		return structerr.NewInvalidArgument("%d photos, at most %d per step", len(in.Photos), MaxStepPhotos)
	}
	for _, p := range in.Photos {
		if !IsSHA256(p) {
			return structerr.NewInvalidArgument("photo %.70q is not a SHA-256 in hex", p)
		}
	}
	if in.ExtensionDays < 0 || in.ExtensionDays > MaxExtensionDays {
		return structerr.NewInvalidArgument("an extension is 1 to %d days, not %d", MaxExtensionDays, in.ExtensionDays)
	}
	return nil
}

// Apply performs the effect of an authorized transition on c at now,
// validating the input, and returns the details kept in the timeline. It
// does not check the state or the actor: Authorize did.
func Apply(c *Case, t Transition, actor Actor, in Input, rule DeadlineRule, now time.Time) (map[string]any, error) {
	in.Note = strings.TrimSpace(in.Note)
	details := map[string]any{}
	needNote := func(what string) error {
		if in.Note == "" {
			return structerr.NewInvalidArgument("a %s is required", what)
		}
		if n := utf8.RuneCountInString(in.Note); n > MaxNoteRunes {
			return structerr.NewInvalidArgument("the %s has %d characters, at most %d are allowed", what, n, MaxNoteRunes)
		}
		return nil
	}
	switch t.Action {
	case ActionAccept:
		c.SupervisorID = actor.PersonID
	case ActionReject:
		if err := needNote("reason for the rejection"); err != nil {
			return nil, err
		}
		c.SupervisorID = actor.PersonID
		c.ClosedAt = &now
	case ActionDispatch:
		if strings.TrimSpace(in.HandlerID) == "" {
			return nil, structerr.NewInvalidArgument("a handler is required to dispatch a case")
		}
		deadline := rule.Deadline(now)
		if in.Deadline != nil {
			if !in.Deadline.After(now) {
				return nil, structerr.NewInvalidArgument("the deadline must be in the future")
			}
			if in.Deadline.After(deadline) {
				return nil, structerr.NewInvalidArgument("the deadline for a %s case is at most %s; later needs an approved extension",
					strings.ToLower(strings.TrimPrefix(c.Severity, "SEVERITY_")), deadline.In(chinaTime).Format("2006-01-02 15:04"))
			}
			deadline = in.Deadline.UTC()
		}
		c.SupervisorID = actor.PersonID
		c.HandlerID = in.HandlerID
		c.DispatchedAt = &now
		c.Deadline = &deadline
		c.ExtensionDays = 0
		details["handler_id"] = in.HandlerID
		details["deadline"] = deadline
	case ActionStartWork:
	case ActionSubmitRectification:
		if err := needNote("description of the rectification"); err != nil {
			return nil, err
		}
		if len(in.Photos) == 0 {
			return nil, structerr.NewInvalidArgument("at least one photo of the rectified site is required")
		}
		for _, p := range in.Photos {
			if !IsSHA256(p) {
				return nil, structerr.NewInvalidArgument("photo %.70q is not a SHA-256 in hex", p)
			}
		}
		c.RectificationNote = in.Note
		c.RectificationPhotos = normalizePhotos(in.Photos)
		c.RectifiedAt = &now
		details["photos"] = c.RectificationPhotos
	case ActionVerify:
		if actor.PersonID != "" && actor.PersonID == c.HandlerID {
			return nil, structerr.NewFailedPrecondition("the handler cannot verify their own rectification; another inspector of the cell must check it on site")
		}
		c.VerifiedBy = actor.PersonID
		c.VerifiedAt = &now
	case ActionClose:
		c.ClosedAt = &now
	case ActionReturn:
		if err := needNote("reason for returning the case"); err != nil {
			return nil, err
		}
		details["previous_handler_id"] = c.HandlerID
		c.clearDispatch()
	case ActionRequestExtension:
		if err := needNote("reason for the extension"); err != nil {
			return nil, err
		}
		if in.ExtensionDays <= 0 {
			return nil, structerr.NewInvalidArgument("request at least one day of extension")
		}
		if err := c.checkExtension(in.ExtensionDays, rule); err != nil {
			return nil, err
		}
		c.PendingExtensionDays = in.ExtensionDays
		c.PendingExtensionReason = in.Note
		c.PendingExtensionBy = actor.PersonID
		details["days"] = in.ExtensionDays
	case ActionApproveExtension:
		if err := c.checkExtension(c.PendingExtensionDays, rule); err != nil {
			return nil, err
		}
		d := c.Deadline.Add(time.Duration(c.PendingExtensionDays) * 24 * time.Hour)
		c.Deadline = &d
		c.ExtensionDays += c.PendingExtensionDays
		details["days"] = c.PendingExtensionDays
		details["deadline"] = d
		c.clearPendingExtension()
	case ActionDeclineExtension:
		details["days"] = c.PendingExtensionDays
		c.clearPendingExtension()
	case ActionReopen:
		if err := needNote("reason for reopening (the recurrence observed)"); err != nil {
			return nil, err
		}
		c.ReopenCount++
		c.clearDispatch()
		c.VerifiedBy, c.VerifiedAt, c.ClosedAt = "", nil, nil
		c.EscalatedAt, c.EscalationReason = nil, ""
	case ActionReassign:
		if err := needNote("reason for the reassignment"); err != nil {
			return nil, err
		}
		details["previous_supervisor_id"] = c.SupervisorID
		c.SupervisorID = actor.PersonID
		if h := strings.TrimSpace(in.HandlerID); h != "" {
			if c.State != StateDispatched && c.State != StateInProgress {
				return nil, structerr.NewInvalidArgument("the handler can only be changed while the case is dispatched or in progress")
			}
			details["previous_handler_id"] = c.HandlerID
			details["handler_id"] = h
			c.HandlerID = h
		}
	case ActionEscalate:
		if in.Note == "" {
			in.Note = "escalated by the county office"
		}
		c.EscalatedAt = &now
		c.EscalationReason = in.Note
	default:
		return nil, structerr.NewInvalidArgument("unknown case action %.40q", t.Action)
	}
	if t.To != "" {
		c.State = t.To
	}
	c.UpdatedAt = now
	return details, nil
}

func (c *Case) clearDispatch() {
	c.HandlerID = ""
	c.DispatchedAt, c.Deadline = nil, nil
	c.ExtensionDays = 0
	c.RectificationNote, c.RectificationPhotos, c.RectifiedAt = "", nil, nil
	c.clearPendingExtension()
}

func (c *Case) clearPendingExtension() {
	c.PendingExtensionDays, c.PendingExtensionReason, c.PendingExtensionBy = 0, "", ""
}

// checkExtension refuses an extension that would carry the deadline past
// the severity's limit counted from dispatch.
func (c *Case) checkExtension(days int, rule DeadlineRule) error {
	if c.Deadline == nil || c.DispatchedAt == nil {
		return structerr.NewFailedPrecondition("the case has no deadline to extend")
	}
	limit := rule.Limit(*c.DispatchedAt)
	proposed := c.Deadline.Add(time.Duration(days) * 24 * time.Hour)
	if proposed.After(limit) {
		left := int(limit.Sub(*c.Deadline).Hours() / 24)
		return structerr.NewFailedPrecondition("a %s case may take at most %d days from dispatch; at most %d more days can be granted",
			strings.ToLower(strings.TrimPrefix(c.Severity, "SEVERITY_")), rule.MaxDays, max(left, 0))
	}
	return nil
}

// IsSHA256 reports whether s is a SHA-256 digest in hex.
func IsSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func normalizePhotos(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.ToLower(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
