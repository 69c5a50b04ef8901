package blob

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
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPartialPromoteAndRead(t *testing.T) {
	ctx := context.Background()
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := "6a1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"
	data := bytes.Repeat([]byte("photo bytes "), 1000)
	p, have, err := s.OpenPartial(ctx, id, 0)
	if err != nil || have != 0 {
		t.Fatalf("%d %v", have, err)
	}
	p.WriteAt(data[:5000], 0)
	p.Sync()
	p.WriteAt(data[5000:7000], 5000) // written but never committed
	p.Close()
	// Reopened at the committed offset: the unacknowledged tail is cut.
	p, have, err = s.OpenPartial(ctx, id, 5000)
	if err != nil || have != 5000 {
		t.Fatalf("reopen: %d %v", have, err)
	}
	// A committed offset beyond the file (lost data) is reported, not faked with zeros.
	if _, have, _ := s.OpenPartial(ctx, id, 6000); have != 5000 {
		t.Fatalf("lost tail reported as %d", have)
	}
	p.WriteAt(data[5000:], 5000)
	p.Sync()
	p.Close()
	if err := s.Promote(ctx, id, sum(data)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Stat(ctx, sum(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("stat %d %v", n, err)
	}
	r, err := s.Open(ctx, sum(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if _, err := os.Stat(filepath.Join(s.Root, "partial", id)); !os.IsNotExist(err) {
		t.Fatal("partial left behind")
	}
	// Promoting the same content again just drops the partial.
	p, _, _ = s.OpenPartial(ctx, id, 0)
	p.Close()
	if err := s.Promote(ctx, id, sum(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, sum([]byte("nothing"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
}

func TestNamesCannotEscapeTheRoot(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	for _, bad := range []string{"../../etc/passwd", "", "6a1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c1/", "ABC"} {
		if _, _, err := s.OpenPartial(ctx, bad, 0); err == nil {
			t.Errorf("partial %q accepted", bad)
		}
		if _, err := s.Open(ctx, bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("blob %q accepted", bad)
		}
	}
}

func TestPutVerifiesAndPartialsAge(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	data := []byte("some photo")
	if err := s.Put(ctx, sum([]byte("other")), bytes.NewReader(data)); err == nil {
		t.Fatal("content stored under the wrong hash")
	}
	if _, err := s.Stat(ctx, sum([]byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Fatal("failed Put left a blob")
	}
	if err := s.Put(ctx, sum(data), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root, "blobs", sum(data)[:2], sum(data)[2:4]))
	if len(ents) != 1 {
		t.Fatalf("%d files in the blob directory (temporary files left?)", len(ents))
	}
	old, fresh := "6a1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11", "7a1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"
	for _, id := range []string{old, fresh} {
		p, _, _ := s.OpenPartial(ctx, id, 0)
		p.Close()
	}
	long := time.Now().Add(-48 * time.Hour)
	os.Chtimes(filepath.Join(s.Root, "partial", old), long, long)
	got, err := s.Partials(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || len(got) != 1 || got[0] != old {
		t.Fatalf("partials %v %v", got, err)
	}
}
