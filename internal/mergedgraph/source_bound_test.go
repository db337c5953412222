package mergedgraph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswerBound: an answer larger than maxResponse is an error that says
// so, not an unbounded read; one of exactly maxResponse bytes is read.
func TestAnswerBound(t *testing.T) {
	const empty = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	big := `{"status":"success","data":{"resultType":"vector","result":[` +
		strings.Repeat(`{"metric":{"junction_entity_id":"service:shop/checkout"},"value":[1,"1"]},`, 40) +
		`{"metric":{},"value":[1,"1"]}]}}`
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("query") == BinsQuery(15*time.Second) {
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	defer func(m int64) { maxResponse = m }(maxResponse)
	src, err := New(Config{URL: srv.URL, Lookback: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	maxResponse = int64(len(big))
	body = big
	if _, err := src.Snapshot(context.Background(), time.Unix(1, 0)); err != nil {
		t.Fatalf("answer of exactly the bound: %v", err)
	}
	maxResponse = int64(len(big)) - 1
	_, err = src.Snapshot(context.Background(), time.Unix(1, 0))
	if err == nil || !strings.Contains(err.Error(), "the answer is too large: more than") || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("answer over the bound: error %v", err)
	}
	body = empty
	if _, err := src.Snapshot(context.Background(), time.Unix(1, 0)); err != nil {
		t.Fatalf("small answer after a large one: %v", err)
	}
}
