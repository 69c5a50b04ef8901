package field

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/field/blob/s3test"
)

// newS3Env is newEnv with photos in a bucket of a real S3 server
// (versitygw on a loopback port, started for the test).
func newS3Env(t *testing.T) (*Field, *blob.S3, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t)
	pool := dbtest.NewPool(t)
	loc := indexLocator{seedGrid(t, pool)}
	seedPeople(t, pool)
	store, err := blob.NewS3(context.Background(), srv.Config("photos"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC().Truncate(time.Microsecond)}
	f, err := New(Deps{Pool: pool, Locator: loc, Blobs: store, Now: clock.Now}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return f, store, srv
}

func download(cl ecogridv1.FieldServiceClient, ctx context.Context, sha string) ([]byte, error) {
	s, err := cl.DownloadPhoto(ctx, &ecogridv1.DownloadPhotoRequest{Sha256: sha})
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m.Data...)
	}
}

// Photos through FieldService with S3 as the store: a resumed upload
// round-trips; with the server killed, uploads and downloads answer
// Unavailable with a message and nothing is acknowledged; after the
// restart every photo acknowledged before the outage reads back, the
// refused upload succeeds when sent again, and an object damaged in the
// bucket is refused by the read-back hash check, not served.
func TestServicePhotosOnS3(t *testing.T) {
	f, store, srv := newS3Env(t)
	cl := startServer(t, f)
	ctx := as(inspectorAID)
	now := time.Now()
	header := func(data []byte) *ecogridv1.PhotoUploadHeader {
		return &ecogridv1.PhotoUploadHeader{UploadId: uuid.NewString(), Size: int64(len(data)), Sha256: sum(data), ContentType: "image/jpeg"}
	}

	// Acknowledged before the outage, sent in two streams (resumed).
	before := testJPEG(t, 29.0101, 106.0501, now, 2<<20)
	hb := header(before)
	part, err := upload(t, cl, ctx, hb, before, 0, 1<<20, 256<<10)
	if err != nil || part.State != ecogridv1.UploadState_UPLOAD_STATE_PARTIAL {
		t.Fatalf("partial: %+v %v", part, err)
	}
	done, err := upload(t, cl, ctx, hb, before, int(part.CommittedOffset), 0, 256<<10)
	if err != nil || done.State != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE {
		t.Fatalf("complete: %+v %v", done, err)
	}
	if got, err := download(cl, ctx, hb.Sha256); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
	key, _ := store.Key(hb.Sha256)
	if _, err := os.Stat(filepath.Join(srv.Dir(), "photos", filepath.FromSlash(key))); err != nil {
		t.Fatalf("the photo is not in the bucket: %v", err)
	}

	// Outage: refused with Unavailable and a message, not acknowledged.
	srv.Stop()
	during := testJPEG(t, 29.0102, 106.0502, now, 1<<20)
	hd := header(during)
	_, err = upload(t, cl, ctx, hd, during, 0, 0, 256<<10)
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "storage") {
		t.Fatalf("upload during the outage: %v, want Unavailable naming the storage", err)
	}
	if st, err := cl.GetUploadStatus(ctx, &ecogridv1.GetUploadStatusRequest{UploadId: hd.UploadId}); err == nil && st.State == ecogridv1.UploadState_UPLOAD_STATE_COMPLETE {
		t.Fatalf("an upload refused during the outage is reported complete: %+v", st)
	}
	_, err = download(cl, ctx, hb.Sha256)
	grpcCode(t, err, codes.Unavailable)

	// Back: what was acknowledged is there, the refused upload goes through.
	srv.Restart()
	if got, err := download(cl, ctx, hb.Sha256); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("download after the restart: %d bytes, %v", len(got), err)
	}
	done, err = upload(t, cl, ctx, hd, during, 0, 0, 256<<10)
	if err != nil || done.State != ecogridv1.UploadState_UPLOAD_STATE_COMPLETE {
		t.Fatalf("upload after the restart: %+v %v", done, err)
	}
	if got, err := download(cl, ctx, hd.Sha256); err != nil || !bytes.Equal(got, during) {
		t.Fatalf("download of the photo sent after the outage: %d bytes, %v", len(got), err)
	}

	// Damaged in the bucket (same size, one byte changed): refused.
	obj := filepath.Join(srv.Dir(), "photos", filepath.FromSlash(key))
	damaged := bytes.Clone(before)
	damaged[len(damaged)-100] ^= 0x01
	if err := os.WriteFile(obj, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := download(cl, ctx, hb.Sha256)
	grpcCode(t, err, codes.DataLoss)
	if len(got) != 0 {
		t.Fatalf("%d bytes of a damaged photo were served", len(got))
	}
}
