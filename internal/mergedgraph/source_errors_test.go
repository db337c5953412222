package mergedgraph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/junction-sre/junction/internal/mergedgraph"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     mergedgraph.Config
		wantErr string
	}{
		{"valid", mergedgraph.Config{URL: "http://vm:8428", Lookback: time.Minute}, ""},
		{"vmselect path", mergedgraph.Config{URL: "https://vmselect:8481/select/0/prometheus/", Lookback: 15 * time.Second}, ""},
		{"no url", mergedgraph.Config{Lookback: time.Minute}, "url: required"},
		{"no scheme", mergedgraph.Config{URL: "vm:8428", Lookback: time.Minute}, "scheme must be http or https"},
		{"short lookback", mergedgraph.Config{URL: "http://vm:8428", Lookback: time.Millisecond}, "lookback 1ms: must be at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mergedgraph.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestSnapshotErrors: every way the store can answer badly is an error
// that names the query and the store, never a partial snapshot.
func TestSnapshotErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		// bins, when set, is the answer to the bins query; body, or no
		// series when empty, that of the others.
		bins    string
		wantErr string
	}{
		{"server error", http.StatusServiceUnavailable, "overloaded", "", "503 Service Unavailable: overloaded"},
		{"bad query", http.StatusOK, `{"status":"error","error":"unknown function"}`, "", "unknown function"},
		// The store's own text of a query it refused (VictoriaMetrics
		// answers 422, Prometheus 400 or 422).
		{"refused query", http.StatusUnprocessableEntity, `{"status":"error","errorType":"422","error":"cannot parse \"max by (\": unexpected end of stream"}`, "", `422: cannot parse "max by (": unexpected end of stream`},
		{"bad request", http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\""}`, "", `bad_data: invalid parameter "time"`},
		{"not authorized", http.StatusUnauthorized, "missing bearer token", "", "401 Unauthorized: missing bearer token (check the store's credentials"},
		{"forbidden", http.StatusForbidden, "tenant 3 denied", "", "403 Forbidden: tenant 3 denied (check the store's credentials"},
		{"not json", http.StatusOK, `<html>`, "", "decoding the answer"},
		{"matrix", http.StatusOK, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, "", `result type "matrix", want vector`},
		{"bad value", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, "", `parsing "x"`},
		{"bad attributes", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"junction_entity_id":"service:a/b","junction_entity_attributes":"{"},"value":[1,"1"]}]}}`, emptyMatrix, "label junction_entity_attributes"},
		{"bins as a vector", http.StatusOK, "", emptyVector, `result type "vector", want matrix`},
		{"bad bin value", http.StatusOK, "", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`, `parsing "x"`},
		{"bad bin time", http.StatusOK, "", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","1"]]}]}}`, "invalid number"},
		{"bad sketch", http.StatusOK, "", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"junction_entity_id":"service:a/b","junction_window":"1m","junction_bin":"3","junction_sketch":"log:0.01:1"},"values":[[1,"1"]]}]}}`, "label junction_sketch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/query" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				body := tt.body
				if tt.bins != "" && r.FormValue("query") == mergedgraph.BinsQuery(15*time.Second) {
					body = tt.bins
				} else if body == "" {
					body = emptyVector
				}
				_, _ = w.Write([]byte(body))
			}))
			defer srv.Close()
			src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := src.Snapshot(context.Background(), t0)
			if err == nil {
				t.Fatalf("no error; snapshot %+v", snap)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("error %q, want one naming the store and containing %q", err, tt.wantErr)
			}
		})
	}
}

const (
	emptyVector = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	emptyMatrix = `{"status":"success","data":{"resultType":"matrix","result":[]}}`
)

// TestSnapshotStoreDown: an unreachable store is an error naming it.
func TestSnapshotStoreDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	src, err := mergedgraph.New(mergedgraph.Config{URL: url, Lookback: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Snapshot(context.Background(), t0); err == nil || !strings.Contains(err.Error(), url) ||
		!strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "is it up?") {
		t.Fatalf("error %v, want one naming %s, the refused connection and what to check", err, url)
	}
}

// TestSnapshotWrongPath: an endpoint that is not the query API's base (a
// vmselect without /select/<tenant>/prometheus) says what it must be.
func TestSnapshotWrongPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/select/0/prometheus/api/v1/query" {
			http.Error(w, "unsupported path requested: "+r.URL.Path, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(emptyVector))
	}))
	defer srv.Close()
	src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Snapshot(context.Background(), t0)
	for _, want := range []string{srv.URL, "404 Not Found: unsupported path requested: /api/v1/query", "the endpoint must be the base of the Prometheus query API"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want one containing %q", err, want)
		}
	}
}

// TestSnapshotTimeout: a store that does not answer before the caller's
// deadline is an error that says so, and Snapshot returns at the deadline.
func TestSnapshotTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = src.Snapshot(ctx, t0)
	for _, want := range []string{srv.URL, "no answer in time", "context deadline exceeded"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want one containing %q", err, want)
		}
	}
}

// TestSnapshotClientSettings: the source sends with the HTTP client it is
// given (the collector's confighttp client: its headers, auth and TLS),
// and asks VictoriaMetrics for no latency offset.
func TestSnapshotClientSettings(t *testing.T) {
	var auth, offset []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		offset = append(offset, r.FormValue("latency_offset"))
		if q := r.FormValue("query"); q == mergedgraph.BinsQuery(15*time.Second) || q == mergedgraph.EvidenceQuery(15*time.Second) {
			_, _ = w.Write([]byte(emptyMatrix))
			return
		}
		_, _ = w.Write([]byte(emptyVector))
	}))
	defer srv.Close()
	client := &http.Client{Transport: bearer{"s3cret", http.DefaultTransport}}
	src, err := mergedgraph.New(mergedgraph.Config{URL: srv.URL, Lookback: 15 * time.Second, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Snapshot(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	if len(auth) != 6 {
		t.Fatalf("%d requests, want the snapshot's 6 queries", len(auth))
	}
	for i := range auth {
		if auth[i] != "Bearer s3cret" || offset[i] != "0s" {
			t.Errorf("request %d: Authorization %q, latency_offset %q; want the client's bearer token and 0s", i, auth[i], offset[i])
		}
	}
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}
