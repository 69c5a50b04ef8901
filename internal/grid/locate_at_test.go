package grid

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/grid/demo"
	"ecogrid/internal/structerr"
)

// Index.LocateAt answers from memory while a county's boundaries are
// unchanged since the moment asked, from the PostGIS history otherwise,
// and always as Store.LocateAt does.
func TestIndexLocateAtFromMemoryAndHistory(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	if _, _, err := NewIndex(s.pool, nil).LocateAt(ctx, 38, 114, time.Now()); structerr.Code(err) != codes.Unavailable {
		t.Fatalf("before the first load: %v", err)
	}
	beforeImport := time.Now()
	time.Sleep(10 * time.Millisecond)
	importDemo(t, s)
	ix := loadedIndex(t, s)
	before := time.Now()
	time.Sleep(10 * time.Millisecond)

	// A point in the strip between villages 001 and 002 of township 001
	// that changes hands when their border moves east.
	nodes := demo.CountyNodes()
	a, b := find(nodes, "130123001001"), find(nodes, "130123001002")
	var lat, lon float64
	for _, c := range nodes[a].Ring {
		if onRing(nodes[b].Ring, c) {
			lat, lon = c[1], c[0]+0.001
			break
		}
	}
	check := func(name string, at time.Time, wantCell string, wantMemory bool) {
		t.Helper()
		mem, pg := ix.metrics.historicFromMemory.Load(), ix.metrics.historicFromPostGIS.Load()
		got, ok, err := ix.LocateAt(ctx, lat, lon, at)
		if err != nil || ok != (wantCell != "") || (ok && got.Cell.Code != wantCell) {
			t.Fatalf("%s: %+v %v %v, want %q", name, got.Cell, ok, err, wantCell)
		}
		ref, refOK, err := s.LocateAt(ctx, lat, lon, at)
		if err != nil || refOK != ok || (ok && (ref.Cell != got.Cell || len(ref.Path) != len(got.Path))) {
			t.Fatalf("%s: index %+v, PostGIS %+v (%v)", name, got, ref, err)
		}
		fromMemory := ix.metrics.historicFromMemory.Load() > mem
		if fromMemory != wantMemory || fromMemory == (ix.metrics.historicFromPostGIS.Load() > pg) {
			t.Fatalf("%s: from memory %v, want %v", name, fromMemory, wantMemory)
		}
	}
	check("unchanged since", time.Now(), "130123001002", true)
	check("before the grid existed", beforeImport, "", false)

	moveSharedBorder(nodes, a, b, 0.002)
	if _, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection(nodes)), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the move", time.Now(), "130123001001", true)
	check("observed before the move", before, "130123001002", false)

	// Outside every county: memory knows nothing moved there since.
	lat, lon = 10, 10
	check("outside, now", time.Now(), "", true)
	check("outside, before the move", before, "", false)
}
