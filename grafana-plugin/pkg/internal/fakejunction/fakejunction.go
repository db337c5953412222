// Package fakejunction serves the Junction query API (docs/api.md) from
// fixture JSON in its documented shapes, for the plugin's unit and contract
// tests. It checks bearer tokens and required parameters like the real server
// and records the requests it saw.
package fakejunction

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
)

//go:embed testdata
var fixtures embed.FS

// maxRecorded bounds the request log.
const maxRecorded = 256

// Options change what the server answers.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
	// APIVersion overrides api_version in /api/v1/health (0 keeps 1).
	APIVersion int
	// Degraded makes /api/v1/health answer 503 with status "degraded".
	Degraded bool
	// StreamBreaks is how many /api/v1/stream connections end right after
	// sending the fixture events, as a server restart or a dropped connection
	// would; later connections stay open.
	StreamBreaks int
}

// Server is a running fake.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	requests []url.URL
	streams  int
}

// Fixture returns the raw bytes of a fixture file (e.g. "alerts.json").
func Fixture(name string) []byte {
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		panic(fmt.Sprintf("fakejunction: no fixture %s: %v", name, err))
	}
	return b
}

// Start serves the fake API on a local port until Close.
func Start(opts Options) *Server {
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/health", s.health)
	mux.HandleFunc("GET /api/v1/alerts", s.fixture("alerts.json"))
	mux.HandleFunc("GET /api/v1/alerts/timeline", s.fixture("timeline.json"))
	mux.HandleFunc("GET /api/v1/alerts/{id}", s.alert)
	mux.HandleFunc("GET /api/v1/graph", s.fixture("graph.json"))
	mux.HandleFunc("GET /api/v1/entities", s.entities)
	mux.HandleFunc("GET /api/v1/entities/{id}", s.entity)
	mux.HandleFunc("GET /api/v1/series", s.series)
	mux.HandleFunc("GET /api/v1/rules", s.fixture("rules.json"))
	mux.HandleFunc("GET /api/v1/stream", s.stream)
	s.Server = httptest.NewServer(s.auth(mux))
	return s
}

// Requests returns the URLs requested so far, oldest first.
func (s *Server) Requests() []url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.URL(nil), s.requests...)
}

// LastRequest returns the latest request to path (e.g. "/api/v1/alerts").
func (s *Server) LastRequest(path string) (url.URL, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.requests) - 1; i >= 0; i-- {
		if s.requests[i].Path == path {
			return s.requests[i], true
		}
	}
	return url.URL{}, false
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if len(s.requests) == maxRecorded {
			s.requests = s.requests[1:]
		}
		s.requests = append(s.requests, *r.URL)
		s.mu.Unlock()
		if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) fixture(name string) http.HandlerFunc {
	body := Fixture(name)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	var h map[string]any
	_ = json.Unmarshal(Fixture("health.json"), &h)
	if s.opts.APIVersion != 0 {
		h["api_version"] = s.opts.APIVersion
	}
	if s.opts.Degraded {
		h["status"] = "degraded"
		h["reason"] = "storage ./data: no space left on device"
		h["storage"].(map[string]any)["ok"] = false
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(h)
		return
	}
	writeJSON(w, h)
}

func (s *Server) alert(w http.ResponseWriter, r *http.Request) {
	var d struct {
		Alert struct {
			ID string `json:"id"`
		} `json:"alert"`
	}
	body := Fixture("alert.json")
	_ = json.Unmarshal(body, &d)
	if r.PathValue("id") != d.Alert.ID {
		writeError(w, http.StatusNotFound, "no alert "+r.PathValue("id"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func allEntities() []map[string]any {
	var out struct {
		Entities []map[string]any `json:"entities"`
	}
	_ = json.Unmarshal(Fixture("entities.json"), &out)
	return out.Entities
}

func (s *Server) entities(w http.ResponseWriter, r *http.Request) {
	typ, q := r.URL.Query().Get("type"), r.URL.Query().Get("q")
	out := []map[string]any{}
	for _, e := range allEntities() {
		if typ != "" && e["type"] != typ {
			continue
		}
		if q != "" && !strings.Contains(e["id"].(string), q) && !strings.Contains(e["name"].(string), q) {
			continue
		}
		out = append(out, e)
	}
	writeJSON(w, map[string]any{"entities": out})
}

func (s *Server) entity(w http.ResponseWriter, r *http.Request) {
	for _, e := range allEntities() {
		if e["id"] == r.PathValue("id") {
			e["alerts"] = []any{}
			writeJSON(w, e)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no entity "+r.PathValue("id"))
}

func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, feature := q.Get("entity"), q.Get("feature")
	if id == "" {
		writeError(w, http.StatusBadRequest, "parameter entity is required")
		return
	}
	if feature == "" {
		writeError(w, http.StatusBadRequest, "parameter feature is required")
		return
	}
	for _, e := range allEntities() {
		if e["id"] != id {
			continue
		}
		var out map[string]any
		_ = json.Unmarshal(Fixture("series.json"), &out)
		out["entity"] = map[string]any{"type": e["type"], "id": e["id"], "name": e["name"]}
		out["feature"] = feature
		if step := q.Get("step"); step != "" {
			out["step"] = step
		}
		writeJSON(w, out)
		return
	}
	writeError(w, http.StatusNotFound, "no entity "+id)
}

// stream sends the fixture events, then holds the stream open until the
// client leaves, like the real server between state changes.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(Fixture("stream.txt"))
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	s.mu.Lock()
	s.streams++
	breaks := s.streams <= s.opts.StreamBreaks
	s.mu.Unlock()
	if breaks {
		return
	}
	<-r.Context().Done()
}
