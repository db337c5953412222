// The fuzz targets of this package are built without the tests that run
// the kubeletstats and prometheus receivers (make fuzz sets junction_fuzz):
// an instrumented build of those receivers' dependencies takes minutes.

//go:build !junction_fuzz

package correlationprocessor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
)

// Pod resources as the receivers users deploy report them (docs/entities.md
// "Pod resources"): the k8s_cluster receiver's per-container requests,
// limits and restarts, kubeletstats' pod usage and utilization ratios, and
// cAdvisor's CFS counters scraped from the kubelet by the prometheus
// receiver. The k8s_cluster and kubeletstats inputs are the receivers' own
// test fixtures or built to their shape (TestK8sBuildersMatchReceivers);
// kubeletstats and prometheus are real receivers scraping fake kubelets.

const k8sData = "testdata/k8s"

// ---- the scenario: three services of namespace shop -----------------

const (
	scrapeEvery    = 15 * time.Second
	cfsPeriods     = 150 // CFS periods of 100 ms in one scrape interval
	throttleOnset  = 24  // scrape at which checkout's app starts being throttled (6 min)
	restartAt      = 60  // scrape at which checkout's app restarts once
	scenarioTicks  = 64  // 16 minutes: OverProvisioned needs 10 of them
	spansPerPodPer = 20
)

const mib = 1 << 20

type containerSpec struct {
	name, id, image      string
	cpuRequest, cpuLimit float64
	memRequest, memLimit int64
	workingSet           int64
	// cpu is the cores used in scrape interval k; throttled its throttled
	// CFS periods (of cfsPeriods).
	cpu       func(k int) float64
	throttled func(k int) float64
	restarts  func(k int) int64
}

type podSpec struct {
	service, name, uid, sandbox string
	latency                     func(k int) time.Duration
	containers                  []containerSpec
}

func constant(v float64) func(int) float64 { return func(int) float64 { return v } }
func fromOnset(before, after float64) func(int) float64 {
	return func(k int) float64 {
		if k >= throttleOnset {
			return after
		}
		return before
	}
}
func noRestarts(int) int64 { return 0 }

// shopPods: checkout is throttled from scrape 24 on and slows down
// (CPUThrottlingBehindLatency); reports uses 5 % of its CPU requests on two
// pods (OverProvisioned); catalog is healthy.
func shopPods() []podSpec {
	checkoutLatency := func(k int) time.Duration {
		if k >= throttleOnset {
			return 120 * time.Millisecond
		}
		return 20 * time.Millisecond
	}
	pods := []podSpec{{
		service: "checkout", name: "checkout-6d8f7-x2k4p", uid: "0b7c6e1e-3f0a-4c1e-9d55-2f1e0c9a1b01", sandbox: "5f1c0e9b8a7d", latency: checkoutLatency,
		containers: []containerSpec{
			{name: "app", id: "a1c2e3f4a5b6", image: "registry.example/shop/checkout:1.4.2", cpuRequest: 0.25, cpuLimit: 0.5, memRequest: 256 * mib, memLimit: 512 * mib, workingSet: 200 * mib,
				cpu: fromOnset(0.2, 0.4), throttled: fromOnset(0, 90), restarts: func(k int) int64 {
					if k >= restartAt {
						return 1
					}
					return 0
				}},
			{name: "envoy", id: "b2d3f4a5b6c7", image: "docker.io/envoyproxy/envoy:v1.33.0", cpuRequest: 0.05, cpuLimit: 0.1, memRequest: 64 * mib, memLimit: 128 * mib, workingSet: 50 * mib,
				cpu: constant(0.02), throttled: constant(0), restarts: noRestarts},
		},
	}}
	for i, suffix := range []string{"a1b2c", "d3e4f"} {
		pods = append(pods, podSpec{
			service: "catalog", name: "catalog-5c9b8-" + suffix, uid: fmt.Sprintf("1c8d7f2f-4a1b-4d2f-8e66-3a2f1d0b2c%02d", i), sandbox: fmt.Sprintf("6a2d1f0c9b%02d", i),
			latency: func(int) time.Duration { return 15 * time.Millisecond },
			containers: []containerSpec{{name: "app", id: fmt.Sprintf("c3e4a5b6c7%02d", i), image: "registry.example/shop/catalog:2.0.1", cpuRequest: 0.5, cpuLimit: 1, memRequest: 512 * mib, memLimit: 1024 * mib, workingSet: 300 * mib,
				cpu: constant(0.3), throttled: constant(0), restarts: noRestarts}},
		})
	}
	for i, suffix := range []string{"g5h6i", "j7k8l"} {
		pods = append(pods, podSpec{
			service: "reports", name: "reports-7f6e5-" + suffix, uid: fmt.Sprintf("2d9e8a3a-5b2c-4e3a-9f77-4b3a2e1c3d%02d", i), sandbox: fmt.Sprintf("7b3e2a1d0c%02d", i),
			latency: func(int) time.Duration { return 30 * time.Millisecond },
			containers: []containerSpec{{name: "app", id: fmt.Sprintf("d4f5b6c7d8%02d", i), image: "registry.example/shop/reports:0.9.0", cpuRequest: 1, cpuLimit: 2, memRequest: 1024 * mib, memLimit: 2048 * mib, workingSet: 400 * mib,
				cpu: constant(0.05), throttled: constant(0), restarts: noRestarts}},
		})
	}
	return pods
}

