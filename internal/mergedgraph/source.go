package mergedgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

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
	// EvidenceFailed, when set, is called with the reason when a
	// snapshot's evidence could not be read, or some of its items not
	// decoded: the snapshot is returned all the same, with
	// EvidenceUnavailable set when its evidence query failed.
	EvidenceFailed func(error)
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
// Prometheus' query API, queried with client_golang's query API client
// (api, api/prometheus/v1), which also decodes the answers.
type Source struct {
	cfg Config
	api v1.API
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
	client, err := api.NewClient(api.Config{Address: cfg.URL, Client: withBoundedBody(c)})
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", cfg.URL, err)
	}
	return &Source{cfg: cfg, api: v1.NewAPI(latencyOffset{client})}, nil
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
// merging the replicas' latest samples. The fifth is BinsQuery, the sixth
// EvidenceQuery.
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
	var info, sums, weights, maxes model.Vector
	for _, q := range []struct {
		q   string
		out *model.Vector
	}{{qi, &info}, {qs, &sums}, {qw, &weights}, {qm, &maxes}} {
		v, err := s.vector(ctx, q.q, at)
		if err != nil {
			return nil, err
		}
		*q.out = v
	}
	qb := BinsQuery(s.cfg.Lookback)
	v, err := s.query(ctx, qb, at, model.ValMatrix)
	if err != nil {
		return nil, err
	}
	var bins binSamples
	for _, ss := range v.(model.Matrix) {
		if n := len(ss.Values); n > 0 {
			last := ss.Values[n-1]
			bins.add(ss.Metric, float64(last.Value), int64(last.Timestamp))
		}
	}
	snap, err := build(at, info, sums, weights, maxes, bins)
	if err != nil {
		return nil, fmt.Errorf("merged snapshot from %s: %w", s.cfg.URL, err)
	}
	// Evidence last, and on its own: without it the rules still run on
	// the merged features (rules keep the evidence an alert had).
	qe := EvidenceQuery(s.cfg.Lookback)
	if ev, err := s.query(ctx, qe, at, model.ValMatrix); err != nil {
		snap.EvidenceUnavailable = true
		s.evidenceFailed(fmt.Errorf("evidence: %w", err))
	} else if err := mergeEvidence(snap, ev.(model.Matrix)); err != nil {
		s.evidenceFailed(fmt.Errorf("evidence from %s: %w", s.cfg.URL, err))
	}
	return snap, nil
}

func (s *Source) evidenceFailed(err error) {
	if s.cfg.EvidenceFailed != nil {
		s.cfg.EvidenceFailed(err)
	}
}

type valueKey struct {
	entity, source, target, edgeType, feature, window string
}

// get is the value of label k of m.
func get(m model.Metric, k string) string { return string(m[model.LabelName(k)]) }

func keyOf(l model.Metric) valueKey {
	return valueKey{get(l, lEntityID), get(l, lEdgeSource), get(l, lEdgeTarget), get(l, lEdgeType), get(l, AttrFeature), get(l, AttrWindow)}
}

