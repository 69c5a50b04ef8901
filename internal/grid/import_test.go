package grid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/structerr"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	return NewStore(dbtest.NewPool(t), Config{})
}

func importDemo(t *testing.T, s *Store) ImportResult {
	t.Helper()
	res, err := s.ImportGeoJSON(context.Background(), bytes.NewReader(demo.County()), ImportOptions{})
	if err != nil {
		t.Fatalf("importing the demo county: %v", err)
	}
	return res
}

func countRows(t *testing.T, s *Store) (nodes, versions int) {
	t.Helper()
	if err := s.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM grid.nodes), (SELECT count(*) FROM grid.node_versions)`).Scan(&nodes, &versions); err != nil {
		t.Fatal(err)
	}
	return nodes, versions
}

func TestImportDemoCountyIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	res := importDemo(t, s)
	if res.Created != 161 || len(res.Warnings) != 0 {
		t.Fatalf("created %d warnings %v", res.Created, res.Warnings.Summary(3))
	}
	again := importDemo(t, s)
	if again.Created != 0 || again.Updated != 0 || again.Unchanged != 161 {
		t.Fatalf("re-import: %+v", again)
	}
	if n, v := countRows(t, s); n != 161 || v != 161 {
		t.Fatalf("nodes %d versions %d", n, v)
	}
	var records int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records WHERE county_code = '130123' AND action = 'grid_node.created' AND actor_role = 'system'`).Scan(&records); err != nil || records != 161 {
		t.Fatalf("ledger records %d, %v; want one per created node", records, err)
	}
	v, err := s.NodeByCode(ctx, "130123001001")
	if err != nil {
		t.Fatal(err)
	}
	if v.Level != LevelVillage || v.AreaHa < 300 || v.AreaHa > 700 || len(v.Tasks) != 2 || v.Tasks[0].Kind != "patrol" {
		t.Fatalf("village %+v", v)
	}
	anc, err := s.Ancestry(ctx, v.ID)
	if err != nil || len(anc) != 3 || anc[0].Code != "130123" || anc[1].Code != "130123001" || anc[2].ID != v.ID {
		t.Fatalf("ancestry %v %v", anc, err)
	}
	kids, err := s.Children(ctx, anc[1].ID, false)
	if err != nil || len(kids) < 12 || kids[0].Code != "130123001001" || kids[0].Geometry != nil {
		t.Fatalf("children %d %v", len(kids), err)
	}
	var n int
	err = s.Subtree(ctx, SubtreeQuery{RootCode: "130123002", WithGeometry: true}, func(node *Node) error {
		if !strings.HasPrefix(node.Code, "130123002") || node.Geometry == nil {
			return fmt.Errorf("node %s outside subtree", node.Code)
		}
		n++
		return nil
	})
	if err != nil || n != 1+len(kids[:0])+countPrefix("130123002") {
		t.Fatalf("subtree %d nodes, %v", n, err)
	}
	if _, err := s.NodeByCode(ctx, "999999"); structerr.Code(err) != codes.NotFound {
		t.Fatalf("missing node: %v", err)
	}
}

func countPrefix(prefix string) int {
	n := 0
	for _, node := range demo.CountyNodes() {
		if strings.HasPrefix(node.Code, prefix) && node.Code != prefix {
			n++
		}
	}
	return n
}

// mutated returns the demo county with fn applied to its nodes.
func mutated(fn func([]demo.Node) []demo.Node) []byte {
	return demo.FeatureCollection(fn(demo.CountyNodes()))
}

func find(nodes []demo.Node, code string) int {
	for i, n := range nodes {
		if n.Code == code {
			return i
		}
	}
	panic(code)
}

func shift(ring [][2]float64, dlon, dlat float64) [][2]float64 {
	out := make([][2]float64, len(ring))
	for i, c := range ring {
		out[i] = [2]float64{c[0] + dlon, c[1] + dlat}
	}
	return out
}

func rejection(t *testing.T, err error) (*status.Status, []*errdetails.BadRequest_FieldViolation) {
	t.Helper()
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err %v, want a rejection", err)
	}
	st := status.Convert(structerr.ToStatus(err))
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v", st.Code())
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return st, br.FieldViolations
		}
	}
	t.Fatal("no BadRequest details")
	return nil, nil
}

