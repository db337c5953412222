package querysource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/junction-sre/junction/entity"
)

// DefaultLookback is how far back a query looks for each replica's latest
// value: the correlation processor's default emit interval.
const DefaultLookback = 15 * time.Second

// Config configures a Source.
type Config struct {
	// URL is the base of the Prometheus query API: a single-node
	// VictoriaMetrics (http://vm:8428), a vmselect
	// (http://vmselect:8481/select/0/prometheus) or Prometheus.
	URL string
	// Lookback bounds how old a replica's latest value may be to count:
	// the replicas' emit interval. A replica that stopped reporting an
	// entity stops counting for it after Lookback.
	Lookback time.Duration
	// Client is the HTTP client; http.DefaultClient when nil.
	Client *http.Client
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url: required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", c.URL))
	}
	if c.Lookback < time.Second {
		errs = append(errs, fmt.Errorf("lookback %v: must be at least 1s", c.Lookback))
	}
	return errors.Join(errs...)
}

// Source is an entity.Source over the merged series in a store with
// Prometheus' query API.
type Source struct {
	cfg    Config
	client *http.Client
}

var _ entity.Source = (*Source)(nil)

// New returns a Source; cfg must be valid.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	c := cfg.Client
	if c == nil {
		c = http.DefaultClient
	}
	return &Source{cfg: cfg, client: c}, nil
}

// label is the store's name of an attribute: the Prometheus remote-write
// translation turns every character outside [a-zA-Z0-9_] into '_'.
func label(k string) string { return strings.ReplaceAll(k, ".", "_") }

var (
	lEntityID   = label(entity.AttrEntityID)
	lEntityType = label(entity.AttrEntityType)
	lEntityName = label(entity.AttrEntityName)
	lVirtual    = label(entity.AttrVirtual)
	lEdgeSource = label(entity.AttrEdgeSource)
	lEdgeTarget = label(entity.AttrEdgeTarget)
	lEdgeType   = label(entity.AttrEdgeType)
	valueLabels = strings.Join([]string{lEntityID, lEdgeSource, lEdgeTarget, lEdgeType, AttrFeature, AttrWindow}, ", ")
	infoLabels  = strings.Join([]string{lEntityID, lEntityType, lEntityName, lVirtual, AttrAttributes}, ", ")
)

// Queries returns four of the queries a snapshot at lookback runs: the
// entities, the summed values, the summed weights and the maxima, each
// merging the replicas' latest samples. The fifth is BinsQuery.
func Queries(lookback time.Duration) (info, sums, weights, maxes string) {
	lb := strconv.FormatInt(int64(lookback/time.Second), 10) + "s"
	last := func(m string) string { return "last_over_time(" + label(m) + "[" + lb + "])" }
	return "max by (" + infoLabels + ") (" + last(MetricEntity) + ")",
		"sum by (" + valueLabels + ") (" + last(MetricSum) + ")",
		"sum by (" + valueLabels + ") (" + last(MetricWeight) + ")",
		"max by (" + valueLabels + ") (" + last(MetricMax) + ")"
}

// BinsQuery returns the query of the latency sketch bins: the raw samples
// within lookback of every replica's bin series, unmerged. The source keeps
// each replica's latest tick of an entity's or edge's window and sums
// those: a bin that was nonempty on an earlier tick within lookback and is
// empty now has no sample of the latest tick, and must not count.
func BinsQuery(lookback time.Duration) string {
	return label(MetricLatencyBin) + "[" + strconv.FormatInt(int64(lookback/time.Second), 10) + "s]"
}

