package realapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned when PostgreSQL's initdb and pg_ctl are not
// installed (Debian package postgresql).
var ErrNoPostgres = errors.New("PostgreSQL is not installed: no initdb/pg_ctl under /usr/lib/postgresql/*/bin or in PATH (Debian package postgresql)")

// Postgres is a private PostgreSQL cluster in a temporary directory,
// listening on a loopback port. PostgreSQL refuses to run as root, so
// under root it runs as the postgres user.
type Postgres struct {
	bin  string
	dir  string
	data string
	log  string
	// Port is the loopback port it listens on.
	Port int
	cred *syscall.Credential
}

// PostgresBinDir returns the bin directory of the newest installed
// PostgreSQL major version, or ErrNoPostgres.
func PostgresBinDir() (string, error) {
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
	return "", ErrNoPostgres
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// StartPostgres initialises a cluster under a new temporary directory and
// starts it with pg_ctl. Stop it with Stop.
func StartPostgres(ctx context.Context, binDir string) (*Postgres, error) {
	dir, err := os.MkdirTemp("", "junction-realapp-pg-")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	pg := &Postgres{bin: binDir, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "postgres.log"), Port: port}
	fail := func(err error) (*Postgres, error) {
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
	conf := fmt.Sprintf("\n# junction realapp\nlisten_addresses = '127.0.0.1'\nport = %d\n"+
		"unix_socket_directories = ''\nmax_connections = 200\nfsync = off\n", pg.Port)
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

func (pg *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// Addr is host:port.
func (pg *Postgres) Addr() string { return fmt.Sprintf("127.0.0.1:%d", pg.Port) }

// DSN is a connection URL for user on database db.
func (pg *Postgres) DSN(user, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable&connect_timeout=5", user, pg.Addr(), db)
}

// CreateDatabase creates a database owned by a login role of the same
// name, with the table the inventory service reads.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) error {
	admin, err := pgx.Connect(ctx, pg.DSN("postgres", "postgres"))
	if err != nil {
		return fmt.Errorf("connecting to %s as postgres: %w", pg.Addr(), err)
	}
	defer admin.Close(context.Background())
	for _, s := range []string{
		"CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN NOSUPERUSER",
		"CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER " + pgx.Identifier{name}.Sanitize(),
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	c, err := pgx.Connect(ctx, pg.DSN(name, name))
	if err != nil {
		return fmt.Errorf("connecting to database %s: %w", name, err)
	}
	defer c.Close(context.Background())
	for _, s := range []string{
		"CREATE TABLE stock (sku int PRIMARY KEY, count int NOT NULL)",
		"INSERT INTO stock SELECT g, 100 FROM generate_series(1, 100) g",
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// LogTail returns the end of the server log.
func (pg *Postgres) LogTail(n int) string {
	b, _ := os.ReadFile(pg.log)
	s := string(b)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// Stop stops the server and removes its directory.
func (pg *Postgres) Stop() error {
	out, err := pg.command(context.Background(), "pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "30", "stop").CombinedOutput()
	_ = os.RemoveAll(pg.dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}
