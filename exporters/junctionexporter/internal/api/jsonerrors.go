package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// JSONErrors wraps the whole server handler (auth included) so that plain
// text errors written by the layers around the API, such as the 401 of the
// collector's auth interceptor, reach clients as {"error": "..."} like the
// API's own errors.
func JSONErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jw := &jsonErrorWriter{ResponseWriter: w}
		next.ServeHTTP(jw, r)
		jw.finish()
	})
}

type jsonErrorWriter struct {
	http.ResponseWriter
	code     int
	buffered bool
	body     bytes.Buffer
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.code, w.buffered = code, true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.buffered {
		return w.body.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets streams through.
func (w *jsonErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.buffered {
		f.Flush()
	}
}

func (w *jsonErrorWriter) finish() {
	if !w.buffered {
		return
	}
	h := w.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Del("X-Content-Type-Options")
	h.Set("Content-Type", "application/json")
	w.ResponseWriter.WriteHeader(w.code)
	_ = json.NewEncoder(w.ResponseWriter).Encode(map[string]string{"error": strings.TrimSpace(w.body.String())})
}
