package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// A layout is a set of manifests applied together, in this order
// (docs/deploy.md "Applying" is generated from it). Every address a
// component of a layout sends to must be served by a Service of the same
// layout or be on the list of what the user brings.
type layout struct {
	name  string
	files []string
}

var layouts = []layout{
	{"single node", []string{"namespace.yaml", "configmaps.yaml", "single-node.yaml", "grafana-datasource.yaml"}},
	{"standalone agents", []string{"namespace.yaml", "rbac.yaml", "configmaps.yaml", "store.yaml", "ruler.yaml", "daemonset.yaml", "grafana-datasource.yaml"}},
	{"gateway tier", []string{"namespace.yaml", "rbac.yaml", "configmaps.yaml", "store.yaml", "ruler.yaml", "gateway.yaml", "daemonset-kafka.yaml", "grafana-datasource.yaml"}},
	{"gateway tier with sidecar agents (the example application)", []string{"namespace.yaml", "rbac.yaml", "configmaps.yaml", "store.yaml", "ruler.yaml", "gateway.yaml", "sidecar-configmap.yaml", "sidecar.yaml", "grafana-datasource.yaml"}},
}

// dependency is something the manifests send to or need that no manifest
// of deploy/ provides: the user brings it (docs/deploy.md "What you bring",
// generated from this list).
type dependency struct {
	// address is host:port as the manifests name it, "Secret ns/name", or
	// "Grafana ns" (the namespace of the data source ConfigMap).
	address string
	what    string
}

var bring = []dependency{
	{"kafka.kafka:9092", "Kafka: the brokers of the topics `junction-traces`, `junction-metrics`, `junction-logs` (created beforehand, below)"},
	{"vminsert.monitoring:8480", "VictoriaMetrics cluster, `vminsert` (or a single-node VictoriaMetrics or Prometheus with remote write on): derived, mergeable and `ALERTS` series"},
	{"vmselect.monitoring:8481", "VictoriaMetrics cluster, `vmselect` (or any Prometheus query API over the same series): the ruler's merged graph"},
	{"tempo-distributor.monitoring:4317", "Tempo's distributor, or any OTLP/gRPC backend for traces (and the gateway's logs)"},
	{"alertmanager.monitoring:9093", "Alertmanager: firing and resolved alerts from the store"},
	{"$(spec.nodeName):10250", "each node's kubelet (part of Kubernetes; the agent reads it with its service account)"},
	{"Secret junction/junction-api-token", "the query API's bearer token, key `token` (\"The API token\", above)"},
	{"Grafana monitoring", "Grafana 12.3 or newer with the Junction plugin, in namespace `monitoring`, loading the data source ConfigMap and with `JUNCTION_TOKEN` set from the Secret `monitoring/junction-api-token` (docs/grafana.md \"In a cluster\")"},
}

// TestEveryAddressIsServed renders each layout and checks that every
// address a component sends to (exporter and receiver endpoints, Kafka
// brokers, Alertmanager, address-like env values, the Grafana data source
// URL) is served by a Service of the layout or is something the user
// brings; that every manifest is in a layout; and that every entry of the
// bring list is used.
func TestEveryAddressIsServed(t *testing.T) {
	inLayout := map[string]bool{}
	usedBy := map[string][]send{}
	for _, l := range layouts {
		for _, f := range l.files {
			inLayout[f] = true
		}
		t.Run(l.name, func(t *testing.T) {
			w := newWorld(loadLayout(t, l))
			probs, used := w.check()
			for _, p := range probs {
				t.Error(p)
			}
			for k, v := range used {
				usedBy[k] = append(usedBy[k], v...)
			}
			seen := map[string]string{}
			for _, o := range w.objs {
				id := fmt.Sprintf("%T %s", o.obj, objectName(o))
				if prev, ok := seen[id]; ok {
					t.Errorf("%s and %s both define %s: applying the layout would overwrite one with the other", prev, o, id)
				}
				seen[id] = o.String()
			}
		})
	}
	for _, f := range manifestFiles(t) {
		if !inLayout[f] {
			t.Errorf("%s is in no layout of addresses_test.go: its addresses are not checked", f)
		}
	}
	for _, d := range bring {
		if len(usedBy[d.address]) == 0 {
			t.Errorf("the bring list has %s (%s), which no manifest uses: remove it", d.address, d.what)
		}
	}
	gen := genBring(usedBy)
	updateDocBlock(t, "../docs/deploy.md", "bring", gen)
	updateDocBlock(t, "../docs/deploy.md", "apply", genApply())
}

