// Package alertmanager sends Junction alerts to Alertmanager's v2 API
// (POST /api/v2/alerts) through a bounded queue with retry and backoff.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junction-sre/junction/alert"
)

// maxBatch is how many alerts go in one POST.
const maxBatch = 64

// Options configure a Notifier; the exporter's config supplies them.
type Options struct {
	// Endpoint is Alertmanager's base URL, e.g. http://127.0.0.1:9093.
	Endpoint string
	// ResendInterval is how often firing alerts are sent again, so
	// Alertmanager does not resolve them on its own.
	ResendInterval time.Duration
	// Timeout bounds one POST.
	Timeout time.Duration
	// QueueSize bounds the alerts waiting to be sent (and the firing
	// alerts remembered for resending); beyond it the oldest are dropped.
	QueueSize int
	// InitialBackoff and MaxBackoff shape the retry delays while
	// Alertmanager is unreachable.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// GeneratorURL is set on every alert (the junction API address).
	GeneratorURL string
	Client       *http.Client
	Now          func() time.Time
	// Wait sleeps for d or until ctx ends; tests inject one that does not
	// sleep.
	Wait func(ctx context.Context, d time.Duration) error
}

// Alert is one alert in Alertmanager's v2 API format.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Stats counts what the notifier did.
type Stats struct {
	Sent     int64 // alerts accepted by Alertmanager
	Failures int64 // failed POSTs (retried unless Alertmanager rejected them with a 4xx)
	Dropped  int64 // alerts dropped: the queue was full, or Alertmanager rejected them
	Queue    int   // alerts waiting
}

// Notifier queues and sends alerts.
type Notifier struct {
	opts Options

	mu     sync.Mutex
	queue  []alert.Alert
	firing map[string]alert.Alert
	signal chan struct{}

	sent, failures, dropped atomic.Int64
}

