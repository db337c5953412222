package deploy

// The address check of TestEveryAddressIsServed (addresses_test.go): what
// each layout's components send to and listen on, read from the decoded
// manifests and the configs in their ConfigMaps, and how an address
// resolves to a Service, a pod and a listener.

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// send is one address a component sends to.
type send struct {
	file string // the manifest that says so
	from string // the workload or ConfigMap and the config key or env var
	env  string // the env var the address came from, if any
	ns   string // the sender's namespace
	pod  *pod   // the sender's pod; nil for Grafana
	addr string // as configured, env expanded
	// wants is the listener that must be at the other end (a config key
	// pattern), nil for any.
	wants *regexp.Regexp
}

// listener is an address a collector config listens on.
type listener struct {
	key  string
	host string
	port int
}

type container struct {
	c       corev1.Container
	config  string     // the ConfigMap key it runs, "" for none
	listens []listener // from its config, or its declared ports
}

type pod struct {
	o          object
	kind, name string
	ns         string
	labels     map[string]string
	spec       corev1.PodSpec
	containers []*container
}

func (p *pod) String() string { return fmt.Sprintf("%s %s/%s", p.kind, p.ns, p.name) }

// problem is one address that no Service of the layout serves and that is
// not on the bring list, or one config the check cannot read.
type problem struct {
	file, from, addr, reason string
}

func (p problem) String() string {
	if p.addr == "" {
		return fmt.Sprintf("%s: %s: %s", p.file, p.from, p.reason)
	}
	return fmt.Sprintf("%s: %s sends to %s: %s", p.file, p.from, p.addr, p.reason)
}

// world is one layout's decoded objects.
type world struct {
	objs       []object
	services   []*corev1.Service
	configMaps map[string]*corev1.ConfigMap // ns/name
	secrets    map[string]bool              // ns/name
	pods       []*pod
}

func loadLayout(t *testing.T, l layout) []object {
	t.Helper()
	var objs []object
	for _, f := range l.files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("layout %q: %v", l.name, err)
		}
		o, err := decodeAll(f, data)
		if err != nil {
			t.Fatalf("layout %q: strict decoding: %v", l.name, err)
		}
		objs = append(objs, o...)
	}
	return objs
}

func newWorld(objs []object) *world {
	w := &world{objs: objs, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]bool{}}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			w.services = append(w.services, v)
		case *corev1.ConfigMap:
			w.configMaps[v.Namespace+"/"+v.Name] = v
		case *corev1.Secret:
			w.secrets[v.Namespace+"/"+v.Name] = true
		case *appsv1.Deployment:
			w.pods = append(w.pods, &pod{o: o, kind: "Deployment", name: v.Name, ns: v.Namespace, labels: v.Spec.Template.Labels, spec: v.Spec.Template.Spec})
		case *appsv1.DaemonSet:
			w.pods = append(w.pods, &pod{o: o, kind: "DaemonSet", name: v.Name, ns: v.Namespace, labels: v.Spec.Template.Labels, spec: v.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			w.pods = append(w.pods, &pod{o: o, kind: "StatefulSet", name: v.Name, ns: v.Namespace, labels: v.Spec.Template.Labels, spec: v.Spec.Template.Spec})
		}
	}
	return w
}

// without returns the world minus the Service ns/name.
func (w *world) without(ns, name string) *world {
	var objs []object
	for _, o := range w.objs {
		if s, ok := o.obj.(*corev1.Service); ok && s.Namespace == ns && s.Name == name {
			continue
		}
		objs = append(objs, o)
	}
	return newWorld(objs)
}

