//go:build linux

package realtest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/internal/testbin"
)

// The test's shape. The built-in packs' rules hold for 1m and are
// evaluated every 15s; the processor ticks every emitInterval.
const (
	emitInterval   = "5s"
	scrapeInterval = "5s"
	// healthy is long enough for every baseline (a feature's baseline
	// starts a minute after it is first seen, docs/entities.md) and for
	// two evaluations of every group (15 to 20 s apart) with both entities
	// known. With 35 s the surge seeded the proxy's request-rate baseline
	// and ProxySurge read 1.6x at ten times the healthy rate.
	healthy = 80 * time.Second
	// faultDeadline bounds the wait for the alerts: 1m of `for` after the
	// features cross their thresholds, plus evaluation and scrape
	// intervals.
	faultDeadline = 150 * time.Second
	// resolveDeadline bounds the wait for the database alerts to resolve
	// once the load stops: a scrape and an evaluation.
	resolveDeadline = 60 * time.Second

	// maxConnections is PostgreSQL's default. Of these, 3 are reserved
	// for superusers and one is the exporter's, so the application is
	// refused at 96 (0.96 of max_connections).
	maxConnections = 100
	nginxRate      = 20 // r/s before NGINX sheds with 429
	nginxBurst     = 10
	healthyRate    = 4  // r/s
	surgeRate      = 40 // r/s
)

type junctionParams struct {
	AccessLog      string
	Exporter       string
	OTLP           string
	EmitInterval   string
	ScrapeInterval string
}

// otlpSink is the test's OTLP/HTTP receiver: the otlp_http exporter of
// Junction sends it the alert records and derived metrics.
type otlpSink struct {
	logs    *consumertest.LogsSink
	metrics *consumertest.MetricsSink
	addr    string
}

func startOTLP(t *testing.T) *otlpSink {
	t.Helper()
	s := &otlpSink{logs: new(consumertest.LogsSink), metrics: new(consumertest.MetricsSink)}
	s.addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = s.addr
	set := receivertest.NewNopSettings(component.MustNewType("otlp"))
	ctx := context.Background()
	lr, err := f.CreateLogs(ctx, set, cfg, s.logs)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := f.CreateMetrics(ctx, set, cfg, s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{lr, mr} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = lr.Shutdown(context.Background())
		_ = mr.Shutdown(context.Background())
	})
	return s
}

// alerts decodes every alert record received so far (the logs pipeline
// also carries the access logs themselves, which are skipped).
func (s *otlpSink) alerts(t *testing.T) []alert.Alert {
	t.Helper()
	var out []alert.Alert
	for _, ld := range s.logs.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if !alert.IsAlert(lrs.At(k)) {
						continue
					}
					a, err := alert.FromLogRecord(lrs.At(k))
					if err != nil {
						t.Fatalf("undecodable alert record: %v", err)
					}
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// features returns, per entity id, the last value of every derived
// junction.<feature> gauge Junction emitted for it.
func (s *otlpSink) features() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, md := range s.metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			rm := rms.At(i)
			id, ok := rm.Resource().Attributes().Get("junction.entity.id")
			if !ok {
				continue
			}
			fs := out[id.Str()]
			if fs == nil {
				fs = map[string]float64{}
				out[id.Str()] = fs
			}
			sms := rm.ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Type() != pmetric.MetricTypeGauge || m.Gauge().DataPoints().Len() == 0 {
						continue
					}
					dp := m.Gauge().DataPoints().At(0)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					fs[strings.TrimPrefix(m.Name(), "junction.")] = v
				}
			}
		}
	}
	return out
}

// ruleStatus returns every junction.rule.status data point received so
// far, by group/rule.
func (s *otlpSink) ruleStatus() map[string][]alert.RuleStatus {
	out := map[string][]alert.RuleStatus{}
	for _, md := range s.metrics.AllMetrics() {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != alert.RuleStatusMetric || m.Type() != pmetric.MetricTypeGauge {
						continue
					}
					dps := m.Gauge().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						r := alert.RuleStatusFromDataPoint(dps.At(d))
						out[r.Group+"/"+r.Rule] = append(out[r.Group+"/"+r.Rule], r)
					}
				}
			}
		}
	}
	return out
}

// checkRules fails the test when one of the wanted rules was evaluated
// fewer than min times before until, or was unhealthy.
func checkRules(t *testing.T, sink *otlpSink, wants []want, until time.Time, min int) {
	t.Helper()
	status := sink.ruleStatus()
	for _, w := range wants {
		evals := map[time.Time]bool{}
		for _, r := range status[w.group+"/"+w.rule] {
			if r.Health == alert.HealthErr {
				t.Errorf("rule %s/%s unhealthy: %s", w.group, w.rule, r.LastError)
			}
			if !r.LastEvaluation.IsZero() && r.LastEvaluation.Before(until) {
				evals[r.LastEvaluation] = true
			}
		}
		if len(evals) < min {
			t.Errorf("rule %s/%s evaluated %d times before %v, want at least %d", w.group, w.rule, len(evals), until.Format(time.TimeOnly), min)
		}
	}
}