const shopNamespace = "shop"

// cumulative is the counter after scrape k of a per-interval quantity.
func cumulative(f func(int) float64, k int) float64 {
	var s float64
	for i := 1; i <= k; i++ {
		s += f(i)
	}
	return s
}

// ---- spans, as the application's SDK sends them and k8s_attributes labels them

func podSpans(pods []podSpec, k int, end time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	for pi, p := range pods {
		rs := td.ResourceSpans().AppendEmpty()
		res := rs.Resource().Attributes()
		res.PutStr("service.name", p.service)
		res.PutStr("k8s.namespace.name", shopNamespace)
		res.PutStr("k8s.pod.name", p.name)
		res.PutStr("k8s.pod.uid", p.uid)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		d := p.latency(k)
		for i := 0; i < spansPerPodPer; i++ {
			sp := spans.AppendEmpty()
			sp.SetName("GET /")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetTraceID([16]byte{byte(k), byte(k >> 8), byte(pi), byte(i), 1})
			sp.SetSpanID([8]byte{byte(k), byte(pi), byte(i), 1})
			e := end.Add(-time.Duration(i) * scrapeEvery / spansPerPodPer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(e.Add(-d)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(e))
		}
	}
	return td
}

// ---- kubeletstats and k8s_cluster output, in their receivers' shape -----

const (
	kubeletstatsScope = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver"
	k8sclusterScope   = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sclusterreceiver"
)

func gaugeDouble(ms pmetric.MetricSlice, name, unit string, v float64, ts pcommon.Timestamp) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(v)
	dp.SetTimestamp(ts)
}

func gaugeInt(ms pmetric.MetricSlice, name, unit string, v int64, ts pcommon.Timestamp) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(v)
	dp.SetTimestamp(ts)
}

// kubeletstatsPods is what kubeletstats (metric_groups pod, the pod
// utilization metrics enabled) reports for the pods at scrape k: a
// resource per pod, its usage and the usage over its summed requests and
// limits. Its memory ratios divide the memory usage (working set plus
// page cache), not the working set.
func kubeletstatsPods(pods []podSpec, k int, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(at)
	for _, p := range pods {
		rm := md.ResourceMetrics().AppendEmpty()
		res := rm.Resource().Attributes()
		res.PutStr("k8s.namespace.name", shopNamespace)
		res.PutStr("k8s.pod.name", p.name)
		res.PutStr("k8s.pod.uid", p.uid)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(kubeletstatsScope)
		var cpu, cpuReq, cpuLim float64
		var ws, memReq, memLim int64
		for _, c := range p.containers {
			cpu += c.cpu(k)
			cpuReq += c.cpuRequest
			cpuLim += c.cpuLimit
			ws += c.workingSet
			memReq += c.memRequest
			memLim += c.memLimit
		}
		memUsage := ws + ws/5
		ms := sm.Metrics()
		gaugeDouble(ms, "k8s.pod.cpu.usage", "{cpu}", cpu, ts)
		gaugeInt(ms, "k8s.pod.memory.working_set", "By", ws, ts)
		gaugeInt(ms, "k8s.pod.memory.usage", "By", memUsage, ts)
		gaugeDouble(ms, "k8s.pod.cpu_limit_utilization", "1", cpu/cpuLim, ts)
		gaugeDouble(ms, "k8s.pod.cpu_request_utilization", "1", cpu/cpuReq, ts)
		gaugeDouble(ms, "k8s.pod.memory_limit_utilization", "1", float64(memUsage)/float64(memLim), ts)
		gaugeDouble(ms, "k8s.pod.memory_request_utilization", "1", float64(memUsage)/float64(memReq), ts)
	}
	return md
}

// k8sclusterContainers is what k8s_cluster reports for the pods'
// containers: a resource per container with its requests, limits,
// readiness and restarts.
func k8sclusterContainers(pods []podSpec, k int, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	ts := pcommon.NewTimestampFromTime(at)
	for _, p := range pods {
		for _, c := range p.containers {
			rm := md.ResourceMetrics().AppendEmpty()
			res := rm.Resource().Attributes()
			res.PutStr("container.id", c.id)
			image, tag, _ := strings.Cut(c.image, ":")
			res.PutStr("container.image.name", image)
			res.PutStr("container.image.tag", tag)
			res.PutStr("k8s.container.name", c.name)
			res.PutStr("k8s.namespace.name", shopNamespace)
			res.PutStr("k8s.node.name", "node-1")
			res.PutStr("k8s.pod.name", p.name)
			res.PutStr("k8s.pod.uid", p.uid)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(k8sclusterScope)
			ms := sm.Metrics()
			gaugeDouble(ms, "k8s.container.cpu_limit", "{cpu}", c.cpuLimit, ts)
			gaugeDouble(ms, "k8s.container.cpu_request", "{cpu}", c.cpuRequest, ts)
			gaugeInt(ms, "k8s.container.memory_limit", "By", c.memLimit, ts)
			gaugeInt(ms, "k8s.container.memory_request", "By", c.memRequest, ts)
			gaugeInt(ms, "k8s.container.ready", "", 1, ts)
			gaugeInt(ms, "k8s.container.restarts", "{restart}", c.restarts(k), ts)
		}
	}
	return md
}