// Config keys that hold addresses. A key named like an address that is in
// neither list fails the check, so a new component is classified, not
// skipped.
var (
	listenKeys = []*regexp.Regexp{
		regexp.MustCompile(`^receivers::[^:]+::protocols::[^:]+::endpoint$`),
		regexp.MustCompile(`^exporters::junction(/[^:]*)?::api::endpoint$`),
		regexp.MustCompile(`^extensions::[^:]+::endpoint$`),
	}
	sendKeys = []*regexp.Regexp{
		regexp.MustCompile(`^exporters::[^:]+::(http::)?endpoint$`),
		regexp.MustCompile(`^exporters::[^:]+::brokers::\d+$`),
		regexp.MustCompile(`^exporters::junction(/[^:]*)?::alertmanager::(endpoint|endpoints::\d+)$`),
		regexp.MustCompile(`^receivers::kafka(/[^:]*)?::brokers::\d+$`),
		regexp.MustCompile(`^receivers::kubelet_stats(/[^:]*)?::endpoint$`),
		regexp.MustCompile(`^receivers::junction_ruler(/[^:]*)?::store::endpoint$`),
		regexp.MustCompile(`^receivers::prometheus(/[^:]*)?::config::scrape_configs::\d+::static_configs::\d+::targets::\d+$`),
	}
	addressKey = regexp.MustCompile(`(^|::)(endpoint|endpoints|brokers|targets|url)(::\d+)?$`)
	envRef     = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

	otlpGRPC    = regexp.MustCompile(`^receivers::otlp(/[^:]*)?::protocols::grpc::endpoint$`)
	otlpHTTP    = regexp.MustCompile(`^receivers::otlp(/[^:]*)?::protocols::http::endpoint$`)
	junctionAPI = regexp.MustCompile(`^exporters::junction(/[^:]*)?::api::endpoint$`)
)

// wantsFor is the listener an exporter's endpoint must reach.
func wantsFor(key string) *regexp.Regexp {
	typ := strings.SplitN(strings.Split(key, "::")[1], "/", 2)[0]
	switch {
	case !strings.HasPrefix(key, "exporters::") || !strings.HasSuffix(key, "::endpoint"):
		return nil
	case typ == "otlp" || typ == "otlp_grpc":
		return otlpGRPC
	case typ == "otlphttp" || typ == "otlp_http":
		return otlpHTTP
	}
	return nil
}

// envOf is what a container's environment holds: literal values, and for
// values from the downward API, Secrets and ConfigMaps a placeholder that
// names the source ($(spec.nodeName)).
func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "$(" + e.ValueFrom.FieldRef.FieldPath + ")"
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "$(" + e.ValueFrom.ResourceFieldRef.Resource + ")"
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "$(secret " + e.ValueFrom.SecretKeyRef.Name + ")"
		case e.ValueFrom.ConfigMapKeyRef != nil:
			env[e.Name] = "$(configmap " + e.ValueFrom.ConfigMapKeyRef.Name + ")"
		}
	}
	return env
}

// configOf finds the collector config a container runs: --config=PATH, the
// volume mounted at PATH's directory, its ConfigMap in the layout, the key
// PATH's base name.
func (w *world) configOf(p *pod, c corev1.Container) (key, data string, err error) {
	var cfg string
	for i, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--config="):
			cfg = strings.TrimPrefix(a, "--config=")
		case a == "--config" && i+1 < len(c.Args):
			cfg = c.Args[i+1]
		}
	}
	if cfg == "" {
		return "", "", nil
	}
	cfg = strings.TrimPrefix(cfg, "file:")
	dir, base := path.Split(cfg)
	dir = strings.TrimSuffix(dir, "/")
	for _, m := range c.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range p.spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := w.configMaps[p.ns+"/"+v.ConfigMap.Name]
			if cm == nil {
				return "", "", fmt.Errorf("container %s runs --config=%s from the ConfigMap %s/%s, which is not in this layout", c.Name, cfg, p.ns, v.ConfigMap.Name)
			}
			d, ok := cm.Data[base]
			if !ok {
				return "", "", fmt.Errorf("container %s runs --config=%s; the ConfigMap %s/%s has no key %s", c.Name, cfg, p.ns, v.ConfigMap.Name, base)
			}
			return cm.Name + "/" + base, d, nil
		}
	}
	return "", "", fmt.Errorf("container %s runs --config=%s, but no ConfigMap volume is mounted at %s", c.Name, cfg, dir)
}

// walk calls fn with every scalar of a decoded YAML document and its path
// ("exporters::otlp_grpc/alerts::endpoint", list items by index).
func walk(prefix string, v any, fn func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			p := k
			if prefix != "" {
				p = prefix + "::" + k
			}
			walk(p, sub, fn)
		}
	case []any:
		for i, sub := range x {
			walk(prefix+"::"+strconv.Itoa(i), sub, fn)
		}
	default:
		fn(prefix, v)
	}
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

