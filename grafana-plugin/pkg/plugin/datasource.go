// Package plugin is the backend of the Junction data source: it turns the
// Junction query API (docs/api.md) into data frames, health checks, template
// variable resources and live alert streams.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// PluginID is the id in plugin.json.
const PluginID = "junction-junction-datasource"

// Compile-time checks: a handler Grafana calls but the type does not implement
// would only show up at run time as "not implemented".
var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Datasource is one configured Junction data source.
type Datasource struct {
	uid         string
	settings    Settings
	settingsErr error // reported by CheckHealth and every query
	client      *Client

	// retryDelay is how long RunStream waits before reconnecting after the
	// n-th consecutive failure; tests shorten it.
	retryDelay func(n int) time.Duration
	now        func() time.Time
	logger     log.Logger
}

// NewDatasource is the instance factory datasource.Manage calls whenever the
// settings change. Bad settings do not fail the factory: they are reported in
// words by CheckHealth and each query.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{uid: s.UID, retryDelay: backoff, now: time.Now, logger: log.DefaultLogger.With("datasource", s.Name)}
	d.settings, d.settingsErr = LoadSettings(s)
	if d.settingsErr == nil {
		d.client, d.settingsErr = NewClient(d.settings)
	}
	return d, nil
}

// backoff doubles from 1 s up to 30 s.
func backoff(n int) time.Duration {
	d := time.Second << min(n, 5)
	return min(d, 30*time.Second)
}

// Dispose releases the HTTP connections of a replaced instance.
func (d *Datasource) Dispose() {
	if d.client != nil {
		d.client.Close()
	}
}

// QueryData answers each query on its own: one failing query does not fail
// the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery) backend.DataResponse {
	if d.settingsErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream,
			"the Junction data source is misconfigured: "+d.settingsErr.Error())
	}
	q, err := ParseQuery(dq.JSON, dq.QueryType)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
	}
	from, to := dq.TimeRange.From, dq.TimeRange.To
	var frames data.Frames
	switch q.QueryType {
	case QueryTypeAlerts:
		var alerts []Alert
		alerts, err = d.client.Alerts(ctx, q.Filter(), from, to)
		frames = data.Frames{AlertsFrame(alerts, d.uid)}
	case QueryTypeAlertTimeline:
		var ivs []Interval
		ivs, err = d.client.Timeline(ctx, q.Filter(), from, to)
		frames = data.Frames{TimelineFrame(ivs)}
	case QueryTypeGraph:
		var g Graph
		g, err = d.client.Graph(ctx, q.EntityType, from, to)
		nodes, edges := GraphFrames(g)
		frames = data.Frames{nodes, edges}
	case QueryTypeSeries:
		step := q.Step
		if step == "" && dq.Interval >= time.Second {
			step = strconv.FormatInt(int64(dq.Interval/time.Second), 10) + "s"
		}
		for _, e := range q.Entities() {
			var s Series
			s, err = d.client.Series(ctx, e, q.Feature, step, from, to)
			if err != nil {
				err = fmt.Errorf("entity %s: %w", e, err)
				break
			}
			frames = append(frames, SeriesFrame(s))
		}
	case QueryTypeEvidence:
		var det AlertDetail
		det, err = d.client.Alert(ctx, q.AlertID)
		frames = EvidenceFrames(det, d.settings.TracingDatasourceUID, d.settings.TracingQueryType)
	case QueryTypeRules:
		var rules []RuleStatus
		rules, err = d.client.Rules(ctx)
		frames = data.Frames{RulesFrame(rules)}
	}
	if err != nil {
		return errorResponse(err)
	}
	for _, f := range frames {
		f.RefID = dq.RefID
	}
	return backend.DataResponse{Frames: frames}
}

// errorResponse maps an API failure to a status Grafana shows.
func errorResponse(err error) backend.DataResponse {
	var apiErr *APIError
	var unreach *UnreachableError
	switch {
	case errors.As(err, &apiErr):
		st := backend.StatusBadGateway
		switch apiErr.StatusCode {
		case http.StatusBadRequest:
			st = backend.StatusBadRequest
		case http.StatusUnauthorized:
			st = backend.StatusUnauthorized
		case http.StatusForbidden:
			st = backend.StatusForbidden
		case http.StatusNotFound:
			st = backend.StatusNotFound
		case http.StatusTooManyRequests:
			st = backend.StatusTooManyRequests
		}
		return backend.ErrDataResponseWithSource(st, backend.ErrorSourceDownstream, err.Error())
	case errors.As(err, &unreach):
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, err.Error())
	}
	return backend.ErrDataResponseWithSource(backend.StatusInternal, backend.ErrorSourcePlugin, err.Error())
}