func objectName(o object) string {
	type named interface {
		GetName() string
		GetNamespace() string
	}
	if n, ok := o.obj.(named); ok {
		return n.GetNamespace() + "/" + n.GetName()
	}
	return "?"
}

// TestDanglingAddressIsReported proves the check above can fail: each case
// breaks the gateway tier one way and expects exactly the sends that
// break.
func TestDanglingAddressIsReported(t *testing.T) {
	var gw layout
	for _, l := range layouts {
		if l.name == "gateway tier" {
			gw = l
		}
	}
	base := newWorld(loadLayout(t, gw))
	if probs, _ := base.check(); len(probs) != 0 {
		t.Fatalf("the gateway tier has problems before any change: %v", probs)
	}

	t.Run("Service removed", func(t *testing.T) {
		probs, _ := base.without("junction", "junction-store").check()
		got := map[string]string{}
		for _, p := range probs {
			got[p.file+" "+p.addr] = p.reason
		}
		want := []string{
			"ruler.yaml junction-store.junction:4317",
			grafanaConfigMapFile + " http://junction-store.junction:8480",
		}
		if len(got) != len(want) {
			t.Errorf("removing the Service junction/junction-store: %d problems, want %d: %v", len(probs), len(want), probs)
		}
		for _, w := range want {
			reason, ok := got[w]
			if !ok {
				t.Errorf("removing the Service junction/junction-store: %q not reported (got %v)", w, probs)
				continue
			}
			if !strings.Contains(reason, "no Service junction/junction-store") {
				t.Errorf("%s: reason %q does not name the missing Service", w, reason)
			}
		}
	})

	// Each mutation edits the decoded objects of one fresh copy.
	mutate := func(t *testing.T, edit func(w *world)) []problem {
		t.Helper()
		w := newWorld(loadLayout(t, gw))
		edit(w)
		w = newWorld(w.objs)
		probs, _ := w.check()
		return probs
	}
	store := func(w *world) *appsv1.StatefulSet {
		for _, o := range w.objs {
			if s, ok := o.obj.(*appsv1.StatefulSet); ok && s.Name == "junction-store" {
				return s
			}
		}
		t.Fatal("no StatefulSet junction-store")
		return nil
	}
	service := func(w *world) *corev1.Service {
		for _, s := range w.services {
			if s.Name == "junction-store" {
				return s
			}
		}
		t.Fatal("no Service junction-store")
		return nil
	}
	tests := []struct {
		name      string
		edit      func(w *world)
		wantAddrs []string
		wantInMsg string
	}{
		{"Service port changed", func(w *world) { service(w).Spec.Ports[0].Port = 4319 },
			[]string{"junction-store.junction:4317"}, "has no port 4317"},
		{"selector matches no pod", func(w *world) { service(w).Spec.Selector["app.kubernetes.io/component"] = "stor" },
			[]string{"http://junction-store.junction:8480", "junction-store.junction:4317"}, "which no pod template of this layout has"},
		{"target port not declared", func(w *world) {
			c := &store(w).Spec.Template.Spec.Containers[0]
			c.Ports = c.Ports[1:]
		},
			[]string{"junction-store.junction:4317"}, "no container declares the target port otlp-grpc"},
		{"API on loopback", func(w *world) {
			cm := w.configMaps["junction/junction-store"]
			cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], "endpoint: 0.0.0.0:8480", "endpoint: 127.0.0.1:8480", 1)
		},
			[]string{"http://junction-store.junction:8480"}, "listens on 127.0.0.1:8480"},
		{"Grafana URL at the OTLP port", func(w *world) {
			cm := w.configMaps[grafanaNamespace+"/"+grafanaConfigMap]
			for k, v := range cm.Data {
				cm.Data[k] = strings.Replace(v, "url: http://junction-store.junction:8480", "url: http://junction-store.junction:4317", 1)
			}
		},
			[]string{"http://junction-store.junction:4317"}, "not what this sender speaks to"},
		{"env var unused", func(w *world) {
			c := &store(w).Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "EXTRA_URL", Value: "http://nowhere.monitoring:1234"})
		},
			[]string{""}, "env EXTRA_URL=http://nowhere.monitoring:1234 is set, but config"},
		{"external address changed", func(w *world) {
			for _, o := range w.objs {
				if s, ok := o.obj.(*appsv1.StatefulSet); ok {
					for i := range s.Spec.Template.Spec.Containers[0].Env {
						if e := &s.Spec.Template.Spec.Containers[0].Env[i]; e.Name == "ALERTMANAGER_URL" {
							e.Value = "http://alertmanager.observability:9093"
						}
					}
				}
			}
		},
			[]string{"http://alertmanager.observability:9093"}, "no Service observability/alertmanager"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs := mutate(t, tt.edit)
			var got []string
			for _, p := range probs {
				got = append(got, p.addr)
				if !strings.Contains(p.reason, tt.wantInMsg) {
					t.Errorf("got %s; want a reason with %q", p, tt.wantInMsg)
				}
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tt.wantAddrs, " ") {
				t.Fatalf("problems at %q, want %q: %v", got, tt.wantAddrs, probs)
			}
		})
	}
}