// looksLikeAddress: a URL with a scheme, or host:port.
var hostPort = regexp.MustCompile(`^[A-Za-z0-9$().-]+:\d+$`)

func looksLikeAddress(s string) bool {
	if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "grpc") {
		return true
	}
	return hostPort.MatchString(s)
}

// collect reads every pod's containers and every Grafana data source of the
// layout: what each sends to, and what each listens on.
func (w *world) collect() ([]send, []problem) {
	var sends []send
	var probs []problem
	for _, p := range w.pods {
		for _, c := range append(append([]corev1.Container{}, p.spec.InitContainers...), p.spec.Containers...) {
			ct := &container{c: c}
			p.containers = append(p.containers, ct)
			from := fmt.Sprintf("%s container %s", p, c.Name)
			key, data, err := w.configOf(p, c)
			if err != nil {
				probs = append(probs, problem{file: p.o.file, from: from, reason: err.Error()})
				continue
			}
			env := envOf(c)
			if key == "" {
				// Not a collector: its declared ports are what it
				// listens on, its address-like env values what it sends
				// to.
				for _, cp := range c.Ports {
					ct.listens = append(ct.listens, listener{key: "port " + cp.Name, host: "0.0.0.0", port: int(cp.ContainerPort)})
				}
				for _, name := range keys(env) {
					if looksLikeAddress(env[name]) {
						sends = append(sends, send{file: p.o.file, from: from + " env " + name, env: name, ns: p.ns, pod: p, addr: env[name]})
					}
				}
				continue
			}
			ct.config = key
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
				probs = append(probs, problem{file: p.o.file, from: from, reason: fmt.Sprintf("config %s: %v", key, err)})
				continue
			}
			used := map[string]bool{}
			expand := func(k string, s string) (string, string) {
				var via string
				out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
					name := envRef.FindStringSubmatch(ref)[1]
					used[name] = true
					via = name
					v, ok := env[name]
					if !ok {
						probs = append(probs, problem{file: p.o.file, from: from, reason: fmt.Sprintf("config %s: %s uses ${env:%s}, which the container does not set", key, k, name)})
					}
					return v
				})
				return out, via
			}
			walk("", doc, func(k string, v any) {
				s, isString := v.(string)
				if !isString {
					return
				}
				val, via := expand(k, s)
				if k == "service" || strings.HasPrefix(k, "service::") {
					return
				}
				isListen, isSend := false, false
				for _, re := range listenKeys {
					isListen = isListen || re.MatchString(k)
				}
				for _, re := range sendKeys {
					isSend = isSend || re.MatchString(k)
				}
				switch {
				case isListen:
					host, port, err := splitAddr(val)
					if err != nil {
						probs = append(probs, problem{file: p.o.file, from: from, reason: fmt.Sprintf("config %s: %s: %v", key, k, err)})
						return
					}
					ct.listens = append(ct.listens, listener{key: k, host: host, port: port})
				case isSend:
					sends = append(sends, send{file: p.o.file, from: fmt.Sprintf("%s (%s %s)", from, key, k), env: via, ns: p.ns, pod: p, addr: val, wants: wantsFor(k)})
				case addressKey.MatchString(k):
					probs = append(probs, problem{file: p.o.file, from: from, reason: fmt.Sprintf("config %s: %s = %q: the check does not know whether it listens or sends; classify the key in addresses_test.go", key, k, val)})
				}
			})
			// The telemetry readers' host and port are two keys.
			if svc, ok := doc["service"].(map[string]any); ok {
				readers := dig(svc, "telemetry", "metrics", "readers")
				list, _ := readers.([]any)
				for i, r := range list {
					prom, _ := dig(r, "pull", "exporter", "prometheus").(map[string]any)
					if prom == nil {
						continue
					}
					host, _ := prom["host"].(string)
					host, _ = expand("", host)
					port, _ := asInt(prom["port"])
					ct.listens = append(ct.listens, listener{key: fmt.Sprintf("service::telemetry::metrics::readers::%d::pull::exporter::prometheus", i), host: host, port: port})
				}
			}
			for _, name := range keys(env) {
				if looksLikeAddress(env[name]) && !used[name] {
					probs = append(probs, problem{file: p.o.file, from: from, reason: fmt.Sprintf("env %s=%s is set, but config %s does not use it", name, env[name], key)})
				}
			}
		}
	}
	for _, nsName := range keys(w.configMaps) {
		cm := w.configMaps[nsName]
		for _, k := range keys(cm.Data) {
			var prov struct {
				APIVersion  any `json:"apiVersion"`
				Datasources []struct {
					Name           string            `json:"name"`
					Type           string            `json:"type"`
					URL            string            `json:"url"`
					SecureJSONData map[string]string `json:"secureJsonData"`
				} `json:"datasources"`
			}
			if yaml.Unmarshal([]byte(cm.Data[k]), &prov) != nil || prov.APIVersion == nil || len(prov.Datasources) == 0 {
				continue
			}
			file := w.fileOf(cm)
			for i, ds := range prov.Datasources {
				from := fmt.Sprintf("Grafana data source %q (ConfigMap %s key %s, datasources[%d].url)", ds.Name, nsName, k, i)
				var wants *regexp.Regexp
				if ds.Type == "junction-junction-datasource" {
					wants = junctionAPI
				}
				sends = append(sends, send{file: file, from: from, ns: cm.Namespace, addr: ds.URL, wants: wants})
				if tok, ok := ds.SecureJSONData["bearerToken"]; ok && !regexp.MustCompile(`^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$`).MatchString(tok) {
					probs = append(probs, problem{file: file, from: from, reason: "secureJsonData.bearerToken must come from Grafana's environment ($JUNCTION_TOKEN), not be written in the ConfigMap"})
				}
			}
		}
	}
	return sends, probs
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func (w *world) fileOf(obj any) string {
	for _, o := range w.objs {
		if o.obj == obj {
			return o.file
		}
	}
	return "?"
}

