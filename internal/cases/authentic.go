package cases

import (
	"context"
	"fmt"
	"math"
	"strings"

	"google.golang.org/grpc/codes"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/monitoring"
	"ecogrid/internal/structerr"
)

// checkAuthentic refuses a violation event that field did not commit as it
// stands: anyone who can reach NATS can publish on a violation subject, so
// the event is compared with the report in PostgreSQL (field's Go API, in
// the case's transaction) before it opens anything. A forged event, one
// republished under another id, or one whose content was altered is a
// *PoisonError naming why, and is parked on the dead-letter subject.
//
// A violation raised by water monitoring (source "monitoring": a sample
// worse than its point's class, or a missed sample) is checked against
// what monitoring committed instead.
func checkAuthentic(ctx context.Context, tx database.Querier, ev *eventsv1.ViolationReported, c *Case) error {
	if ev.GetSource() == monitoring.Source {
		return checkMonitoring(ctx, tx, ev, c)
	}
	v, err := field.LookupViolation(ctx, tx, c.ViolationEventID)
	if structerr.Code(err) == codes.NotFound || structerr.Code(err) == codes.InvalidArgument {
		return &PoisonError{Reason: fmt.Sprintf("no violation with event id %s was recorded by the field service (forged or foreign event)", c.ViolationEventID)}
	}
	if err != nil {
		return err
	}
	return compareRecorded(ev, c, v)
}

func compareRecorded(ev *eventsv1.ViolationReported, c *Case, v field.StoredViolation) error {
	why := mismatch(ev, v)
	if why == "" {
		why = fieldPlacesMismatch(ev, v.Places)
	}
	if why != "" {
		return &PoisonError{Reason: fmt.Sprintf("event %s does not match the recorded violation: %s differs", c.ViolationEventID, why)}
	}
	adoptFieldPlaces(c, v.Places)
	return nil
}

// mismatch names the first field in which the event differs from what field
// recorded, or "".
func mismatch(ev *eventsv1.ViolationReported, v field.StoredViolation) string {
	switch {
	case !strings.EqualFold(ev.GetReportId(), v.ReportID):
		return "report id"
	case ev.GetCountyCode() != v.CountyCode:
		return "county"
	case ev.GetTownshipCode() != v.TownshipCode || ev.GetVillageCode() != v.VillageCode:
		return "grid cell"
	case ev.GetReporterId() != v.ReporterID:
		return "reporter"
	case ev.GetCategory() != v.Category:
		return "category"
	case ev.GetSeverity() != v.Severity.String():
		return "severity"
	case math.Abs(ev.GetLatitude()-v.Latitude) > 1e-7 || math.Abs(ev.GetLongitude()-v.Longitude) > 1e-7:
		return "position"
	}
	return ""
}

func checkMonitoring(ctx context.Context, tx database.Querier, ev *eventsv1.ViolationReported, c *Case) error {
	v, err := monitoring.LookupViolation(ctx, tx, c.ViolationEventID)
	if structerr.Code(err) == codes.NotFound || structerr.Code(err) == codes.InvalidArgument {
		return &PoisonError{Reason: fmt.Sprintf("no violation with event id %s was raised by water monitoring (forged or foreign event)", c.ViolationEventID)}
	}
	if err != nil {
		return err
	}
	why := ""
	switch {
	case !strings.EqualFold(ev.GetReportId(), v.EventID.String()):
		why = "report id"
	case ev.GetCountyCode() != v.CountyCode:
		why = "county"
	case ev.GetTownshipCode() != v.TownshipCode || ev.GetVillageCode() != v.VillageCode:
		why = "grid cell"
	case ev.GetReporterId() != "":
		why = "reporter"
	case ev.GetCategory() != v.Category:
		why = "category"
	case ev.GetSeverity() != v.Severity.String():
		why = "severity"
	case math.Abs(ev.GetLatitude()-v.Lat) > 1e-7 || math.Abs(ev.GetLongitude()-v.Lon) > 1e-7:
		why = "position"
	case ev.GetEscalateNow() != v.EscalateNow:
		why = "escalation"
	}
	if why != "" {
		return &PoisonError{Reason: fmt.Sprintf("event %s does not match the recorded monitoring violation: %s differs", c.ViolationEventID, why)}
	}
	adoptMonitoringPlaces(c, v)
	return nil
}
