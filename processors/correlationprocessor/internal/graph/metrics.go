package graph

import (
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// ConsumeMetrics joins mapped metrics onto their entities as feature inputs
// and keeps the raw value of every metric joined onto an entity. Unmapped
// metrics of a resource that names a known service (or a pod) are kept as
// raw values of that entity.
func (g *Graph) ConsumeMetrics(md pmetric.Metrics, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var key []byte
	raw := map[*entityState]float64{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		inst := instanceKey(nil, res)
		svc := g.serviceFromResource(now, res, false)
		pod := g.podEntity(now, res)
		g.link(svc, pod)
		home := svc
		if home == nil {
			home = pod
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				mp, mapped := g.s.Metrics[m.Name()]
				clear(raw)
				each := func(attrs pcommon.Map, in string, v float64, delta bool) {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						return
					}
					if !mapped {
						if home != nil {
							raw[home] += v
						}
						return
					}
					if len(mp.Exclude) > 0 && excluded(mp.Exclude, attrs) {
						return
					}
					key = seriesKey(append(key[:0], inst...), attrs)
					if mp.Entity == entity.Relayer {
						if rs := g.chainRelayers(now, &mp, attrs, res); rs != nil {
							for _, e := range rs {
								g.addSample(e, in, key, now, v, delta)
								raw[e] += v
							}
							return
						}
					}
					e := g.resolve(now, &mp, attrs, res)
					if e == nil {
						return
					}
					g.addSample(e, in, key, now, v, delta)
					raw[e] += v
				}
				input := func(attrs pcommon.Map, suffix string) string {
					in := mp.Input
					if len(mp.SplitBy) > 0 {
						if v := lookup(mp.SplitBy, attrs); v != "" {
							in += "." + v
						}
					}
					return in + suffix
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps := m.Gauge().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						each(dp.Attributes(), input(dp.Attributes(), ""), number(dp), false)
					}
				case pmetric.MetricTypeSum:
					delta := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps := m.Sum().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						each(dp.Attributes(), input(dp.Attributes(), ""), number(dp), delta)
					}
				case pmetric.MetricTypeHistogram:
					delta := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityDelta
					dps := m.Histogram().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						if !mapped {
							continue
						}
						each(dp.Attributes(), input(dp.Attributes(), ".sum"), dp.Sum(), delta)
						each(dp.Attributes(), input(dp.Attributes(), ".count"), float64(dp.Count()), delta)
					}
				}
				for e, v := range raw {
					g.setRaw(e, m.Name(), v)
				}
			}
		}
	}
}

func number(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// excluded reports whether a data point's attributes match one of the
// mapping's excluded values ("" matches a missing attribute too).
func excluded(ex map[string][]string, attrs pcommon.Map) bool {
	for k, vals := range ex {
		got := ""
		if v, ok := attrs.Get(k); ok {
			got = v.AsString()
		}
		for _, want := range vals {
			if got == want {
				return true
			}
		}
	}
	return false
}

// instanceKeys are the resource attributes that tell the emitters of one
// entity's metrics apart: the cumulative counters of two pods of a service
// are two series, or their alternating values would read as resets.
var instanceKeys = []string{"service.instance.id", "k8s.pod.uid", "k8s.pod.name", "k8s.container.name", "host.name"}

// instanceKey appends the resource's instance attributes to dst.
func instanceKey(dst []byte, res pcommon.Map) []byte {
	for _, k := range instanceKeys {
		if v, ok := res.Get(k); ok {
			dst = append(dst, k...)
			dst = append(dst, '=')
			dst = append(dst, v.AsString()...)
			dst = append(dst, 0)
		}
	}
	return dst
}

// seriesKey appends the data point attributes as a key of the series.
func seriesKey(dst []byte, attrs pcommon.Map) []byte {
	for k, v := range attrs.All() {
		dst = append(dst, k...)
		dst = append(dst, '=')
		if v.Type() == pcommon.ValueTypeStr {
			dst = append(dst, v.Str()...)
		} else {
			dst = append(dst, v.AsString()...)
		}
		dst = append(dst, 0)
	}
	return dst
}

// chainRelayers returns, for a relayer data point that names one chain and
// no destination (Hermes wallet_balance: labels chain, account, denom), the
// known relayer entities of the same relayer whose destination is that
// chain, else whose source is; nil when it names a route or none match.
func (g *Graph) chainRelayers(now time.Time, mp *MetricMapping, attrs, res pcommon.Map) []*entityState {
	id := &g.s.Identity
	if lookupDefault(id.DestinationChain, mp.Attributes, attrs, res) != "" {
		return nil
	}
	chain := lookupDefault(id.SourceChain, mp.Attributes, attrs, res)
	svc := lookupDefault(id.RelayerService, mp.Attributes, attrs, res)
	if chain == "" || svc == "" {
		return nil
	}
	var byDst, bySrc []*entityState
	for _, e := range g.relayers {
		if e.attrs["service.name"] != svc {
			continue
		}
		if e.attrs["xchain.destination.chain"] == chain {
			byDst = append(byDst, e)
		} else if e.attrs["xchain.source.chain"] == chain && e.attrs["xchain.destination.chain"] != "" {
			bySrc = append(bySrc, e)
		}
	}
	if len(byDst) == 0 {
		byDst = bySrc
	}
	for _, e := range byDst {
		if now.After(e.lastSeen) {
			e.lastSeen = now
		}
	}
	return byDst
}

// resolve finds or creates the entity a mapped data point belongs to.
func (g *Graph) resolve(now time.Time, mp *MetricMapping, attrs, res pcommon.Map) *entityState {
	id := &g.s.Identity
	switch mp.Entity {
	case entity.Service:
		name := lookupDefault(id.ServiceName, mp.Attributes, attrs, res)
		if name == "" {
			return nil
		}
		return g.serviceEntity(now, lookupDefault(id.ServiceNamespace, mp.Attributes, attrs, res), name, false)
	case entity.Pod:
		pod := g.podEntity(now, attrs, res)
		if pod != nil && pod.service == "" {
			if svc := g.serviceFromResource(now, res, false); svc != nil {
				g.link(svc, pod)
			}
		}
		return pod
	case entity.Database:
		if server := lookup(mp.ServerFrom, attrs); server != "" {
			return g.databaseByParts(now, false, lookupDefault(id.DBSystem, mp.Attributes, attrs, res), server,
				lookupDefault(id.DBNamespace, mp.Attributes, attrs, res))
		}
		return g.databaseEntity(now, false, mp.Attributes, attrs, res)
	case entity.Proxy:
		return g.proxyEntity(now, lookupDefault(id.ServiceName, mp.Attributes, res, attrs), lookupDefault(id.ProxyRoute, mp.Attributes, attrs, res))
	case entity.Relayer:
		return g.relayerEntity(now, false, lookupDefault(id.RelayerService, mp.Attributes, attrs, res),
			lookupDefault(id.SourceChain, mp.Attributes, attrs, res), lookupDefault(id.DestinationChain, mp.Attributes, attrs, res))
	case entity.Stream:
		return g.streamEntity(now, false, lookupDefault(id.StreamTopic, mp.Attributes, attrs, res), lookupDefault(id.StreamGroup, mp.Attributes, attrs, res))
	}
	return nil
}
