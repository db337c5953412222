// Package alertmanager sends Junction alerts to one or more Alertmanagers
// with Prometheus' notifier (github.com/prometheus/prometheus/notifier), the
// code Prometheus and the Thanos ruler send with: one queue per
// Alertmanager (the oldest dropped when full), batches POSTed to
// /api/v2/alerts, every alert sent to every Alertmanager.
//
// The library does not retry a batch that failed: it drops and counts it.
// As in Prometheus' rule manager, what makes a failed send good again is
// this package's resend: every resend interval it sends again each alert
// still firing and each alert resolved within the last resolvedResendFor.
package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"

	"github.com/junction-sre/junction/alert"
)

const (
	// maxBatch is how many alerts go in one POST.
	maxBatch = 64
	// resolvedResendFor is how long a resolved alert keeps being resent,
	// so that a resolution sent while an Alertmanager was down still
	// arrives; Prometheus' rule manager keeps resolved alerts 15 minutes
	// for the same reason.
	resolvedResendFor = 15 * time.Minute
)

// The notifier's own metrics, read from its private registry.
const (
	metricSent    = "prometheus_notifications_sent_total"
	metricDropped = "prometheus_notifications_dropped_total"
	metricQueue   = "prometheus_notifications_queue_length"
	labelAM       = "alertmanager"
)

// Options configure a Notifier; the exporter's config supplies them.
type Options struct {
	// Endpoints are Alertmanagers' base URLs, e.g. http://127.0.0.1:9093
	// (a path is kept as a prefix: http://host/am posts to
	// http://host/am/api/v2/alerts). Every alert is sent to each.
	Endpoints []string
	// ResendInterval is how often firing (and recently resolved) alerts
	// are sent again, so Alertmanager does not resolve them on its own
	// and a send that failed is made good.
	ResendInterval time.Duration
	// Timeout bounds one POST, and Stop.
	Timeout time.Duration
	// QueueSize bounds the alerts waiting for each Alertmanager (beyond
	// it the oldest are dropped) and the alerts remembered for resending.
	QueueSize int
	// GeneratorURL is set on every alert (the junction API address).
	GeneratorURL string
	// Logger receives the notifier's logs; nil discards them.
	Logger *slog.Logger
	Now    func() time.Time
	// Do sends one request; nil sends it with an HTTP client built from
	// Prometheus' default Alertmanager client config. Tests inject an
	// in-memory Alertmanager.
	Do func(*http.Request) (*http.Response, error)
}

// EndpointStats counts what was done for one Alertmanager.
type EndpointStats struct {
	Endpoint string // as configured
	Sent     int64  // alerts Alertmanager accepted
	Failures int64  // failed POSTs (connection errors and non-2xx answers)
	Dropped  int64  // alerts dropped: queue full, or in a batch that failed
	Queue    int    // alerts waiting
}

// Stats counts what the notifier did: totals over all Alertmanagers, each
// Alertmanager, and the alerts not remembered for resending.
type Stats struct {
	Sent, Failures, Dropped int64
	Queue                   int
	// NotResent counts alerts that were sent once but not remembered for
	// resending because QueueSize alerts already were.
	NotResent int64
	Endpoints []EndpointStats
}

// Notifier sends alerts through a Prometheus notifier.Manager and resends
// the ones that must be sent again.
type Notifier struct {
	opts Options
	mgr  *notifier.Manager
	reg  *prometheus.Registry
	// groups is the static "discovery" of opts.Endpoints, one target
	// group per Alertmanager config; byPostURL maps the URL the library
	// posts to (its metrics' alertmanager label) to an index in Endpoints.
	groups    map[string][]*targetgroup.Group
	byPostURL map[string]int
	failures  []atomic.Int64

	// sendCtx ends in-flight POSTs when Stop's time is up; inflight
	// counts them (guarded by inflightMu, signalled on idle).
	sendCtx    context.Context
	cancelSend context.CancelFunc
	inflightMu sync.Mutex
	inflight   int
	idle       *sync.Cond

	mu       sync.Mutex
	firing   map[string]alert.Alert
	resolved map[string]alert.Alert
	stopped  bool
	final    Stats // Stats at Stop (the library forgets its counters then)

	notResent atomic.Int64

	startOnce, stopOnce sync.Once
	done                chan struct{} // closed by Stop: ends the resend loop
	runDone             chan struct{} // closed when the manager's Run returns
	wg                  sync.WaitGroup
}

