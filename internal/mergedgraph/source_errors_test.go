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
		{"not json", http.StatusOK, `<html>`, "", "decoding the answer"},
		{"matrix", http.StatusOK, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, "", `result type "matrix", want vector`},
		{"bad value", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, "", `value x`},
		{"bad attributes", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"junction_entity_id":"service:a/b","junction_entity_attributes":"{"},"value":[1,"1"]}]}}`, emptyMatrix, "label junction_entity_attributes"},
		{"bins as a vector", http.StatusOK, "", emptyVector, `result type "vector", want matrix`},
		{"bad bin value", http.StatusOK, "", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`, "value x"},
		{"bad bin time", http.StatusOK, "", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","1"]]}]}}`, "time 1: not a number"},
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
	if _, err := src.Snapshot(context.Background(), t0); err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("error %v, want one naming %s", err, url)
	}
}
