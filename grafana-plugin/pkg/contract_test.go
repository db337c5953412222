package main

// The contract test builds the backend executable and talks to it the way
// Grafana does: go-plugin starts the process, negotiates the handshake from
// the SDK's grpcplugin package and dispenses the gRPC clients of the plugin
// map; every call goes over gRPC with protobuf messages.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/junction-sre/junction/grafana-plugin/pkg/internal/fakejunction"
	"github.com/junction-sre/junction/grafana-plugin/pkg/plugin"
)

var executable string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "junction-plugin-contract")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	executable = filepath.Join(dir, fmt.Sprintf("gpx_junction_%s_%s", runtime.GOOS, runtime.GOARCH))
	build := exec.Command("go", "build", "-tags", "arrow_json_stdlib", "-o", executable, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the backend executable: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type clients struct {
	diagnostics grpcplugin.DiagnosticsClient
	resource    grpcplugin.ResourceClient
	data        grpcplugin.DataClient
	stream      grpcplugin.StreamClient
}

// startPlugin launches the built executable as Grafana's plugin manager does.
func startPlugin(t *testing.T) clients {
	t.Helper()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
			"data":        &grpcplugin.DataGRPCPlugin{},
			"stream":      &grpcplugin.StreamGRPCPlugin{},
		}},
		Cmd:              exec.Command(executable),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting %s over go-plugin: %v", executable, err)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	return clients{
		diagnostics: dispense("diagnostics").(grpcplugin.DiagnosticsClient),
		resource:    dispense("resource").(grpcplugin.ResourceClient),
		data:        dispense("data").(grpcplugin.DataClient),
		stream:      dispense("stream").(grpcplugin.StreamClient),
	}
}

// pluginContext carries the data source settings. Grafana bumps Updated when
// settings change, which makes the SDK build a new instance; the token's
// length stands in for that here.
func pluginContext(url, token string) *pluginv2.PluginContext {
	return backend.ToProto().PluginContext(backend.PluginContext{
		Namespace: "default",
		PluginID:  plugin.PluginID,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 7, UID: "junction", Name: "Junction", URL: url,
			JSONData:                []byte(`{"tracingDatasourceUid":"tempo"}`),
			DecryptedSecureJSONData: map[string]string{"bearerToken": token},
			Updated:                 time.Date(2026, 11, 26, 0, 0, len(token), 0, time.UTC),
		},
	})
}

func TestContractCheckHealth(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: "tok"})
	defer srv.Close()
	c := startPlugin(t)
	for _, tc := range []struct {
		token, want string
		status      pluginv2.CheckHealthResponse_HealthStatus
	}{
		{"tok", "API v1, storage ok", pluginv2.CheckHealthResponse_OK},
		{"wrong", "rejected the bearer token (401 Unauthorized)", pluginv2.CheckHealthResponse_ERROR},
	} {
		res, err := c.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: pluginContext(srv.URL, tc.token)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != tc.status || !strings.Contains(res.Message, tc.want) {
			t.Errorf("token %s: %v %q; want %v containing %q", tc.token, res.Status, res.Message, tc.status, tc.want)
		}
	}
}

func TestContractQueryData(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: "tok"})
	defer srv.Close()
	c := startPlugin(t)
	tr := backend.TimeRange{From: time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 26, 12, 10, 0, 0, time.UTC)}
	q := func(ref, qt, model string) backend.DataQuery {
		return backend.DataQuery{RefID: ref, QueryType: qt, JSON: []byte(model), TimeRange: tr, Interval: time.Minute, MaxDataPoints: 300}
	}
	req := backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{
		Queries: []backend.DataQuery{
			q("G", "graph", `{"queryType":"graph"}`),
			q("S", "series", `{"queryType":"series","entity":"service:shop/checkout","feature":"latency.p99_ms"}`),
			q("E", "evidence", `{"queryType":"evidence","alertId":"nope"}`),
		},
	})
	req.PluginContext = pluginContext(srv.URL, "tok")
	protoRes, err := c.data.QueryData(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backend.FromProto().QueryDataResponse(protoRes)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Responses["G"]
	if g.Error != nil || len(g.Frames) != 2 || g.Frames[0].Name != "nodes" || g.Frames[1].Name != "edges" || g.Frames[0].Rows() != 4 {
		t.Errorf("graph: err=%v frames=%v", g.Error, g.Frames)
	} else if g.Frames[0].Meta.PreferredVisualization != data.VisTypeNodeGraph {
		t.Errorf("graph meta %+v", g.Frames[0].Meta)
	}
	s := res.Responses["S"]
	if s.Error != nil || len(s.Frames) != 1 || s.Frames[0].Rows() != 4 || s.Frames[0].Fields[1].Labels["entity"] != "service:shop/checkout" {
		t.Errorf("series: err=%v frames=%v", s.Error, s.Frames)
	}
	if e := res.Responses["E"]; e.Error == nil || e.Status != backend.StatusNotFound {
		t.Errorf("evidence for an unknown alert: status %v err %v; want 404", e.Status, e.Error)
	}
}