// New checks the endpoints and builds the notifier; Start starts sending.
func New(opts Options) (*Notifier, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("no Alertmanager endpoint")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = promslog.NewNopLogger()
	}
	n := &Notifier{
		opts: opts, reg: prometheus.NewRegistry(),
		groups: make(map[string][]*targetgroup.Group), byPostURL: make(map[string]int),
		failures: make([]atomic.Int64, len(opts.Endpoints)),
		firing:   make(map[string]alert.Alert), resolved: make(map[string]alert.Alert),
		done: make(chan struct{}), runDone: make(chan struct{}),
	}
	n.sendCtx, n.cancelSend = context.WithCancel(context.Background())
	n.idle = sync.NewCond(&n.inflightMu)

	// One Alertmanager config per endpoint, as a Prometheus alerting
	// section with one static_configs entry each would give: the config
	// carries the scheme, path prefix and timeout, the target group the
	// address. The manager keys configs "config-<index>".
	var cfg config.Config
	for i, ep := range opts.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager endpoint %q must be an http:// or https:// URL", ep)
		}
		amc := config.DefaultAlertmanagerConfig
		amc.HTTPClientConfig = config_util.DefaultHTTPClientConfig
		amc.Scheme, amc.PathPrefix, amc.Timeout = u.Scheme, u.Path, model.Duration(opts.Timeout)
		cfg.AlertingConfig.AlertmanagerConfigs = append(cfg.AlertingConfig.AlertmanagerConfigs, &amc)
		n.groups[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Source:  ep,
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
		}}
		post := url.URL{Scheme: u.Scheme, Host: u.Host, Path: path.Join("/", u.Path, "/api/v2/alerts")}
		n.byPostURL[post.String()] = i
	}
	n.mgr = notifier.NewManager(&notifier.Options{
		QueueCapacity: opts.QueueSize,
		// Stop drains the queues, bounded by Timeout through sendCtx.
		DrainOnShutdown: true,
		MaxBatchSize:    maxBatch,
		Registerer:      n.reg,
		Do:              n.do,
	}, model.UTF8Validation, opts.Logger)
	if err := n.mgr.ApplyConfig(&cfg); err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	return n, nil
}

// do sends one POST for the library: it ends the request when Stop's time
// is up and counts failed requests per Alertmanager (the library counts
// alerts, not requests).
func (n *Notifier) do(ctx context.Context, client *http.Client, req *http.Request) (*http.Response, error) {
	n.inflightMu.Lock()
	n.inflight++
	n.inflightMu.Unlock()
	defer func() {
		n.inflightMu.Lock()
		n.inflight--
		n.idle.Broadcast()
		n.inflightMu.Unlock()
	}()
	// ctx is the library's per-POST timeout; it is cancelled once the
	// response has been read, which also releases the AfterFunc.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.sendCtx, cancel)
	context.AfterFunc(ctx, func() { stop() })
	req = req.WithContext(ctx)
	var resp *http.Response
	var err error
	if n.opts.Do != nil {
		resp, err = n.opts.Do(req)
	} else {
		resp, err = client.Do(req)
	}
	if err != nil || resp.StatusCode/100 != 2 {
		if i, ok := n.byPostURL[req.URL.String()]; ok {
			n.failures[i].Add(1)
		}
	}
	return resp, err
}

