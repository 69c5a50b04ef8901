package field

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/server"
)

// benchEnv is newEnv with a pool large enough for 128 clients' worth of
// concurrency (the same pool serves the raw and the gRPC runs).
func benchEnv(b *testing.B, cfg Config) *env {
	b.Helper()
	pool, err := database.Open(context.Background(), database.Config{URL: dbtest.NewURL(b), MaxConns: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	blobs, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	loc := indexLocator{seedGrid(b, pool)}
	seedPeople(b, pool)
	f, err := New(Deps{Pool: pool, Locator: loc,
		Blobs: blobs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &env{f: f, pool: pool, blobs: blobs, clock: &testClock{t: time.Now()}, loc: loc}
}

// concurrently runs b.N operations from clients goroutines and reports the
// rate and the p50/p99 latency of one operation.
func concurrently(b *testing.B, clients int, unit string, op func(i int) error) {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func benchDrafts(n int) []Draft {
	now := time.Now().UTC().Add(-time.Minute)
	out := make([]Draft, n)
	for i := range out {
		out[i] = Draft{
			ID: uuid.NewString(), ObservedAt: now, Category: "water", Severity: SeverityNormal,
			Description: "Black water from the drain by the paper mill, smells of sulphur; photos follow.",
			Position:    wgs(29.01+float64(i%1000)*0.00001, 106.05),
		}
	}
	return out
}

// BenchmarkSubmitReport compares, at 8, 32 and 128 concurrent clients,
// SubmitReport end to end (gRPC client → platform server with its
// interceptors → validation, location, INSERT) with the same INSERT sent
// straight through pgx on the same pool.
func BenchmarkSubmitReport(b *testing.B) {
	// One database and one server for every run, so that no CREATE
	// DATABASE (which forces a checkpoint) falls between them.
	e := benchEnv(b, Config{})
	cl := startServer(b, e.f)
	for _, clients := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("raw-insert/clients=%d", clients), func(b *testing.B) {
			drafts := benchDrafts(b.N)
			ctx := context.Background()
			concurrently(b, clients, "reports", func(i int) error {
				r := Report{Draft: drafts[i], ReporterID: inspectorAID, Lat: drafts[i].Position.Lat, Lon: drafts[i].Position.Lon,
					Location: Location{CountyCode: testCounty, TownshipCode: townshipWest, VillageCode: villageWS}}
				_, err := insertReport(ctx, e.pool, &r, []byte("0123456789abcdef0123456789abcdef"))
				return err
			})
		})
		b.Run(fmt.Sprintf("grpc/clients=%d", clients), func(b *testing.B) {
			drafts := benchDrafts(b.N)
			reqs := make([]*ecogridv1.SubmitReportRequest, b.N)
			for i, d := range drafts {
				reqs[i] = &ecogridv1.SubmitReportRequest{Report: draftPB(d)}
			}
			ctx := as(inspectorAID)
			concurrently(b, clients, "reports", func(i int) error {
				_, err := cl.SubmitReport(ctx, reqs[i])
				return err
			})
		})
	}
}

// BenchmarkSubmitViolation is SubmitReport of violations: report, outbox
// event and ledger record (one hash chain per county, appends serialised
// on its head) in one transaction.
func BenchmarkSubmitViolation(b *testing.B) {
	for _, clients := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("grpc/clients=%d", clients), func(b *testing.B) {
			e := benchEnv(b, Config{})
			cl := startServer(b, e.f)
			drafts := benchDrafts(b.N)
			ctx := as(inspectorAID)
			concurrently(b, clients, "reports", func(i int) error {
				d := draftPB(drafts[i])
				d.Violation = true
				_, err := cl.SubmitReport(ctx, &ecogridv1.SubmitReportRequest{Report: d})
				return err
			})
		})
	}
}

// discardUploads is a FieldService whose UploadPhoto reads and drops the
// chunks: the raw gRPC streaming rate on the same server stack.
type discardUploads struct {
	ecogridv1.UnimplementedFieldServiceServer
}

func (discardUploads) UploadPhoto(s grpc.ClientStreamingServer[ecogridv1.UploadPhotoRequest, ecogridv1.UploadPhotoResponse]) error {
	var n int64
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&ecogridv1.UploadPhotoResponse{CommittedOffset: n})
		}
		if err != nil {
			return err
		}
		n += int64(len(m.GetChunk().GetData()))
	}
}

