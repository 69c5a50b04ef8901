package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL cluster in a data folder, run with the
// installed server binaries (initdb, pg_ctl). When the dev stack runs as
// root, the cluster runs as the postgres system user, since PostgreSQL
// refuses to run as root.
type Postgres struct {
	BinDir  string
	DataDir string
	Port    int
	runAs   *user.User
	started bool
}

// FindPostgres locates the newest installed PostgreSQL server and checks
// that PostGIS is installed for it, saying exactly what to install if not.
func FindPostgres() (binDir string, major int, err error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, p)
	}
	type cand struct {
		dir   string
		major int
	}
	var cands []cand
	for _, d := range dirs {
		dir := filepath.Dir(d)
		out, err := exec.Command(filepath.Join(dir, "pg_ctl"), "--version").Output()
		if err != nil {
			continue
		}
		f := strings.Fields(string(out))
		if len(f) == 0 {
			continue
		}
		m, _ := strconv.Atoi(strings.SplitN(f[len(f)-1], ".", 2)[0])
		cands = append(cands, cand{dir, m})
	}
	if len(cands) == 0 {
		return "", 0, errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: run 'apt-get install postgresql-15 postgresql-15-postgis-3' as root, or set DATABASE_URL to a server with PostGIS")
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].major > cands[j].major })
	c := cands[0]
	if _, err := os.Stat(fmt.Sprintf("/usr/share/postgresql/%d/extension/postgis.control", c.major)); err != nil {
		return "", 0, fmt.Errorf("PostGIS is not installed for PostgreSQL %d: run 'apt-get install postgresql-%d-postgis-3' as root", c.major, c.major)
	}
	return c.dir, c.major, nil
}

func (p *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, name), args...)
	if p.runAs != nil {
		uid, _ := strconv.Atoi(p.runAs.Uid)
		gid, _ := strconv.Atoi(p.runAs.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+p.runAs.HomeDir)
	}
	cmd.Dir = p.DataDir
	return cmd
}

func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(lastLines(string(out), 3)))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Start initialises the cluster on first use and starts it on 127.0.0.1
// with its socket inside the data folder.
func (p *Postgres) Start(ctx context.Context) error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("running as root needs the 'postgres' system user to own the dev cluster; it comes with the postgresql package")
		}
		p.runAs = u
	}
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return err
	}
	if p.runAs != nil {
		uid, _ := strconv.Atoi(p.runAs.Uid)
		gid, _ := strconv.Atoi(p.runAs.Gid)
		if err := os.Chown(p.DataDir, uid, gid); err != nil {
			return err
		}
		// The postgres user must be able to reach the data folder.
		for dir := filepath.Dir(p.DataDir); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(dir, fi.Mode().Perm()|0o001)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(p.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := run(p.command(ctx, "initdb", "-D", p.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions")); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
	}
	if run(p.command(ctx, "pg_ctl", "-D", p.DataDir, "status")) == nil {
		// Left running by a dev stack that was killed: stop it and start afresh.
		_ = run(p.command(ctx, "pg_ctl", "-D", p.DataDir, "-m", "fast", "-w", "stop"))
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on", p.Port, p.DataDir)
	if err := run(p.command(ctx, "pg_ctl", "-D", p.DataDir, "-l", filepath.Join(p.DataDir, "server.log"), "-o", opts, "-w", "-t", "60", "start")); err != nil {
		return fmt.Errorf("starting PostgreSQL (see %s): %w", filepath.Join(p.DataDir, "server.log"), err)
	}
	p.started = true
	return p.createDatabase(ctx, "ecogrid")
}

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

func (p *Postgres) createDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	}
	return err
}

// Crash stops the cluster with an immediate shutdown: no checkpoint, so
// the next start replays the WAL, as after a power cut.
func (p *Postgres) Crash(ctx context.Context) error {
	return run(p.command(ctx, "pg_ctl", "-D", p.DataDir, "-m", "immediate", "-w", "stop"))
}

// Stop shuts the cluster down (fast mode: active sessions are ended,
// everything committed is kept).
func (p *Postgres) Stop() error {
	if !p.started {
		return nil
	}
	p.started = false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return run(p.command(ctx, "pg_ctl", "-D", p.DataDir, "-m", "fast", "-w", "stop"))
}