// splitAddr parses host:port or a URL (default ports for http and https).
func splitAddr(s string) (string, int, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", 0, err
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return "", 0, fmt.Errorf("%q has no port", s)
		}
		return u.Hostname(), n, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("%q: port %q is not a number", s, port)
	}
	return host, n, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func isWildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "::" }

// check resolves every send of the layout. It returns the problems and,
// for each external dependency, the sends that use it.
func (w *world) check() ([]problem, map[string][]send) {
	sends, probs := w.collect()
	external := map[string]bool{}
	for _, d := range bring {
		external[d.address] = true
	}
	used := map[string][]send{}
	for _, s := range sends {
		host, port, err := splitAddr(s.addr)
		if err != nil {
			probs = append(probs, problem{s.file, s.from, s.addr, err.Error()})
			continue
		}
		hp := net.JoinHostPort(host, strconv.Itoa(port))
		switch {
		case isLoopback(host):
			if reason := w.servedInPod(s, port); reason != "" {
				probs = append(probs, problem{s.file, s.from, s.addr, reason})
			}
		case external[hp]:
			used[hp] = append(used[hp], s)
		default:
			if reason := w.servedByService(s, host, port); reason != "" {
				probs = append(probs, problem{s.file, s.from, s.addr, reason})
			}
		}
	}
	// Secrets the pods read.
	for _, p := range w.pods {
		for _, name := range secretsOf(p.spec) {
			ref := "Secret " + p.ns + "/" + name
			switch {
			case w.secrets[p.ns+"/"+name]:
			case external[ref]:
				used[ref] = append(used[ref], send{file: p.o.file, from: p.String()})
			default:
				probs = append(probs, problem{file: p.o.file, from: p.String(), reason: fmt.Sprintf("reads the Secret %s/%s, which no manifest defines and which is not on the list of what the user brings", p.ns, name)})
			}
		}
	}
	for _, s := range sends {
		if s.pod == nil {
			ref := "Grafana " + s.ns
			if !external[ref] {
				probs = append(probs, problem{s.file, s.from, s.addr, fmt.Sprintf("a Grafana data source in namespace %s, where the list of what the user brings has no Grafana", s.ns)})
			}
			used[ref] = append(used[ref], s)
		}
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].String() < probs[j].String() })
	return probs, used
}

func secretsOf(spec corev1.PodSpec) []string {
	set := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			set[v.Secret.SecretName] = true
		}
	}
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				set[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				set[e.SecretRef.Name] = true
			}
		}
	}
	return keys(set)
}

