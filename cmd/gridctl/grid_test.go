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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

func gridClient(t *testing.T) ecogridv1.GridServiceClient {
	t.Helper()
	pool := dbtest.NewPool(t)
	store := grid.NewStore(pool, grid.Config{})
	admin := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin}}}
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return structerr.ToStatus(h(srv, adminStream{ss, scope.NewContext(ss.Context(), admin)}))
	}))
	ecogridv1.RegisterGridServiceServer(srv, grid.NewService(store, grid.NewIndex(pool, nil), grid.ServiceConfig{}, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop() })
	return ecogridv1.NewGridServiceClient(conn)
}

type adminStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s adminStream) Context() context.Context { return s.ctx }

func TestGridDemoImportsAndBadFileListsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "county.geojson")
	if err := runGridDemo([]string{"-o", file}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(data, demo.County()) {
		t.Fatalf("demo file: %v", err)
	}
	client := gridClient(t)
	ctx := context.Background()
	// Repeat the file's features so it is over the progress threshold.
	var progress bytes.Buffer
	res, err := importFile(ctx, client, bytes.NewReader(data), int64(len(data)), &ecogridv1.ImportGeoJSONHeader{DryRun: true}, &progress)
	if err != nil || !res.GetDryRun() || res.GetCreated() != 161 {
		t.Fatalf("dry run: %v %v", res, err)
	}
	// -s-srs reaches the server: a CRS that is not an EPSG code is refused
	// before the file is read; the demo's own WGS-84 passes.
	if _, err := importFile(ctx, client, bytes.NewReader(data), int64(len(data)), &ecogridv1.ImportGeoJSONHeader{DryRun: true, SourceCrs: "Gauss-Kruger"}, &progress); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "not an EPSG code") {
		t.Fatalf("source_crs Gauss-Kruger: %v, want InvalidArgument", err)
	}
	if res, err := importFile(ctx, client, bytes.NewReader(data), int64(len(data)), &ecogridv1.ImportGeoJSONHeader{DryRun: true, SourceCrs: "EPSG:4326"}, &progress); err != nil || res.GetCreated() != 161 {
		t.Fatalf("source_crs EPSG:4326: %v %v", res, err)
	}
	bad := bytes.Replace(data, []byte(`"code":"130123001002"`), []byte(`"code":"13012300100X"`), 1)
	bad = bytes.Replace(bad, []byte(`"code":"130123002003"`), []byte(`"code":"130123002001"`), 1)
	_, err = importFile(ctx, client, bytes.NewReader(bad), int64(len(bad)), &ecogridv1.ImportGeoJSONHeader{}, &progress)
	var lines bytes.Buffer
	short := describeGridError(err, &lines)
	if short == nil || !strings.Contains(short.Error(), "nothing was written") {
		t.Fatalf("error %v", short)
	}
	for _, want := range []string{"13012300100X\" has a character that is not a digit", "code 130123002001 already appears at feature"} {
		if !strings.Contains(lines.String(), want) {
			t.Errorf("problem lines %q lack %q", lines.String(), want)
		}
	}
}