// ---- cAdvisor through the kubelet, scraped by a real prometheus receiver

type cadvisorContainer struct {
	Name, ID, Image                            string
	Periods, Throttled, CPUSeconds, WorkingSet float64
}

type cadvisorPod struct {
	Namespace, Name, UID, SandboxID                 string
	Periods, Throttled, CPUSeconds, PauseCPUSeconds float64
	WorkingSet, PauseWorkingSet                     float64
	Containers                                      []cadvisorContainer
}

type cadvisorPage struct {
	Scrape         int
	TS             int64
	NodeCPUSeconds float64
	Pods           []cadvisorPod
}

var cadvisorTmpl = template.Must(template.ParseFiles(filepath.Join(k8sData, "cadvisor.txt.tmpl")))

// cadvisorText renders the kubelet's /metrics/cadvisor page after scrape k.
// The pod's cgroup row adds up its containers and the pause container, and
// is throttled like its most throttled container: summed in, it would
// count the pod twice.
func cadvisorText(t testing.TB, pods []podSpec, k int) []byte {
	page := cadvisorPage{Scrape: k, TS: time.Now().UnixMilli(), NodeCPUSeconds: 1e5 + 1.7*15*float64(k)}
	for _, p := range pods {
		cp := cadvisorPod{Namespace: shopNamespace, Name: p.name, UID: strings.ReplaceAll(p.uid, "-", "_"), SandboxID: p.sandbox,
			Periods: cfsPeriods * float64(k), PauseCPUSeconds: 0.0001 * float64(k), PauseWorkingSet: 1 * mib}
		cp.CPUSeconds = cp.PauseCPUSeconds
		cp.WorkingSet = cp.PauseWorkingSet
		for _, c := range p.containers {
			cc := cadvisorContainer{Name: c.name, ID: c.id, Image: c.image,
				Periods:    cfsPeriods * float64(k),
				Throttled:  cumulative(c.throttled, k),
				CPUSeconds: scrapeEvery.Seconds() * cumulative(c.cpu, k),
				WorkingSet: float64(c.workingSet)}
			cp.CPUSeconds += cc.CPUSeconds
			cp.WorkingSet += cc.WorkingSet
			cp.Throttled = max(cp.Throttled, cc.Throttled)
			cp.Containers = append(cp.Containers, cc)
		}
		page.Pods = append(page.Pods, cp)
	}
	var b bytes.Buffer
	require.NoError(t, cadvisorTmpl.Execute(&b, page))
	return b.Bytes()
}

// deployedCadvisorScrape is the agent's cAdvisor scrape as
// deploy/configs/agent.yaml configures it (https, the bearer token, the
// relabelling that keeps the containers' CFS and OOM rows), aimed at
// target with the token in tokenFile, every 40ms.
func deployedCadvisorScrape(t *testing.T, target, tokenFile string) map[string]any {
	t.Helper()
	cm, err := confmaptest.LoadConf(agentDeployConfig)
	require.NoError(t, err)
	scrapes, ok := cm.Get("receivers::prometheus/cadvisor::config::scrape_configs").([]any)
	require.True(t, ok && len(scrapes) == 1, "%s: receivers::prometheus/cadvisor has one scrape config", agentDeployConfig)
	sc := scrapes[0].(map[string]any)
	require.Equal(t, "${env:KUBELET_TOKEN_FILE}", sc["authorization"].(map[string]any)["credentials_file"])
	sc["authorization"] = map[string]any{"credentials_file": tokenFile}
	sc["static_configs"] = []any{map[string]any{"targets": []any{target}}}
	sc["scrape_interval"], sc["scrape_timeout"] = "40ms", "40ms"
	return sc
}