// heapSampler records the highest heap in use while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	runtime.GC()
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapInuse)
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 { close(h.stop); <-h.done; return h.peak }

// genPhoto is a photo produced chunk by chunk (a JPEG header, then
// deterministic noise), so that the benchmark's clients hold one chunk, not
// whole photos, and the heap measured is what the streams need.
type genPhoto struct {
	head []byte
	size int
	seed uint64
	sha  string
}

// noise is shared pseudo-random content; photos are windows into it at
// seed-dependent offsets, so filling a chunk is a copy, not computation
// (the clients must not eat the CPU the server is measured on).
var noise = func() []byte {
	b := make([]byte, 4<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

func (g *genPhoto) fill(buf []byte, off int) {
	n := 0
	if off < len(g.head) {
		n = copy(buf, g.head[off:])
	}
	for n < len(buf) {
		p := (off + n + int(g.seed)*7919) % len(noise)
		n += copy(buf[n:], noise[p:])
	}
}

func newGenPhoto(tb testing.TB, head []byte, size int, seed uint64) *genPhoto {
	g := &genPhoto{head: head, size: size, seed: seed}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for off := 0; off < size; off += len(buf) {
		n := min(len(buf), size-off)
		g.fill(buf[:n], off)
		h.Write(buf[:n])
	}
	g.sha = hex.EncodeToString(h.Sum(nil))
	return g
}

var photoSeed atomic.Uint64

// uploadGen streams g in chunks over one UploadPhoto call.
func uploadGen(cl ecogridv1.FieldServiceClient, ctx context.Context, g *genPhoto, chunk int) error {
	st, err := cl.UploadPhoto(ctx)
	if err != nil {
		return err
	}
	h := &ecogridv1.PhotoUploadHeader{UploadId: uuid.NewString(), Size: int64(g.size), Sha256: g.sha, ContentType: "image/jpeg"}
	if err := st.Send(&ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Header{Header: h}}); err != nil {
		return err
	}
	buf := make([]byte, chunk)
	for off := 0; off < g.size; off += chunk {
		n := min(chunk, g.size-off)
		g.fill(buf[:n], off)
		err := st.Send(&ecogridv1.UploadPhotoRequest{Msg: &ecogridv1.UploadPhotoRequest_Chunk{Chunk: &ecogridv1.PhotoChunk{Offset: int64(off), Data: buf[:n]}}})
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	res, err := st.CloseAndRecv()
	if err == nil && res.CommittedOffset != int64(g.size) {
		err = fmt.Errorf("upload ended at %d of %d", res.CommittedOffset, g.size)
	}
	return err
}

// BenchmarkPhotoUpload uploads distinct photos from 32 concurrent clients
// in 256 KiB chunks, through FieldService (fsync every 1 MiB and at the
// end, SHA-256, header checks, content-addressed store, database rows) and
// through a server that discards the chunks (the raw gRPC streaming rate
// of the same server stack), at 5 MiB and at 20 MiB per photo. The peak
// heap of the process (clients and server) shows the memory bound: it
// depends on streams × chunk size, not on photo size.
func BenchmarkPhotoUpload(b *testing.B) {
	const chunk, clients = 256 << 10, 32
	head := testJPEG(b, 29.01, 106.05, time.Now(), 0)
	e := benchEnv(b, Config{})
	fieldClient := startServer(b, e.f)
	run := func(b *testing.B, cl ecogridv1.FieldServiceClient, size int) {
		photos := make([]*genPhoto, b.N)
		for i := range photos {
			photos[i] = newGenPhoto(b, head, size, photoSeed.Add(1)) // distinct across runs: no dedup
		}
		ctx := as(inspectorAID)
		heap := sampleHeap()
		b.SetBytes(int64(size))
		concurrently(b, clients, "photos", func(i int) error { return uploadGen(cl, ctx, photos[i], chunk) })
		b.ReportMetric(float64(heap.Stop())/(1<<20), "peak-heap-MiB")
	}
	for _, size := range []int{5 << 20, 20 << 20} {
		b.Run(fmt.Sprintf("raw-grpc-stream/MiB=%d", size>>20), func(b *testing.B) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, log, server.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ecogridv1.RegisterFieldServiceServer(srv.GRPC, discardUploads{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go srv.Run(ctx) //nolint:errcheck
			conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			run(b, ecogridv1.NewFieldServiceClient(conn), size)
		})
		b.Run(fmt.Sprintf("field-upload/MiB=%d", size>>20), func(b *testing.B) {
			run(b, fieldClient, size)
		})
	}
}

// BenchmarkTrackIngest appends batches of 500 GPS points (the app's
// offline queue flushing) to 8 patrols concurrently and reports points/s.
func BenchmarkTrackIngest(b *testing.B) {
	const batch, patrols = 500, 8
	e := benchEnv(b, Config{})
	cl := startServer(b, e.f)
	ctx := as(inspectorAID)
	start := time.Now().Add(-24 * time.Hour)
	ids := make([]string, patrols)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := cl.StartPatrol(ctx, &ecogridv1.StartPatrolRequest{PatrolId: ids[i], StartedAt: timestamppb.New(start)}); err != nil {
			b.Fatal(err)
		}
	}
	var seq [patrols]atomic.Int64
	b.SetBytes(0)
	concurrently(b, patrols, "batches", func(i int) error {
		p := i % patrols
		first := seq[p].Add(batch) - batch
		pts := make([]*ecogridv1.TrackPoint, batch)
		for k := range pts {
			n := first + int64(k)
			pts[k] = &ecogridv1.TrackPoint{
				RecordedAt: timestamppb.New(start.Add(time.Duration(n) * 100 * time.Millisecond)),
				Position:   positionPB(wgs(29.01+float64(n%5000)*0.000005, 106.05)),
			}
		}
		res, err := cl.AppendTrackPoints(ctx, &ecogridv1.AppendTrackPointsRequest{PatrolId: ids[p], Points: pts})
		if err == nil && res.Added != batch {
			err = fmt.Errorf("added %d of %d", res.Added, batch)
		}
		return err
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkListPatrolTracks reads a county's week of 500 patrols of 200
// fixes (two inspectors, both townships) as the map does: one page of
// 500, each track simplified at 10 m and bounded to 500 points, over gRPC.
func BenchmarkListPatrolTracks(b *testing.B) {
	e := benchEnv(b, Config{})
	cl := startServer(b, e.f)
	ctx := context.Background()
	now := time.Now()
	for i := range 500 {
		c, lon := inspectorA, 106.02+float64(i%8)*0.01
		if i%2 == 1 {
			c, lon = inspectorB, 106.12+float64(i%8)*0.01
		}
		start := now.Add(-6*24*time.Hour + time.Duration(i)*10*time.Minute)
		pts := make([]TrackPoint, 200)
		for k := range pts {
			a := float64(k) / 200 * 2 * math.Pi
			pts[k] = TrackPoint{RecordedAt: start.Add(time.Duration(k) * 15 * time.Second),
				Position: wgs(29.02+0.01*math.Sin(a)+0.0001*float64(k%3), lon+0.004*math.Sin(2*a))}
		}
		id := uuid.NewString()
		if _, err := e.f.StartPatrol(ctx, c, id, start); err != nil {
			b.Fatal(err)
		}
		if _, err := e.f.AppendTrackPoints(ctx, c, id, pts); err != nil {
			b.Fatal(err)
		}
		if _, err := e.f.EndPatrol(ctx, c, id, pts[len(pts)-1].RecordedAt); err != nil {
			b.Fatal(err)
		}
	}
	req := &ecogridv1.ListPatrolTracksRequest{NodeCode: testCounty, From: timestamppb.New(now.Add(-7 * 24 * time.Hour)), To: timestamppb.New(now),
		Page: &ecogridv1.PageRequest{PageSize: 500}}
	points := 0
	b.ResetTimer()
	for range b.N {
		r, err := cl.ListPatrolTracks(as(officerID), req)
		if err != nil || len(r.GetTracks()) != 500 {
			b.Fatalf("%d tracks, %v", len(r.GetTracks()), err)
		}
		points = 0
		for _, t := range r.GetTracks() {
			points += strings.Count(t.GetGeometryGeojson(), "[") - 1
		}
	}
	b.ReportMetric(float64(points)/500, "points/track")
}
