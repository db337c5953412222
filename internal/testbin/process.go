package testbin

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Logs collects a child's stdout and stderr while a test reads them.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Process is a running junction binary.
type Process struct {
	Cmd  *exec.Cmd
	Logs *Logs

	t       testing.TB
	stopped bool
}

// Start runs the junction binary with args in dir, its output in Logs.
// Stop, or the test's end, stops it with SIGTERM; the test fails when it
// does not then exit cleanly within 30 s.
func Start(t testing.TB, dir string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(Junction(t), args...)
	cmd.Dir = dir
	return Run(t, cmd)
}

// Run starts cmd (the junction binary, with the test's own environment or
// directory) as Start does: its output in Logs, stopped by Stop or at the
// test's end.
func Run(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, Logs: &Logs{}, t: t}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Stop sends SIGTERM and waits for a clean exit (the collector's shutdown:
// exporters flush, files close). Later calls do nothing.
func (p *Process) Stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("junction did not exit cleanly on SIGTERM: %v\n%s", err, p.Logs.String())
		}
	case <-time.After(30 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
		p.t.Errorf("junction did not stop within 30s of SIGTERM\n%s", p.Logs.String())
	}
}