// TestBadInputIsRefusedWholeNamingFeatureAndProblem covers the list
// of bad input: each is InvalidArgument naming the feature and the problem,
// with nothing written.
func TestBadInputIsRefusedWholeNamingFeatureAndProblem(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	full := demo.County()
	bowtie := mutated(func(ns []demo.Node) []demo.Node {
		i := find(ns, "130123001002")
		r := ns[i].Ring
		// Swap two consecutive corners' neighbourhoods: a figure of eight.
		a, b := r[0], r[len(r)/2]
		ns[i].Ring = [][2]float64{a, {b[0], a[1]}, {a[0], b[1]}, b, a}
		return ns
	})
	outside := mutated(func(ns []demo.Node) []demo.Node {
		i := find(ns, "130123001003")
		ns[i].Ring = shift(ns[i].Ring, 0, -0.03) // ~3.3 km south, ~2 km beyond the county edge
		return ns
	})
	overlap := mutated(func(ns []demo.Node) []demo.Node {
		i := find(ns, "130123001004")
		ns[i].Ring = shift(ns[i].Ring, 0.004, 0) // ~350 m east into its neighbour
		return ns
	})
	badCode := mutated(func(ns []demo.Node) []demo.Node {
		i := find(ns, "130123001005")
		ns[i].Code = "130123002099" // claims a township that does not contain it
		j := find(ns, "130123001006")
		ns[j].Code = "130123001007" // duplicate
		k := find(ns, "130123001008")
		ns[k].Code = "130123099001" // no such township
		return ns
	})
	nan := bytes.Replace(full, []byte("[114.4"), []byte("[NaN"), 1)
	huge := bytes.Replace(full, []byte(`"coordinates":[[[`), []byte(`"coordinates":[[[1e308,38.05],[`), 3)
	for _, tc := range []struct {
		name string
		data []byte
		want []string // substrings of the status message
	}{
		{"truncated", full[:len(full)*2/3], []string{"truncated file", "file ends unexpectedly"}},
		{"bow-tie", bowtie, []string{"130123001002", "self-intersection"}},
		{"village 2 km outside", outside, []string{"130123001003", "sticks out of its parent 130123001 by up to"}},
		{"sibling overlap", overlap, []string{"130123001004", "overlaps sibling"}},
		{"code not extending parent, duplicate", badCode, []string{"130123002099", "sticks out of its parent 130123002", "already appears at feature", "parent township 130123099 does not exist"}},
		{"NaN", nan, []string{"invalid character 'N'"}},
		{"1e308", huge, []string{"1e308, 38.05] is out of range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ImportGeoJSON(ctx, bytes.NewReader(tc.data), ImportOptions{})
			st, violations := rejection(t, err)
			for _, w := range tc.want {
				if !strings.Contains(st.Message(), w) {
					t.Errorf("message %q lacks %q", st.Message(), w)
				}
			}
			if len(violations) == 0 {
				t.Error("no violations in details")
			}
			if n, v := countRows(t, s); n != 0 || v != 0 {
				t.Fatalf("partial write: %d nodes %d versions", n, v)
			}
		})
	}
	// A million-vertex ring in an otherwise good file.
	var b strings.Builder
	b.WriteString(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"130123","name":"河源县","level":"county"},"geometry":{"type":"Polygon","coordinates":[[`)
	for i := range 1_000_000 {
		fmt.Fprintf(&b, "[%d.%07d,38.1],", 114, i)
	}
	b.WriteString(`[114.0,38.1]]]}}]}`)
	_, err := s.ImportGeoJSON(ctx, strings.NewReader(b.String()), ImportOptions{})
	st, _ := rejection(t, err)
	if !strings.Contains(st.Message(), "feature 0 (130123 河源县): a ring has 1000001 vertices, over the limit") {
		t.Fatalf("message %q", st.Message())
	}
}

func TestImportReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	data := mutated(func(ns []demo.Node) []demo.Node {
		ns[find(ns, "130123001003")].Ring = shift(ns[find(ns, "130123001003")].Ring, 0, -0.03)
		ns[find(ns, "130123003001")].Ring = shift(ns[find(ns, "130123003001")].Ring, 0.004, 0)
		i := find(ns, "130123004002")
		r := ns[i].Ring
		ns[i].Ring = [][2]float64{r[0], {r[len(r)/2][0], r[0][1]}, {r[0][0], r[len(r)/2][1]}, r[len(r)/2], r[0]}
		return ns
	})
	_, err := s.ImportGeoJSON(context.Background(), bytes.NewReader(data), ImportOptions{})
	_, violations := rejection(t, err)
	kinds := map[string]bool{}
	for _, v := range violations {
		kinds[v.Reason] = true
	}
	for _, k := range []ProblemKind{ProblemOutsideParent, ProblemOverlap, ProblemInvalidGeom} {
		if !kinds[string(k)] {
			t.Errorf("no %s among %v", k, violations)
		}
	}
}

func TestGapIsAWarningWithArea(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	data := mutated(func(ns []demo.Node) []demo.Node {
		i := find(ns, "130123001005")
		return append(ns[:i], ns[i+1:]...)
	})
	res, err := s.ImportGeoJSON(context.Background(), bytes.NewReader(data), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 160 || len(res.Warnings) != 1 || res.Warnings[0].Kind != ProblemGap {
		t.Fatalf("%+v", res)
	}
	w := res.Warnings[0]
	if w.Code != "130123001" || w.AreaM2 < 3e6 || w.AreaM2 > 7e6 || !strings.Contains(w.String(), "ha of 130123001 is covered by none of its children") {
		t.Fatalf("warning %v (%.0f m²)", w, w.AreaM2)
	}
}

func TestBoundaryChangeKeepsHistory(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	importDemo(t, s)
	before := time.Now()
	time.Sleep(10 * time.Millisecond)
	// Move the border between two neighbouring villages of township 001:
	// village 001's east edge and village 002's west edge move together.
	nodes := demo.CountyNodes()
	a, b := find(nodes, "130123001001"), find(nodes, "130123001002")
	moveSharedBorder(nodes, a, b, 0.002)
	res, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection(nodes)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 2 || res.Unchanged != 159 {
		t.Fatalf("%+v", res)
	}
	v1, _ := s.NodeByCode(ctx, "130123001001")
	versions, err := s.Versions(ctx, v1.ID, false)
	if err != nil || len(versions) != 2 || versions[0].ValidTo == nil || versions[1].ValidTo != nil || !versions[0].ValidTo.Equal(versions[1].ValidFrom) {
		t.Fatalf("versions %+v %v", versions, err)
	}
	// A point in the strip that changed hands: now in 001, then in 002.
	var lat, lon float64
	for _, c := range nodes[a].Ring {
		if onRing(nodes[b].Ring, c) {
			lat, lon = c[1], c[0]-0.001
			break
		}
	}
	now, ok, err := s.LocateAt(ctx, lat, lon, time.Now())
	if err != nil || !ok || now.Cell.Code != "130123001001" || len(now.Path) != 3 {
		t.Fatalf("now: %+v %v %v", now, ok, err)
	}
	then, ok, err := s.LocateAt(ctx, lat, lon, before)
	if err != nil || !ok || then.Cell.Code != "130123001002" || then.Path[1].Code != "130123001" {
		t.Fatalf("then: %+v %v %v", then, ok, err)
	}
}

// moveSharedBorder moves the vertices that villages a and b share by dLon
// degrees east in both rings, so the two stay neighbours without gap or
// overlap: the border between them moves.
func moveSharedBorder(nodes []demo.Node, a, b int, dLon float64) {
	shared := map[[2]float64]bool{}
	for _, c := range nodes[a].Ring {
		shared[c] = true
	}
	moved := func(r [][2]float64) [][2]float64 {
		out := make([][2]float64, len(r))
		for i, c := range r {
			if shared[c] && onRing(nodes[b].Ring, c) {
				c[0] += dLon
			}
			out[i] = c
		}
		return out
	}
	nodes[a].Ring, nodes[b].Ring = moved(nodes[a].Ring), moved(nodes[b].Ring)
}

func onRing(r [][2]float64, c [2]float64) bool {
	for _, x := range r {
		if x == c {
			return true
		}
	}
	return false
}

func TestScopeAndModes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	_, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), ImportOptions{MayWrite: func(code string) bool { return strings.HasPrefix(code, "130124") }})
	st, _ := rejection(t, err)
	if !strings.Contains(st.Message(), "outside the area you may edit") {
		t.Fatal(st.Message())
	}
	importDemo(t, s)
	_, err = s.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), ImportOptions{Mode: ImportCreateOnly})
	st, _ = rejection(t, err)
	if !strings.Contains(st.Message(), "already exists") {
		t.Fatal(st.Message())
	}
	res, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), ImportOptions{DryRun: true})
	if err != nil || !res.DryRun || res.Unchanged != 161 {
		t.Fatalf("dry run %+v %v", res, err)
	}
}

// TestImportFilePerLevel: counties, townships and villages in three files
// without a level property, the level given with the import.
func TestImportFilePerLevel(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	byLevel := map[int][]demo.Node{}
	for _, n := range demo.CountyNodes() {
		byLevel[n.Level] = append(byLevel[n.Level], n)
	}
	for _, l := range []Level{LevelCounty, LevelTownship, LevelVillage} {
		data := demo.FeatureCollection(byLevel[int(l)])
		data = bytes.ReplaceAll(data, []byte(`"level":"`+l.String()+`",`), nil)
		if bytes.Contains(data, []byte(`"level"`)) {
			t.Fatal("level property left in the file")
		}
		res, err := s.ImportGeoJSON(ctx, bytes.NewReader(data), ImportOptions{Level: l})
		if err != nil {
			t.Fatalf("%s file: %v", l, err)
		}
		if res.Created != len(byLevel[int(l)]) {
			t.Fatalf("%s file: %+v", l, res)
		}
		// A township import leaves the county uncovered until the villages
		// come: no gap, since townships tile it. Villages before townships
		// would have no parent.
		if len(res.Warnings) != 0 {
			t.Fatalf("%s file warnings: %v", l, res.Warnings.Summary(3))
		}
	}
	if n, _ := countRows(t, s); n != 161 {
		t.Fatalf("%d nodes", n)
	}
	// Export as of before the import is empty; as of now it is the county.
	past := time.Now().Add(-time.Hour)
	count := 0
	if err := s.Subtree(ctx, SubtreeQuery{RootCode: "130123", AsOf: &past}, func(*Node) error { count++; return nil }); err != nil || count != 0 {
		t.Fatalf("as of an hour ago: %d nodes, %v", count, err)
	}
	now := time.Now()
	if err := s.Subtree(ctx, SubtreeQuery{RootCode: "130123", AsOf: &now, MaxLevel: LevelTownship}, func(*Node) error { count++; return nil }); err != nil || count != 11 {
		t.Fatalf("as of now, down to townships: %d nodes, %v", count, err)
	}
}

// TestHistoryIsKeptForLife: the database itself refuses to delete or
// rewrite boundary history.
func TestHistoryIsKeptForLife(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	importDemo(t, s)
	for _, sql := range []string{
		`DELETE FROM grid.node_versions`,
		`UPDATE grid.node_versions SET name = 'x'`,
		`UPDATE grid.node_versions SET geom = ST_Multi(ST_Buffer(geom, 0.01))`,
		`TRUNCATE grid.node_versions`,
		`DELETE FROM grid.nodes WHERE level = 3`,
		`TRUNCATE grid.nodes CASCADE`,
	} {
		if _, err := s.pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "grid") {
			t.Errorf("%s: %v, want refused", sql, err)
		}
	}
	// Closing the current version once is what a boundary change does.
	if _, err := s.pool.Exec(ctx, `UPDATE grid.node_versions SET valid_to = valid_from + interval '1 day' WHERE code = '130123001001'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE grid.node_versions SET valid_to = valid_from + interval '2 day' WHERE code = '130123001001'`); err == nil {
		t.Fatal("a closed version was reopened")
	}
	if n, v := countRows(t, s); n != 161 || v != 161 {
		t.Fatalf("nodes %d versions %d", n, v)
	}
}

// TestRedrawnParentIsCheckedAgainstItsExistingChildren: a township redrawn
// on its own must still contain the villages already stored under it.
func TestRedrawnParentIsCheckedAgainstItsExistingChildren(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	importDemo(t, s)
	nodes := demo.CountyNodes()
	tw := nodes[find(nodes, "130123001")]
	tw.Ring = shift(tw.Ring, 0.01, 0) // ~870 m east
	_, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection([]demo.Node{tw})), ImportOptions{})
	// The message names what fits in structerr.MaxMessageBytes; the details
	// list every problem.
	_, violations := rejection(t, err)
	var all strings.Builder
	for _, v := range violations {
		all.WriteString(v.Description + "\n")
	}
	for _, want := range []string{"existing child 130123001001 would stick out of the new boundary", "overlaps sibling 130123002", "sticks out of its parent 130123"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("details %q lack %q", all.String(), want)
		}
	}
}

// TestMergeTownships: township 010 is merged into 009 (撤乡并镇). The new
// file holds the county's whole subtree: 009 with the union of both
// boundaries, 010's villages re-coded under 009. The import retires 010 and
// its old village nodes in the same transaction; history still answers
// for the time before.
func TestMergeTownships(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	importDemo(t, s)
	before := time.Now()
	time.Sleep(10 * time.Millisecond)
	var union *geom.MultiPolygon
	if err := s.pool.QueryRow(ctx, `SELECT ST_Multi(ST_Union(geom)) FROM grid.nodes WHERE code IN ('130123009', '130123010')`).Scan(&union); err != nil {
		t.Fatal(err)
	}
	var nine []*Node
	if err := s.Subtree(ctx, SubtreeQuery{RootCode: "130123009"}, func(n *Node) error { nine = append(nine, n); return nil }); err != nil {
		t.Fatal(err)
	}
	next := len(nine) // villages of 009 are 001..len-1
	var b bytes.Buffer
	b.WriteString(FeatureCollectionHeader)
	first := true
	moved := 0
	var probe [2]float64
	err := s.Subtree(ctx, SubtreeQuery{RootCode: "130123", WithGeometry: true}, func(n *Node) error {
		switch {
		case n.Code == "130123010":
			return nil
		case n.Code == "130123009":
			n.Geometry = union
		case strings.HasPrefix(n.Code, "130123010"):
			if moved == 0 {
				ring := n.Geometry.Polygon(0).LinearRing(0).FlatCoords()
				k := len(ring) / 4 * 2
				probe = [2]float64{(ring[0] + ring[k]) / 2, (ring[1] + ring[k+1]) / 2}
			}
			moved++
			n.ID = newID()
			n.Code = fmt.Sprintf("130123009%03d", next+moved-1)
		}
		j, err := FeatureJSON(n)
		if err != nil {
			return err
		}
		if !first {
			b.WriteString(",\n")
		}
		first = false
		b.Write(j)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(FeatureCollectionFooter)
	ix := loadedIndex(t, s)
	if loc, ok := ix.Locate(probe[1], probe[0]); !ok || loc.Path[1].Code != "130123010" {
		t.Fatalf("before the merge: %+v", loc)
	}
	// Without replace_under the old township overlaps the new one.
	if _, err := s.ImportGeoJSON(ctx, bytes.NewReader(b.Bytes()), ImportOptions{}); err == nil {
		t.Fatal("merge without retiring 010 was accepted")
	}
	res, err := s.ImportGeoJSON(ctx, bytes.NewReader(b.Bytes()), ImportOptions{ReplaceUnder: "130123"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retired != 1+moved || res.Created != moved || res.Updated != 1 || len(res.Warnings) != 0 {
		t.Fatalf("merge: %+v (moved %d)", res, moved)
	}
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	loc, ok := ix.Locate(probe[1], probe[0])
	if !ok || loc.Path[1].Code != "130123009" || !strings.HasPrefix(loc.Cell.Code, "130123009") {
		t.Fatalf("after the merge: %+v", loc)
	}
	then, ok, err := s.LocateAt(ctx, probe[1], probe[0], before)
	if err != nil || !ok || then.Path[1].Code != "130123010" {
		t.Fatalf("as of before the merge: %+v %v", then, err)
	}
	old, err := s.NodeByCode(ctx, "130123010")
	if err != nil || old.RetiredAt == nil {
		t.Fatalf("old township: %+v %v", old, err)
	}
	var retiredRecords int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records WHERE action = 'grid_node.retired'`).Scan(&retiredRecords); err != nil || retiredRecords != 1+moved {
		t.Fatalf("retired records %d %v", retiredRecords, err)
	}
	// A file that keeps a village but drops its township is refused.
	nodes := demo.CountyNodes()
	var partial []demo.Node
	for _, n := range nodes {
		if n.Code != "130123001" && !strings.HasPrefix(n.Code, "130123009") && !strings.HasPrefix(n.Code, "130123010") {
			partial = append(partial, n)
		}
	}
	_, err = s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection(partial)), ImportOptions{ReplaceUnder: "130123"})
	st, _ := rejection(t, err)
	if !strings.Contains(st.Message(), "its parent 130123001 is not in the file and would be retired") {
		t.Fatal(st.Message())
	}
}
