package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/waters"
)

// watersServer serves WatersService as an administrator over the demo
// county and returns its address.
func watersServer(t *testing.T) string {
	t.Helper()
	pool := dbtest.NewPool(t)
	gs := grid.NewStore(pool, grid.Config{})
	if _, err := gs.ImportGeoJSON(context.Background(), bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	admin := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin}}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(scope.NewContext(ctx, admin), req)
		return resp, structerr.ToStatus(err)
	}))
	store := waters.NewStore(pool, gs)
	ecogridv1.RegisterWatersServiceServer(srv, waters.NewService(store, waters.NewIndex(store, nil), nil, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestWatersImportExport(t *testing.T) {
	t.Parallel()
	addr := watersServer(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "reaches.geojson")
	const fc = `{"type":"FeatureCollection","features":[
	 {"type":"Feature","properties":{"code":"HTH-01","name":"滹沱河第1段","body_code":"HTH","body_name":"滹沱河","body_kind":"river","node_code":"130123","seq":1},
	  "geometry":{"type":"LineString","coordinates":[[114.45,38.153],[114.50,38.153]]}},
	 {"type":"Feature","properties":{"code":"HTH-02","name":"滹沱河第2段","body_code":"HTH","body_name":"滹沱河","body_kind":"river","node_code":"130123","seq":2},
	  "geometry":{"type":"LineString","coordinates":[[114.52,38.153],[114.55,38.153]]}}]}`
	if err := os.WriteFile(good, []byte(fc), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-addr", addr, "-token", "t"}
	// The gap between the two reaches refuses the file.
	err := runWaters(context.Background(), append(append([]string{"import"}, flags...), good))
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("import with a gap: %v", err)
	}
	fixed := strings.Replace(fc, "[114.52,38.153],[114.55", "[114.50,38.153],[114.55", 1)
	if err := os.WriteFile(good, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runWaters(context.Background(), append(append([]string{"import"}, flags...), good)); err != nil {
		t.Fatalf("import: %v", err)
	}
	out := filepath.Join(dir, "out.geojson")
	if err := runWaters(context.Background(), append(append([]string{"export"}, flags...), "-county", "130123", "-o", out)); err != nil {
		t.Fatalf("export: %v", err)
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(data, []byte(`"code":"HTH-02"`)) {
		t.Fatalf("export: %s, %v", data, err)
	}
}
