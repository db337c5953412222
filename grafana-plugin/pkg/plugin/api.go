package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the Junction query API version this plugin speaks
// (docs/api.md, "Junction query API (v1)").
const APIVersion = 1

// maxErrorBody bounds how much of a failed answer is read for its message.
const maxErrorBody = 64 << 10

// maxAnswerBytes bounds one decoded answer; the API's own limits (5000
// alerts, 11000 points) stay far below it.
var maxAnswerBytes int64 = 128 << 20

// Ref names an entity of the graph.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Label is the entity's name, or its id when it has none.
func (r *Ref) Label() string {
	if r == nil {
		return ""
	}
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// Exemplar is a trace that shows an alert's condition.
type Exemplar struct {
	TraceID string    `json:"trace_id"`
	SpanID  string    `json:"span_id"`
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Value   float64   `json:"value"`
}

// LogSample is a log template seen with an alert.
type LogSample struct {
	Time     time.Time `json:"time"`
	Severity string    `json:"severity"`
	Template string    `json:"template"`
	Body     string    `json:"body"`
	Count    int64     `json:"count"`
	TraceID  string    `json:"trace_id"`
}

// Evidence is what the rule engine kept to explain an alert.
type Evidence struct {
	Exemplars  []Exemplar         `json:"exemplars"`
	LogSamples []LogSample        `json:"log_samples"`
	Values     map[string]float64 `json:"values"`
}

// Alert is one alert instance as the API returns it.
type Alert struct {
	ID          string            `json:"id"`
	Group       string            `json:"group"`
	Rule        string            `json:"rule"`
	Kind        string            `json:"kind"`
	Severity    string            `json:"severity"`
	State       string            `json:"state"`
	Entity      Ref               `json:"entity"`
	Blame       *Ref              `json:"blame,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Value       float64           `json:"value"`
	ActiveAt    time.Time         `json:"active_at"`
	FiredAt     *time.Time        `json:"fired_at,omitempty"`
	ResolvedAt  *time.Time        `json:"resolved_at,omitempty"`
	EvaluatedAt time.Time         `json:"evaluated_at"`
	Evidence    *Evidence         `json:"evidence,omitempty"`
}

// Since is when the alert entered its current state.
func (a *Alert) Since() time.Time {
	switch {
	case a.State == "resolved" && a.ResolvedAt != nil:
		return *a.ResolvedAt
	case a.State == "firing" && a.FiredAt != nil:
		return *a.FiredAt
	}
	return a.ActiveAt
}

// StateChange is one entry of an alert's history.
type StateChange struct {
	Time  time.Time `json:"time"`
	State string    `json:"state"`
}

// AlertDetail is the answer of GET /api/v1/alerts/{id}.
type AlertDetail struct {
	Alert   Alert         `json:"alert"`
	History []StateChange `json:"history"`
}

// Interval is one state period of an alert (GET /api/v1/alerts/timeline).
type Interval struct {
	ID       string    `json:"id"`
	Rule     string    `json:"rule"`
	Entity   Ref       `json:"entity"`
	Blame    *Ref      `json:"blame,omitempty"`
	Severity string    `json:"severity"`
	State    string    `json:"state"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
}

// Health is the share of a range an entity spent in each alert level.
type Health struct {
	OK       float64 `json:"ok"`
	Warning  float64 `json:"warning"`
	Critical float64 `json:"critical"`
}

// Node is one entity of the graph answer.
type Node struct {
	ID      string             `json:"id"`
	Type    string             `json:"type"`
	Name    string             `json:"name"`
	Virtual bool               `json:"virtual"`
	Stats   map[string]float64 `json:"stats"`
	Health  Health             `json:"health"`
	Blamed  bool               `json:"blamed"`
	Alerts  []string           `json:"alerts"`
}

// GraphEdge is one edge of the graph answer.
type GraphEdge struct {
	ID     string             `json:"id"`
	Source string             `json:"source"`
	Target string             `json:"target"`
	Type   string             `json:"type"`
	Stats  map[string]float64 `json:"stats"`
}

// Graph is the answer of GET /api/v1/graph.
type Graph struct {
	Nodes []Node      `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// Entity is one entry of GET /api/v1/entities.
type Entity struct {
	Type       string             `json:"type"`
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Virtual    bool               `json:"virtual"`
	Attributes map[string]string  `json:"attributes"`
	Features   map[string]float64 `json:"features"`
	UpdatedAt  time.Time          `json:"updated_at"`
}

// Series is the answer of GET /api/v1/series.
type Series struct {
	Entity  Ref          `json:"entity"`
	Feature string       `json:"feature"`
	Step    string       `json:"step"`
	Points  [][2]float64 `json:"points"`
}

// RuleStatus is one rule's health (GET /api/v1/rules).
type RuleStatus struct {
	Group              string     `json:"group"`
	Rule               string     `json:"rule"`
	Kind               string     `json:"kind"`
	Severity           string     `json:"severity"`
	File               string     `json:"file"`
	Health             string     `json:"health"`
	LastError          string     `json:"last_error"`
	LastEvaluation     *time.Time `json:"last_evaluation,omitempty"`
	EvaluationDuration int64      `json:"evaluation_duration"`
	Active             int64      `json:"active"`
}

// ServerHealth is the answer of GET /api/v1/health.
type ServerHealth struct {
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	APIVersion int    `json:"api_version"`
	Version    string `json:"version"`
	Storage    struct {
		OK        bool   `json:"ok"`
		Path      string `json:"path"`
		FreeBytes int64  `json:"free_bytes"`
	} `json:"storage"`
}

// APIError is a non-2xx answer of the Junction API.
type APIError struct {
	StatusCode int
	Message    string // the body's "error", or the status text
	URL        string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Junction answered %d %s for %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.URL, e.Message)
}

// UnreachableError is a failure to get any answer from the Junction API.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach Junction at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Client calls the Junction query API.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client // bounded by the settings' timeout
	streams *http.Client // no overall timeout: streams last
}

// NewClient builds an API client from the settings.
func NewClient(s Settings) (*Client, error) {
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 8
	return &Client{
		base:    s.URL,
		token:   s.BearerToken,
		http:    &http.Client{Transport: tr, Timeout: s.Timeout},
		streams: &http.Client{Transport: tr},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// BaseURL is the configured API address, for messages.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + "/api/v1" + path
	u.RawPath = ""
	if strings.Contains(path, "%") {
		u.RawPath = c.base.Path + "/api/v1" + path
		if p, err := url.PathUnescape(u.RawPath); err == nil {
			u.Path = p
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *Client) newRequest(ctx context.Context, path string, q url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(path, q), nil)
	if err != nil {
		return nil, fmt.Errorf("building request for %s: %w", path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// get calls path and decodes a 2xx JSON answer into out.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := c.newRequest(ctx, path, q)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readAPIError(resp)
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxAnswerBytes + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("the answer of %s is larger than %d MiB: narrow the query (time range, filters, limit)", req.URL.Path, maxAnswerBytes>>20)
		}
		return fmt.Errorf("decoding the answer of %s: %w", req.URL.Path, err)
	}
	return nil
}

func readAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e struct {
		Error string `json:"error"`
	}
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	} else if s := strings.TrimSpace(string(body)); s != "" {
		msg = s
	}
	u := *resp.Request.URL
	u.RawQuery = ""
	return &APIError{StatusCode: resp.StatusCode, Message: msg, URL: u.String()}
}

// Health calls GET /api/v1/health. A 503 answer still carries the health body.
func (c *Client) Health(ctx context.Context) (ServerHealth, error) {
	var h ServerHealth
	req, err := c.newRequest(ctx, "/health", nil)
	if err != nil {
		return h, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return h, &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if json.Unmarshal(body, &h) == nil && h.Status != "" {
			return h, nil
		}
		return h, &APIError{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(body)), URL: req.URL.String()}
	}
	if resp.StatusCode/100 != 2 {
		return h, readAPIError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("the answer of %s is not Junction's health JSON: %w", req.URL.String(), err)
	}
	return h, nil
}

// AlertFilter holds the filters shared by /alerts, /alerts/timeline and /stream.
type AlertFilter struct {
	State    string `json:"state,omitempty"` // comma list
	Severity string `json:"severity,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Entity   string `json:"entity,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

// Values encodes the filter as query parameters.
func (f AlertFilter) Values() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("state", f.State)
	set("severity", f.Severity)
	set("kind", f.Kind)
	set("entity", f.Entity)
	set("rule", f.Rule)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

func withRange(q url.Values, from, to time.Time) url.Values {
	if !from.IsZero() {
		q.Set("from", strconv.FormatInt(from.UnixMilli(), 10))
	}
	if !to.IsZero() {
		q.Set("to", strconv.FormatInt(to.UnixMilli(), 10))
	}
	return q
}

// Alerts calls GET /api/v1/alerts.
func (c *Client) Alerts(ctx context.Context, f AlertFilter, from, to time.Time) ([]Alert, error) {
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	err := c.get(ctx, "/alerts", withRange(f.Values(), from, to), &out)
	return out.Alerts, err
}

// Alert calls GET /api/v1/alerts/{id}.
func (c *Client) Alert(ctx context.Context, id string) (AlertDetail, error) {
	var out AlertDetail
	err := c.get(ctx, "/alerts/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Timeline calls GET /api/v1/alerts/timeline.
func (c *Client) Timeline(ctx context.Context, f AlertFilter, from, to time.Time) ([]Interval, error) {
	var out struct {
		Intervals []Interval `json:"intervals"`
	}
	err := c.get(ctx, "/alerts/timeline", withRange(f.Values(), from, to), &out)
	return out.Intervals, err
}

// Graph calls GET /api/v1/graph.
func (c *Client) Graph(ctx context.Context, entityType string, from, to time.Time) (Graph, error) {
	q := url.Values{}
	if entityType != "" {
		q.Set("type", entityType)
	}
	var out Graph
	err := c.get(ctx, "/graph", withRange(q, from, to), &out)
	return out, err
}

// Entities calls GET /api/v1/entities.
func (c *Client) Entities(ctx context.Context, entityType, substring string, limit int) ([]Entity, error) {
	q := url.Values{}
	if entityType != "" {
		q.Set("type", entityType)
	}
	if substring != "" {
		q.Set("q", substring)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Entities []Entity `json:"entities"`
	}
	err := c.get(ctx, "/entities", q, &out)
	return out.Entities, err
}

// Entity calls GET /api/v1/entities/{id}.
func (c *Client) Entity(ctx context.Context, id string) (Entity, error) {
	var out Entity
	err := c.get(ctx, "/entities/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Series calls GET /api/v1/series.
func (c *Client) Series(ctx context.Context, entity, feature, step string, from, to time.Time) (Series, error) {
	q := url.Values{}
	q.Set("entity", entity)
	q.Set("feature", feature)
	if step != "" {
		q.Set("step", step)
	}
	var out Series
	err := c.get(ctx, "/series", withRange(q, from, to), &out)
	return out, err
}

// Rules calls GET /api/v1/rules.
func (c *Client) Rules(ctx context.Context) ([]RuleStatus, error) {
	var out struct {
		Rules []RuleStatus `json:"rules"`
	}
	err := c.get(ctx, "/rules", nil, &out)
	return out.Rules, err
}

// errStreamEnded is returned when the server closes the event stream.
var errStreamEnded = errors.New("the Junction event stream ended")
