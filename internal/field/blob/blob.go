// Package blob is the content-addressed store of photo bytes: every blob is
// named by the SHA-256 of its content, so the same photo sent twice is
// stored once, plus the partial files of uploads still in progress.
//
// FS, the default implementation, keeps blobs on a local or network
// filesystem and makes an acknowledged blob survive a crash: data is
// written to a temporary file, fsynced, renamed into place, and the
// directory fsynced.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// ErrNotFound is returned for a blob or partial upload that does not exist.
var ErrNotFound = errors.New("blob not found")

// Store keeps blobs by SHA-256 and the partial files of uploads.
type Store interface {
	// Stat reports a blob's size, or ErrNotFound.
	Stat(ctx context.Context, sum string) (int64, error)
	// Open returns a reader of the blob, or ErrNotFound.
	Open(ctx context.Context, sum string) (Reader, error)
	// OpenPartial opens (creating if needed) the partial file of an upload,
	// cuts it to at most committed bytes (whatever lies beyond the committed
	// offset was never acknowledged and is written again) and returns how
	// many bytes it holds: fewer than committed means the file was lost.
	OpenPartial(ctx context.Context, uploadID string, committed int64) (Partial, int64, error)
	// Promote moves a finished, fsynced partial file into place as the
	// blob sum. If the blob exists already the partial is just removed.
	Promote(ctx context.Context, uploadID, sum string) error
	// RemovePartial deletes an upload's partial file; missing is not an error.
	RemovePartial(ctx context.Context, uploadID string) error
	// Partials lists the partial files last written before the given time.
	Partials(ctx context.Context, before time.Time) ([]string, error)
}

// Reader reads a stored blob.
type Reader interface {
	io.ReadSeekCloser
	io.ReaderAt
}

// Partial is the file of an upload in progress.
type Partial interface {
	io.WriterAt
	io.ReaderAt
	// Sync makes everything written so far durable.
	Sync() error
	Close() error
}

var (
	sumPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idPattern  = regexp.MustCompile(`^[0-9a-f-]{36}$`)
)

// FS stores blobs under Root: blobs/ab/cd/<sha256>, partial/<upload id>.
type FS struct {
	Root string
}

// NewFS creates the directories under root and returns the store.
func NewFS(root string) (*FS, error) {
	for _, d := range []string{"blobs", "partial"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	return &FS{Root: root}, nil
}

var _ Store = (*FS)(nil)

func (s *FS) blobPath(sum string) (string, error) {
	if !sumPattern.MatchString(sum) {
		return "", fmt.Errorf("blob name %.70q is not a SHA-256", sum)
	}
	return filepath.Join(s.Root, "blobs", sum[:2], sum[2:4], sum), nil
}

func (s *FS) partialPath(id string) (string, error) {
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("upload id %.40q is not a UUID", id)
	}
	return filepath.Join(s.Root, "partial", id), nil
}

// Stat implements Store.
func (s *FS) Stat(_ context.Context, sum string) (int64, error) {
	p, err := s.blobPath(sum)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Open implements Store.
func (s *FS) Open(_ context.Context, sum string) (Reader, error) {
	p, err := s.blobPath(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// OpenPartial implements Store.
func (s *FS) OpenPartial(_ context.Context, uploadID string, committed int64) (Partial, int64, error) {
	p, err := s.partialPath(uploadID)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	have := fi.Size()
	if have > committed {
		if err := f.Truncate(committed); err != nil {
			f.Close()
			return nil, 0, err
		}
		have = committed
	}
	// Touch the file so the janitor sees it in use.
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return f, have, nil
}

// Promote implements Store.
func (s *FS) Promote(ctx context.Context, uploadID, sum string) error {
	src, err := s.partialPath(uploadID)
	if err != nil {
		return err
	}
	dst, err := s.blobPath(sum)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return s.RemovePartial(ctx, uploadID)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	// The partial was fsynced by the upload before Promote; the rename is
	// atomic and fsyncing both directories makes it durable.
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(src))
}

// RemovePartial implements Store.
func (s *FS) RemovePartial(_ context.Context, uploadID string) error {
	p, err := s.partialPath(uploadID)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Partials implements Store.
func (s *FS) Partials(_ context.Context, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "partial"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !idPattern.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if info.ModTime().Before(before) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Put stores the content of r under sum: written to a temporary file,
// checked against sum, fsynced and renamed into place. It imports blobs
// (old photo archives, tests); uploads go through partial files.
func (s *FS) Put(_ context.Context, sum string, r io.Reader) error {
	dst, err := s.blobPath(sum)
	if err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := copyHashed(tmp, r, sum); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// copyHashed copies r to dst and checks that what was copied hashes to
// sum (hex SHA-256), for the stores' Put.
func copyHashed(dst io.Writer, r io.Reader, sum string) error {
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("content has SHA-256 %s, not %s", got, sum)
	}
	return nil
}
