package gridadapt_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/structerr"
)

func TestAdaptersAnswerFromTheGrid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	store := grid.NewStore(pool, grid.Config{})
	ix := grid.NewIndex(pool, nil)
	loc := gridadapt.Locator{Index: ix}
	if _, _, err := loc.Locate(ctx, 38.1, 114.5); structerr.Code(err) != codes.Unavailable {
		t.Fatalf("before load: %v", err)
	}
	if _, err := store.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := store.NodeByCode(ctx, "130123002004")
	if err != nil {
		t.Fatal(err)
	}
	ring := v.Geometry.Polygon(0).LinearRing(0).FlatCoords()
	k := len(ring) / 4 * 2
	got, ok, err := loc.Locate(ctx, (ring[1]+ring[k+1])/2, (ring[0]+ring[k])/2)
	if err != nil || !ok || got.VillageCode != "130123002004" || got.TownshipCode != "130123002" || got.CountyCode != "130123" {
		t.Fatalf("locate: %+v %v %v", got, ok, err)
	}
	if _, ok, err := loc.Locate(ctx, 10, 10); ok || err != nil {
		t.Fatalf("outside: %v %v", ok, err)
	}
	past, ok, err := loc.LocateAt(ctx, (ring[1]+ring[k+1])/2, (ring[0]+ring[k])/2, time.Now())
	if err != nil || !ok || past != got {
		t.Fatalf("locate at now: %+v %v %v", past, ok, err)
	}
	n, err := store.ResolveNode(ctx, v.ID.String())
	if err != nil || n.Code != v.Code || n.Name != v.Name {
		t.Fatalf("resolve: %+v %v", n, err)
	}
	if _, err := store.ResolveNode(ctx, uuid.NewString()); structerr.Code(err) != codes.NotFound {
		t.Fatalf("unknown node: %v", err)
	}
}