// Start runs the manager, hands it the Alertmanagers and starts the
// resend loop. When it returns, alerts given to Notify are queued for
// every Alertmanager.
func (n *Notifier) Start() {
	n.startOnce.Do(func() {
		tsets := make(chan map[string][]*targetgroup.Group)
		go func() {
			defer close(n.runDone)
			n.mgr.Run(tsets)
		}()
		// The manager's update loop takes one update at a time and
		// applies it before taking the next, so the second (identical,
		// no-op) update is taken only once the first has started a send
		// loop per Alertmanager.
		tsets <- n.groups
		tsets <- n.groups
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.resendLoop()
		}()
	})
}

func (n *Notifier) resendLoop() {
	t := time.NewTicker(n.opts.ResendInterval)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
			n.Resend()
		}
	}
}

// Notify sends firing and resolved alerts (pending ones are not sent, as
// in Prometheus) and remembers them for resending.
func (n *Notifier) Notify(alerts []alert.Alert) {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	now := n.opts.Now()
	out := make([]*notifier.Alert, 0, len(alerts))
	seen := make(map[string]int, len(alerts))
	for _, a := range alerts {
		switch a.State {
		case alert.StateFiring:
			delete(n.resolved, a.ID)
			n.remember(n.firing, a, now)
		case alert.StateResolved:
			delete(n.firing, a.ID)
			n.remember(n.resolved, a, now)
		default:
			continue
		}
		// A later record of the same instance replaces the earlier one:
		// Alertmanager only needs the newest.
		if i, ok := seen[a.ID]; ok {
			out[i] = n.convert(a, now)
			continue
		}
		seen[a.ID] = len(out)
		out = append(out, n.convert(a, now))
	}
	n.send(out)
	n.mu.Unlock()
}

// send hands alerts to the manager. The caller holds n.mu, so alerts are
// queued in the order they were notified, and none after Stop began.
// Send only appends to the queues (the oldest dropped when full).
func (n *Notifier) send(out []*notifier.Alert) {
	if len(out) > 0 {
		n.mgr.Send(out...)
	}
}

// remember keeps a in table unless QueueSize alerts are kept already
// (resolved ones past resolvedResendFor are forgotten first). The caller
// holds n.mu.
func (n *Notifier) remember(table map[string]alert.Alert, a alert.Alert, now time.Time) {
	if _, ok := table[a.ID]; !ok && len(n.firing)+len(n.resolved) >= n.opts.QueueSize {
		n.pruneResolved(now)
		if len(n.firing)+len(n.resolved) >= n.opts.QueueSize {
			n.notResent.Add(1)
			return
		}
	}
	table[a.ID] = a
}

func (n *Notifier) pruneResolved(now time.Time) {
	for id, a := range n.resolved {
		if now.Sub(resolvedAt(a)) > resolvedResendFor {
			delete(n.resolved, id)
		}
	}
}

// Resend sends every firing alert again, and every alert resolved within
// resolvedResendFor.
func (n *Notifier) Resend() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	now := n.opts.Now()
	n.pruneResolved(now)
	out := make([]*notifier.Alert, 0, len(n.firing)+len(n.resolved))
	for _, a := range n.firing {
		out = append(out, n.convert(a, now))
	}
	for _, a := range n.resolved {
		out = append(out, n.convert(a, now))
	}
	n.send(out)
	n.mu.Unlock()
}

// Stop stops resending and sending; alerts still queued are sent until
// Timeout (or ctx) ends, then dropped and counted. It is idempotent and
// returns within about Timeout even when an Alertmanager does not answer.
func (n *Notifier) Stop(ctx context.Context) {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.stopped = true
		n.mu.Unlock()
		close(n.done)
		n.wg.Wait()
		// Stats before the manager stops: its send loops delete their
		// counters when they end.
		final := n.Stats()
		timer := time.AfterFunc(n.opts.Timeout, n.cancelSend)
		defer timer.Stop()
		stopCtx := context.AfterFunc(ctx, n.cancelSend)
		defer stopCtx()
		n.startOnce.Do(func() { close(n.runDone) }) // never started
		n.mgr.Stop()
		<-n.runDone
		// The send loops have ended but a POST each may still be
		// answered: wait for it until the time is up.
		wake := context.AfterFunc(n.sendCtx, func() {
			n.inflightMu.Lock()
			n.idle.Broadcast()
			n.inflightMu.Unlock()
		})
		n.inflightMu.Lock()
		for n.inflight > 0 && n.sendCtx.Err() == nil {
			n.idle.Wait()
		}
		n.inflightMu.Unlock()
		wake()
		n.cancelSend()
		n.mu.Lock()
		n.final = final
		n.mu.Unlock()
	})
}