// Snapshot builds the merged graph as of at.
func (s *Source) Snapshot(ctx context.Context, at time.Time) (*entity.Snapshot, error) {
	qi, qs, qw, qm := Queries(s.cfg.Lookback)
	info, err := s.query(ctx, qi, at, vector)
	if err != nil {
		return nil, err
	}
	sums, err := s.query(ctx, qs, at, vector)
	if err != nil {
		return nil, err
	}
	weights, err := s.query(ctx, qw, at, vector)
	if err != nil {
		return nil, err
	}
	maxes, err := s.query(ctx, qm, at, vector)
	if err != nil {
		return nil, err
	}
	bins, err := s.query(ctx, BinsQuery(s.cfg.Lookback), at, matrix)
	if err != nil {
		return nil, err
	}
	snap, err := build(at, info, sums, weights, maxes, bins)
	if err != nil {
		return nil, fmt.Errorf("merged snapshot from %s: %w", s.cfg.URL, err)
	}
	return snap, nil
}

// sample is one series of a query's answer: its value, and for a range
// query its latest raw sample and that sample's time.
type sample struct {
	labels map[string]string
	value  float64
	ms     int64 // unix milliseconds of the latest raw sample (range queries)
}

type valueKey struct {
	entity, source, target, edgeType, feature, window string
}

func keyOf(l map[string]string) valueKey {
	return valueKey{l[lEntityID], l[lEdgeSource], l[lEdgeTarget], l[lEdgeType], l[AttrFeature], l[AttrWindow]}
}

// build assembles the snapshot from the query results.
func build(at time.Time, info, sums, weights, maxes, bins []sample) (*entity.Snapshot, error) {
	snap := &entity.Snapshot{Time: at}
	index := map[string]int{}
	for _, smp := range info {
		id := smp.labels[lEntityID]
		if id == "" {
			continue
		}
		var attrs map[string]string
		if a := smp.labels[AttrAttributes]; a != "" && a != "null" {
			if err := json.Unmarshal([]byte(a), &attrs); err != nil {
				return nil, fmt.Errorf("entity %s: label %s: %w", id, AttrAttributes, err)
			}
		}
		if i, ok := index[id]; ok {
			// Replicas that know different attributes: keep them all.
			e := &snap.Entities[i]
			for k, v := range attrs {
				if e.Attributes == nil {
					e.Attributes = map[string]string{}
				}
				e.Attributes[k] = v
			}
			e.Virtual = e.Virtual && smp.labels[lVirtual] == "true"
			continue
		}
		index[id] = len(snap.Entities)
		snap.Entities = append(snap.Entities, entity.Entity{
			Ref:        entity.Ref{Type: entity.Type(smp.labels[lEntityType]), ID: id, Name: smp.labels[lEntityName]},
			Virtual:    smp.labels[lVirtual] == "true",
			Attributes: attrs,
		})
	}
	weight := map[valueKey]float64{}
	for _, smp := range weights {
		weight[keyOf(smp.labels)] = smp.value
	}
	edges := map[string]int{}
	set := func(k valueKey, v float64) {
		var m *map[string]float64
		if k.entity != "" {
			i, ok := index[k.entity]
			if !ok {
				return // values of an entity whose info series is gone
			}
			e := &snap.Entities[i]
			switch k.window {
			case WindowShort:
				m = &e.Features
			case WindowLong:
				m = &e.Features5m
			case WindowBaseline:
				m = &e.Baseline
			case WindowMetric:
				m = &e.Metrics
			default:
				return
			}
		} else {
			if k.source == "" || k.target == "" || k.window != WindowShort {
				return
			}
			ed := entity.Edge{Source: k.source, Target: k.target, Type: entity.EdgeType(k.edgeType)}
			i, ok := edges[ed.Key()]
			if !ok {
				i = len(snap.Edges)
				edges[ed.Key()] = i
				snap.Edges = append(snap.Edges, ed)
			}
			m = &snap.Edges[i].Features
		}
		if *m == nil {
			*m = map[string]float64{}
		}
		(*m)[k.feature] = v
	}
	// Maxima first: a weighted feature that some replica could only report
	// as a maximum (no weight) is overwritten by the weighted mean of the
	// replicas that had a weight.
	for _, smp := range maxes {
		set(keyOf(smp.labels), smp.value)
	}
	for _, smp := range sums {
		k := keyOf(smp.labels)
		v := smp.value
		if w, ok := weight[k]; ok {
			if w <= 0 {
				continue
			}
			v /= w
		}
		set(k, v)
	}
	// Latency quantiles from the replicas' summed sketch bins, over the
	// weighted means of replicas that had no bins.
	if err := quantilesFromBins(bins, set); err != nil {
		return nil, err
	}
	// Ratios as a whole: merged numerator over merged denominator.
	for i := range snap.Entities {
		e := &snap.Entities[i]
		for _, w := range []struct {
			m      map[string]float64
			window string
		}{{e.Features, WindowShort}, {e.Features5m, WindowLong}} {
			if w.m == nil {
				continue
			}
			for _, f := range ratios {
				m := merges[f]
				num, ok := w.m[m.Numerator]
				if !ok {
					continue
				}
				if den, ok := w.m[m.Denominator]; ok && den > 0 {
					w.m[f] = num / den
				} else if den := weight[valueKey{entity: e.ID, feature: f, window: w.window}]; den > 0 {
					w.m[f] = num / den
				}
			}
		}
	}
	snap.Sort()
	return snap, nil
}

