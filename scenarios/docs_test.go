package scenarios

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// emittedNames returns every metric name and every resource, span, log and
// data point attribute key a full run emits.
func emittedNames(t *testing.T) (metrics, attrs map[string]bool) {
	r := record(t, shortPlan(t, "all"))
	metrics, attrs = map[string]bool{}, map[string]bool{}
	keys := func(m pcommon.Map) {
		for k := range m.All() {
			attrs[k] = true
		}
	}
	for _, b := range r.metrics {
		rms := b.v.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			keys(rms.At(i).Resource().Attributes())
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					metrics[m.Name()] = true
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						for l := 0; l < m.Gauge().DataPoints().Len(); l++ {
							keys(m.Gauge().DataPoints().At(l).Attributes())
						}
					case pmetric.MetricTypeSum:
						for l := 0; l < m.Sum().DataPoints().Len(); l++ {
							keys(m.Sum().DataPoints().At(l).Attributes())
						}
					case pmetric.MetricTypeHistogram:
						for l := 0; l < m.Histogram().DataPoints().Len(); l++ {
							keys(m.Histogram().DataPoints().At(l).Attributes())
						}
					default:
						t.Fatalf("metric %s has unexpected type %v", m.Name(), m.Type())
					}
				}
			}
		}
	}
	r.eachSpan(func(_ time.Time, res pcommon.Map, sp ptrace.Span) { keys(res); keys(sp.Attributes()) })
	r.eachLog(func(_ time.Time, res pcommon.Map, lr plog.LogRecord) { keys(res); keys(lr.Attributes()) })
	return metrics, attrs
}

// TestEmittedNamesDocumented keeps docs/scenarios.md's signal table, which
// the correlation processor's mappings are checked against, in step with
// the simulator.
func TestEmittedNamesDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/scenarios.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	metrics, attrs := emittedNames(t)
	var missing []string
	for _, set := range []map[string]bool{metrics, attrs} {
		for n := range set {
			if !strings.Contains(doc, "`"+n+"`") {
				missing = append(missing, n)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("emitted but not in docs/scenarios.md: %s", strings.Join(missing, ", "))
	}
	// Every metric the table lists is emitted.
	_, section, ok := strings.Cut(doc, "### Metrics")
	if !ok {
		t.Fatal("docs/scenarios.md has no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	row := regexp.MustCompile("(?m)^\\| ((?:`[^`]+`(?:, )?)+) \\|")
	name := regexp.MustCompile("`([^`]+)`")
	n := 0
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, nm := range name.FindAllStringSubmatch(m[1], -1) {
			n++
			if !metrics[nm[1]] {
				t.Errorf("docs/scenarios.md lists metric %s, which the simulator does not emit", nm[1])
			}
		}
	}
	if n < len(metrics) {
		t.Errorf("the metrics table lists %d metrics, the simulator emits %d", n, len(metrics))
	}
}
