// Package pgtest runs private PostgreSQL clusters from Debian's postgresql
// package: a temporary directory, a free loopback port, no Unix socket. The
// real-component tests (scenarios/realtest) and the real application
// (scenarios/realapp, its test and cmd/junction-realapp) start their
// databases with it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotInstalled is returned when PostgreSQL's initdb and pg_ctl are not
// installed (Debian package postgresql).
var ErrNotInstalled = errors.New("PostgreSQL is not installed: no initdb/pg_ctl under /usr/lib/postgresql/*/bin or in PATH (Debian package postgresql)")

// Options configure a cluster.
type Options struct {
	// MaxConnections is postgresql.conf's max_connections; 0 means 200.
	MaxConnections int
	// Name goes into the temporary directory's name and the config's
	// comment, to tell clusters apart.
	Name string
}

// Server is a running private cluster. PostgreSQL refuses to run as root,
// so under root it runs as the postgres user.
type Server struct {
	bin  string
	dir  string
	data string
	log  string
	// Port is the loopback port it listens on.
	Port int
	cred *syscall.Credential
}

// BinDir returns the bin directory of the newest installed PostgreSQL
// major version, or ErrNotInstalled.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if isExec(filepath.Join(dirs[i], "initdb")) && isExec(filepath.Join(dirs[i], "pg_ctl")) {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNotInstalled
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Start initialises a cluster under a new temporary directory and starts
// it with pg_ctl, waiting until it accepts connections. Stop it with Stop.
func Start(ctx context.Context, binDir string, opts Options) (*Server, error) {
	name := opts.Name
	if name == "" {
		name = "pg"
	}
	maxConns := opts.MaxConnections
	if maxConns <= 0 {
		maxConns = 200
	}
	dir, err := os.MkdirTemp("", "junction-"+name+"-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	pg := &Server{bin: binDir, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log"), Port: port}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root, and PostgreSQL refuses root: need the postgres user (Debian package postgresql): %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	if out, err := pg.command(ctx, "initdb", "-D", pg.data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	conf := fmt.Sprintf("\n# junction %s\nlisten_addresses = '127.0.0.1'\nport = %d\n"+
		"unix_socket_directories = ''\nmax_connections = %d\nfsync = off\n", name, pg.Port, maxConns)
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(f, conf); err != nil {
		f.Close()
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if out, err := pg.command(ctx, "pg_ctl", "-D", pg.data, "-l", pg.log, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, pg.LogTail(4000)))
	}
	return pg, nil
}

func (pg *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// Addr is host:port.
func (pg *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", pg.Port) }

// DSN is a connection URL for user on database db (libpq and pgx read it).
func (pg *Server) DSN(user, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=5", user, pg.Addr(), db)
}

// LogTail returns the last n bytes of the server log.
func (pg *Server) LogTail(n int) string {
	b, _ := os.ReadFile(pg.log)
	s := string(b)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// Stop stops the server and removes its directory.
func (pg *Server) Stop() error {
	out, err := pg.command(context.Background(), "pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "30", "stop").CombinedOutput()
	_ = os.RemoveAll(pg.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