// servedInPod: a loopback address must be listened on by a container of
// the sender's own pod.
func (w *world) servedInPod(s send, port int) string {
	if s.pod == nil {
		return "a loopback address outside a pod"
	}
	for _, c := range s.pod.containers {
		for _, l := range c.listens {
			if l.port == port && (isLoopback(l.host) || isWildcard(l.host)) {
				return matchWants(s, c, l)
			}
		}
	}
	return fmt.Sprintf("no container of %s listens on port %d", s.pod, port)
}

func matchWants(s send, c *container, l listener) string {
	if s.wants != nil && c.config != "" && !s.wants.MatchString(l.key) {
		return fmt.Sprintf("port %d of container %s is %s (config %s), not what this sender speaks to (%s)", l.port, c.c.Name, l.key, c.config, s.wants)
	}
	if s.wants != nil && c.config == "" {
		return fmt.Sprintf("port %d is served by container %s, which runs no Junction config; want %s", l.port, c.c.Name, s.wants)
	}
	return ""
}

// servedByService: host names a Service of the layout (name, name.ns,
// name.ns.svc, name.ns.svc.cluster.local) with the port, whose selector
// picks pods of the layout, each with a container listening on the
// target port on an address the Service reaches.
func (w *world) servedByService(s send, host string, port int) string {
	h := strings.TrimSuffix(strings.TrimSuffix(host, ".cluster.local"), ".svc")
	parts := strings.Split(h, ".")
	name, ns := parts[0], s.ns
	switch len(parts) {
	case 1:
	case 2:
		ns = parts[1]
	default:
		return "not a Service name of this layout (name.namespace) and not on the list of what the user brings"
	}
	var svc *corev1.Service
	for _, v := range w.services {
		if v.Name == name && v.Namespace == ns {
			svc = v
		}
	}
	if svc == nil {
		return fmt.Sprintf("no Service %s/%s in this layout, and %s:%d is not on the list of what the user brings", ns, name, host, port)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if int(svc.Spec.Ports[i].Port) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return fmt.Sprintf("the Service %s/%s has no port %d", ns, name, port)
	}
	if len(svc.Spec.Selector) == 0 {
		return fmt.Sprintf("the Service %s/%s has no selector", ns, name)
	}
	var picked []*pod
	for _, p := range w.pods {
		if p.ns != ns {
			continue
		}
		match := true
		for k, v := range svc.Spec.Selector {
			match = match && p.labels[k] == v
		}
		if match {
			picked = append(picked, p)
		}
	}
	if len(picked) == 0 {
		return fmt.Sprintf("the Service %s/%s selects %v, which no pod template of this layout has", ns, name, svc.Spec.Selector)
	}
	for _, p := range picked {
		if reason := servesPort(s, p, sp); reason != "" {
			return fmt.Sprintf("the Service %s/%s port %d picks %s: %s", ns, name, port, p, reason)
		}
	}
	return ""
}

func servesPort(s send, p *pod, sp *corev1.ServicePort) string {
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range p.containers {
		for _, cp := range c.c.Ports {
			cproto := cp.Protocol
			if cproto == "" {
				cproto = corev1.ProtocolTCP
			}
			var hit bool
			switch {
			case sp.TargetPort.Type == intstr.String:
				hit = cp.Name == sp.TargetPort.StrVal
			case sp.TargetPort.IntVal != 0:
				hit = cp.ContainerPort == sp.TargetPort.IntVal
			default:
				hit = cp.ContainerPort == sp.Port
			}
			if !hit {
				continue
			}
			if cproto != proto {
				return fmt.Sprintf("container %s port %s is %s, the Service's %s", c.c.Name, cp.Name, cproto, proto)
			}
			for _, l := range c.listens {
				if l.port != int(cp.ContainerPort) {
					continue
				}
				if !isWildcard(l.host) {
					return fmt.Sprintf("container %s listens on %s:%d (%s), which the Service cannot reach: listen on 0.0.0.0", c.c.Name, l.host, l.port, l.key)
				}
				return matchWants(s, c, l)
			}
			return fmt.Sprintf("container %s declares port %d, but its config %s listens on none of it", c.c.Name, cp.ContainerPort, c.config)
		}
	}
	return fmt.Sprintf("no container declares the target port %s", sp.TargetPort.String())
}