// TestGrafanaPointsAtTheAPI: in every layout with a Grafana data source,
// its URL is the Service port whose pods serve the junction exporter's
// query API, and the store that serves it requires the bearer token.
func TestGrafanaPointsAtTheAPI(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			w := newWorld(loadLayout(t, l))
			sends, probs := w.collect()
			if len(probs) != 0 {
				t.Fatal(probs)
			}
			var grafana []send
			for _, s := range sends {
				if s.pod == nil {
					grafana = append(grafana, s)
				}
			}
			if len(grafana) != 1 {
				t.Fatalf("%d Grafana data sources, want 1", len(grafana))
			}
			g := grafana[0]
			if g.wants != junctionAPI {
				t.Fatalf("%s: not a Junction data source", g.from)
			}
			host, port, err := splitAddr(g.addr)
			if err != nil {
				t.Fatal(err)
			}
			if reason := w.servedByService(g, host, port); reason != "" {
				t.Fatalf("%s: %s: %s", g.from, g.addr, reason)
			}
			// The pod behind it checks tokens on that listener.
			apis := 0
			for _, p := range w.pods {
				for _, c := range p.containers {
					for _, lst := range c.listens {
						if lst.port != port || !junctionAPI.MatchString(lst.key) {
							continue
						}
						var doc map[string]any
						if err := yaml.Unmarshal([]byte(w.configMaps[p.ns+"/"+strings.Split(c.config, "/")[0]].Data["config.yaml"]), &doc); err != nil {
							t.Fatal(err)
						}
						apis++
						auth, _ := dig(doc, "exporters", "junction", "api", "auth", "authenticator").(string)
						file, _ := dig(doc, "extensions", auth, "filename").(string)
						if auth != "bearertokenauth" || file == "" {
							t.Errorf("%s: the API has authenticator %q, token file %q: want bearertokenauth reading the mounted Secret", p, auth, file)
						}
						mounted := false
						for _, m := range c.c.VolumeMounts {
							for _, v := range p.spec.Volumes {
								if v.Name == m.Name && v.Secret != nil && strings.HasPrefix(file, m.MountPath+"/") {
									mounted = true
								}
							}
						}
						if !mounted {
							t.Errorf("%s: the token file %s is not on a Secret volume", p, file)
						}
					}
				}
			}
			if apis != 1 {
				t.Errorf("%d pods serve the junction API on port %d, want 1", apis, port)
			}
		})
	}
}

// genBring is the "What you bring" table of docs/deploy.md.
func genBring(usedBy map[string][]send) string {
	var b strings.Builder
	b.WriteString("| what you bring | as the manifests name it | named in |\n| --- | --- | --- |\n")
	for _, d := range bring {
		where := map[string]map[string]bool{}
		for _, s := range usedBy[d.address] {
			if where[s.file] == nil {
				where[s.file] = map[string]bool{}
			}
			if s.env != "" {
				where[s.file]["`"+s.env+"`"] = true
			}
		}
		var cells []string
		for _, f := range keys(where) {
			c := "`deploy/" + f + "`"
			if vars := keys(where[f]); len(vars) > 0 {
				c += " (" + strings.Join(vars, ", ") + ")"
			}
			cells = append(cells, c)
		}
		name := "`" + d.address + "`"
		switch kind, rest, _ := strings.Cut(d.address, " "); kind {
		case "Secret":
			name = "Secret `" + rest + "`"
		case "Grafana":
			name = "namespace `" + rest + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", d.what, name, strings.Join(cells, ", "))
	}
	return b.String()
}

// genApply is the apply order of each layout in docs/deploy.md.
func genApply() string {
	var b strings.Builder
	b.WriteString("```\n")
	for i, l := range layouts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# %s\nkubectl apply", l.name)
		for _, f := range l.files {
			fmt.Fprintf(&b, " \\\n  -f deploy/%s", f)
		}
		b.WriteString("\n")
	}
	b.WriteString("```\n")
	return b.String()
}

