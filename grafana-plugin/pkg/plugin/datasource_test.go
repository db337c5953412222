package plugin

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"

	"github.com/junction-sre/junction/grafana-plugin/pkg/internal/fakejunction"
)

// update rewrites the golden frames: go test ./pkg/plugin -run Golden -update
var update = flag.Bool("update", false, "rewrite testdata/golden files")

const (
	testToken = "s3cret"
	testUID   = "junction-uid"
	tempoUID  = "tempo-uid"
)

var testRange = backend.TimeRange{
	From: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC),
	To:   time.Date(2026, 11, 26, 12, 10, 0, 0, time.UTC),
}

func newTestDatasource(t *testing.T, srvURL, token string, jsonData map[string]any) *Datasource {
	t.Helper()
	if jsonData == nil {
		jsonData = map[string]any{"tracingDatasourceUid": tempoUID}
	}
	raw, err := json.Marshal(jsonData)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{
		UID: testUID, Name: "Junction", URL: srvURL, JSONData: raw,
		DecryptedSecureJSONData: map[string]string{"bearerToken": token},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	t.Cleanup(d.Dispose)
	return d
}

func runQuery(t *testing.T, d *Datasource, queryType string, model map[string]any) backend.DataResponse {
	t.Helper()
	if model == nil {
		model = map[string]any{}
	}
	model["queryType"] = queryType
	raw, _ := json.Marshal(model)
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{
		Queries: []backend.DataQuery{{RefID: "A", QueryType: queryType, JSON: raw, TimeRange: testRange, Interval: time.Minute}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses["A"]
}

func TestQueryGolden(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, testToken, nil)

	tests := []struct {
		name      string
		queryType string
		model     map[string]any
		wantPath  string
		wantQuery string // a parameter the API must have received
	}{
		{"alerts", QueryTypeAlerts, map[string]any{"state": "firing,pending", "severity": "critical"}, "/api/v1/alerts", "severity=critical"},
		{"alert_timeline", QueryTypeAlertTimeline, nil, "/api/v1/alerts/timeline", "from=1795690800000"},
		{"graph", QueryTypeGraph, map[string]any{"entityType": "service"}, "/api/v1/graph", "type=service"},
		{"series", QueryTypeSeries, map[string]any{"entity": "service:shop/checkout", "feature": "latency.p99_ms"}, "/api/v1/series", "step=60s"},
		{"evidence", QueryTypeEvidence, map[string]any{"alertId": "database/ConnectionPoolSaturated@service:shop/checkout"}, "/api/v1/alerts/database/ConnectionPoolSaturated@service:shop/checkout", ""},
		{"rules", QueryTypeRules, nil, "/api/v1/rules", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dr := runQuery(t, d, tt.queryType, tt.model)
			if dr.Error != nil {
				t.Fatalf("query error: %v", dr.Error)
			}
			u, ok := srv.LastRequest(tt.wantPath)
			if !ok {
				t.Fatalf("the API saw no request to %s; saw %v", tt.wantPath, srv.Requests())
			}
			if tt.wantQuery != "" && !strings.Contains(u.RawQuery, tt.wantQuery) {
				t.Errorf("request %s lacks %s", u.String(), tt.wantQuery)
			}
			experimental.CheckGoldenJSONResponse(t, "testdata/golden", tt.name, &dr, *update)
		})
	}
}

func fieldByName(t *testing.T, f *data.Frame, name string) *data.Field {
	t.Helper()
	fld, idx := f.FieldByName(name)
	if idx < 0 {
		t.Fatalf("frame %q has no field %q", f.Name, name)
	}
	return fld
}

func TestGraphFramesNodeGraphFormat(t *testing.T) {
	var g Graph
	if err := json.Unmarshal(fakejunction.Fixture("graph.json"), &g); err != nil {
		t.Fatal(err)
	}
	nodes, edges := GraphFrames(g)
	if nodes.Name != "nodes" || edges.Name != "edges" {
		t.Fatalf("frame names %q, %q; the Node Graph panel needs nodes and edges", nodes.Name, edges.Name)
	}
	for _, f := range []*data.Frame{nodes, edges} {
		if f.Meta == nil || f.Meta.PreferredVisualization != data.VisTypeNodeGraph {
			t.Errorf("frame %s: preferred visualization is not the node graph", f.Name)
		}
	}
	for i := 0; i < nodes.Rows(); i++ {
		sum := 0.0
		for _, arc := range []string{"arc__ok", "arc__warning", "arc__critical"} {
			sum += fieldByName(t, nodes, arc).At(i).(float64)
		}
		if sum < 0.999999 || sum > 1.000001 {
			t.Errorf("node %v: arcs sum to %v, not 1", fieldByName(t, nodes, "id").At(i), sum)
		}
	}
	for _, arc := range []string{"arc__ok", "arc__warning", "arc__critical"} {
		if fieldByName(t, nodes, arc).Config.Color["fixedColor"] == nil {
			t.Errorf("%s has no fixed color", arc)
		}
	}
	hl := map[string]bool{}
	for i := 0; i < nodes.Rows(); i++ {
		hl[fieldByName(t, nodes, "id").At(i).(string)] = fieldByName(t, nodes, "highlighted").At(i).(bool)
	}
	if !hl["database:postgresql/pg:5432/orders"] || hl["service:shop/checkout"] {
		t.Errorf("highlighted = %v; want only the blamed database", hl)
	}
	for i := 0; i < edges.Rows(); i++ {
		target := fieldByName(t, edges, "target").At(i).(string)
		if got := fieldByName(t, edges, "highlighted").At(i).(bool); got != hl[target] {
			t.Errorf("edge to %s highlighted=%v, want %v", target, got, hl[target])
		}
	}
}

func TestTimelineFrameStates(t *testing.T) {
	var out struct{ Intervals []Interval }
	if err := json.Unmarshal(fakejunction.Fixture("timeline.json"), &out); err != nil {
		t.Fatal(err)
	}
	f := TimelineFrame(out.Intervals)
	id := "database/ConnectionPoolSaturated@service:shop/checkout"
	fld := fieldByName(t, f, id)
	at := func(ts time.Time) string {
		for i := 0; i < f.Rows(); i++ {
			if f.Fields[0].At(i).(time.Time).Equal(ts) {
				if v := fld.At(i).(*string); v != nil {
					return *v
				}
				return "<none>"
			}
		}
		t.Fatalf("no row at %s", ts)
		return ""
	}
	if got := at(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)); got != "pending" {
		t.Errorf("12:00 state %q, want pending", got)
	}
	if got := at(time.Date(2026, 11, 26, 12, 7, 30, 0, time.UTC)); got != "firing" {
		t.Errorf("12:07:30 state %q, want firing", got)
	}
	if got := at(time.Date(2026, 11, 26, 12, 10, 0, 0, time.UTC)); got != "<none>" {
		t.Errorf("range end state %q, want none", got)
	}
	names := map[string]string{}
	for _, fl := range f.Fields[1:] {
		names[fl.Name] = fl.Config.DisplayNameFromDS
	}
	if got := names[id]; got != "ConnectionPoolSaturated on checkout (blames orders)" {
		t.Errorf("display name %q", got)
	}
	if got := names["surge/TrafficSurge@service:shop/frontend"]; got != "TrafficSurge on frontend" {
		t.Errorf("display name of an alert without blame %q", got)
	}
}

