package field_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// TestWithRealGridPeopleAndLedger runs field reporting against the real
// neighbours: the demo county imported into the grid and located through
// its in-memory index, people's assignments (who was responsible), the
// grid's patrol tasks, and the ledger's hash chain.
func TestWithRealGridPeopleAndLedger(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	store := grid.NewStore(pool, grid.Config{})
	if _, err := store.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	ix := grid.NewIndex(pool, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const villageCode = "130123002004"
	v, err := store.NodeByCode(ctx, villageCode)
	if err != nil {
		t.Fatal(err)
	}
	twp, err := store.NodeByCode(ctx, villageCode[:9])
	if err != nil {
		t.Fatal(err)
	}
	inspector := peopletest.AddMember(t, pool, people.Node{ID: v.ID.String(), Code: v.Code, Name: v.Name}, scope.RoleInspector, "Zhang Wei", "")
	chief := peopletest.AddMember(t, pool, people.Node{ID: twp.ID.String(), Code: twp.Code, Name: twp.Name}, scope.RoleGridChief, "Liu Yang", "")

	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := field.New(field.Deps{
		Pool: pool, Locator: gridadapt.Locator{Index: ix}, Blobs: blobs,
	}, field.Config{})
	if err != nil {
		t.Fatal(err)
	}

	// A point inside the village, reported in GCJ-02 as Amap gives it.
	ring := v.Geometry.Polygon(0).LinearRing(0).FlatCoords()
	k := len(ring) / 4 * 2
	lat, lon := (ring[1]+ring[k+1])/2, (ring[0]+ring[k])/2
	glat, glon := coord.WGS84ToGCJ02(lat, lon)
	d := field.Draft{
		ID: uuid.NewString(), ObservedAt: time.Now(), Category: "open_burning", // after the assignments began
		Severity: field.SeveritySerious, Description: "straw burning in the field east of the school",
		Position:  field.Position{Lat: glat, Lon: glon, System: coord.GCJ02, AccuracyM: 8},
		Violation: true,
	}
	r, _, err := f.SubmitReport(ctx, inspector.Caller(), d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Location.VillageCode != villageCode || r.Location.TownshipCode != villageCode[:9] || r.Location.CountyCode != "130123" || r.OutsideArea {
		t.Fatalf("located %+v outside=%v", r.Location, r.OutsideArea)
	}
	var payload []byte
	if err := pool.QueryRow(ctx, `SELECT payload FROM outbox.events WHERE event_id = $1`, r.EventID).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.ViolationReported
	if err := proto.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ev.Responsible {
		names = append(names, p.Name+"/"+p.Role)
	}
	if !slices.Contains(names, "Zhang Wei/inspector") || !slices.Contains(names, "Liu Yang/grid_chief") {
		t.Fatalf("responsible in the event: %v", names)
	}
	var responsible string
	if err := pool.QueryRow(ctx, `SELECT responsible::text FROM ledger.records WHERE subject_id = $1 AND action = $2`,
		d.ID, field.ActionViolationReported).Scan(&responsible); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(responsible, inspector.Person.ID) || !strings.Contains(responsible, chief.Person.ID) {
		t.Fatalf("ledger record names %s", responsible)
	}

	// A patrol through the village, judged by the village's patrol task.
	pid := uuid.NewString()
	start := time.Now().Add(-2 * time.Hour)
	if _, err := f.StartPatrol(ctx, inspector.Caller(), pid, start); err != nil {
		t.Fatal(err)
	}
	var pts []field.TrackPoint
	for i := range 31 {
		pts = append(pts, field.TrackPoint{RecordedAt: start.Add(time.Duration(i) * time.Minute),
			Position: field.Position{Lat: lat + float64(i)*0.00001, Lon: lon, System: coord.WGS84, AccuracyM: 5}})
	}
	if _, err := f.AppendTrackPoints(ctx, inspector.Caller(), pid, pts); err != nil {
		t.Fatal(err)
	}
	p, err := f.EndPatrol(ctx, inspector.Caller(), pid, start.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.CellCodes, []string{villageCode}) || slices.Contains(p.Flags, field.FlagOutsideAssignedArea) {
		t.Fatalf("patrol cells %v flags %v", p.CellCodes, p.Flags)
	}
	rows, err := f.PatrolCompliance(ctx, chief.Caller(), "", field.PeriodWeek, start, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		if row.InspectorID == inspector.Person.ID && row.CellCode == villageCode {
			found = true
			if row.Done+row.Implausible != 1 || row.Required == 0 {
				t.Fatalf("compliance row %+v", row)
			}
		}
	}
	if !found {
		t.Fatalf("inspector missing from compliance: %+v", rows)
	}
}
