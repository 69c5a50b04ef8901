package cases

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/field"
	"ecogrid/internal/structerr"
)

// checkAuthentic refuses a violation event that field did not commit as it
// stands: anyone who can reach NATS can publish on a violation subject, so
// the event is compared with the report in PostgreSQL (field's Go API, in
// the case's transaction) before it opens anything. A forged event, one
// republished under another id, or one whose content was altered is a
// *PoisonError naming why, and is parked on the dead-letter subject.
func checkAuthentic(ctx context.Context, tx pgx.Tx, ev *eventsv1.ViolationReported, c *Case) error {
	v, err := field.LookupViolation(ctx, tx, c.ViolationEventID)
	if structerr.Code(err) == codes.NotFound || structerr.Code(err) == codes.InvalidArgument {
		return &PoisonError{Reason: fmt.Sprintf("no violation with event id %s was recorded by the field service (forged or foreign event)", c.ViolationEventID)}
	}
	if err != nil {
		return err
	}
	if why := mismatch(ev, v); why != "" {
		return &PoisonError{Reason: fmt.Sprintf("event %s does not match the recorded violation: %s differs", c.ViolationEventID, why)}
	}
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