// scrapeCadvisor runs the contrib prometheus receiver against a fake
// kubelet serving page(k) on its k-th request to /metrics/cadvisor and
// returns the first n batches the receiver emitted, batch k from page k.
// deployed scrapes as the agent does (deployedCadvisorScrape), over TLS,
// and the kubelet refuses a request without the agent's token; otherwise
// every metric of the page is kept.
func scrapeCadvisor(t *testing.T, n int, deployed bool, page func(k int) []byte) []pmetric.Metrics {
	t.Helper()
	const token = "agent-service-account-token"
	var served, refused atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics/cadvisor" {
			http.NotFound(w, r)
			return
		}
		if deployed && r.Header.Get("Authorization") != "Bearer "+token {
			refused.Add(1)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		k := int(served.Add(1) - 1)
		if k >= n {
			k = n - 1
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(page(k))
	})
	var srv *httptest.Server
	scrape := map[string]any{
		"job_name":        "kubelet-cadvisor",
		"metrics_path":    "/metrics/cadvisor",
		"scrape_interval": "40ms",
		"scrape_timeout":  "40ms",
	}
	if deployed {
		srv = httptest.NewTLSServer(handler)
		tokenFile := filepath.Join(t.TempDir(), "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
		scrape = deployedCadvisorScrape(t, strings.TrimPrefix(srv.URL, "https://"), tokenFile)
	} else {
		srv = httptest.NewServer(handler)
		scrape["static_configs"] = []any{map[string]any{"targets": []any{strings.TrimPrefix(srv.URL, "http://")}}}
	}
	defer srv.Close()

	f := prometheusreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*prometheusreceiver.Config)
	conf := confmap.NewFromStringMap(map[string]any{"config": map[string]any{"scrape_configs": []any{scrape}}})
	require.NoError(t, conf.Unmarshal(cfg))
	sink := new(consumertest.MetricsSink)
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= n }, time.Minute, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
	require.Zero(t, refused.Load(), "the kubelet refused scrapes without the token")
	// Batch k came from page k: the receiver scrapes one page at a time.
	require.LessOrEqual(t, int64(n), served.Load())
	return sink.AllMetrics()[:n]
}

// deployedScrape caches the shop scenario's pages as the agents' scrape
// returns them: the receiver takes a few seconds to start scraping (its
// discovery hands over targets every 5 s), and two tests replay them.
var deployedScrape struct {
	once    sync.Once
	batches []pmetric.Metrics
}

// shopCadvisor is the scenario's scenarioTicks cAdvisor pages, scraped as
// the agents scrape them.
func shopCadvisor(t *testing.T) []pmetric.Metrics {
	t.Helper()
	deployedScrape.once.Do(func() {
		pods := shopPods()
		deployedScrape.batches = scrapeCadvisor(t, scenarioTicks, true, func(k int) []byte { return cadvisorText(t, pods, k) })
	})
	require.Len(t, deployedScrape.batches, scenarioTicks, "the scrape failed in an earlier test")
	return deployedScrape.batches
}

// metricNames are the names of the batches' metrics with their types.
func metricNames(batches []pmetric.Metrics) map[string]pmetric.MetricType {
	names := map[string]pmetric.MetricType{}
	for _, md := range batches {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				for k := 0; k < sms.At(j).Metrics().Len(); k++ {
					m := sms.At(j).Metrics().At(k)
					names[m.Name()] = m.Type()
				}
			}
		}
	}
	return names
}

// ---- helpers ------------------------------------------------------------

func features(t *testing.T, snap *entity.Snapshot, id string) map[string]float64 {
	t.Helper()
	e, ok := snap.Entity(id)
	require.True(t, ok, "no entity %s", id)
	return e.Features
}

func assertFeatures(t *testing.T, got map[string]float64, want map[string]float64, absent ...string) {
	t.Helper()
	for f, v := range want {
		if assert.Contains(t, got, f) {
			assert.InDelta(t, v, got[f], 1e-9*max(1, v), f)
		}
	}
	for _, f := range absent {
		assert.NotContains(t, got, f)
	}
}

func podID(name string) string { return entity.ID(entity.Pod, shopNamespace, name) }

// ---- tests ----------------------------------------------------------------

