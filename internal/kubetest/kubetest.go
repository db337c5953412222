// Package kubetest is a fake Kubernetes API server for tests that run a
// receiver watching the API (the k8s_cluster receiver) outside a cluster.
// It serves the core v1 discovery document with pods only, lists of the
// pods it was given, watches that send them (a watch list) or nothing and
// stay open, and 404 for
// every other path, so the receiver watches pods and nothing else
// (discovery's 404 tells it a kind is not served). The receiver reaches it
// through a kubeconfig (auth_type kubeConfig, KUBECONFIG).
package kubetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// API is a running fake API server.
type API struct {
	// URL is the server's address.
	URL string
	// Kubeconfig is a kubeconfig file naming the server as the current
	// context, for KUBECONFIG.
	Kubeconfig string
}

// Start serves pods until the test ends.
func Start(t testing.TB, pods ...corev1.Pod) *API {
	t.Helper()
	done := make(chan struct{})
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1", func(w http.ResponseWriter, r *http.Request) {
		write(w, metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list", "watch"}}},
		})
	})
	items := make([]corev1.Pod, 0, len(pods))
	for _, p := range pods {
		p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
		if p.ResourceVersion == "" {
			p.ResourceVersion = "1"
		}
		items = append(items, p)
	}
	mux.HandleFunc("/api/v1/pods", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("watch") != "true" && q.Get("watch") != "1" {
			write(w, corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "1"}, Items: items})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		// A watch list (client-go's default from v0.35 on) starts with the
		// pods as ADDED events and a bookmark that ends them.
		if q.Get("sendInitialEvents") == "true" {
			for i := range items {
				_ = enc.Encode(map[string]any{"type": "ADDED", "object": &items[i]})
			}
			_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
				"kind": "Pod", "apiVersion": "v1",
				"metadata": map[string]any{"resourceVersion": "1", "annotations": map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
			}})
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound,
			Message: fmt.Sprintf("%s is not served by this fake API", r.URL.Path),
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		once.Do(func() { close(done) })
		srv.Close()
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: %s
users:
  - name: fake
    user:
      token: fake-token
contexts:
  - name: fake
    context:
      cluster: fake
      user: fake
current-context: fake
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &API{URL: srv.URL, Kubeconfig: kubeconfig}
}

func write(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