// Stats returns the counters: read from the notifier's registry while it
// runs, those of the moment it stopped afterwards.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	if n.stopped && n.final.Endpoints != nil {
		st := n.final
		n.mu.Unlock()
		return st
	}
	n.mu.Unlock()
	st := Stats{NotResent: n.notResent.Load(), Endpoints: make([]EndpointStats, len(n.opts.Endpoints))}
	for i, ep := range n.opts.Endpoints {
		st.Endpoints[i] = EndpointStats{Endpoint: ep, Failures: n.failures[i].Load()}
	}
	families, err := n.reg.Gather()
	if err != nil {
		n.opts.Logger.Warn("reading the notifier's metrics failed", "err", err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			i, ok := -1, false
			for _, l := range m.GetLabel() {
				if l.GetName() == labelAM {
					i, ok = n.byPostURL[l.GetValue()]
				}
			}
			if !ok {
				continue
			}
			e := &st.Endpoints[i]
			switch f.GetName() {
			case metricSent:
				e.Sent = int64(m.GetCounter().GetValue())
			case metricDropped:
				e.Dropped = int64(m.GetCounter().GetValue())
			case metricQueue:
				e.Queue = int(m.GetGauge().GetValue())
			}
		}
	}
	for _, e := range st.Endpoints {
		st.Sent += e.Sent
		st.Failures += e.Failures
		st.Dropped += e.Dropped
		st.Queue += e.Queue
	}
	return st
}

// convert maps a Junction alert onto the notifier's alert. A firing alert
// ends 4 resend intervals after it is sent unless resent (as Prometheus
// does); a resolved one ends when it resolved.
func (n *Notifier) convert(a alert.Alert, now time.Time) *notifier.Alert {
	lm := make(map[string]string, len(a.Labels)+8)
	for k, v := range a.Labels {
		lm[labelName(k)] = v
	}
	lm["alertname"] = a.Rule
	put := func(k, v string) {
		if v != "" {
			lm[k] = v
		}
	}
	put("severity", a.Severity)
	put("kind", a.Kind)
	put("group", a.Group)
	put("entity", a.Entity.ID)
	put("entity_type", string(a.Entity.Type))
	put("entity_name", a.Entity.Name)
	put("blame", a.Blame.ID)
	out := &notifier.Alert{Labels: labels.FromMap(lm), Annotations: labels.FromMap(a.Annotations), GeneratorURL: n.opts.GeneratorURL}
	out.StartsAt = a.FiredAt
	if out.StartsAt.IsZero() {
		out.StartsAt = a.ActiveAt
	}
	if a.State == alert.StateResolved {
		out.EndsAt = resolvedAt(a)
		// Alertmanager treats an end time still in the future as an
		// update of a firing alert and keeps the later end it knows:
		// a resolution must not be later than now.
		if out.EndsAt.After(now) {
			out.EndsAt = now
		}
		if out.StartsAt.After(out.EndsAt) {
			out.StartsAt = out.EndsAt
		}
	} else {
		base := now
		if out.StartsAt.After(base) {
			base = out.StartsAt
		}
		out.EndsAt = base.Add(4 * n.opts.ResendInterval)
	}
	return out
}

func resolvedAt(a alert.Alert) time.Time {
	if !a.ResolvedAt.IsZero() {
		return a.ResolvedAt
	}
	return a.EvaluatedAt
}

// labelName makes a Prometheus label name: characters other than letters,
// digits and _ become _.
func labelName(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			b[i] = '_'
		}
	}
	return string(b)
}