// updateDocBlock checks (or with -update rewrites) the block between
// <!-- BEGIN GENERATED name --> and <!-- END GENERATED name --> of a doc.
func updateDocBlock(t *testing.T, doc, name, gen string) {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)<!-- BEGIN GENERATED ` + name + ` -->\n.*?<!-- END GENERATED ` + name + ` -->`)
	if !re.Match(data) {
		t.Fatalf("%s has no <!-- BEGIN GENERATED %s --> ... <!-- END GENERATED %s --> block", doc, name, name)
	}
	out := re.ReplaceAllLiteralString(string(data), "<!-- BEGIN GENERATED "+name+" -->\n"+gen+"<!-- END GENERATED "+name+" -->")
	if *update {
		if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out != string(data) {
		t.Errorf("%s: the %q block is out of date: run `go test ./deploy -run TestEveryAddressIsServed -update`", doc, name)
	}
}

// TestClusterDataSourceMatchesLocal keeps the cluster's data source
// (grafana/junction-datasource.yaml) in step with the plugin's local one
// (grafana-plugin/provisioning/datasources/junction.yml): the same
// plugin, uid, settings and token variable; only the URL and editable
// differ.
func TestClusterDataSourceMatchesLocal(t *testing.T) {
	read := func(p string) map[string]any {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Datasources []map[string]any `json:"datasources"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(doc.Datasources) != 1 {
			t.Fatalf("%s: %d data sources, want 1", p, len(doc.Datasources))
		}
		return doc.Datasources[0]
	}
	local := read("../grafana-plugin/provisioning/datasources/junction.yml")
	cluster := read(filepath.Join("grafana", "junction-datasource.yaml"))
	if cluster["url"] != "http://junction-store.junction:8480" {
		t.Errorf("cluster data source url = %v", cluster["url"])
	}
	for _, k := range []string{"url", "editable"} {
		delete(local, k)
		delete(cluster, k)
	}
	l, _ := json.Marshal(local)
	c, _ := json.Marshal(cluster)
	if string(l) != string(c) {
		t.Errorf("the cluster's data source differs from the local one beyond url and editable:\nlocal   %s\ncluster %s", l, c)
	}
}

// TestSingleNodeAndStoreSwap: single-node.yaml and store.yaml are one
// StatefulSet with two configs, so applying one over the other updates it
// in place and keeps the claim (docs/deploy.md "Layouts"). The API server
// refuses an update that changes a StatefulSet's selector, serviceName,
// podManagementPolicy or volume claim templates; they must be equal, and
// so must the Service's selector and the ports both layouts' senders use.
func TestSingleNodeAndStoreSwap(t *testing.T) {
	type pair struct {
		sts *appsv1.StatefulSet
		svc *corev1.Service
	}
	load := func(f string) pair {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(f, data)
		if err != nil {
			t.Fatal(err)
		}
		var p pair
		for _, o := range objs {
			switch v := o.obj.(type) {
			case *appsv1.StatefulSet:
				p.sts = v
			case *corev1.Service:
				p.svc = v
			}
		}
		if p.sts == nil || p.svc == nil {
			t.Fatalf("%s: want a StatefulSet and a Service", f)
		}
		return p
	}
	single, store := load("single-node.yaml"), load("store.yaml")
	same := func(what string, a, b any) {
		t.Helper()
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s differs between single-node.yaml and store.yaml:\n%s\n%s", what, ja, jb)
		}
	}
	same("StatefulSet name", single.sts.Namespace+"/"+single.sts.Name, store.sts.Namespace+"/"+store.sts.Name)
	same("spec.selector", single.sts.Spec.Selector, store.sts.Spec.Selector)
	same("spec.serviceName", single.sts.Spec.ServiceName, store.sts.Spec.ServiceName)
	same("spec.podManagementPolicy", single.sts.Spec.PodManagementPolicy, store.sts.Spec.PodManagementPolicy)
	same("spec.volumeClaimTemplates", single.sts.Spec.VolumeClaimTemplates, store.sts.Spec.VolumeClaimTemplates)
	same("Service name", single.svc.Namespace+"/"+single.svc.Name, store.svc.Namespace+"/"+store.svc.Name)
	same("Service selector", single.svc.Spec.Selector, store.svc.Spec.Selector)
	ports := func(s *corev1.Service) map[int32]string {
		m := map[int32]string{}
		for _, p := range s.Spec.Ports {
			m[p.Port] = p.Name
		}
		return m
	}
	sp := ports(single.svc)
	for port, name := range ports(store.svc) {
		if sp[port] != name {
			t.Errorf("store.yaml's Service port %d (%s) is %q in single-node.yaml", port, name, sp[port])
		}
	}
}
