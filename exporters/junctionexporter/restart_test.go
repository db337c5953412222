package junctionexporter

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/store"
)

// crashChildEnv names the data directory of the child process of
// TestKill9LosesAtMostTheLastFlush.
const crashChildEnv = "JUNCTION_EXPORTER_CRASH_CHILD_DIR"

// crashDurable is how long after a write it is durable with a flush
// interval of 1 s: the 6 s bound (docs/exporter.md, "Durability") and a
// margin for a loaded machine.
const crashDurable = 8 * time.Second

// runCrashChildIfAsked makes the test binary the child process of
// TestKill9LosesAtMostTheLastFlush when crashChildEnv is set; the generated
// TestMain (generated_package_test.go, tests.goleak.setup in metadata.yaml)
// calls it first.
func runCrashChildIfAsked() {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // does not return: the parent kills the child
	}
}

// crashChild runs the exporter as the collector would, on the shortest
// storage.flush_interval (1s, which VictoriaMetrics raises to its 2 s of
// pending rows), writes a first batch, waits out the durability bound with
// nothing but the flush loop's checkpoints and VictoriaMetrics' own
// background flush running, writes a second batch and waits to be killed.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Storage.Directory = dir
	cfg.Storage.FlushInterval = time.Second
	cfg.API.NetAddr.Endpoint = "127.0.0.1:0"
	f := NewFactory()
	set := exportertest.NewNopSettings(Type)
	me, err := f.CreateMetrics(ctx, set, cfg)
	if err != nil {
		fail(err)
	}
	le, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		fail(err)
	}
	e := registry[set.ID]
	e.now = func() time.Time { return t0.Add(time.Hour) }
	if err := me.Start(ctx, componenttest.NewNopHost()); err != nil {
		fail(err)
	}
	if err := le.Start(ctx, componenttest.NewNopHost()); err != nil {
		fail(err)
	}
	md := pmetric.NewMetrics()
	entityGauges(md, checkout, "latency.p99_ms", 100, 200, 300)
	if err := me.ConsumeMetrics(ctx, md); err != nil {
		fail(err)
	}
	if err := le.ConsumeLogs(ctx, alertLogs(poolAlert(alert.StatePending), poolAlert(alert.StateFiring))); err != nil {
		fail(err)
	}
	// Series: pending rows (2 s), then an in-memory part written once its
	// deadline (one interval) has passed, at the flusher's next tick (one
	// more interval): 6 s here. Alerts: the next checkpoint.
	time.Sleep(crashDurable)
	fmt.Println("flushed")
	md = pmetric.NewMetrics()
	entityGauges(md, orders, "pool.utilization", 0.5)
	_ = me.ConsumeMetrics(ctx, md)
	_ = le.ConsumeLogs(ctx, alertLogs(poolAlert(alert.StateResolved)))
	fmt.Println("written")
	select {}
}

func TestKill9LosesAtMostTheLastFlush(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "written" || strings.HasPrefix(sc.Text(), "error:") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(lines) < 2 || lines[len(lines)-1] != "written" {
		t.Fatalf("child said %q", lines)
	}

	st, err := store.Open(store.Options{
		Dir: dir, Retention: defaultRetention, FlushInterval: defaultFlushInterval, MinFreeBytes: 1 << 20,
		MaxEntities: 100, MaxEdges: 100, MaxRules: 100, EntityTTL: 24 * time.Hour,
		MaxAlertInstances: 100, MaxAlertHistory: 100, AlertLogMaxBytes: 1 << 20,
		GraphWindow: time.Hour, GraphMaxSeries: 1000,
		Now: func() time.Time { return t0.Add(time.Hour) },
	})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	res, err := st.Series(checkout.ID, "latency.p99_ms", t0.Add(-time.Minute), t0.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatalf("flushed series lost: %v", err)
	}
	if len(res.Points) != 3 || res.Points[2][1] != 300 {
		t.Fatalf("flushed series after kill -9 = %v, want 3 points ending at 300", res.Points)
	}
	a, hist, err := st.Alert(poolAlert(alert.StateFiring).ID)
	if err != nil {
		t.Fatalf("flushed alert lost: %v", err)
	}
	if len(hist) < 2 || hist[0].State != alert.StatePending || hist[1].State != alert.StateFiring || len(a.Evidence.Exemplars) != 1 {
		t.Fatalf("alert after kill -9 = %+v, history %v", a, hist)
	}
	if _, err := st.Entity(checkout.ID); err != nil {
		t.Fatalf("latest entity state not rebuilt from storage: %v", err)
	}
	// The second batch came after the last flush: it may or may not have
	// survived, and the store must open either way (checked above).
	t.Logf("after the last flush: alert state %s, history %d transitions", a.State, len(hist))
}