func TestEvidenceTraceLinks(t *testing.T) {
	var d AlertDetail
	if err := json.Unmarshal(fakejunction.Fixture("alert.json"), &d); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uid, qt   string
		wantLinks bool
	}{{tempoUID, "traceql", true}, {"", "traceql", false}} {
		frames := EvidenceFrames(d, tc.uid, tc.qt)
		tid := fieldByName(t, frames[0], "trace_id")
		if !tc.wantLinks {
			if tid.Config != nil && len(tid.Config.Links) > 0 {
				t.Errorf("links without a tracing data source: %+v", tid.Config.Links)
			}
			continue
		}
		if tid.Config == nil || len(tid.Config.Links) != 1 || tid.Config.Links[0].Internal == nil {
			t.Fatalf("trace_id has no internal link: %+v", tid.Config)
		}
		in := tid.Config.Links[0].Internal
		if in.DatasourceUID != tempoUID || in.Query.(map[string]any)["query"] != "${__value.raw}" {
			t.Errorf("link = %+v", in)
		}
	}
}

func TestQueryErrorsArePerQuery(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, testToken, nil)
	q := func(ref, qt string, m map[string]any) backend.DataQuery {
		m["queryType"] = qt
		raw, _ := json.Marshal(m)
		return backend.DataQuery{RefID: ref, QueryType: qt, JSON: raw, TimeRange: testRange}
	}
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
		q("ok", QueryTypeRules, map[string]any{}),
		q("unknown", "bogus", map[string]any{}),
		q("noentity", QueryTypeSeries, map[string]any{"feature": "latency.p99_ms"}),
		q("missing", QueryTypeEvidence, map[string]any{"alertId": "nope"}),
		q("badstep", QueryTypeSeries, map[string]any{"entity": "service:shop/checkout", "feature": "x", "step": "10ms"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Responses["ok"]; r.Error != nil || len(r.Frames) != 1 || r.Frames[0].Rows() != 3 {
		t.Errorf("rules query: err=%v frames=%d", r.Error, len(r.Frames))
	}
	for ref, want := range map[string]struct {
		status backend.Status
		text   string
	}{
		"unknown":  {backend.StatusBadRequest, `unknown queryType "bogus"`},
		"noentity": {backend.StatusBadRequest, "entity is empty"},
		"missing":  {backend.StatusNotFound, "no alert nope"},
		"badstep":  {backend.StatusBadRequest, `step "10ms"`},
	} {
		r := resp.Responses[ref]
		if r.Error == nil || r.Status != want.status || !strings.Contains(r.Error.Error(), want.text) {
			t.Errorf("%s: status %v error %v; want %v containing %q", ref, r.Status, r.Error, want.status, want.text)
		}
	}
}

func TestSeriesMultiEntity(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, "", nil)
	dr := runQuery(t, d, QueryTypeSeries, map[string]any{"entity": "{service:shop/checkout,service:shop/frontend}", "feature": "request.rate", "step": "30s"})
	if dr.Error != nil {
		t.Fatal(dr.Error)
	}
	if len(dr.Frames) != 2 {
		t.Fatalf("%d frames, want one per entity", len(dr.Frames))
	}
	got := dr.Frames[1].Fields[1].Labels["entity"]
	if got != "service:shop/frontend" {
		t.Errorf("second frame entity label %q", got)
	}
	if u, _ := srv.LastRequest("/api/v1/series"); !strings.Contains(u.RawQuery, "step=30s") {
		t.Errorf("step not passed: %s", u.RawQuery)
	}
}

