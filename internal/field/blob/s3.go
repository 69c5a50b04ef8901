package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/structerr"
)

// S3Config locates the bucket photos are kept in when gridd runs as more
// than one replica. Endpoint empty means no object storage: the local
// folder is the store.
type S3Config struct {
	// Endpoint is the server's URL, http://host:port or https://host:port.
	Endpoint string
	Bucket   string
	// AccessKey and SecretKey sign the requests (S3 signature v4). The
	// secret is never printed.
	AccessKey string
	SecretKey string
	// Region is the bucket's region; most S3-compatible servers accept
	// any, AWS wants the bucket's own.
	Region string
	// PathStyle addresses the bucket as endpoint/bucket/key rather than
	// bucket.endpoint/key: what MinIO, versitygw, Ceph RGW and a bucket
	// behind a plain host name need.
	PathStyle bool
	// Timeout bounds each request, so an unreachable server answers
	// Unavailable in seconds rather than hanging the upload (0: 30s).
	Timeout time.Duration
}

// Enabled reports whether object storage is configured.
func (c S3Config) Enabled() bool { return c.Endpoint != "" }

// S3 keeps blobs in an S3-compatible bucket under blobs/ab/cd/<sha256>,
// each written with one PutObject, so a blob is either wholly there or not
// at all. The partial files of uploads in progress stay on a local folder
// (Staging): S3 objects cannot be written at an offset, and a chunk is
// acknowledged only once fsynced there, exactly as with FS. An upload
// resumed on another replica finds no partial file and starts over from
// byte 0, which the upload protocol already handles (lost partial).
//
// Open reads the whole object into a spool file while hashing it and
// refuses one whose content does not have the SHA-256 it is named by (a
// corrupt or replaced object): nothing unverified is served.
//
// An unreachable server or one answering 5xx is Unavailable, so the phone
// retries; an upload is acknowledged only after PutObject has returned.
type S3 struct {
	client   *minio.Client
	bucket   string
	endpoint string
	Staging  *FS
}

var _ Store = (*S3)(nil)

// NewS3 connects to the bucket (creating it when it does not exist) and
// keeps partial uploads under stagingDir.
func NewS3(ctx context.Context, cfg S3Config, stagingDir string) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("S3 endpoint %q must be http://host:port or https://host:port", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("S3 storage needs a bucket name")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("S3 storage needs an access key and a secret key")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	transport, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	transport.ResponseHeaderTimeout = timeout
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		// Two tries: a dropped keep-alive connection is retried, an outage
		// answers Unavailable at once and the phone retries later.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	staging, err := NewFS(stagingDir)
	if err != nil {
		return nil, err
	}
	s := &S3{client: client, bucket: cfg.Bucket, endpoint: u.Host, Staging: staging}
	if err := os.MkdirAll(s.spoolDir(), 0o750); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("S3 bucket %s at %s: %w", cfg.Bucket, u.Host, err)
	}
	if !ok {
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("creating S3 bucket %s at %s: %w", cfg.Bucket, u.Host, err)
		}
	}
	return s, nil
}

func (s *S3) spoolDir() string { return filepath.Join(s.Staging.Root, "spool") }

func (s *S3) key(sum string) (string, error) {
	if !sumPattern.MatchString(sum) {
		return "", fmt.Errorf("blob name %.70q is not a SHA-256", sum)
	}
	return "blobs/" + sum[:2] + "/" + sum[2:4] + "/" + sum, nil
}

// Key is the object name of blob sum in the bucket (operators' tools and
// tests look objects up by it).
func (s *S3) Key(sum string) (string, error) { return s.key(sum) }

// fail gives an S3 error its meaning for the caller: missing is
// ErrNotFound, an unreachable or failing server is Unavailable (a retry
// can succeed), anything else (refused credentials, a missing bucket) an
// internal error for the operator.
func (s *S3) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return ErrNotFound
	case resp.StatusCode >= 500 || resp.StatusCode == 0 || resp.StatusCode == http.StatusTooManyRequests:
		return structerr.NewUnavailable("photo storage is unavailable, retry later").
			WithCause(fmt.Errorf("S3 %s at %s: %w", op, s.endpoint, err))
	}
	return fmt.Errorf("S3 %s at %s: %w", op, s.endpoint, err)
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, sum string) (int64, error) {
	key, err := s.key(sum)
	if err != nil {
		return 0, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, s.fail(ctx, "stat", err)
	}
	return info.Size, nil
}

// Open implements Store: the object is read into a spool file, and
// returned only if its content hashes to sum.
func (s *S3) Open(ctx context.Context, sum string) (Reader, error) {
	key, err := s.key(sum)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail(ctx, "get", err)
	}
	defer obj.Close()
	f, err := os.CreateTemp(s.spoolDir(), "get-*")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the open file is the only name it has, and it goes
	// when the reader is closed or the process ends.
	_ = os.Remove(f.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), obj); err != nil {
		f.Close()
		return nil, s.fail(ctx, "get", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		f.Close()
		return nil, structerr.New(codes.DataLoss, "photo %s is damaged in storage (its content hashes to %s)", sum, got)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenPartial implements Store (on the staging folder).
func (s *S3) OpenPartial(ctx context.Context, uploadID string, committed int64) (Partial, int64, error) {
	return s.Staging.OpenPartial(ctx, uploadID, committed)
}

// RemovePartial implements Store (on the staging folder).
func (s *S3) RemovePartial(ctx context.Context, uploadID string) error {
	return s.Staging.RemovePartial(ctx, uploadID)
}

// Partials implements Store (on the staging folder).
func (s *S3) Partials(ctx context.Context, before time.Time) ([]string, error) {
	return s.Staging.Partials(ctx, before)
}

// Promote implements Store: the finished partial file is put as the
// object, with its MD5 sent so the server refuses bytes damaged on the
// way, and removed once the server has acknowledged it.
func (s *S3) Promote(ctx context.Context, uploadID, sum string) error {
	if _, err := s.Stat(ctx, sum); err == nil {
		return s.RemovePartial(ctx, uploadID)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	p, err := s.Staging.partialPath(uploadID)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.put(ctx, sum, f); err != nil {
		return err
	}
	return s.RemovePartial(ctx, uploadID)
}

// Put stores the content of r under sum after checking it hashes to sum.
// It imports blobs (old photo archives, tests); uploads go through
// partial files.
func (s *S3) Put(ctx context.Context, sum string, r io.Reader) error {
	if _, err := s.key(sum); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.spoolDir(), "put-*")
	if err != nil {
		return err
	}
	_ = os.Remove(f.Name())
	defer f.Close()
	if err := copyHashed(f, r, sum); err != nil {
		return err
	}
	return s.put(ctx, sum, f)
}

// put sends the whole of f as blob sum.
func (s *S3) put(ctx context.Context, sum string, f *os.File) error {
	key, _ := s.key(sum)
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.bucket, key, io.NewSectionReader(f, 0, fi.Size()), fi.Size(), minio.PutObjectOptions{
		ContentType:    "application/octet-stream",
		SendContentMd5: true,
		// Photos are at most tens of MiB: one request, never a multipart
		// upload left half-done on the server.
		DisableMultipart: true,
		UserMetadata:     map[string]string{"Sha256": sum},
	})
	if err != nil {
		return s.fail(ctx, "put", err)
	}
	return nil
}

// String names the store without its credentials.
func (s *S3) String() string {
	return "s3://" + s.bucket + "@" + strings.TrimSuffix(s.endpoint, "/")
}
