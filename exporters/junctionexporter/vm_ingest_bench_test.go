package junctionexporter

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// benchBatch is one emit of the benchmark graph of internal/store's
// BenchmarkIngest: 1k services with request.rate, error.ratio and
// latency.p99_ms, and 5k edges with four features each (23k samples).
func benchBatch(ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	pts := pcommon.NewTimestampFromTime(ts)
	id := func(i int) string { return entity.ID(entity.Service, "bench", fmt.Sprintf("svc-%04d", i)) }
	for i := 0; i < 1000; i++ {
		rm := md.ResourceMetrics().AppendEmpty()
		at := rm.Resource().Attributes()
		at.PutStr(entity.AttrEntityID, id(i))
		at.PutStr(entity.AttrEntityType, string(entity.Service))
		at.PutStr(entity.AttrEntityName, fmt.Sprintf("svc-%04d", i))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for j, f := range []string{"request.rate", "error.ratio", "latency.p99_ms"} {
			m := ms.AppendEmpty()
			m.SetName(entity.MetricPrefix + f)
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pts)
			dp.SetDoubleValue(float64(i%97 + j + 1))
		}
		for _, f := range []string{"request.rate", "error.ratio", "latency.p99_ms", "latency.share"} {
			m := ms.AppendEmpty()
			m.SetName(entity.EdgeMetricPrefix + f)
			dps := m.SetEmptyGauge().DataPoints()
			for k := 1; k <= 5; k++ {
				dp := dps.AppendEmpty()
				dp.SetTimestamp(pts)
				dp.SetDoubleValue(float64(k))
				dp.Attributes().PutStr(entity.AttrEdgeSource, id(i))
				dp.Attributes().PutStr(entity.AttrEdgeTarget, id((i+k)%1000))
				dp.Attributes().PutStr(entity.AttrEdgeType, string(entity.EdgeHTTP))
			}
		}
	}
	return md
}

// processCPU returns the user+system CPU time of process pid.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime 14, stime 15, in clock ticks (100 per second).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// vmRowsInserted reads VictoriaMetrics' count of remote-written rows.
func vmRowsInserted(base string) (int64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `vm_rows_inserted_total{type="promremotewrite"}`) {
			f := strings.Fields(line)
			return strconv.ParseInt(f[len(f)-1], 10, 64)
		}
	}
	return 0, sc.Err()
}

// BenchmarkVictoriaMetricsRemoteWriteIngest feeds Debian's VictoriaMetrics
// the series of BenchmarkIngest through the prometheusremotewrite exporter
// configured as in examples/remotewrite and reports the samples it ingested
// per CPU second of the VictoriaMetrics process (vm-samples/cpu-s) and of
// both processes (e2e-samples/cpu-s): the baselines BenchmarkIngest's
// samples/cpu-s is compared with in docs/benchmarks.md.
func BenchmarkVictoriaMetricsRemoteWriteIngest(b *testing.B) {
	vm := startVictoriaMetrics(b)
	cfg, _ := remoteWriteExporterConfig(b, vm.base)
	ctx := context.Background()
	f := prometheusremotewriteexporter.NewFactory()
	exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	batches := make([]pmetric.Metrics, b.N)
	for i := range batches {
		batches[i] = benchBatch(start.Add(time.Duration(i) * 15 * time.Second))
	}
	before, _ := vmRowsInserted(vm.base)
	self0, _ := processCPU(os.Getpid())
	cpu0, err := processCPU(vm.pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range batches {
		if err := exp.ConsumeMetrics(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := exp.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	want := before + int64(b.N)*23000
	deadline := time.Now().Add(2 * time.Minute)
	var got int64
	for time.Now().Before(deadline) {
		if got, _ = vmRowsInserted(vm.base); got >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	cpu1, _ := processCPU(vm.pid)
	self1, _ := processCPU(os.Getpid())
	if got < want {
		b.Fatalf("VictoriaMetrics ingested %d rows, want %d", got-before, want-before)
	}
	b.ReportMetric(float64(got-before)/(cpu1-cpu0).Seconds(), "vm-samples/cpu-s")
	// With the collector side (the remote-write exporter's conversion,
	// compression and sending) counted too.
	b.ReportMetric(float64(got-before)/(cpu1-cpu0+self1-self0).Seconds(), "e2e-samples/cpu-s")
}