func TestCheckHealth(t *testing.T) {
	tests := []struct {
		name     string
		opts     fakejunction.Options
		token    string
		down     bool
		jsonData map[string]any
		status   backend.HealthStatus
		want     string
	}{
		{"ok", fakejunction.Options{Token: testToken}, testToken, false, nil, backend.HealthStatusOk, "API v1, storage ok (50.0 GiB free)"},
		{"wrong token", fakejunction.Options{Token: testToken}, "wrong", false, nil, backend.HealthStatusError, "rejected the bearer token (401 Unauthorized)"},
		{"no token", fakejunction.Options{Token: testToken}, "", false, nil, backend.HealthStatusError, "requires a bearer token"},
		{"api version", fakejunction.Options{APIVersion: 2}, "", false, nil, backend.HealthStatusError, "speaks API version 2 (server 0.1.0); this plugin needs API version 1"},
		{"degraded", fakejunction.Options{Degraded: true}, "", false, nil, backend.HealthStatusError, "is degraded: storage ./data: no space left on device"},
		{"unreachable", fakejunction.Options{}, "", true, nil, backend.HealthStatusError, "Cannot reach Junction at http://127.0.0.1:"},
		{"bad timeout", fakejunction.Options{}, "", false, map[string]any{"timeoutSeconds": -1}, backend.HealthStatusError, "timeoutSeconds is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakejunction.Start(tt.opts)
			url := srv.URL
			if tt.down {
				srv.Close()
			} else {
				defer srv.Close()
			}
			d := newTestDatasource(t, url, tt.token, tt.jsonData)
			res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.status || !strings.Contains(res.Message, tt.want) {
				t.Errorf("got %v %q; want %v containing %q", res.Status, res.Message, tt.status, tt.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		json    string
		secure  map[string]string
		wantErr string
		check   func(t *testing.T, s Settings)
	}{
		{name: "api suffix trimmed", url: "http://127.0.0.1:8480/api/v1/", check: func(t *testing.T, s Settings) {
			if s.URL.String() != "http://127.0.0.1:8480" {
				t.Errorf("url %s", s.URL)
			}
		}},
		{name: "jsonData url fallback", json: `{"url":"https://junction:8480","tracingQueryType":""}`, secure: map[string]string{"bearerToken": "t"}, check: func(t *testing.T, s Settings) {
			if s.URL.Host != "junction:8480" || s.BearerToken != "t" || s.TracingQueryType != "" {
				t.Errorf("%+v", s)
			}
		}},
		{name: "empty url", wantErr: "URL is empty"},
		{name: "bad scheme", url: "ftp://x", wantErr: "must start with http:// or https://"},
		{name: "bad json", url: "http://x", json: `{`, wantErr: "jsonData is not valid JSON"},
		{name: "tls auth without cert", url: "https://x", json: `{"tlsAuth":true}`, wantErr: "client certificate or key is empty"},
		{name: "ca without cert", url: "https://x", json: `{"tlsAuthWithCACert":true}`, wantErr: "CA certificate is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSettings(backend.DataSourceInstanceSettings{URL: tt.url, JSONData: []byte(tt.json), DecryptedSecureJSONData: tt.secure})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
	if _, err := (Settings{TLSCACert: "not pem"}).TLSConfig(); err == nil {
		t.Error("a CA that is not PEM was accepted")
	}
}

type resourceRecorder struct{ resp *backend.CallResourceResponse }

func (r *resourceRecorder) Send(resp *backend.CallResourceResponse) error { r.resp = resp; return nil }

func TestCallResource(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, testToken, nil)
	tests := []struct {
		path, url string
		status    int
		want      string
	}{
		{"entity-types", "entity-types", 200, `{"text":"relayer","value":"relayer"}`},
		{"entities", "entities?type=database", 200, `[{"text":"orders","value":"database:postgresql/pg:5432/orders"}]`},
		{"entities", "entities?type=service&q=check", 200, `[{"text":"checkout","value":"service:shop/checkout"}]`},
		{"features", "features?entity=service%3Ashop%2Fcheckout", 200, `[{"text":"error.ratio","value":"error.ratio"},{"text":"latency.p99_ms","value":"latency.p99_ms"},{"text":"request.rate","value":"request.rate"}]`},
		{"features", "features?entity=nope", 404, "no entity nope"},
		{"features", "features", 400, "entity is required"},
		{"alerts", "alerts?state=firing", 200, `{"text":"ConnectionPoolSaturated on checkout (firing)","value":"database/ConnectionPoolSaturated@service:shop/checkout"}`},
		{"nothing", "nothing", 404, "unknown resource nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			rec := &resourceRecorder{}
			if err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: http.MethodGet, Path: tt.path, URL: tt.url}, rec); err != nil {
				t.Fatal(err)
			}
			if rec.resp.Status != tt.status || !strings.Contains(string(rec.resp.Body), tt.want) {
				t.Errorf("got %d %s; want %d containing %s", rec.resp.Status, rec.resp.Body, tt.status, tt.want)
			}
		})
	}
}

type framesSender struct {
	frames chan *data.Frame
}

func (s *framesSender) Send(p *backend.StreamPacket) error {
	var f data.Frame
	if err := json.Unmarshal(p.Data, &f); err != nil {
		return fmt.Errorf("packet is not a frame: %w", err)
	}
	s.frames <- &f
	return nil
}

func TestRunStream(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, testToken, nil)
	path := StreamPath(AlertFilter{Severity: "warning", Entity: "service:shop/frontend"})
	sub, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: path})
	if err != nil || sub.Status != backend.SubscribeStreamStatusOK {
		t.Fatalf("subscribe %s: %v %v", path, sub, err)
	}
	if sub, _ := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "other"}); sub.Status != backend.SubscribeStreamStatusNotFound {
		t.Errorf("unknown path status %v", sub.Status)
	}
	if pub, _ := d.PublishStream(context.Background(), &backend.PublishStreamRequest{Path: path}); pub.Status != backend.PublishStreamStatusPermissionDenied {
		t.Errorf("publish status %v", pub.Status)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sender := &framesSender{frames: make(chan *data.Frame, 4)}
	done := make(chan error, 1)
	go func() {
		done <- d.RunStream(ctx, &backend.RunStreamRequest{Path: path}, backend.NewStreamSender(sender))
	}()
	var states []string
	for len(states) < 2 {
		f := <-sender.frames
		st, _ := f.FieldByName("state")
		states = append(states, st.At(0).(string))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	if strings.Join(states, ",") != "pending,firing" {
		t.Errorf("states %v", states)
	}
	u, _ := srv.LastRequest("/api/v1/stream")
	if q := u.Query(); q.Get("severity") != "warning" || q.Get("entity") != "service:shop/frontend" {
		t.Errorf("stream filter not passed: %s", u.RawQuery)
	}
}

func TestRunStreamReconnects(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, "wrong", nil)
	ctx, cancel := context.WithCancel(context.Background())
	var attempts []int
	d.retryDelay = func(n int) time.Duration {
		attempts = append(attempts, n)
		if len(attempts) == 3 {
			cancel()
		}
		return 0
	}
	if err := d.RunStream(ctx, &backend.RunStreamRequest{Path: StreamPathAlerts}, backend.NewStreamSender(&framesSender{})); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(attempts) != "[0 1 2]" {
		t.Errorf("retry attempts %v, want growing backoff", attempts)
	}
	if backoff(0) != time.Second || backoff(10) != 30*time.Second {
		t.Errorf("backoff(0)=%v backoff(10)=%v", backoff(0), backoff(10))
	}
}

