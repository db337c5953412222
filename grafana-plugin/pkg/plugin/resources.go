package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// EntityTypes are the entity types of the graph (docs/api.md, Objects).
var EntityTypes = []string{"service", "pod", "database", "proxy", "relayer", "stream"}

// maxResourceEntities bounds a variable's option list.
const maxResourceEntities = 1000

// Option is one template variable value (MetricFindValue on the frontend).
type Option struct {
	Text  string `json:"text"`
	Value string `json:"value"`
}

// CallResource serves the template variable resources:
//
//	GET entity-types                  -> [Option] of entity types
//	GET entities?type=T&q=S&limit=N   -> [Option] text=name, value=id
//	GET features?entity=ID            -> [Option] of the entity's feature names
//	GET alerts?state=S                -> [Option] text="rule on entity (state)", value=alert id
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	if d.settingsErr != nil {
		return sendJSON(sender, http.StatusBadRequest, map[string]string{"error": "the Junction data source is misconfigured: " + d.settingsErr.Error()})
	}
	if req.Method != http.MethodGet && req.Method != "" {
		return sendJSON(sender, http.StatusMethodNotAllowed, map[string]string{"error": "only GET is served"})
	}
	params := url.Values{}
	if i := strings.IndexByte(req.URL, '?'); i >= 0 {
		params, _ = url.ParseQuery(req.URL[i+1:])
	}
	switch strings.Trim(req.Path, "/") {
	case "entity-types":
		out := make([]Option, len(EntityTypes))
		for i, t := range EntityTypes {
			out[i] = Option{Text: t, Value: t}
		}
		return sendJSON(sender, http.StatusOK, out)
	case "entities":
		limit := maxResourceEntities
		if s := params.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return sendJSON(sender, http.StatusBadRequest, map[string]string{"error": "limit must be a positive integer"})
			}
			limit = min(n, maxResourceEntities)
		}
		ents, err := d.client.Entities(ctx, params.Get("type"), params.Get("q"), limit)
		if err != nil {
			return sendAPIError(sender, err)
		}
		out := make([]Option, 0, len(ents))
		for _, e := range ents {
			name := e.Name
			if name == "" {
				name = e.ID
			}
			out = append(out, Option{Text: name, Value: e.ID})
		}
		return sendJSON(sender, http.StatusOK, out)
	case "features":
		id := params.Get("entity")
		if id == "" {
			return sendJSON(sender, http.StatusBadRequest, map[string]string{"error": "entity is required"})
		}
		e, err := d.client.Entity(ctx, id)
		if err != nil {
			return sendAPIError(sender, err)
		}
		names := make([]string, 0, len(e.Features))
		for k := range e.Features {
			names = append(names, k)
		}
		sort.Strings(names)
		out := make([]Option, len(names))
		for i, n := range names {
			out[i] = Option{Text: n, Value: n}
		}
		return sendJSON(sender, http.StatusOK, out)
	case "alerts":
		f := AlertFilter{State: params.Get("state"), Entity: params.Get("entity"), Rule: params.Get("rule"), Limit: maxResourceEntities}
		alerts, err := d.client.Alerts(ctx, f, time.Time{}, time.Time{})
		if err != nil {
			return sendAPIError(sender, err)
		}
		out := make([]Option, len(alerts))
		for i, a := range alerts {
			out[i] = Option{Text: fmt.Sprintf("%s on %s (%s)", a.Rule, a.Entity.Label(), a.State), Value: a.ID}
		}
		return sendJSON(sender, http.StatusOK, out)
	}
	return sendJSON(sender, http.StatusNotFound, map[string]string{"error": "unknown resource " + req.Path + ": use entity-types, entities, features or alerts"})
}

func sendAPIError(sender backend.CallResourceResponseSender, err error) error {
	status := http.StatusBadGateway
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode/100 == 4 {
		status = apiErr.StatusCode
	}
	return sendJSON(sender, status, map[string]string{"error": err.Error()})
}

func sendJSON(sender backend.CallResourceResponseSender, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sender.Send(&backend.CallResourceResponse{
		Status:  status,
		Headers: map[string][]string{"Content-Type": {"application/json"}},
		Body:    body,
	})
}