func TestContractCallResource(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: "tok"})
	defer srv.Close()
	c := startPlugin(t)
	stream, err := c.resource.CallResource(context.Background(), &pluginv2.CallResourceRequest{
		PluginContext: pluginContext(srv.URL, "tok"),
		Method:        "GET", Path: "entities", Url: "entities?type=database",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var opts []plugin.Option
	if err := json.Unmarshal(resp.Body, &opts); err != nil {
		t.Fatalf("body %s: %v", resp.Body, err)
	}
	if resp.Code != 200 || len(opts) != 1 || opts[0].Value != "database:postgresql/pg:5432/orders" {
		t.Errorf("entities: %d %s", resp.Code, resp.Body)
	}
}

func TestContractRunStream(t *testing.T) {
	srv := fakejunction.Start(fakejunction.Options{Token: "tok"})
	defer srv.Close()
	c := startPlugin(t)
	pc := pluginContext(srv.URL, "tok")
	path := plugin.StreamPath(plugin.AlertFilter{Severity: "warning"})
	sub, err := c.stream.SubscribeStream(context.Background(), &pluginv2.SubscribeStreamRequest{PluginContext: pc, Path: path})
	if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("subscribe: %v %v", sub, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run, err := c.stream.RunStream(ctx, &pluginv2.RunStreamRequest{PluginContext: pc, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for len(states) < 2 {
		pkt, err := run.Recv()
		if err != nil {
			t.Fatalf("after %v: %v", states, err)
		}
		var f data.Frame
		if err := json.Unmarshal(pkt.Data, &f); err != nil {
			t.Fatalf("packet is not a frame: %v", err)
		}
		st, _ := f.FieldByName("state")
		states = append(states, st.At(0).(string))
	}
	if strings.Join(states, ",") != "pending,firing" {
		t.Errorf("states %v", states)
	}
	cancel()
	if _, err := run.Recv(); err == nil {
		t.Errorf("stream still open after cancel")
	}
	u, _ := srv.LastRequest("/api/v1/stream")
	if u.Query().Get("severity") != "warning" {
		t.Errorf("stream filter not passed: %s", u.RawQuery)
	}
}

// TestContractAgainstRunningJunction runs the built backend against a real
// junction exporter when JUNCTION_URL is set (and JUNCTION_TOKEN when it needs
// one): `JUNCTION_URL=http://127.0.0.1:8480 go test ./pkg -run Running`.
func TestContractAgainstRunningJunction(t *testing.T) {
	url := os.Getenv("JUNCTION_URL")
	if url == "" {
		t.Skip("JUNCTION_URL is not set")
	}
	c := startPlugin(t)
	pc := pluginContext(url, os.Getenv("JUNCTION_TOKEN"))
	h, err := c.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: pc})
	if err != nil || h.Status != pluginv2.CheckHealthResponse_OK {
		t.Fatalf("health: %v %v", h, err)
	}
	now := time.Now()
	tr := backend.TimeRange{From: now.Add(-time.Hour), To: now}
	var queries []backend.DataQuery
	for _, qt := range []string{"alerts", "alertTimeline", "graph", "rules"} {
		queries = append(queries, backend.DataQuery{RefID: qt, QueryType: qt, JSON: []byte(`{"queryType":"` + qt + `"}`), TimeRange: tr, Interval: 15 * time.Second})
	}
	req := backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{Queries: queries})
	req.PluginContext = pc
	protoRes, err := c.data.QueryData(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backend.FromProto().QueryDataResponse(protoRes)
	if err != nil {
		t.Fatal(err)
	}
	for ref, r := range res.Responses {
		if r.Error != nil {
			t.Errorf("%s: %v", ref, r.Error)
			continue
		}
		t.Logf("%s: %d frames, %d rows in the first", ref, len(r.Frames), r.Frames[0].Rows())
	}

	// Follow up like a user: evidence of the first alert, the entity
	// variable's values, features and series of the first entity.
	resource := func(path, url string) []plugin.Option {
		stream, err := c.resource.CallResource(context.Background(), &pluginv2.CallResourceRequest{PluginContext: pc, Method: "GET", Path: path, Url: url})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var opts []plugin.Option
		if resp.Code != 200 || json.Unmarshal(resp.Body, &opts) != nil {
			t.Fatalf("%s: %d %s", url, resp.Code, resp.Body)
		}
		return opts
	}
	var follow []backend.DataQuery
	if a := res.Responses["alerts"]; a.Error == nil && a.Frames[0].Rows() > 0 {
		id, _ := a.Frames[0].FieldByName("id")
		model, _ := json.Marshal(map[string]any{"queryType": "evidence", "alertId": id.At(0)})
		follow = append(follow, backend.DataQuery{RefID: "evidence", QueryType: "evidence", JSON: model, TimeRange: tr})
	}
	if ents := resource("entities", "entities"); len(ents) > 0 {
		feats := resource("features", "features?entity="+neturl.QueryEscape(ents[0].Value))
		t.Logf("entity %s features %v", ents[0].Value, feats)
		if len(feats) > 0 {
			model, _ := json.Marshal(map[string]any{"queryType": "series", "entity": ents[0].Value, "feature": feats[0].Value})
			follow = append(follow, backend.DataQuery{RefID: "series", QueryType: "series", JSON: model, TimeRange: tr, Interval: time.Minute})
		}
	}
	req = backend.ToProto().QueryDataRequest(&backend.QueryDataRequest{Queries: follow})
	req.PluginContext = pc
	if protoRes, err = c.data.QueryData(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if res, err = backend.FromProto().QueryDataResponse(protoRes); err != nil {
		t.Fatal(err)
	}
	for ref, r := range res.Responses {
		if r.Error != nil {
			t.Errorf("%s: %v", ref, r.Error)
			continue
		}
		t.Logf("%s: %d frames, %d rows in the first", ref, len(r.Frames), r.Frames[0].Rows())
	}
}