// logEvaluations logs when the rule of w was evaluated, relative to start.
func logEvaluations(t *testing.T, sink *otlpSink, w want, start time.Time) {
	seen := map[time.Time]bool{}
	var at []string
	for _, r := range sink.ruleStatus()[w.group+"/"+w.rule] {
		if !r.LastEvaluation.IsZero() && !seen[r.LastEvaluation] {
			seen[r.LastEvaluation] = true
			at = append(at, r.LastEvaluation.Sub(start).Round(100*time.Millisecond).String())
		}
	}
	t.Logf("%s/%s evaluated at %v after the start", w.group, w.rule, at)
}

// want is an alert the fault must raise: rule on entity, blaming blame.
type want struct {
	group, rule, entity, blame string
	// evidence is a feature of the entity the alert must carry, above min.
	evidence string
	min      float64
}

func (w want) key() string { return w.group + "/" + w.rule + "@" + w.entity }

// TestRealNginxPostgresAlerts runs Junction on real NGINX access logs and
// real postgres exporter metrics. Healthy traffic first: both entities
// appear with their features and nothing is raised on them. Then a surge
// makes NGINX shed (its own rate limit answers 429, the slowed upstream's
// overload guard 503) and a peak-hour load holds an exclusive lock with
// waiters queued behind it and exhausts the connections: ProxyShedding and
// ProxySurge fire blaming the proxy, DatabaseConnectionLimit and LockWaits
// blaming the database. When the database load stops, the database alerts
// resolve.
func TestRealNginxPostgresAlerts(t *testing.T) {
	bins := requireBinaries(t)
	junctionBin := testbin.Junction(t)
	start := time.Now()

	svc := &checkoutService{}
	upstream := httptest.NewServer(svc)
	t.Cleanup(upstream.Close)
	nginxAddr, accessLog := startNginx(t, bins.nginx, upstream.Listener.Addr().String(), nginxRate, nginxBurst)

	pg := startPostgres(t, bins.pgBin, maxConnections)
	setupShop(t, pg)
	exporter := startExporter(t, bins.exporter, pg.DSN("postgres", "postgres"))

	sink := startOTLP(t)
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "junction.yaml")
	render(t, filepath.Join("testdata", "junction.yaml.tmpl"), cfg, junctionParams{
		AccessLog: accessLog, Exporter: exporter,
		OTLP: sink.addr, EmitInterval: emitInterval, ScrapeInterval: scrapeInterval,
	})
	junction := startJunction(t, junctionBin, cfg)
	t.Logf("components up in %v", time.Since(start).Round(time.Second))

	proxyID := entity.ID(entity.Proxy, "nginx", "checkout")
	dbID := entity.ID(entity.Database, "postgresql", pg.Addr(), "shop")
	wants := []want{
		{"surge", "ProxyShedding", proxyID, proxyID, "shed.ratio", 0.05},
		{"surge", "ProxySurge", proxyID, proxyID, "surge.factor", 3},
		{"database", "DatabaseConnectionLimit", dbID, dbID, "connections.utilization", 0.9},
		{"database", "LockWaits", dbID, dbID, "locks.waiting", 5},
	}

	url := "http://" + nginxAddr + "/checkout"
	var httpStats statusCounts
	var dbHealthy, dbPeak dbStats
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	run := func(ctx context.Context, f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}

	// Healthy phase.
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	t.Cleanup(stopHTTP)
	run(httpCtx, func(ctx context.Context) { httpLoad(ctx, url, "shop.test", healthyRate, 64, &httpStats) })
	healthyCtx, stopHealthyDB := context.WithCancel(context.Background())
	t.Cleanup(stopHealthyDB)
	run(healthyCtx, func(ctx context.Context) {
		if err := healthyDBLoad(ctx, pg.DSN("shop", "shop"), &dbHealthy); err != nil {
			t.Error(err)
		}
	})
	pause(context.Background(), healthy)
	if err := junction.exited(); err != nil {
		t.Fatal(err)
	}
	faultStart := time.Now()

	fs := sink.features()
	for id, need := range map[string][]string{
		proxyID: {"request.rate"},
		dbID:    {"connections.active", "connections.max", "connections.utilization", "locks.waiting"},
	} {
		for _, f := range need {
			if _, ok := fs[id][f]; !ok {
				t.Errorf("healthy phase: %s has no %s (features seen: %v; entities: %v)", id, f, fs[id], keys(fs))
			}
		}
	}
	t.Logf("healthy phase: proxy %v; database %v; http %s; db %s", fs[proxyID], fs[dbID], httpStats.String(), dbHealthy.String())
	if t.Failed() {
		t.FailNow()
	}
	// The rules ran on the healthy graph and raised nothing on it.
	checkRules(t, sink, wants, faultStart, 2)
	for _, a := range sink.alerts(t) {
		if onEntity(a, proxyID, dbID) && a.EvaluatedAt.Before(faultStart) {
			t.Errorf("healthy phase: %s %s on %s: %s", a.State, a.ID, a.Entity.ID, a.Summary())
		}
	}

	// Fault phase: surge at the proxy, peak hour at the database.
	stopHealthyDB()
	svc.delay.Store(int64(300 * time.Millisecond))
	svc.maxInFlight.Store(4)
	stopHTTP()
	httpCtx, stopHTTP = context.WithCancel(context.Background())
	t.Cleanup(stopHTTP)
	run(httpCtx, func(ctx context.Context) { httpLoad(ctx, url, "shop.test", surgeRate, 256, &httpStats) })
	peakCtx, stopPeak := context.WithCancel(context.Background())
	t.Cleanup(stopPeak)
	run(peakCtx, func(ctx context.Context) {
		if err := peakDBLoad(ctx, pg.DSN("shop", "shop"), 10, maxConnections, &dbPeak); err != nil {
			t.Error(err)
		}
	})

	fired := map[string]alert.Alert{}
	waitFor(t, "the surge and database alerts to fire", faultDeadline, junction, func() error {
		for _, a := range sink.alerts(t) {
			if a.State == alert.StateFiring {
				if _, ok := fired[a.ID]; !ok {
					fired[a.ID] = a
				}
			}
		}
		var missing []string
		for _, w := range wants {
			if _, ok := fired[w.key()]; !ok {
				missing = append(missing, w.rule)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not fired yet: %v (fired: %v; http %s; db %s; proxy %v; database %v)",
				missing, keys(fired), httpStats.String(), dbPeak.String(), sink.features()[proxyID], sink.features()[dbID])
		}
		return nil
	})
	for _, w := range wants {
		a := fired[w.key()]
		if a.Blame.ID != w.blame {
			t.Errorf("%s blames %s, want %s", a.ID, a.Blame.ID, w.blame)
		}
		if v, ok := a.Evidence.Values[w.entity+" "+w.evidence]; !ok || v <= w.min {
			t.Errorf("%s: evidence %q = %v (present %v), want above %v; evidence: %v", a.ID, w.entity+" "+w.evidence, v, ok, w.min, a.Evidence.Values)
		}
		t.Logf("%s fired %v after the fault began (pending since %v): blame %s: %s",
			a.ID, a.FiredAt.Sub(faultStart).Round(time.Second), a.ActiveAt.Sub(faultStart).Round(time.Second), a.Blame.ID, a.Summary())
	}
	t.Logf("fault phase: http %s; db %s", httpStats.String(), dbPeak.String())
	// The fault was real: NGINX and the upstream shed, PostgreSQL refused
	// connections and lock waits timed out.
	if httpStats.get(429) == 0 || httpStats.get(503) == 0 {
		t.Errorf("the surge was not shed by both NGINX (429) and the upstream (503): %s", httpStats.String())
	}
	if dbPeak.refused.Load() == 0 {
		t.Errorf("PostgreSQL refused no connection: %s", dbPeak.String())
	}
	if dbPeak.lockTimeouts.Load() == 0 {
		t.Errorf("no lock wait timed out: %s", dbPeak.String())
	}

	// Recovery of the database: its alerts resolve.
	stopPeak()
	recoverStart := time.Now()
	waitFor(t, "the database alerts to resolve", resolveDeadline, junction, func() error {
		resolved := map[string]bool{}
		for _, a := range sink.alerts(t) {
			if a.State == alert.StateResolved && a.EvaluatedAt.After(recoverStart) {
				resolved[a.ID] = true
			}
		}
		for _, w := range wants {
			if w.group == "database" && !resolved[w.key()] {
				return fmt.Errorf("%s not resolved yet (database %v)", w.key(), sink.features()[dbID])
			}
		}
		return nil
	})
	stopHTTP()

	// Nothing else was raised on the proxy or the database.
	expected := map[string]bool{}
	for _, w := range wants {
		expected[w.key()] = true
	}
	for _, a := range sink.alerts(t) {
		if onEntity(a, proxyID, dbID) && !expected[a.ID] && a.State != alert.StateResolved {
			t.Errorf("unexpected %s %s: %s", a.State, a.ID, a.Summary())
		}
	}
	checkRules(t, sink, wants, time.Now(), 1)
	logEvaluations(t, sink, wants[0], start)
	t.Logf("test took %v", time.Since(start).Round(time.Second))
}

// onEntity reports whether a is raised on or blames a proxy or database
// entity of the test (or any other proxy or database).
func onEntity(a alert.Alert, ids ...string) bool {
	for _, id := range ids {
		if a.Entity.ID == id || a.Blame.ID == id {
			return true
		}
	}
	return a.Entity.Type == entity.Proxy || a.Entity.Type == entity.Database
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
