package mergedgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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
	var info, sums, weights, maxes []sample
	for _, q := range []struct {
		q   string
		out *[]sample
	}{{qi, &info}, {qs, &sums}, {qw, &weights}, {qm, &maxes}} {
		if err := s.query(ctx, q.q, at, vector, samples(q.out)); err != nil {
			return nil, err
		}
	}
	var bins binSamples
	if err := s.query(ctx, BinsQuery(s.cfg.Lookback), at, matrix, bins.add); err != nil {
		return nil, err
	}
	snap, err := build(at, info, sums, weights, maxes, bins)
	if err != nil {
		return nil, fmt.Errorf("merged snapshot from %s: %w", s.cfg.URL, err)
	}
	return snap, nil
}

// sample is one series of a vector answer.
type sample struct {
	labels map[string]string
	value  float64
}

type valueKey struct {
	entity, source, target, edgeType, feature, window string
}

func keyOf(l map[string]string) valueKey {
	return valueKey{l[lEntityID], l[lEdgeSource], l[lEdgeTarget], l[lEdgeType], l[AttrFeature], l[AttrWindow]}
}

// build assembles the snapshot from the query results.
func build(at time.Time, info, sums, weights, maxes []sample, bins binSamples) (*entity.Snapshot, error) {
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
	if err := quantilesFromBins(bins.s, set); err != nil {
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

// query runs one instant query whose answer must be of result type want
// and calls each with every series of the answer, as it is decoded: its
// labels (a map each may read until it returns, then reused), its value,
// and for a matrix the time of its latest raw sample.
func (s *Source) query(ctx context.Context, q string, at time.Time, want string, each func(labels map[string]string, v float64, ms int64) error) error {
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
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("querying %s: %w", s.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return fmt.Errorf("reading the answer of %s: %w", s.cfg.URL, err)
		}
		return fmt.Errorf("query %q at %s: %s: %s", q, s.cfg.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	a := answer{want: want, each: each}
	if err := a.decode(json.NewDecoder(io.LimitReader(resp.Body, maxResponse))); err != nil {
		return fmt.Errorf("query %q at %s: %w", q, s.cfg.URL, err)
	}
	return nil
}

// answer decodes a query API answer as it streams in, one series at a
// time: the bins answer runs to a hundred megabytes, of which only the
// keys and counts are kept.
type answer struct {
	want       string
	each       func(labels map[string]string, v float64, ms int64) error
	status     string
	errText    string
	resultType string
	series     struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
		Values [][2]any          `json:"values"`
	}
}

// errResult marks a series that failed to decode or that each refused.
type errResult struct{ err error }

func (e errResult) Error() string { return e.err.Error() }
func (e errResult) Unwrap() error { return e.err }

func (a *answer) decode(dec *json.Decoder) error {
	err := object(dec, func(key string) error {
		switch key {
		case "status":
			return dec.Decode(&a.status)
		case "error":
			return dec.Decode(&a.errText)
		case "data":
			return object(dec, func(key string) error {
				switch key {
				case "resultType":
					return dec.Decode(&a.resultType)
				case "result":
					if a.resultType != "" && a.resultType != a.want {
						return fmt.Errorf("result type %q, want %s", a.resultType, a.want)
					}
					return array(dec, a.result)
				}
				return skip(dec)
			})
		}
		return skip(dec)
	})
	var res errResult
	switch {
	case errors.As(err, &res):
		return res.err
	case err != nil:
		return fmt.Errorf("decoding the answer: %w", err)
	case a.status != "success":
		return errors.New(a.errText)
	case a.resultType != a.want:
		return fmt.Errorf("result type %q, want %s", a.resultType, a.want)
	}
	return nil
}

// result decodes one series of the result and hands it to each.
func (a *answer) result(dec *json.Decoder) error {
	r := &a.series
	clear(r.Metric)
	r.Value, r.Values = [2]any{}, r.Values[:0]
	if err := dec.Decode(r); err != nil {
		return err
	}
	p := r.Value
	if a.want == matrix {
		if len(r.Values) == 0 {
			return nil
		}
		p = r.Values[len(r.Values)-1]
	}
	v, ms, err := parsePoint(p)
	if err == nil {
		err = a.each(r.Metric, v, ms)
	}
	if err != nil {
		return errResult{err}
	}
	return nil
}

// object walks a JSON object, calling field for each key with the decoder
// before its value; field must consume the value.
func object(dec *json.Decoder, field func(key string) error) error {
	if err := delim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if err := field(key); err != nil {
			return err
		}
	}
	return delim(dec, '}')
}

// array walks a JSON array, calling elem for each element.
func array(dec *json.Decoder, elem func(*json.Decoder) error) error {
	if err := delim(dec, '['); err != nil {
		return err
	}
	for dec.More() {
		if err := elem(dec); err != nil {
			return err
		}
	}
	return delim(dec, ']')
}

func delim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %v where %v was expected", t, want)
	}
	return nil
}

func skip(dec *json.Decoder) error {
	var v json.RawMessage
	return dec.Decode(&v)
}

// samples returns an each that appends every series to out, labels copied.
func samples(out *[]sample) func(map[string]string, float64, int64) error {
	return func(l map[string]string, v float64, _ int64) error {
		*out = append(*out, sample{labels: maps.Clone(l), value: v})
		return nil
	}
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