// Result types of the query API.
const (
	vector = "vector"
	matrix = "matrix"
)

// query runs one instant query whose answer must be of result type want.
func (s *Source) query(ctx context.Context, q string, at time.Time, want string) ([]sample, error) {
	form := url.Values{}
	form.Set("query", q)
	form.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	// VictoriaMetrics hides samples younger than -search.latencyOffset (30s
	// by default) from queries near the present, which would hide the
	// replicas' latest ticks; last_over_time over the lookback already
	// takes each replica's latest complete tick. Releases that do not know
	// the argument, and Prometheus, ignore it (docs/deploy.md).
	form.Set("latency_offset", "0s")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying %s: %w", s.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return nil, fmt.Errorf("reading the answer of %s: %w", s.cfg.URL, err)
		}
		return nil, fmt.Errorf("query %q at %s: %s: %s", q, s.cfg.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	// Decoded as it arrives: the bins answer runs to a hundred megabytes.
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %q at %s: decoding the answer: %w", q, s.cfg.URL, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q at %s: %s", q, s.cfg.URL, r.Error)
	}
	if r.Data.ResultType != want {
		return nil, fmt.Errorf("query %q at %s: result type %q, want %s", q, s.cfg.URL, r.Data.ResultType, want)
	}
	out := make([]sample, 0, len(r.Data.Result))
	switch want {
	case vector:
		for _, res := range r.Data.Result {
			v, _, err := parsePoint(res.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q at %s: %w", q, s.cfg.URL, err)
			}
			out = append(out, sample{labels: res.Metric, value: v})
		}
	case matrix:
		for _, res := range r.Data.Result {
			if len(res.Values) == 0 {
				continue
			}
			v, ms, err := parsePoint(res.Values[len(res.Values)-1])
			if err != nil {
				return nil, fmt.Errorf("query %q at %s: %w", q, s.cfg.URL, err)
			}
			out = append(out, sample{labels: res.Metric, value: v, ms: ms})
		}
	}
	return out, nil
}

// parsePoint decodes one [time, "value"] pair of an answer.
func parsePoint(p [2]any) (v float64, ms int64, err error) {
	str, _ := p[1].(string)
	if v, err = strconv.ParseFloat(str, 64); err != nil {
		return 0, 0, fmt.Errorf("value %v: %w", p[1], err)
	}
	ts, ok := p[0].(float64)
	if !ok {
		return 0, 0, fmt.Errorf("time %v: not a number", p[0])
	}
	return v, int64(math.Round(ts * 1000)), nil
}

// maxResponse bounds one query's answer (a few hundred thousand series),
// maxErrorBody the text of an error answer.
const (
	maxResponse  = 256 << 20
	maxErrorBody = 64 << 10
)