// TestCAdvisorThroughPrometheusReceiver: the kubelet's cAdvisor page,
// scraped by the prometheus receiver, gives each pod its throttling ratio,
// CPU usage and working set from its containers' rows alone: the pod's
// cgroup row and the pause container's (container="") are not added in,
// and the node's rows (no pod label) make no pod. Each pod joins the
// service whose spans carry it.
func TestCAdvisorThroughPrometheusReceiver(t *testing.T) {
	pods := shopPods()
	const n = 30
	batches := scrapeCadvisor(t, n, false, func(k int) []byte { return cadvisorText(t, pods, k) })

	// The receiver keeps cAdvisor's names; counters are cumulative sums.
	names := metricNames(batches)
	for _, name := range []string{"container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total", "container_cpu_usage_seconds_total"} {
		assert.Equal(t, pmetric.MetricTypeSum, names[name], name)
	}
	assert.Equal(t, pmetric.MetricTypeGauge, names["container_memory_working_set_bytes"])

	h := newHarness(t, "cadvisor", testConfig(), nopSettings())
	ctx := context.Background()
	var at time.Time
	for k, md := range batches {
		at = t0.Add(time.Duration(k) * scrapeEvery)
		h.clock.t = at
		require.NoError(t, h.traces.ConsumeTraces(ctx, podSpans(pods, k, at)))
		require.NoError(t, h.metrics.ConsumeMetrics(ctx, md))
	}
	snap, err := h.p.Snapshot(ctx, at)
	require.NoError(t, err)
	nPods := 0
	for _, e := range snap.Entities {
		if e.Type == entity.Pod {
			nPods++
		}
	}
	assert.Equal(t, len(pods), nPods, "a pod per pod label; the node's rows make none")

	// Scrapes 25-29 are all throttled: 90 of the app's 150 periods, none of
	// envoy's 150, so 90 / 300 (with the pod's cgroup row summed in it
	// would read 180 / 450).
	checkout := features(t, snap, podID("checkout-6d8f7-x2k4p"))
	assertFeatures(t, checkout, map[string]float64{
		"cpu.throttling_ratio": 90.0 / 300,
		"cpu.usage_cores":      0.4 + 0.02,
		"memory.usage_bytes":   250 * mib,
	})
	assertFeatures(t, features(t, snap, podID("catalog-5c9b8-a1b2c")), map[string]float64{"cpu.throttling_ratio": 0, "cpu.usage_cores": 0.3, "memory.usage_bytes": 300 * mib})
	svc := features(t, snap, entity.ID(entity.Service, "", "checkout"))
	assertFeatures(t, svc, map[string]float64{"cpu.throttling_ratio": 0.3, "replicas": 1})
	assertFeatures(t, features(t, snap, entity.ID(entity.Service, "", "catalog")), map[string]float64{"cpu.throttling_ratio": 0, "replicas": 2, "cpu.usage_cores": 0.6})
}

// assertDeployedScrape checks what the agent's scrape keeps of the page:
// the CFS counters, of the containers' rows only.
func assertDeployedScrape(t *testing.T, batches []pmetric.Metrics) {
	t.Helper()
	names := metricNames(batches)
	assert.Contains(t, names, "container_cpu_cfs_periods_total")
	assert.Contains(t, names, "container_cpu_cfs_throttled_periods_total")
	assert.NotContains(t, names, "container_cpu_usage_seconds_total", "dropped by the agent's relabelling")
	assert.NotContains(t, names, "container_memory_working_set_bytes", "dropped by the agent's relabelling")
	for _, md := range batches {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				for k := 0; k < sms.At(j).Metrics().Len(); k++ {
					m := sms.At(j).Metrics().At(k)
					if !strings.HasPrefix(m.Name(), "container_") {
						continue
					}
					dps := m.Sum().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						c, _ := dps.At(d).Attributes().Get("container")
						assert.NotContains(t, []string{"", "POD"}, c.AsString(), "%s row of a pod's cgroup or pause container", m.Name())
					}
				}
			}
		}
	}
}

// TestK8sClusterFixtureOntoPod feeds the k8s_cluster receiver's own fixture
// of a running container: its requests and limits become the pod's, a
// second container of the pod adds to them, and a restart between two
// reports counts once.
func TestK8sClusterFixtureOntoPod(t *testing.T) {
	md, err := golden.ReadMetrics(filepath.Join(k8sData, "k8scluster_container_running.yaml"))
	require.NoError(t, err)
	h := newHarness(t, "k8scluster", testConfig(), nopSettings())
	ctx := context.Background()
	setRestarts := func(md pmetric.Metrics, v int64) {
		rm := md.ResourceMetrics().At(0)
		ms := rm.ScopeMetrics().At(0).Metrics()
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Name() == "k8s.container.restarts" {
				ms.At(i).Gauge().DataPoints().At(0).SetIntValue(v)
			}
		}
	}
	// A sidecar: the same metrics on a resource of its own.
	withSidecar := func(v int64) pmetric.Metrics {
		out := pmetric.NewMetrics()
		md.ResourceMetrics().CopyTo(out.ResourceMetrics())
		setRestarts(out, v)
		side := out.ResourceMetrics().AppendEmpty()
		md.ResourceMetrics().At(0).CopyTo(side)
		side.Resource().Attributes().PutStr("k8s.container.name", "sidecar")
		side.Resource().Attributes().PutStr("container.id", "def456")
		return out
	}
	fixtureRestarts := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	var base int64
	for i := 0; i < fixtureRestarts.Len(); i++ {
		if fixtureRestarts.At(i).Name() == "k8s.container.restarts" {
			base = fixtureRestarts.At(i).Gauge().DataPoints().At(0).IntValue()
		}
	}
	for i, restarts := range []int64{base, base, base + 1} {
		h.clock.t = t0.Add(time.Duration(i) * scrapeEvery)
		require.NoError(t, h.metrics.ConsumeMetrics(ctx, withSidecar(restarts)))
	}
	snap, err := h.p.Snapshot(ctx, h.clock.t)
	require.NoError(t, err)
	// The fixture's container: 0.5 / 2 cores, 256 / 512 MiB, 2 restarts
	// before the first report; the sidecar has the same.
	assertFeatures(t, features(t, snap, entity.ID(entity.Pod, "test-namespace", "test-pod")), map[string]float64{
		"cpu.request_cores":    2 * 0.5,
		"cpu.limit_cores":      2 * 2,
		"memory.request_bytes": 2 * 268435456,
		"memory.limit_bytes":   2 * 536870912,
		"restarts":             1,
		// Priced by its requests: 1 core and 0.5 GiB.
		"cost.per_hour": 1*defaultCPUCoreHour + 0.5*defaultMemoryGiBHour,
	}, "cpu.request_utilization", "cpu.throttling_ratio")
}