// TestStreamPathMatchesFrontend pins the Live path encoding; src/datasource.test.ts
// asserts the same string for the same filter.
func TestStreamPathMatchesFrontend(t *testing.T) {
	f := AlertFilter{Severity: "warning", Entity: "service:shop/frontend"}
	const want = "alerts/eyJzZXZlcml0eSI6Indhcm5pbmciLCJlbnRpdHkiOiJzZXJ2aWNlOnNob3AvZnJvbnRlbmQifQ"
	if got := StreamPath(f); got != want {
		t.Errorf("StreamPath = %s, want %s", got, want)
	}
	back, err := ParseStreamPath(want)
	if err != nil || back != f {
		t.Errorf("ParseStreamPath = %+v, %v", back, err)
	}
	if StreamPath(AlertFilter{}) != StreamPathAlerts {
		t.Error("empty filter path")
	}
	for _, bad := range []string{"other", "alerts/!!!", "alerts/bm90IGpzb24"} {
		if _, err := ParseStreamPath(bad); err == nil {
			t.Errorf("ParseStreamPath(%q) accepted", bad)
		}
	}
}

func TestTimelineFrameBounded(t *testing.T) {
	base := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var ivs []Interval
	for i := 0; i < maxTimelineSeries+5; i++ {
		sev := "warning"
		if i == maxTimelineSeries+4 {
			sev = "critical" // last in id order, first by severity
		}
		ivs = append(ivs, Interval{
			ID: fmt.Sprintf("g/r@service:s%03d", i), Rule: "r", Severity: sev, State: "firing",
			Entity: Ref{ID: fmt.Sprintf("service:s%03d", i)},
			From:   base.Add(time.Duration(i) * time.Second), To: base.Add(time.Hour),
		})
	}
	f := TimelineFrame(ivs)
	if got := len(f.Fields) - 1; got != maxTimelineSeries {
		t.Fatalf("%d series, want %d", got, maxTimelineSeries)
	}
	if f.Fields[1].Name != ivs[maxTimelineSeries+4].ID {
		t.Errorf("first series %s, want the critical one", f.Fields[1].Name)
	}
	if f.Rows() != maxTimelineSeries+1 {
		t.Errorf("%d rows: boundaries of dropped instances kept", f.Rows())
	}
	if len(f.Meta.Notices) != 1 || !strings.Contains(f.Meta.Notices[0].Text, "5 more alert instances are not shown") {
		t.Errorf("notices %+v", f.Meta.Notices)
	}
}

