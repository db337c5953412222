package durableremotewriteexporter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/exporters/durableremotewriteexporter"
)

// bigTick is a tick of n gauge points shaped like Junction's derived
// series: one resource per entity of 10 points, entity labels on it.
func bigTick(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	at := pcommon.NewTimestampFromTime(t0)
	for e := 0; e < n/10; e++ {
		rm := md.ResourceMetrics().AppendEmpty()
		attrs := rm.Resource().Attributes()
		attrs.PutStr("junction.entity.id", fmt.Sprintf("service:shop/svc-%05d", e))
		attrs.PutStr("junction.entity.type", "service")
		attrs.PutStr("junction.entity.name", fmt.Sprintf("svc-%05d", e))
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for f := 0; f < 10; f++ {
			m := ms.AppendEmpty()
			m.SetName(fmt.Sprintf("junction.feature_%d", f))
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(at)
			dp.SetDoubleValue(float64(e*f) / 7)
			dp.Attributes().PutStr("window", "1m")
		}
	}
	return md
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkQueue sends ticks of 20 000 points through the exporter to a
// remote-write endpoint that takes every request, with the queue in memory
// and on file_storage, and reports the CPU time per tick of the whole
// process (enqueue, and the queue's consumer translating and sending):
// what the disk queue adds is the difference. The queue holds 4 ticks and
// blocks when full, so every op is a tick sent.
func BenchmarkQueue(b *testing.B) {
	md := bigTick(20000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, queue := range []string{"memory", "disk"} {
		b.Run(queue, func(b *testing.B) {
			var h component.Host = componenttest.NewNopHost()
			if queue == "disk" {
				storage, sh := startStorage(b, b.TempDir())
				defer func() { _ = storage.Shutdown(context.Background()) }()
				h = sh
			}
			exp := startExporterWith(b, srv.URL, h, func(cfg *durableremotewriteexporter.Config) {
				q := cfg.QueueConfig.Get()
				q.QueueSize, q.BlockOnOverflow = 4, true
			})
			b.SetBytes(int64((&pmetric.ProtoMarshaler{}).MetricsSize(md)))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
					b.Fatal(err)
				}
			}
			// The last ticks are sent inside the measurement.
			if err := exp.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/tick")
		})
	}
}
