package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/junction-sre/junction/alert"
)

// maxAnswer bounds what the view reads from one API answer or one stream
// event.
const maxAnswer = 8 << 20

// view prints alerts as they change state, read from Junction's query API
// (docs/api.md): the active alerts once, then the server-sent event stream.
type view struct {
	out    io.Writer
	api    string // base URL, e.g. http://127.0.0.1:8480
	client *http.Client
	now    func() time.Time
	// retry is how long to wait before asking an API that did not answer
	// again.
	retry time.Duration
	// showPending also prints instances going pending and pending ones
	// clearing without firing.
	showPending bool
	// since is when the demo started: alerts active before it (kept
	// across a restart in Junction's state) are marked as such.
	since time.Time

	mu       sync.Mutex
	states   map[string]alert.State // latest state shown per alert id
	fired    int
	resolved int
	// records are the alert records shown, for the final score; at most
	// maxTracked, the rest counted in dropped.
	records []alert.Alert
	dropped int
	// down is true while the API is known not to answer (the message
	// was printed once).
	down bool
}

// maxTracked bounds the alert ids the view remembers; beyond it the oldest
// are forgotten and counted.
const maxTracked = 10000

func newView(out io.Writer, api string, now func() time.Time) *view {
	return &view{
		out:    out,
		api:    strings.TrimRight(api, "/"),
		client: &http.Client{},
		now:    now,
		retry:  5 * time.Second,
		states: map[string]alert.State{},
	}
}

// printf writes one line prefixed with the wall-clock time.
func (v *view) printf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.printfLocked(format, args...)
}