// New returns a notifier; Run sends.
func New(opts Options) *Notifier {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Wait == nil {
		opts.Wait = sleep
	}
	return &Notifier{opts: opts, firing: make(map[string]alert.Alert), signal: make(chan struct{}, 1)}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Notify queues firing and resolved alerts (pending ones are not sent, as
// in Prometheus) and remembers firing ones for resending.
func (n *Notifier) Notify(alerts []alert.Alert) {
	n.mu.Lock()
	added := false
	for _, a := range alerts {
		switch a.State {
		case alert.StateFiring:
			if _, ok := n.firing[a.ID]; ok || len(n.firing) < n.opts.QueueSize {
				n.firing[a.ID] = a
			}
		case alert.StateResolved:
			delete(n.firing, a.ID)
		default:
			continue
		}
		n.pushLocked(a)
		added = true
	}
	n.mu.Unlock()
	if added {
		n.wake()
	}
}

func (n *Notifier) pushLocked(a alert.Alert) {
	if len(n.queue) >= n.opts.QueueSize {
		n.queue = append(n.queue[:0], n.queue[1:]...)
		n.dropped.Add(1)
	}
	n.queue = append(n.queue, a)
}

func (n *Notifier) wake() {
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// Resend queues every firing alert again.
func (n *Notifier) Resend() {
	n.mu.Lock()
	for _, a := range n.firing {
		n.pushLocked(a)
	}
	empty := len(n.firing) == 0
	n.mu.Unlock()
	if !empty {
		n.wake()
	}
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	q := len(n.queue)
	n.mu.Unlock()
	return Stats{Sent: n.sent.Load(), Failures: n.failures.Load(), Dropped: n.dropped.Load(), Queue: q}
}

// Run sends queued alerts until ctx ends, resending firing alerts every
// ResendInterval and retrying with exponential backoff while Alertmanager
// fails. Alerts stay queued while they are retried.
func (n *Notifier) Run(ctx context.Context) {
	resend := time.NewTicker(n.opts.ResendInterval)
	defer resend.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.signal:
		case <-resend.C:
			n.Resend()
		}
		if err := n.Drain(ctx); err != nil && ctx.Err() != nil {
			return
		}
	}
}

// Drain sends until the queue is empty, backing off after failures. It
// returns when the queue is empty or ctx ends.
func (n *Notifier) Drain(ctx context.Context) error {
	backoff := n.opts.InitialBackoff
	for {
		err := n.SendOnce(ctx)
		if err == errEmpty {
			return nil
		}
		if err == nil {
			backoff = n.opts.InitialBackoff
			continue
		}
		if werr := n.opts.Wait(ctx, backoff); werr != nil {
			return werr
		}
		backoff = min(2*backoff, n.opts.MaxBackoff)
	}
}

var errEmpty = fmt.Errorf("queue empty")

// SendOnce posts one batch from the head of the queue and removes it when
// Alertmanager accepts it.
func (n *Notifier) SendOnce(ctx context.Context) error {
	n.mu.Lock()
	k := min(len(n.queue), maxBatch)
	batch := make([]Alert, 0, k)
	seen := make(map[string]int, k)
	for _, a := range n.queue[:k] {
		// A later record of the same instance in the batch replaces the
		// earlier one: Alertmanager only needs the newest.
		am := n.convert(a)
		if i, ok := seen[a.ID]; ok {
			batch[i] = am
			continue
		}
		seen[a.ID] = len(batch)
		batch = append(batch, am)
	}
	n.mu.Unlock()
	if k == 0 {
		return errEmpty
	}
	err := n.post(ctx, batch)
	var rej *rejectedError
	if err != nil {
		n.failures.Add(1)
		if !errors.As(err, &rej) {
			return err
		}
	}
	n.mu.Lock()
	n.queue = append(n.queue[:0], n.queue[min(k, len(n.queue)):]...)
	n.mu.Unlock()
	if rej != nil {
		// Alertmanager refused the batch itself: sending it again cannot
		// help, and keeping it would block everything behind it.
		n.dropped.Add(int64(len(batch)))
		return nil
	}
	n.sent.Add(int64(len(batch)))
	return nil
}

// rejectedError is a 4xx answer other than 429: the request is wrong, not
// the server's state.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

func (n *Notifier) post(ctx context.Context, batch []Alert) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	url := strings.TrimSuffix(n.opts.Endpoint, "/") + "/api/v2/alerts"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alertmanager.endpoint %q: %w", n.opts.Endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post alerts to %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("post alerts to %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
			return &rejectedError{err.Error()}
		}
		return err
	}
	return nil
}

// convert maps a Junction alert onto Alertmanager's format. A firing
// alert ends 4 resend intervals after it is sent unless resent (as
// Prometheus does); a resolved one ends when it resolved.
func (n *Notifier) convert(a alert.Alert) Alert {
	labels := make(map[string]string, len(a.Labels)+8)
	for k, v := range a.Labels {
		labels[labelName(k)] = v
	}
	labels["alertname"] = a.Rule
	put := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	put("severity", a.Severity)
	put("kind", a.Kind)
	put("group", a.Group)
	put("entity", a.Entity.ID)
	put("entity_type", string(a.Entity.Type))
	put("entity_name", a.Entity.Name)
	put("blame", a.Blame.ID)
	out := Alert{Labels: labels, Annotations: a.Annotations, GeneratorURL: n.opts.GeneratorURL}
	out.StartsAt = a.FiredAt
	if out.StartsAt.IsZero() {
		out.StartsAt = a.ActiveAt
	}
	if a.State == alert.StateResolved {
		out.EndsAt = a.ResolvedAt
		if out.EndsAt.IsZero() {
			out.EndsAt = a.EvaluatedAt
		}
		// Alertmanager treats an end time still in the future as an
		// update of a firing alert and keeps the later end it knows:
		// a resolution must not be later than now.
		if now := n.opts.Now(); out.EndsAt.After(now) {
			out.EndsAt = now
		}
		if out.StartsAt.After(out.EndsAt) {
			out.StartsAt = out.EndsAt
		}
	} else {
		base := n.opts.Now()
		if out.StartsAt.After(base) {
			base = out.StartsAt
		}
		out.EndsAt = base.Add(4 * n.opts.ResendInterval)
	}
	return out
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
