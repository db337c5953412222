// Package api serves the junction query API (docs/api.md) over a store.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/junction-sre/junction/alert"
	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/exporters/junctionexporter/internal/store"
)

// Version is the API's major version (the /api/v1 prefix).
const Version = 1

// Limits of list endpoints and series.
const (
	defaultLimit   = 500
	maxLimit       = 5000
	defaultRange   = time.Hour
	seriesPoints   = 300   // default step = range / seriesPoints
	maxPoints      = 11000 // as Prometheus
	defaultKeepalv = 15 * time.Second
)

// Routes lists the API's paths as docs/openapi.yaml writes them; every one
// is served with GET.
var Routes = []string{
	"/api/v1/health", "/api/v1/alerts", "/api/v1/alerts/timeline", "/api/v1/alerts/{id}",
	"/api/v1/graph", "/api/v1/entities", "/api/v1/entities/{id}", "/api/v1/series",
	"/api/v1/rules", StreamPath,
}

// Options configure the handler.
type Options struct {
	// BuildVersion is the Junction version reported by /health.
	BuildVersion string
	// Now is the clock.
	Now func() time.Time
	// Keepalive is the interval of stream keepalive comments (15 s when 0).
	Keepalive time.Duration
}

type handler struct {
	st   *store.Store
	hub  *Hub
	opts Options
}

// NewHandler returns the API's HTTP handler.
func NewHandler(st *store.Store, hub *Hub, opts Options) http.Handler {
	if opts.Keepalive <= 0 {
		opts.Keepalive = defaultKeepalv
	}
	h := &handler{st: st, hub: hub, opts: opts}
	mux := http.NewServeMux()
	handlers := map[string]http.HandlerFunc{
		"/api/v1/health": h.health, "/api/v1/alerts": h.alerts, "/api/v1/alerts/timeline": h.timeline,
		"/api/v1/alerts/{id}": h.alert, "/api/v1/graph": h.graph, "/api/v1/entities": h.entities,
		"/api/v1/entities/{id}": h.entity, "/api/v1/series": h.series, "/api/v1/rules": h.rules,
		StreamPath: h.stream,
	}
	for _, p := range Routes {
		// {id} takes the rest of the path: ids hold slashes.
		mux.HandleFunc("GET "+strings.Replace(p, "{id}", "{id...}", 1), handlers[p])
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s %s: see docs/api.md for the /api/v1 endpoints", r.Method, r.URL.Path))
	})
	return mux
}

// alertSummary is an alert without its evidence, as list endpoints and the
// stream send it: the outer Evidence field hides the embedded one and,
// being nil, is omitted.
type alertSummary struct {
	alert.Alert
	Evidence *struct{} `json:"evidence,omitempty"`
}

func summaries(alerts []alert.Alert) []alertSummary {
	out := make([]alertSummary, len(alerts))
	for i := range alerts {
		out[i].Alert = alerts[i]
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// badParam is a 400 naming the parameter.
type badParam struct {
	name, value, why string
}

func (e *badParam) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.name, e.value, e.why)
}

func fail(w http.ResponseWriter, err error) {
	var bp *badParam
	switch {
	case errors.As(err, &bp):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// parseTime accepts RFC 3339 or Unix milliseconds.
func parseTime(name, v string) (time.Time, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &badParam{name, v, "want an RFC 3339 time (2026-11-26T12:00:00Z) or Unix milliseconds"}
	}
	return t, nil
}

func (h *handler) timeRange(r *http.Request) (from, to time.Time, err error) {
	q := r.URL.Query()
	to = h.opts.Now().UTC()
	if v := q.Get("to"); v != "" {
		if to, err = parseTime("to", v); err != nil {
			return
		}
	}
	from = to.Add(-defaultRange)
	if v := q.Get("from"); v != "" {
		if from, err = parseTime("from", v); err != nil {
			return
		}
	}
	if !from.Before(to) {
		err = &badParam{"from", q.Get("from"), fmt.Sprintf("must be before to (%s)", to.Format(time.RFC3339))}
	}
	return
}

func parseLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &badParam{"limit", v, fmt.Sprintf("want an integer from 1 to %d", maxLimit)}
	}
	return n, nil
}

