// Package s3test runs a real S3 server for tests: versitygw serving a
// temporary folder (its posix backend) on a free loopback port. Tests of
// the S3 blob store stop and restart it to see an outage as the store
// sees one. It is test support, imported only by tests.
package s3test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"ecogrid/internal/field/blob"
)

// Access and secret keys of the test server.
const (
	AccessKey = "ecogrid-test"
	SecretKey = "ecogrid-test-secret"
)

// Server is a running (or stopped) versitygw.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  lockedBuffer
}

// lockedBuffer collects the server's output, written by exec's copying
// goroutines and read when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Binary finds versitygw on PATH or in the repository's bin/ (where
// scripts/test.sh and `make tools` install it).
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("versitygw is not installed: run 'make tools' (go install github.com/versity/versitygw/cmd/versitygw) or scripts/test.sh")
}

// Start runs versitygw on a free loopback port serving a new temporary
// folder, and stops it when the test ends. The test is skipped, saying
// why, only when versitygw is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Dir is the folder the server keeps buckets in: DIR/<bucket>/<key>.
func (s *Server) Dir() string { return s.dir }

// Config is a store configuration for bucket on this server.
func (s *Server) Config(bucket string) blob.S3Config {
	return blob.S3Config{
		Endpoint: "http://" + s.addr, Bucket: bucket, AccessKey: AccessKey, SecretKey: SecretKey,
		Region: "us-east-1", PathStyle: true, Timeout: 5 * time.Second,
	}
}

// Restart starts the server (again) on the same port and folder and
// waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("s3test: server already running")
	}
	cmd := exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.addr, "posix", s.dir)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("versitygw exited at start: %s", s.log.String())
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw does not answer on %s: %v\n%s", s.addr, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits
// until it has exited. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}