// kubeletFixture is the pod of the kubeletstats receiver's own fixtures
// that has CPU and memory requests and limits, with the values the
// fixtures give it.
type kubeletFixture struct {
	namespace, name                  string
	cpuUsage, cpuRequest, cpuLimit   float64
	workingSet, memRequest, memLimit float64
}

func readKubeletFixture(t *testing.T, podName string) kubeletFixture {
	t.Helper()
	var podList struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct {
				Containers []struct {
					Resources struct{ Requests, Limits map[string]string }
				}
			}
		}
	}
	type summary struct {
		Pods []struct {
			PodRef struct{ Name, Namespace string }
			CPU    struct {
				Time                 time.Time
				UsageCoreNanoSeconds float64
			}
			Memory struct{ WorkingSetBytes float64 }
		}
	}
	var first, second summary
	for file, v := range map[string]any{"kubeletstats_pods.json": &podList, "kubeletstats_stats-summary.json": &first, "kubeletstats_stats-summary-second-scrape.json": &second} {
		data, err := os.ReadFile(filepath.Join(k8sData, file))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, v))
	}
	quantity := func(s string) float64 {
		scale := 1.0
		switch {
		case strings.HasSuffix(s, "m"):
			s, scale = strings.TrimSuffix(s, "m"), 1e-3
		case strings.HasSuffix(s, "M"):
			s, scale = strings.TrimSuffix(s, "M"), 1e6
		}
		var v float64
		_, err := fmt.Sscanf(s, "%g", &v)
		require.NoError(t, err, s)
		return v * scale
	}
	var f kubeletFixture
	for _, p := range podList.Items {
		if p.Metadata.Name != podName {
			continue
		}
		for _, c := range p.Spec.Containers {
			f.cpuRequest += quantity(c.Resources.Requests["cpu"])
			f.cpuLimit += quantity(c.Resources.Limits["cpu"])
			f.memRequest += quantity(c.Resources.Requests["memory"])
			f.memLimit += quantity(c.Resources.Limits["memory"])
		}
	}
	// kubeletstats v0.164 computes CPU usage from two scrapes' CPU time
	// (its feature gate receiver.kubeletstats.cpuUsageScrapeBased, beta).
	for i, p := range second.Pods {
		if p.PodRef.Name != podName {
			continue
		}
		prev := first.Pods[i]
		require.Equal(t, podName, prev.PodRef.Name)
		f.namespace, f.name = p.PodRef.Namespace, p.PodRef.Name
		f.cpuUsage = (p.CPU.UsageCoreNanoSeconds - prev.CPU.UsageCoreNanoSeconds) / 1e9 / p.CPU.Time.Sub(prev.CPU.Time).Seconds()
		f.workingSet = p.Memory.WorkingSetBytes
	}
	require.NotZero(t, f.cpuLimit, "fixture pod %s", podName)
	require.NotZero(t, f.cpuUsage, "fixture pod %s", podName)
	require.NotZero(t, f.workingSet, "fixture pod %s", podName)
	return f
}

// runKubeletstats runs the contrib kubeletstats receiver, its pod
// utilization metrics enabled, against a fake kubelet serving the
// receiver's own fixtures (its first and second scrape's stats summary),
// and returns the batch of the second scrape.
func runKubeletstats(t *testing.T) pmetric.Metrics {
	t.Helper()
	var summaries atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := "kubeletstats_pods.json"
		switch r.URL.Path {
		case "/pods":
		case "/stats/summary":
			f = "kubeletstats_stats-summary-second-scrape.json"
			if summaries.Add(1) == 1 {
				f = "kubeletstats_stats-summary.json"
			}
		default:
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(k8sData, f))
	}))
	defer srv.Close()
	f := kubeletstatsreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	metrics := map[string]any{}
	for _, m := range []string{"k8s.pod.cpu_limit_utilization", "k8s.pod.cpu_request_utilization", "k8s.pod.memory_limit_utilization", "k8s.pod.memory_request_utilization"} {
		metrics[m] = map[string]any{"enabled": true}
	}
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"auth_type":           "none",
		"endpoint":            srv.URL,
		"collection_interval": "50ms",
		"metric_groups":       []any{"pod", "container"},
		"metrics":             metrics,
	}).Unmarshal(cfg))
	sink := new(consumertest.MetricsSink)
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return len(sink.AllMetrics()) >= 2 }, time.Minute, 10*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
	return sink.AllMetrics()[1]
}

