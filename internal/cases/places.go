package cases

import (
	"context"
	"slices"
	"strings"
	"time"

	"ecogrid/internal/field"
	"ecogrid/internal/monitoring"
	"ecogrid/internal/scope"
	"ecogrid/internal/waters"
)

// A case lies where its violation was committed: in the protected zones
// containing it and on the river and reservoir reaches beside it (issues
// 17, 18). Those come from PostgreSQL, read through field's or
// monitoring's Go API while the event is checked, never from the event
// alone, and a zone rule that escalates at once does so when the case is
// opened, saying which zone and rule in the timeline and the ledger.

// fieldPlacesMismatch names what the event says about zones that field did
// not commit, or "".
func fieldPlacesMismatch(ev interface {
	GetZoneCodes() []string
	GetEscalateNow() bool
}, p field.Places) string {
	switch {
	case !slices.Equal(nonNil(ev.GetZoneCodes()), nonNil(p.ZoneCodes)):
		return "zones"
	case ev.GetEscalateNow() != p.EscalateNow:
		return "escalation"
	}
	return ""
}

// adoptFieldPlaces gives c the zones, reaches, zone deadline and zone
// escalation field committed with its report.
func adoptFieldPlaces(c *Case, p field.Places) {
	c.ZoneCodes = nonNil(p.ZoneCodes)
	c.ReachCodes = nonNil(p.ReachCodes())
	if p.Deadline != nil {
		dl := p.Deadline.UTC()
		c.ZoneDeadline = &dl
	}
	if p.EscalateNow {
		escalateByZone(c, p.Reason)
	}
}

// adoptMonitoringPlaces gives c the zones monitoring committed with its
// violation, their deadline and their escalation.
func adoptMonitoringPlaces(c *Case, v monitoring.Violation) {
	c.ZoneCodes = nonNil(v.ZoneCodes)
	if v.ZoneDeadline != nil {
		dl := v.ZoneDeadline.UTC()
		c.ZoneDeadline = &dl
	}
	if v.EscalateNow {
		escalateByZone(c, "zones "+strings.Join(v.ZoneCodes, ", "))
	}
}

// escalateByZone puts c under county supervision from its opening because
// a zone rule says so, whatever its severity would have done.
func escalateByZone(c *Case, reason string) {
	at := c.CreatedAt
	c.EscalatedAt = &at
	c.EscalationReason = "zone rule: escalated to the county at once (" + reason + ")"
}

// zoneDetails adds the case's zones and reaches to the details of its
// opening step.
func zoneDetails(c *Case, d map[string]any) {
	if len(c.ZoneCodes) > 0 {
		d["zone_codes"] = c.ZoneCodes
	}
	if len(c.ReachCodes) > 0 {
		d["reach_codes"] = c.ReachCodes
	}
	if c.ZoneDeadline != nil {
		d["zone_deadline"] = c.ZoneDeadline.UTC().Format(time.RFC3339)
	}
	if c.EscalatedAt != nil && strings.HasPrefix(c.EscalationReason, "zone rule:") {
		d["zone_rule"] = c.EscalationReason
	}
}

// zoneCappedDeadline is the dispatch deadline under a zone rule: the
// zone's deadline when it comes before the severity's and is still ahead.
func zoneCappedDeadline(c *Case, deadline, now time.Time) time.Time {
	if c.ZoneDeadline != nil && c.ZoneDeadline.After(now) && c.ZoneDeadline.Before(deadline) {
		return c.ZoneDeadline.UTC()
	}
	return deadline
}

// chiefReaches are the reaches the caller is chief of now: the cases on
// them are the caller's to see (read only; the steps stay with the grid's
// roles), beside those of the caller's grid scope.
func (t *Tracker) chiefReaches(ctx context.Context, caller scope.Caller) ([]string, error) {
	if caller.PersonID == "" {
		return nil, nil
	}
	return waters.ReachesHeldBy(ctx, t.pool, caller.PersonID, t.now())
}

// chiefSees reports whether the caller is chief of a reach c lies on.
func (t *Tracker) chiefSees(ctx context.Context, caller scope.Caller, c *Case) (bool, error) {
	if len(c.ReachCodes) == 0 {
		return false, nil
	}
	held, err := t.chiefReaches(ctx, caller)
	if err != nil {
		return false, err
	}
	for _, r := range c.ReachCodes {
		if slices.Contains(held, r) {
			return true, nil
		}
	}
	return false, nil
}
