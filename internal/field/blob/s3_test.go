package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/field/blob"
	"ecogrid/internal/field/blob/s3test"
	"ecogrid/internal/structerr"
)

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The S3 store against a real S3 server: an upload's partial file is
// promoted into the bucket and read back, a missing blob is ErrNotFound,
// an object damaged in the bucket is refused, and the server down is
// Unavailable.
func TestS3StoreAgainstVersitygw(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s, err := blob.NewS3(ctx, srv.Config("photos"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := "6a1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"
	data := bytes.Repeat([]byte("photo bytes "), 100_000)
	sum := hexSum(data)
	if _, err := s.Stat(ctx, sum); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("stat before: %v", err)
	}
	if _, err := s.Open(ctx, sum); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open before: %v", err)
	}
	p, have, err := s.OpenPartial(ctx, id, 0)
	if err != nil || have != 0 {
		t.Fatalf("%d %v", have, err)
	}
	if _, err := p.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := s.Promote(ctx, id, sum); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Partials(ctx, time.Now().Add(time.Hour)); len(ids) != 0 {
		t.Fatalf("partial left after promote: %v", ids)
	}
	if n, err := s.Stat(ctx, sum); err != nil || n != int64(len(data)) {
		t.Fatalf("stat: %d %v", n, err)
	}
	r, err := s.Open(ctx, sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	var head [5]byte
	if _, err := r.ReadAt(head[:], 0); err != nil || string(head[:]) != "photo" {
		t.Fatalf("ReadAt: %q %v", head, err)
	}
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	// Put refuses content that does not hash to its name.
	if err := s.Put(ctx, sum, bytes.NewReader([]byte("other"))); err == nil {
		t.Fatal("Put stored content under another hash")
	}

	// Damage the object where the server keeps it: the read-back check
	// refuses it rather than serve other bytes under the photo's hash.
	key, _ := s.Key(sum)
	obj := filepath.Join(srv.Dir(), "photos", filepath.FromSlash(key))
	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 0xff
	if err := os.WriteFile(obj, damaged, 0o644); err != nil {
		t.Fatalf("damaging the object at %s: %v", obj, err)
	}
	if _, err := s.Open(ctx, sum); structerr.Code(err) != codes.DataLoss {
		t.Fatalf("open damaged object: %v (%v), want DataLoss", structerr.Code(err), err)
	}

	// An upload finished while the server is down is not stored, and its
	// partial file stays, so the upload completes once the server is back.
	pending := []byte("a photo finished during the outage")
	pendingID := "9b2f4c1e-0d3a-4e5f-8a7b-6c5d4e3f2a10"
	p, _, err = s.OpenPartial(ctx, pendingID, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.WriteAt(pending, 0)
	p.Sync()
	p.Close()

	// Server down: Unavailable with a message, for reads and writes.
	srv.Stop()
	if err := s.Promote(ctx, pendingID, hexSum(pending)); structerr.Code(err) != codes.Unavailable {
		t.Fatalf("promote with the server down: %v", err)
	}
	kept, have, err := s.OpenPartial(ctx, pendingID, int64(len(pending)))
	if err != nil || have != int64(len(pending)) {
		t.Fatalf("the partial file of the refused upload: %d bytes, %v", have, err)
	}
	kept.Close()
	for name, err := range map[string]error{
		"stat": func() error { _, err := s.Stat(ctx, sum); return err }(),
		"open": func() error { _, err := s.Open(ctx, sum); return err }(),
		"put":  s.Put(ctx, hexSum([]byte("x")), bytes.NewReader([]byte("x"))),
	} {
		if structerr.Code(err) != codes.Unavailable || err.Error() == "" {
			t.Errorf("%s with the server down: %v (%v), want Unavailable", name, structerr.Code(err), err)
		}
	}
	srv.Restart()
	if err := s.Promote(ctx, pendingID, hexSum(pending)); err != nil {
		t.Fatalf("promote after the restart: %v", err)
	}
	if r, err := s.Open(ctx, hexSum(pending)); err != nil {
		t.Fatalf("open after the restart: %v", err)
	} else {
		r.Close()
	}
}

// A bucket that does not exist is created; a wrong secret is refused at
// start with the endpoint named.
func TestNewS3CreatesBucketAndRefusesBadCredentials(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	if _, err := blob.NewS3(ctx, srv.Config("fresh-bucket"), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir(), "fresh-bucket")); err != nil {
		t.Fatalf("bucket not created: %v", err)
	}
	bad := srv.Config("fresh-bucket")
	bad.SecretKey = "wrong"
	if _, err := blob.NewS3(ctx, bad, t.TempDir()); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	for _, c := range []blob.S3Config{
		{Endpoint: "127.0.0.1:9000", Bucket: "b", AccessKey: "k", SecretKey: "s"},
		{Endpoint: "http://127.0.0.1:9000", AccessKey: "k", SecretKey: "s"},
		{Endpoint: "http://127.0.0.1:9000", Bucket: "b"},
	} {
		if _, err := blob.NewS3(ctx, c, t.TempDir()); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