// build assembles the snapshot from the query results.
func build(at time.Time, info, sums, weights, maxes model.Vector, bins binSamples) (*entity.Snapshot, error) {
	snap := &entity.Snapshot{Time: at}
	index := map[string]int{}
	for _, smp := range info {
		id := get(smp.Metric, lEntityID)
		if id == "" {
			continue
		}
		var attrs map[string]string
		if a := get(smp.Metric, AttrAttributes); a != "" && a != "null" {
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
			e.Virtual = e.Virtual && get(smp.Metric, lVirtual) == "true"
			continue
		}
		index[id] = len(snap.Entities)
		snap.Entities = append(snap.Entities, entity.Entity{
			Ref:        entity.Ref{Type: entity.Type(get(smp.Metric, lEntityType)), ID: id, Name: get(smp.Metric, lEntityName)},
			Virtual:    get(smp.Metric, lVirtual) == "true",
			Attributes: attrs,
		})
	}
	weight := map[valueKey]float64{}
	for _, smp := range weights {
		weight[keyOf(smp.Metric)] = float64(smp.Value)
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
		set(keyOf(smp.Metric), float64(smp.Value))
	}
	for _, smp := range sums {
		k := keyOf(smp.Metric)
		v := float64(smp.Value)
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

// query runs one instant query at the store through client_golang's query
// API client and returns its answer, which must be of result type want.
// Errors name the query and the store and say what the user can do.
func (s *Source) query(ctx context.Context, q string, at time.Time, want model.ValueType) (model.Value, error) {
	v, _, _, err := s.api.Query(ctx, q, at)
	if err != nil {
		return nil, fmt.Errorf("query %q at %s: %w", q, s.cfg.URL, explain(err))
	}
	if v.Type() != want {
		return nil, fmt.Errorf("query %q at %s: result type %q, want %s", q, s.cfg.URL, v.Type(), want)
	}
	return v, nil
}

// vector runs an instant query whose answer is a vector.
func (s *Source) vector(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	v, err := s.query(ctx, q, at, model.ValVector)
	if err != nil {
		return nil, err
	}
	return v.(model.Vector), nil
}

// explain turns an error of the query API client into one a user can act
// on: the store's own error text, and what to check.
func explain(err error) error {
	var apiErr *v1.Error
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("no answer in time: the snapshot's queries take longer than the timeout allows (raise it, or see docs/benchmarks.md \"Scale-out\" for the series a snapshot reads): %w", err)
	case errors.Is(err, errTooLarge):
		return err
	case !errors.As(err, &apiErr):
		return fmt.Errorf("%w (is the endpoint the store's address, and is it up?)", err)
	}
	detail := strings.TrimSpace(apiErr.Detail)
	if len(detail) > maxErrorText {
		detail = detail[:maxErrorText] + "..."
	}
	// An HTTP error whose answer is no query API error: the client says
	// "server error: 503" or "client error: 404", the body is the detail.
	if apiErr.Type == v1.ErrServer || apiErr.Type == v1.ErrClient {
		if i := strings.LastIndex(apiErr.Msg, ": "); i >= 0 {
			if code, err := strconv.Atoi(apiErr.Msg[i+2:]); err == nil && http.StatusText(code) != "" {
				msg := strconv.Itoa(code) + " " + http.StatusText(code)
				if detail != "" {
					msg += ": " + detail
				}
				switch code {
				case http.StatusNotFound, http.StatusMethodNotAllowed:
					return fmt.Errorf("%s (the endpoint must be the base of the Prometheus query API, such as http://vm:8428 or http://vmselect:8481/select/0/prometheus)", msg)
				case http.StatusUnauthorized, http.StatusForbidden:
					return fmt.Errorf("%s (check the store's credentials: headers, auth, TLS)", msg)
				}
				return errors.New(msg)
			}
		}
	}
	msg := apiErr.Msg
	if apiErr.Type != "" {
		msg = string(apiErr.Type) + ": " + msg
	}
	if detail != "" {
		msg += ": " + detail
	}
	if apiErr.Type == v1.ErrBadResponse {
		return fmt.Errorf("decoding the answer: %s (is the endpoint the base of a Prometheus query API?)", msg)
	}
	return errors.New(msg)
}

// latencyOffset adds latency_offset=0s to every request's URL, which the
// query API client keeps in the request: VictoriaMetrics hides samples
// younger than -search.latencyOffset (30s by default) from queries near the
// present, which would hide the replicas' latest ticks; last_over_time over
// the lookback already takes each replica's latest complete tick. Releases
// that do not know the argument, and Prometheus, ignore it
// (docs/deploy.md).
type latencyOffset struct{ api.Client }

func (c latencyOffset) URL(ep string, args map[string]string) *url.URL {
	u := c.Client.URL(ep, args)
	q := u.Query()
	q.Set("latency_offset", "0s")
	u.RawQuery = q.Encode()
	return u
}

// withBoundedBody returns a copy of c (its transport, auth, headers, TLS
// and timeout kept) whose answers fail once they exceed maxResponse bytes:
// the query API client reads an answer whole before decoding it.
func withBoundedBody(c *http.Client) *http.Client {
	bc := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	bc.Transport = boundedTransport{rt}
	return &bc
}

type boundedTransport struct{ rt http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: maxResponse}
	return resp, nil
}

var errTooLarge = errors.New("the answer is too large")

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the bound from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes, too many series for one snapshot (docs/deploy.md \"Rules on merged state\")", errTooLarge, maxResponse)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// maxResponse bounds one query's answer (a few hundred thousand series);
// maxErrorText the store's text quoted in an error.
var maxResponse int64 = 256 << 20

const maxErrorText = 4 << 10
