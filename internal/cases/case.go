package cases

import (
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"ecogrid/internal/ledger"
	"ecogrid/internal/structerr"
	"ecogrid/internal/textcheck"

	"github.com/google/uuid"
)

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
	// Responsible are the people answerable for the case's cell when the
	// violation was reported, as the reporting service named them.
	Responsible []ledger.Responsible
	ObservedAt  *time.Time
	ReportedAt  time.Time
	// ZoneCodes are the protected zones (county/code) containing the case,
	// ReachCodes the river and reservoir reaches it lies on, as field or
	// monitoring committed them; ZoneDeadline the rectification deadline a
	// zone rule set, nil for none.
	ZoneCodes    []string
	ReachCodes   []string
	ZoneDeadline *time.Time

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
	if err := textcheck.Text("the note", in.Note); err != nil {
		return err
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
			severityName(c), rule.MaxDays, max(left, 0))
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
