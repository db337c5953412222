package scenarios

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// recorder is a Sink that keeps every batch with the virtual time of its
// step and hashes their protobuf encoding.
type recorder struct {
	now     time.Time
	traces  []at[ptrace.Traces]
	metrics []at[pmetric.Metrics]
	logs    []at[plog.Logs]
	h       hash.Hash
}

type at[T any] struct {
	t time.Time
	v T
}

func newRecorder() *recorder { return &recorder{h: sha256.New()} }

func (r *recorder) clock() Clock {
	return ClockFunc(func(_ context.Context, t time.Time) error { r.now = t; return nil })
}

func (r *recorder) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return err
	}
	r.h.Write(b)
	r.traces = append(r.traces, at[ptrace.Traces]{r.now, td})
	return nil
}

func (r *recorder) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		return err
	}
	r.h.Write(b)
	r.metrics = append(r.metrics, at[pmetric.Metrics]{r.now, md})
	return nil
}

func (r *recorder) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		return err
	}
	r.h.Write(b)
	r.logs = append(r.logs, at[plog.Logs]{r.now, ld})
	return nil
}

func (r *recorder) sum() string { return fmt.Sprintf("%x", r.h.Sum(nil)) }

// shortPlan plays the scenarios with 2m healthy, 3m fault and 1m
// recovery, ignoring their minimum fault lengths: the symptoms are there,
// if not yet as old as the rules wait for.
func shortPlan(t testing.TB, names ...string) *Plan {
	t.Helper()
	p, err := NewPlan(names...)
	if err != nil {
		t.Fatal(err)
	}
	p.Healthy, p.Fault, p.Recover = 2*time.Minute, 3*time.Minute, time.Minute
	noMinFault(p)
	return p
}

func noMinFault(p *Plan) {
	for i, sc := range p.Scenarios {
		c := *sc
		c.MinFault, c.MinRecover = 0, 0
		p.Scenarios[i] = &c
	}
}

func record(t testing.TB, p *Plan) *recorder {
	t.Helper()
	r := newRecorder()
	if _, err := Run(context.Background(), p, r, r.clock()); err != nil {
		t.Fatal(err)
	}
	return r
}

// point is one number data point with its identity.
type point struct {
	t      time.Time
	series string
	v      float64
}

// points returns the number points of metric name whose resource or point
// attributes contain every pair of match.
func (r *recorder) points(name string, match ...string) []point {
	var out []point
	for _, b := range r.metrics {
		rms := b.v.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			res := rms.At(i).Resource().Attributes()
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != name {
						continue
					}
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						continue
					}
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						if !matches(res, dp.Attributes(), match) {
							continue
						}
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						out = append(out, point{t: dp.Timestamp().AsTime(), series: seriesKey(res, dp.Attributes()), v: v})
					}
				}
			}
		}
	}
	return out
}

func matches(res, attrs pcommon.Map, match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		v, ok := attrs.Get(match[i])
		if !ok {
			v, ok = res.Get(match[i])
		}
		if !ok || v.AsString() != match[i+1] {
			return false
		}
	}
	return true
}

func seriesKey(res, attrs pcommon.Map) string {
	var kv []string
	for _, m := range []pcommon.Map{res, attrs} {
		for k, v := range m.All() {
			kv = append(kv, k+"="+v.AsString())
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// meanIn is the mean of the points' values in [from, to) of the plan.
// win is a span of the plan's virtual time.
type win struct{ from, to time.Duration }

func meanIn(p *Plan, pts []point, w win) float64 {
	from, to := w.from, w.to
	var s float64
	n := 0
	for _, pt := range pts {
		if off := pt.t.Sub(p.Start); off > from && off <= to {
			s += pt.v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// increase is how much the cumulative series grew in (from, to], summed
// over series.
func increase(p *Plan, pts []point, w win) float64 {
	from, to := w.from, w.to
	first, last := map[string]float64{}, map[string]float64{}
	for _, pt := range pts {
		off := pt.t.Sub(p.Start)
		if off < from || off > to {
			continue
		}
		if _, ok := first[pt.series]; !ok {
			first[pt.series] = pt.v
		}
		last[pt.series] = pt.v
	}
	var s float64
	for k, v := range last {
		s += v - first[k]
	}
	return s
}

// eachSpan calls f for every span with its resource.
func (r *recorder) eachSpan(f func(t time.Time, res pcommon.Map, sp ptrace.Span)) {
	for _, b := range r.traces {
		rss := b.v.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			res := rss.At(i).Resource().Attributes()
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sps := sss.At(j).Spans()
				for k := 0; k < sps.Len(); k++ {
					f(b.t, res, sps.At(k))
				}
			}
		}
	}
}

// eachLog calls f for every log record with its resource.
func (r *recorder) eachLog(f func(t time.Time, res pcommon.Map, lr plog.LogRecord)) {
	for _, b := range r.logs {
		rls := b.v.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			res := rls.At(i).Resource().Attributes()
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					f(b.t, res, lrs.At(k))
				}
			}
		}
	}
}

func attrStr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}