func (v *view) printfLocked(format string, args ...any) {
	fmt.Fprintf(v.out, "%s  %s\n", v.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// watch follows the API until ctx ends. A stream that ends (a server
// write timeout, a restart) is reopened at once, quietly, unless it ended
// within streamMin; an API that does not answer is reported once and asked
// again every retry.
func (v *view) watch(ctx context.Context) {
	for {
		opened := time.Now()
		connected, err := v.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected && time.Since(opened) >= streamMin {
			continue
		}
		if !connected {
			v.mu.Lock()
			if !v.down {
				v.down = true
				v.printfLocked("alert API %s is not answering (%v).", v.api, err)
				v.printfLocked("  Alerts are still evaluated inside Junction, but only the junction exporter serves them (docs/api.md);")
				v.printfLocked("  this view attaches when it answers. Retrying every %v.", v.retry)
			}
			v.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(v.retry):
		}
	}
}

// streamMin is how long a stream must have lasted to be reopened at once.
const streamMin = time.Second

// follow shows the active alerts, then every change from the stream
// until it ends. connected is true once the stream was open.
func (v *view) follow(ctx context.Context) (connected bool, err error) {
	var list struct {
		Alerts []alert.Alert `json:"alerts"`
	}
	if err := v.getJSON(ctx, "/api/v1/alerts?state=pending,firing", &list); err != nil {
		return false, err
	}
	resp, err := v.get(ctx, "/api/v1/stream")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	v.mu.Lock()
	if v.down {
		v.printfLocked("alert API %s is answering", v.api)
	}
	v.down = false
	v.mu.Unlock()
	sort.SliceStable(list.Alerts, func(i, j int) bool { return list.Alerts[i].ActiveAt.Before(list.Alerts[j].ActiveAt) })
	for _, a := range list.Alerts {
		v.show(ctx, a)
	}
	v.catchUp(ctx, list.Alerts)
	return true, v.readStream(ctx, resp.Body)
}

// catchUp asks for every alert shown pending or firing that is no longer
// active: it resolved while no stream was open (between two streams), and
// the stream only carries changes.
func (v *view) catchUp(ctx context.Context, active []alert.Alert) {
	still := make(map[string]bool, len(active))
	for _, a := range active {
		still[a.ID] = true
	}
	v.mu.Lock()
	var gone []string
	for id, st := range v.states {
		if !still[id] && (st == alert.StatePending || st == alert.StateFiring) {
			gone = append(gone, id)
		}
	}
	v.mu.Unlock()
	sort.Strings(gone)
	for _, id := range gone {
		var full struct {
			Alert alert.Alert `json:"alert"`
		}
		if err := v.getJSON(ctx, "/api/v1/alerts/"+url.PathEscape(id), &full); err != nil {
			v.printf("could not read alert %s, which is no longer active: %v", id, err)
			continue
		}
		full.Alert.ID = id
		v.show(ctx, full.Alert)
	}
}

// readStream parses server-sent events: each `event: alert` with a `data`
// line holding one Alert is shown; comments and other events are skipped.
func (v *view) readStream(ctx context.Context, body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxAnswer)
	event, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "alert" && data != "" {
				var a alert.Alert
				if err := json.Unmarshal([]byte(data), &a); err != nil {
					v.printf("skipping an alert event that does not decode: %v", err)
				} else {
					v.show(ctx, a)
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			d := strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			if data != "" {
				data += "\n"
			}
			data += d
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s/api/v1/stream: %w", v.api, err)
	}
	return fmt.Errorf("%s/api/v1/stream ended", v.api)
}

// show prints an alert when its state differs from the one last shown.
func (v *view) show(ctx context.Context, a alert.Alert) {
	v.mu.Lock()
	prev, seen := v.states[a.ID]
	if seen && prev == a.State {
		v.mu.Unlock()
		return
	}
	if !seen && a.State == alert.StateResolved {
		// Resolved before the view saw it: nothing to take back.
		v.mu.Unlock()
		return
	}
	if len(v.states) >= maxTracked && !seen {
		for id, st := range v.states {
			if st == alert.StateResolved {
				delete(v.states, id)
				break
			}
		}
	}
	v.states[a.ID] = a.State
	if len(v.records) < maxTracked {
		v.records = append(v.records, a)
	} else {
		v.dropped++
	}
	v.mu.Unlock()

	target := a.Entity.ID
	if a.Blame.ID != "" && a.Blame.ID != a.Entity.ID {
		target = a.Entity.ID + " → blames " + a.Blame.ID
	}
	if !a.ActiveAt.IsZero() && a.ActiveAt.Before(v.since) {
		target += " (active before this demo started)"
	}
	switch a.State {
	case alert.StatePending:
		if v.showPending {
			v.printf("  pending   %-27s %s", a.Rule, target)
		}
	case alert.StateFiring:
		ev := v.evidence(ctx, a)
		v.mu.Lock()
		v.fired++
		v.printfLocked("▲ FIRING    %-27s %s [%s]", a.Rule, target, a.Severity)
		if s := a.Annotations["summary"]; s != "" {
			v.printfLocked("            %s", s)
		}
		if ev != "" {
			v.printfLocked("            evidence: %s", ev)
		}
		v.mu.Unlock()
	case alert.StateResolved:
		v.mu.Lock()
		if a.FiredAt.IsZero() {
			if v.showPending {
				v.printfLocked("  cleared   %-27s %s (never fired)", a.Rule, target)
			}
			v.mu.Unlock()
			return
		}
		v.resolved++
		d := ""
		if !a.FiredAt.IsZero() && !a.ResolvedAt.IsZero() {
			d = fmt.Sprintf(" after firing %v", a.ResolvedAt.Sub(a.FiredAt).Round(time.Second))
		}
		v.printfLocked("▼ resolved  %-27s %s%s", a.Rule, target, d)
		v.mu.Unlock()
	}
}

// evidence fetches the alert with its evidence and summarizes it; "" when
// the API gives none.
func (v *view) evidence(ctx context.Context, a alert.Alert) string {
	var full struct {
		Alert alert.Alert `json:"alert"`
	}
	if err := v.getJSON(ctx, "/api/v1/alerts/"+url.PathEscape(a.ID), &full); err != nil {
		return "(not available: " + err.Error() + ")"
	}
	return summarizeEvidence(full.Alert.Evidence)
}

// summarizeEvidence is one line: exemplar traces, the busiest log
// template, stuck messages and up to three values the rule read.
func summarizeEvidence(ev alert.Evidence) string {
	var parts []string
	if n := len(ev.Exemplars); n > 0 {
		slowest := ev.Exemplars[0]
		for _, x := range ev.Exemplars {
			if x.Value > slowest.Value {
				slowest = x
			}
		}
		parts = append(parts, fmt.Sprintf("%d trace(s), slowest %.0fms (trace %s)", n, slowest.Value, slowest.TraceID))
	}
	if len(ev.LogSamples) > 0 {
		top := ev.LogSamples[0]
		for _, s := range ev.LogSamples {
			if s.Count > top.Count {
				top = s
			}
		}
		body := top.Body
		if len(body) > 100 {
			body = body[:97] + "..."
		}
		parts = append(parts, fmt.Sprintf("log ×%d %q", top.Count, body))
	}
	if n := len(ev.Stuck); n > 0 {
		parts = append(parts, fmt.Sprintf("%d stuck message(s)", n))
	}
	if len(ev.Values) > 0 {
		keys := make([]string, 0, len(ev.Values))
		for k := range ev.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) > 3 {
			keys = keys[:3]
		}
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%.3g", k, ev.Values[k]))
		}
	}
	return strings.Join(parts, "; ")
}

func (v *view) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.api+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

func (v *view) getJSON(ctx context.Context, path string, out any) error {
	resp, err := v.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	if len(b) > maxAnswer {
		return fmt.Errorf("GET %s: answer larger than %d bytes", path, maxAnswer)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// shown returns the alert records shown so far and how many were not kept.
func (v *view) shown() ([]alert.Alert, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]alert.Alert(nil), v.records...), v.dropped
}

// counts returns how many firings and resolutions were shown.
func (v *view) counts() (fired, resolved int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fired, v.resolved
}
