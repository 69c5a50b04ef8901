package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/zones"
)

// zonesServer serves ZoneService as an administrator on a loopback port.
func zonesServer(t *testing.T) string {
	t.Helper()
	pool := dbtest.NewPool(t)
	admin := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin}}}
	srv := grpc.NewServer(
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return structerr.ToStatus(h(srv, adminStream{ss, scope.NewContext(ss.Context(), admin)}))
		}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(scope.NewContext(ctx, admin), req)
			return resp, structerr.ToStatus(err)
		}))
	ecogridv1.RegisterZoneServiceServer(srv, zones.NewService(zones.NewStore(pool), zones.NewIndex(pool, nil), nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestZonesImportExportRoundTrip(t *testing.T) {
	t.Parallel()
	addr := zonesServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "zones.geojson")
	doc := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"SY-1","kind":"drinking_water_1","name":"一级保护区","legal_basis":"冀政字〔2020〕1号"},
		"geometry":{"type":"Polygon","coordinates":[[[114.5,38.1],[114.52,38.1],[114.52,38.12],[114.5,38.12],[114.5,38.1]]]}}]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"-addr", addr, "-token", "t", "-county", "130123"}
	if err := runZones(ctx, append(append([]string{"import"}, conn...), file)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export.geojson")
	if err := runZones(ctx, append(append([]string{"export"}, conn...), "-o", out)); err != nil {
		t.Fatal(err)
	}
	exported, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(exported), `"code":"SY-1"`) {
		t.Fatalf("export %q (%v)", exported, err)
	}
	if err := runZones(ctx, append(append([]string{"import", "-dry-run"}, conn...), out)); err != nil {
		t.Fatalf("re-importing the export: %v", err)
	}
	bad := filepath.Join(dir, "bad.geojson")
	if err := os.WriteFile(bad, []byte(strings.Replace(doc, "drinking_water_1", "swamp", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	err = runZones(ctx, append(append([]string{"import"}, conn...), bad))
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("bad import = %v", err)
	}
	if err := runZones(ctx, append([]string{"rules"}, conn...)); err != nil {
		t.Fatal(err)
	}
}