func list(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseEntityType(v string) (entity.Type, error) {
	if v == "" {
		return "", nil
	}
	for _, t := range entity.Types {
		if string(t) == v {
			return t, nil
		}
	}
	return "", &badParam{"type", v, fmt.Sprintf("want one of %v", entity.Types)}
}

func (h *handler) alertFilter(r *http.Request) (store.AlertFilter, error) {
	q := r.URL.Query()
	var f store.AlertFilter
	for _, s := range list(q.Get("state")) {
		switch st := alert.State(s); st {
		case alert.StatePending, alert.StateFiring, alert.StateResolved:
			f.States = append(f.States, st)
		default:
			return f, &badParam{"state", q.Get("state"), "want a comma list of pending, firing, resolved"}
		}
	}
	f.Severities = list(q.Get("severity"))
	f.Kinds = list(q.Get("kind"))
	f.Entity = q.Get("entity")
	f.Rule = q.Get("rule")
	var err error
	if f.From, f.To, err = h.timeRange(r); err != nil {
		return f, err
	}
	f.Limit, err = parseLimit(r)
	return f, err
}

func (h *handler) health(w http.ResponseWriter, _ *http.Request) {
	st := h.st.Health()
	body := map[string]any{"status": "ok", "api_version": Version, "version": h.opts.BuildVersion, "storage": st}
	code := http.StatusOK
	if !st.OK {
		body["status"], body["reason"] = "degraded", st.Reason
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func (h *handler) alerts(w http.ResponseWriter, r *http.Request) {
	f, err := h.alertFilter(r)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": summaries(h.st.Alerts(f))})
}

func (h *handler) alert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, hist, err := h.st.Alert(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("alert %q: %w (list alerts with /api/v1/alerts)", id, err)
		}
		fail(w, err)
		return
	}
	if hist == nil {
		hist = []store.Transition{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert": a, "history": hist})
}

func (h *handler) timeline(w http.ResponseWriter, r *http.Request) {
	f, err := h.alertFilter(r)
	if err != nil {
		fail(w, err)
		return
	}
	out := h.st.Timeline(f)
	if out == nil {
		out = []store.Interval{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"intervals": out})
}

func (h *handler) graph(w http.ResponseWriter, r *http.Request) {
	from, to, err := h.timeRange(r)
	if err != nil {
		fail(w, err)
		return
	}
	typ, err := parseEntityType(r.URL.Query().Get("type"))
	if err != nil {
		fail(w, err)
		return
	}
	g, err := h.st.Graph(from, to, typ)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (h *handler) entities(w http.ResponseWriter, r *http.Request) {
	typ, err := parseEntityType(r.URL.Query().Get("type"))
	if err != nil {
		fail(w, err)
		return
	}
	limit, err := parseLimit(r)
	if err != nil {
		fail(w, err)
		return
	}
	out := h.st.Entities(typ, r.URL.Query().Get("q"), limit)
	if out == nil {
		out = []store.Entity{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entities": out})
}

func (h *handler) entity(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	e, err := h.st.Entity(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("entity %q: %w (list entities with /api/v1/entities)", id, err)
		}
		fail(w, err)
		return
	}
	now := h.opts.Now()
	active := h.st.Alerts(store.AlertFilter{
		States: []alert.State{alert.StatePending, alert.StateFiring}, Entity: id,
		From: now.Add(-defaultRange), To: now, Limit: maxLimit,
	})
	writeJSON(w, http.StatusOK, struct {
		store.Entity
		Alerts []alertSummary `json:"alerts"`
	}{e, summaries(active)})
}

func (h *handler) series(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, feature := q.Get("entity"), q.Get("feature")
	if id == "" {
		fail(w, &badParam{"entity", "", "required: the entity id, e.g. service:shop/checkout"})
		return
	}
	if feature == "" {
		fail(w, &badParam{"feature", "", "required: a feature name, e.g. latency.p99_ms"})
		return
	}
	from, to, err := h.timeRange(r)
	if err != nil {
		fail(w, err)
		return
	}
	rng := to.Sub(from)
	step := max(time.Second, (rng / seriesPoints).Truncate(time.Second))
	if v := q.Get("step"); v != "" {
		step, err = time.ParseDuration(v)
		if err != nil || step < time.Millisecond {
			fail(w, &badParam{"step", v, "want a positive duration such as 15s, 1m or 5m"})
			return
		}
	}
	if int64(rng/step) > maxPoints {
		fail(w, &badParam{"step", step.String(), fmt.Sprintf("gives more than %d points over %s: use a larger step or a shorter range", maxPoints, rng)})
		return
	}
	res, err := h.st.Series(id, feature, from, to, step)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("entity %q: %w (no latest state and no stored series)", id, err)
		}
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) rules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"rules": h.st.Rules()})
}

func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	f, err := h.alertFilter(r)
	if err != nil {
		fail(w, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "the server cannot stream responses")
		return
	}
	sub, ok := h.hub.subscribe(f)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "too many open streams: close one or raise api_max_streams")
		return
	}
	defer h.hub.unsubscribe(sub)
	// The stream has no write deadline (WriteDeadlines leaves it out).
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": stream of junction alert changes\n\n"))
	fl.Flush()
	tick := time.NewTicker(h.opts.Keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			fl.Flush()
		case a := <-sub.ch:
			b, _ := json.Marshal(alertSummary{Alert: a})
			if _, err := fmt.Fprintf(w, "event: alert\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
