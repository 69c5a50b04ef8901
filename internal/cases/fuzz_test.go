package cases

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/scope"
	"ecogrid/internal/structerr/structerrtest"
)

// FuzzCaseStep takes any action with any input on a case in every state,
// as a caller holding every role over the case, through the same pure
// steps as Tracker.Transition: NormalizeInput, Authorize, Apply. A refusal is
// InvalidArgument, FailedPrecondition or PermissionDenied with a short
// message; an accepted step leaves the case storable and consistent — the
// state the workflow names, notes without NUL and within the limit,
// canonical photo references, and a deadline after dispatch and never
// past the severity's limit, however many days were asked for.
func FuzzCaseStep(f *testing.F) {
	f.Add(uint8(2), "派到村里处理", "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000009", "", int32(0), int64(3600))
	f.Add(uint8(4), "已清理", "", strings.Repeat("AB", 32)+","+strings.Repeat("ab", 32), int32(0), int64(0))
	f.Add(uint8(8), "雨天施工", "", "", int32(5), int64(0))
	f.Add(uint8(8), "long", "", "", int32(2147483647), int64(0))
	f.Add(uint8(8), "wrap", "", "", int32(213503), int64(0))
	f.Add(uint8(1), "a\x00b", "", "", int32(0), int64(0))
	f.Add(uint8(13), "换人", " 0B8F6A9E-2F61-4C1E-9D3E-5A1F00000009 ", "", int32(0), int64(0))
	f.Add(uint8(2), "", "x", "", int32(-1), int64(-1<<62))

	now := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	caller := scope.Caller{PersonID: "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000001"}
	for _, r := range scope.AllRoles {
		caller.Grants = append(caller.Grants, scope.Grant{Role: r, NodeID: "0b8f6a9e-2f61-4c1e-9d3e-5a1f000000aa", NodeCode: "130123"})
	}
	f.Fuzz(func(t *testing.T, action uint8, note, handler, photos string, days int32, deadlineIn int64) {
		a := Workflow[int(action)%len(Workflow)].Action
		in := Input{Note: note, HandlerID: handler, ExtensionDays: int(days)}
		if photos != "" {
			in.Photos = strings.Split(photos, ",")
		}
		if deadlineIn != 0 {
			d := now.Add(time.Duration(deadlineIn%(1<<40)) * time.Second)
			in.Deadline = &d
		}
		in, err := NormalizeInput(in)
		if err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
			return
		}
		for _, st := range AllStates {
			c := sampleCase(st, now)
			actor, tr, err := Authorize(caller, c, a)
			if err == nil {
				_, err = Apply(c, tr, actor, in, DefaultDeadlineRules[c.Severity], now)
			}
			if err != nil {
				structerrtest.CheckRefusal(t, err, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied)
				continue
			}
			checkCase(t, c, tr, st)
		}
	})
}

var lowerUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func sampleCase(st State, now time.Time) *Case {
	dispatched := now.Add(-48 * time.Hour)
	deadline := dispatched.Add(7 * 24 * time.Hour)
	c := &Case{
		ID: "0b8f6a9e-2f61-4c1e-9d3e-5a1f000000c1", CountyCode: "130123", TownshipCode: "130123005", VillageCode: "130123005001",
		NodeCode: "130123005001", Category: "waste_dumping", Severity: "SEVERITY_SERIOUS", State: st,
		ReportedAt: now.Add(-72 * time.Hour), CreatedAt: now.Add(-72 * time.Hour), UpdatedAt: now.Add(-time.Hour),
	}
	if st != StateReported && st != StateRejected {
		c.SupervisorID = "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000002"
	}
	switch st {
	case StateDispatched, StateInProgress, StateRectified, StateVerified, StateClosed:
		c.HandlerID = "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000003"
		c.DispatchedAt, c.Deadline = &dispatched, &deadline
		if st == StateInProgress {
			c.PendingExtensionDays, c.PendingExtensionReason, c.PendingExtensionBy = 3, "rain", c.HandlerID
		}
	}
	return c
}

func checkCase(t *testing.T, c *Case, tr Transition, from State) {
	t.Helper()
	if want := tr.To; want != "" && c.State != want || want == "" && c.State != from {
		t.Fatalf("%s from %s left the case %s", tr.Action, from, c.State)
	}
	for name, s := range map[string]string{"rectification note": c.RectificationNote, "extension reason": c.PendingExtensionReason, "escalation reason": c.EscalationReason} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || utf8.RuneCountInString(s) > MaxNoteRunes {
			t.Fatalf("%s from %s stored %s %.80q", tr.Action, from, name, s)
		}
	}
	for i, p := range c.RectificationPhotos {
		if !IsSHA256(p) || p != strings.ToLower(p) || slices.Contains(c.RectificationPhotos[:i], p) {
			t.Fatalf("%s stored photos %q", tr.Action, c.RectificationPhotos)
		}
	}
	if c.Deadline != nil {
		if c.DispatchedAt == nil || !c.Deadline.After(*c.DispatchedAt) {
			t.Fatalf("%s from %s: deadline %v is not after dispatch %v", tr.Action, from, c.Deadline, c.DispatchedAt)
		}
		if limit := DefaultDeadlineRules[c.Severity].Limit(*c.DispatchedAt); c.Deadline.After(limit) {
			t.Fatalf("%s from %s: deadline %v is past the limit %v", tr.Action, from, c.Deadline, limit)
		}
	}
	for _, id := range []string{c.HandlerID, c.SupervisorID} {
		if id != "" && !lowerUUID.MatchString(id) {
			t.Fatalf("%s from %s stored person id %q", tr.Action, from, id)
		}
	}
	if c.PendingExtensionDays < 0 || c.PendingExtensionDays > MaxExtensionDays {
		t.Fatalf("%s from %s: %d extension days pending", tr.Action, from, c.PendingExtensionDays)
	}
}
