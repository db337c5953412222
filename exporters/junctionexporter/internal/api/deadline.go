package api

import (
	"net/http"
	"time"
)

// StreamPath is the one endpoint whose response lasts as long as its
// client stays: the live stream of alert changes.
const StreamPath = "/api/v1/stream"

// WriteDeadlines gives every response but the stream a write deadline of
// timeout from its start, as http.Server's WriteTimeout would, and leaves
// the stream without one. It must wrap everything else: the collector's
// HTTP server middleware (otelhttp, decompression) wraps the
// ResponseWriter in types that do not unwrap, so a handler inside cannot
// lift the server's own deadline (http.ResponseController returns
// http.ErrNotSupported) and a stream would end at write_timeout. The
// server's WriteTimeout is therefore 0 and the deadline is set here, on
// the connection's own writer. timeout 0 sets none.
func WriteDeadlines(next http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StreamPath {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}