// TestKubeletstatsUtilizationOntoPod: with only kubeletstats (no
// k8s_cluster), a pod's utilizations come from the receiver's ratios. CPU
// is its ratio as reported; memory is Junction's working set over the
// limit the ratio implies, which kubeletstats computes from its memory
// usage, page cache included. Neither becomes a limit or request feature.
// The expected values are read from the fake kubelet's fixtures.
func TestKubeletstatsUtilizationOntoPod(t *testing.T) {
	md := runKubeletstats(t)
	fx := readKubeletFixture(t, "kube-scheduler-minikube")
	h := newHarness(t, "kubeletstats", testConfig(), nopSettings())
	require.NoError(t, h.metrics.ConsumeMetrics(context.Background(), md))
	snap, err := h.p.Snapshot(context.Background(), h.clock.t)
	require.NoError(t, err)
	got := features(t, snap, entity.ID(entity.Pod, fx.namespace, fx.name))
	assertFeatures(t, got, map[string]float64{
		"cpu.usage_cores":            fx.cpuUsage,
		"cpu.limit_utilization":      fx.cpuUsage / fx.cpuLimit,
		"cpu.request_utilization":    fx.cpuUsage / fx.cpuRequest,
		"memory.usage_bytes":         fx.workingSet,
		"memory.limit_utilization":   fx.workingSet / fx.memLimit,
		"memory.request_utilization": fx.workingSet / fx.memRequest,
	}, "cpu.limit_cores", "cpu.request_cores", "memory.limit_bytes", "memory.request_bytes")
}

// metricShape is what a mapping depends on: name, unit, type, value type.
type metricShape struct {
	name, unit string
	typ        pmetric.MetricType
	value      pmetric.NumberDataPointValueType
}

// shapes lists the metrics of md's resources that carry all keys, and the
// resource attribute keys of the first such resource.
func shapes(md pmetric.Metrics, keys ...string) (map[string]metricShape, []string) {
	out := map[string]metricShape{}
	var resKeys []string
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		res := rm.Resource().Attributes()
		ok := true
		for _, k := range keys {
			_, has := res.Get(k)
			ok = ok && has
		}
		if !ok {
			continue
		}
		if resKeys == nil {
			for k := range res.All() {
				resKeys = append(resKeys, k)
			}
			sort.Strings(resKeys)
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			for k := 0; k < sms.At(j).Metrics().Len(); k++ {
				m := sms.At(j).Metrics().At(k)
				s := metricShape{name: m.Name(), unit: m.Unit(), typ: m.Type()}
				if m.Type() == pmetric.MetricTypeGauge && m.Gauge().DataPoints().Len() > 0 {
					s.value = m.Gauge().DataPoints().At(0).ValueType()
				}
				out[m.Name()] = s
			}
		}
	}
	return out, resKeys
}

// TestK8sBuildersMatchReceivers: the scenario's kubeletstats and
// k8s_cluster batches have the names, units, types and resource attributes
// the receivers emit (the real kubeletstats receiver's pod resources, the
// k8s_cluster receiver's container fixture), so the scenario below tests
// what users' receivers send.
func TestK8sBuildersMatchReceivers(t *testing.T) {
	pods := shopPods()
	podOnly := func(md pmetric.Metrics) pmetric.Metrics {
		out := pmetric.NewMetrics()
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if _, ok := rm.Resource().Attributes().Get("k8s.container.name"); ok {
				continue
			}
			if _, ok := rm.Resource().Attributes().Get("k8s.pod.name"); ok {
				rm.CopyTo(out.ResourceMetrics().AppendEmpty())
			}
		}
		return out
	}
	real, realKeys := shapes(podOnly(runKubeletstats(t)), "k8s.pod.name")
	ours, ourKeys := shapes(kubeletstatsPods(pods, 1, t0), "k8s.pod.name")
	assert.Equal(t, realKeys, ourKeys, "kubeletstats pod resource attributes")
	for name, s := range ours {
		assert.Equal(t, real[name], s, "kubeletstats %s", name)
	}
	fixture, err := golden.ReadMetrics(filepath.Join(k8sData, "k8scluster_container_running.yaml"))
	require.NoError(t, err)
	real, realKeys = shapes(fixture, "k8s.container.name")
	ours, ourKeys = shapes(k8sclusterContainers(pods, 1, t0), "k8s.container.name")
	assert.Equal(t, realKeys, ourKeys, "k8s_cluster container resource attributes")
	require.Equal(t, len(real), len(ours))
	for name, s := range ours {
		assert.Equal(t, real[name], s, "k8s_cluster %s", name)
	}
}

