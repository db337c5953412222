package junctionexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

const victoriaMetricsBinary = "/usr/bin/victoria-metrics"

// remoteWriteExample is the example config users copy.
var remoteWriteExample = filepath.Join("..", "..", "examples", "remotewrite", "config.yaml")

type victoriaMetrics struct {
	base string
	pid  int
}

func startVictoriaMetrics(t testing.TB) victoriaMetrics {
	t.Helper()
	if _, err := os.Stat(victoriaMetricsBinary); err != nil {
		t.Skipf("VictoriaMetrics not installed (%s missing): apt-get install victoria-metrics to run this test", victoriaMetricsBinary)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(victoriaMetricsBinary, "-storageDataPath="+filepath.Join(dir, "data"), "-httpListenAddr="+addr,
		"-retentionPeriod=100y", "-loggerLevel=WARN")
	startProcess(t, cmd, filepath.Join(dir, "victoria-metrics.log"))
	pid := cmd.Process.Pid
	base := "http://" + addr
	waitFor(t, "VictoriaMetrics to be ready", 30*time.Second, func() (bool, error) {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	return victoriaMetrics{base: base, pid: pid}
}

// remoteWriteExporterConfig loads the example's prometheusremotewrite
// exporter config and points it at endpoint.
func remoteWriteExporterConfig(t testing.TB, endpoint string) (component.Config, *prometheusremotewriteexporter.Config) {
	t.Helper()
	cm, err := confmaptest.LoadConf(remoteWriteExample)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub("exporters::prometheusremotewrite/victoriametrics")
	if err != nil {
		t.Fatal(err)
	}
	f := prometheusremotewriteexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("%s: %v", remoteWriteExample, err)
	}
	rw := cfg.(*prometheusremotewriteexporter.Config)
	rw.HTTP.Endpoint = endpoint + "/api/v1/write"
	return cfg, rw
}

func TestRemoteWriteToVictoriaMetrics(t *testing.T) {
	vm := startVictoriaMetrics(t).base
	cfg, _ := remoteWriteExporterConfig(t, vm)
	ctx := context.Background()
	f := prometheusremotewriteexporter.NewFactory()
	exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(entity.AttrEntityID, checkout.ID)
	rm.Resource().Attributes().PutStr(entity.AttrEntityType, string(checkout.Type))
	rm.Resource().Attributes().PutStr(entity.AttrEntityName, checkout.Name)
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName(entity.MetricPrefix + "latency.p99_ms")
	gauge := g.SetEmptyGauge()
	for i, v := range []float64{120, 240} {
		p := gauge.DataPoints().AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i-1) * time.Minute)))
		p.SetDoubleValue(v)
	}
	edgeGauge(md, checkout.ID, orders.ID, "request.rate", 12)
	md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).SetTimestamp(pcommon.NewTimestampFromTime(now))
	if err := exp.ConsumeMetrics(ctx, md); err != nil {
		t.Fatal(err)
	}
	// Shutdown drains the remote-write queue.
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(vm + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}

	type exported struct {
		Metric     map[string]string `json:"metric"`
		Values     []float64         `json:"values"`
		Timestamps []int64           `json:"timestamps"`
	}
	export := func(match string) ([]exported, error) {
		resp, err := http.Get(vm + "/api/v1/export?match[]=" + url.QueryEscape(match))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out []exported
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e exported
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, sc.Err()
	}
	var got []exported
	waitFor(t, "the series in VictoriaMetrics", 30*time.Second, func() (bool, error) {
		var err error
		got, err = export(`junction_latency_p99_ms{junction_entity_id="` + checkout.ID + `"}`)
		if err == nil && (len(got) != 1 || len(got[0].Values) != 2) {
			all, _ := export(`{__name__=~".+"}`)
			err = fmt.Errorf("VictoriaMetrics holds %+v", all)
		}
		return len(got) == 1 && len(got[0].Values) == 2, err
	})
	if m := got[0].Metric; m["junction_entity_type"] != "service" || m["junction_entity_name"] != "checkout" {
		t.Errorf("labels = %v", m)
	}
	if got[0].Values[0] != 120 || got[0].Values[1] != 240 {
		t.Errorf("values = %v", got[0].Values)
	}
	edges, err := export(`junction_edge_request_rate`)
	if err != nil || len(edges) != 1 || edges[0].Metric["junction_edge_target"] != orders.ID || edges[0].Values[0] != 12 {
		t.Errorf("edge series = %+v, %v", edges, err)
	}
}