func TestRunStreamCatchesUpAfterABreak(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: testToken, StreamBreaks: 1})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, testToken, nil)
	brokeAt := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return brokeAt }
	d.retryDelay = func(int) time.Duration { return 0 }

	ctx, cancel := context.WithCancel(context.Background())
	sender := &framesSender{frames: make(chan *data.Frame, 8)}
	done := make(chan error, 1)
	go func() {
		done <- d.RunStream(ctx, &backend.RunStreamRequest{Path: StreamPathAlerts}, backend.NewStreamSender(sender))
	}()
	var got []string
	for len(got) < 6 {
		f := <-sender.frames
		st, _ := f.FieldByName("state")
		rule, _ := f.FieldByName("rule")
		got = append(got, rule.At(0).(string)+":"+st.At(0).(string))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{
		"TrafficSurge:pending", "TrafficSurge:firing", // first connection
		"ConnectionPoolSaturated:firing", "TrafficSurge:pending", // missed since the break, oldest first; the resolved one changed before it
		"TrafficSurge:pending", "TrafficSurge:firing", // second connection
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("frames\n got %v\nwant %v", got, want)
	}
	u, ok := srv.LastRequest("/api/v1/alerts")
	if !ok || u.Query().Get("from") != fmt.Sprint(brokeAt.UnixMilli()) {
		t.Errorf("catch-up request %v", u.String())
	}
}

func TestAnswerTooLarge(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{})
	defer srv.Close()
	d := newTestDatasource(t, srv.URL, "", nil)
	old := maxAnswerBytes
	maxAnswerBytes = 100
	defer func() { maxAnswerBytes = old }()
	dr := runQuery(t, d, QueryTypeGraph, nil)
	if dr.Error == nil || !strings.Contains(dr.Error.Error(), "larger than") {
		t.Errorf("error %v", dr.Error)
	}
}