// TestThrottledPodRaisesRuleOnItsService runs the rule packs on sixteen
// minutes of the shop scenario in the receivers' own metrics, with and
// without k8s_cluster: checkout's pod is throttled and checkout slows down,
// so CPUThrottlingBehindLatency fires on checkout, blamed on checkout;
// reports uses 5 % of its requests on two pods, so OverProvisioned fires
// on reports; catalog gets neither. The feature values agree in both
// layouts; only the limit, request and restart features need k8s_cluster.
func TestThrottledPodRaisesRuleOnItsService(t *testing.T) {
	pods := shopPods()
	// As deployed agents scrape it: CFS counters of the containers' rows.
	cadvisor := shopCadvisor(t)
	assertDeployedScrape(t, cadvisor)
	checkout, catalog, reports := entity.ID(entity.Service, "", "checkout"), entity.ID(entity.Service, "", "catalog"), entity.ID(entity.Service, "", "reports")
	for _, layout := range []struct {
		name       string
		k8sCluster bool
	}{{"kubeletstats and cAdvisor", false}, {"k8s_cluster, kubeletstats and cAdvisor", true}} {
		t.Run(layout.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Rules.Files = []string{filepath.Join("..", "..", "rules", "packs")}
			h := newHarness(t, "shop", cfg, nopSettings())
			ctx := context.Background()
			firing := map[string]map[string]alert.Alert{} // rule -> entity -> first firing
			var at time.Time
			for k := 0; k < scenarioTicks; k++ {
				at = t0.Add(time.Duration(k) * scrapeEvery)
				h.clock.t = at
				require.NoError(t, h.traces.ConsumeTraces(ctx, podSpans(pods, k, at)))
				require.NoError(t, h.metrics.ConsumeMetrics(ctx, kubeletstatsPods(pods, k, at)))
				if layout.k8sCluster {
					require.NoError(t, h.metrics.ConsumeMetrics(ctx, k8sclusterContainers(pods, k, at)))
				}
				require.NoError(t, h.metrics.ConsumeMetrics(ctx, cadvisor[k]))
				alerts, _, _ := tickAlerts(t, h, at)
				for _, a := range alerts {
					if a.State != alert.StateFiring {
						continue
					}
					if firing[a.Rule] == nil {
						firing[a.Rule] = map[string]alert.Alert{}
					}
					if _, seen := firing[a.Rule][a.Entity.ID]; !seen {
						firing[a.Rule][a.Entity.ID] = a
					}
				}
			}
			thr := firing["CPUThrottlingBehindLatency"]
			require.Contains(t, thr, checkout, "CPUThrottlingBehindLatency fired on %v", thr)
			assert.Equal(t, checkout, thr[checkout].Blame.ID, "checkout throttles itself")
			assert.True(t, thr[checkout].FiredAt.After(t0.Add(throttleOnset*scrapeEvery)), "fired at %v, before the throttling began", thr[checkout].FiredAt)
			assert.NotContains(t, thr, catalog)
			assert.NotContains(t, thr, reports)
			over := firing["OverProvisioned"]
			assert.Contains(t, over, reports, "OverProvisioned fired on %v", over)
			assert.NotContains(t, over, catalog)
			assert.NotContains(t, over, checkout)

			snap, err := h.p.Snapshot(ctx, at)
			require.NoError(t, err)
			pod := features(t, snap, podID("checkout-6d8f7-x2k4p"))
			// Usage 0.42 of 0.6 cores limited, 0.3 requested; working set
			// 250 of 640 MiB limited, 320 requested.
			assertFeatures(t, pod, map[string]float64{
				"cpu.throttling_ratio":       90.0 / 300,
				"cpu.usage_cores":            0.42,
				"cpu.limit_utilization":      0.42 / 0.6,
				"cpu.request_utilization":    0.42 / 0.3,
				"memory.usage_bytes":         250 * mib,
				"memory.limit_utilization":   250.0 / 640,
				"memory.request_utilization": 250.0 / 320,
			})
			svc := features(t, snap, checkout)
			assertFeatures(t, svc, map[string]float64{"cpu.throttling_ratio": 0.3, "cpu.limit_utilization": 0.7, "replicas": 1})
			assertFeatures(t, features(t, snap, reports), map[string]float64{"cpu.request_utilization": 0.1 / 2, "memory.request_utilization": 800.0 / 2048, "replicas": 2})
			assertFeatures(t, features(t, snap, catalog), map[string]float64{"cpu.request_utilization": 0.6, "cpu.throttling_ratio": 0, "replicas": 2})
			limits := []string{"cpu.request_cores", "cpu.limit_cores", "memory.request_bytes", "memory.limit_bytes", "restarts"}
			if !layout.k8sCluster {
				assertFeatures(t, pod, nil, limits...)
				assertFeatures(t, svc, nil, limits...)
				return
			}
			// k8s_cluster's values once, not added to what kubeletstats'
			// ratios imply; the restart at scrape 60 is in the window.
			assertFeatures(t, pod, map[string]float64{"cpu.request_cores": 0.3, "cpu.limit_cores": 0.6, "memory.request_bytes": 320 * mib, "memory.limit_bytes": 640 * mib, "restarts": 1})
			assertFeatures(t, svc, map[string]float64{"cpu.request_cores": 0.3, "cpu.limit_cores": 0.6, "restarts": 1})
		})
	}
}
