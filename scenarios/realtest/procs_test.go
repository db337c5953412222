//go:build linux

package realtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	_ "github.com/lib/pq"

	"github.com/junction-sre/junction/internal/pgtest"
)

// binaries are the real components the test runs.
type binaries struct {
	nginx    string
	pgBin    string // directory with initdb, pg_ctl
	exporter string
}

// requireBinaries finds NGINX, PostgreSQL and the postgres exporter, and
// skips the test when one is not installed.
func requireBinaries(t *testing.T) binaries {
	t.Helper()
	var b binaries
	var missing []string
	if b.nginx = findBinary("nginx", "/usr/sbin", "/usr/bin"); b.nginx == "" {
		missing = append(missing, "nginx (Debian package nginx)")
	}
	if b.pgBin, _ = pgtest.BinDir(); b.pgBin == "" {
		missing = append(missing, "initdb/pg_ctl under /usr/lib/postgresql/*/bin (Debian package postgresql)")
	}
	b.exporter = findBinary("prometheus-postgres-exporter", "/usr/bin")
	if b.exporter == "" {
		b.exporter = findBinary("postgres_exporter", "/usr/bin")
	}
	if b.exporter == "" {
		missing = append(missing, "prometheus-postgres-exporter (Debian package prometheus-postgres-exporter)")
	}
	if len(missing) > 0 {
		t.Skipf("real components not installed: %s; .ci/run installs them", strings.Join(missing, ", "))
	}
	return b
}

// findBinary looks name up in PATH, then in dirs (sbin is often not in a
// non-root PATH).
func findBinary(name string, dirs ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a child's output while the test reads it; it keeps
// the last 256 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const keepOutput = 256 << 10

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > keepOutput {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-keepOutput:]...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// proc is a child process the test started; it is stopped at cleanup.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startProc starts cmd and stops it (stop, else SIGKILL after 20s) when
// the test ends, logging its output when the test failed.
func startProc(t *testing.T, name string, cmd *exec.Cmd, stop os.Signal) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(stop)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within 20s", name)
		}
		if t.Failed() {
			t.Logf("--- %s output (tail):\n%s", name, tail(p.out.String(), 8000))
		}
	})
	return p
}

// exited reports an early exit as an error with the process's output.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.out.String(), 8000))
	default:
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// waitFor polls cond every 200ms until it returns nil, the process p
// exits or the timeout passes: processes become ready in their own time,
// which the test can only observe.
func waitFor(t *testing.T, what string, timeout time.Duration, p *proc, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if p != nil {
			if perr := p.exited(); perr != nil {
				t.Fatalf("waiting for %s: %v", what, perr)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v after %v", what, err, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// render executes the template file into path.
func render(t *testing.T, tmplFile, path string, data any) {
	t.Helper()
	tmpl, err := template.New(filepath.Base(tmplFile)).Option("missingkey=error").ParseFiles(tmplFile)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatalf("%s: %v", tmplFile, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---- NGINX

type nginxParams struct {
	Dir       string
	Listen    string
	Upstream  string
	RateLimit int
	Burst     int
}

// startNginx runs NGINX in the foreground with the test's config; it
// returns the address it listens on and the path of its access log.
func startNginx(t *testing.T, bin, upstream string, rate, burst int) (addr, accessLog string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "junction-realtest-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Workers of a root master run as nobody: they must reach the temp dirs.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	render(t, filepath.Join("testdata", "nginx.conf.tmpl"), conf, nginxParams{
		Dir: dir, Listen: addr, Upstream: upstream, RateLimit: rate, Burst: burst,
	})
	args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf}
	if out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	p := startProc(t, "nginx", exec.Command(bin, append(args, "-g", "daemon off;")...), syscall.SIGQUIT)
	waitFor(t, "nginx to listen on "+addr, 30*time.Second, p, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return addr, filepath.Join(dir, "access.log")
}

// ---- PostgreSQL

// startPostgres starts a private cluster (internal/pgtest) with a
// connection limit, stopped when the test ends.
func startPostgres(t *testing.T, binDir string, maxConnections int) *pgtest.Server {
	t.Helper()
	pg, err := pgtest.Start(context.Background(), binDir, pgtest.Options{MaxConnections: maxConnections, Name: "realtest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- postgres log (tail):\n%s", pg.LogTail(8000))
		}
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	return pg
}

// setupShop creates the application's role (no superuser: it gets no reserved
// connection), its database and a table.
func setupShop(t *testing.T, pg *pgtest.Server) {
	t.Helper()
	exec := func(dsn string, stmts ...string) {
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	exec(pg.DSN("postgres", "postgres"),
		"CREATE ROLE shop LOGIN NOSUPERUSER",
		"CREATE DATABASE shop OWNER shop")
	exec(pg.DSN("shop", "shop"),
		"CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)",
		"INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g")
}

// ---- postgres exporter

// startExporter runs Debian's prometheus-postgres-exporter against dsn and
// returns its address once it reports the database up.
func startExporter(t *testing.T, bin, dsn string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	queries, err := filepath.Abs(filepath.Join("..", "..", "deploy", "postgres-exporter", "queries.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--extend.query-path="+queries)
	cmd.Env = append(os.Environ(), "DATA_SOURCE_NAME="+dsn)
	p := startProc(t, "prometheus-postgres-exporter", cmd, syscall.SIGTERM)
	waitFor(t, "the postgres exporter at "+addr, 30*time.Second, p, func() error {
		body, err := httpGet(context.Background(), "http://"+addr+"/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "\npg_up 1") {
			return fmt.Errorf("pg_up is not 1 yet")
		}
		// The custom query of the lock-wait count ran (its file parsed).
		if !strings.Contains(body, "\npg_locks_waiting_count{") {
			return fmt.Errorf("no pg_locks_waiting_count yet (custom queries %s)", queries)
		}
		return nil
	})
	return addr
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// ---- Junction

// startJunction runs the built junction binary on config and waits until
// the collector reports that everything is ready.
func startJunction(t *testing.T, bin, config string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "--config", config)
	cmd.Dir = filepath.Dir(config)
	p := startProc(t, "junction", cmd, syscall.SIGTERM)
	waitFor(t, "junction to start", 60*time.Second, p, func() error {
		if !strings.Contains(p.out.String(), "Everything is ready") {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	return p
}
