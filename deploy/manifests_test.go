package deploy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "regenerate the ConfigMap files from configs/")

// strict decodes YAML into the client-go scheme's types and fails on unknown
// and duplicate fields, as `kubectl apply --validate=strict` does.
var strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// object is one decoded manifest document.
type object struct {
	file string
	doc  int
	obj  runtime.Object
}

func (o object) String() string { return fmt.Sprintf("%s (document %d)", o.file, o.doc) }

// decodeAll decodes every document of one manifest file strictly.
func decodeAll(name string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufioReader(data))
	var out []object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			i--
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		out = append(out, object{file: name, doc: i, obj: obj})
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func manifestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d manifests in deploy/, want at least 6: %v", len(files), files)
	}
	return files
}

func decodeManifests(t *testing.T) []object {
	t.Helper()
	var all []object
	for _, f := range manifestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(f, data)
		if err != nil {
			t.Fatalf("strict decoding: %v", err)
		}
		all = append(all, objs...)
	}
	return all
}

// TestManifestsDecodeStrictly decodes every document of every manifest
// into its Kubernetes API type; a misspelt or unknown field fails.
func TestManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	for _, o := range decodeManifests(t) {
		kinds[fmt.Sprintf("%T", o.obj)]++
	}
	for _, want := range []string{
		"*v1.DaemonSet", "*v1.Deployment", "*v2.HorizontalPodAutoscaler",
		"*v1.PodDisruptionBudget", "*v1.ConfigMap", "*v1.ClusterRole",
		"*v1.ClusterRoleBinding", "*v1.ServiceAccount", "*v1.Namespace",
		"*v1.StatefulSet", "*v1.Service",
	} {
		if kinds[want] == 0 {
			t.Errorf("no %s in deploy/*.yaml (have %v)", want, kinds)
		}
	}
}

// TestStrictDecodingRejectsMistakes proves the check above can fail: each
// case is a valid manifest with one mistake a person makes.
func TestStrictDecodingRejectsMistakes(t *testing.T) {
	base, err := os.ReadFile("gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeAll("gateway.yaml", base); err != nil {
		t.Fatalf("unchanged gateway.yaml: %v", err)
	}
	tests := []struct {
		name, old, new, wantErr string
	}{
		{"misspelt field", "  replicas: 2\n", "  replica: 2\n", `unknown field "spec.replica"`},
		{"misspelt nested field", "containerPort: 13133", "containerport: 13133", `unknown field "spec.template.spec.containers[0].ports[0].containerport"`},
		{"field at the wrong level", "      serviceAccountName: junction-gateway\n", "      serviceAccount_name: junction-gateway\n", `unknown field "spec.template.spec.serviceAccount_name"`},
		{"duplicate field", "  minReplicas: 2\n", "  minReplicas: 2\n  minReplicas: 3\n", `key "minReplicas" already set`},
		{"wrong type", "  maxReplicas: 12\n", "  maxReplicas: twelve\n", "maxReplicas"},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", "no kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(base, []byte(tt.old)) {
				t.Fatalf("gateway.yaml lacks %q", tt.old)
			}
			bad := bytes.Replace(base, []byte(tt.old), []byte(tt.new), 1)
			_, err := decodeAll("gateway.yaml", bad)
			if err == nil {
				t.Fatalf("decoding accepted %s", tt.name)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestManifestsConsistent checks what strict decoding cannot: names that
// must refer to each other do.
func TestManifestsConsistent(t *testing.T) {
	objs := decodeManifests(t)
	configMaps := map[string]bool{}
	accounts := map[string]bool{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Namespace+"/"+v.Name] = true
		case *corev1.ServiceAccount:
			accounts[v.Namespace+"/"+v.Name] = true
		}
	}
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		if p, ok := o.obj.(*policyv1.PodDisruptionBudget); ok {
			pdbs = append(pdbs, p)
		}
	}
	// selects reports whether a PodDisruptionBudget covers pods with labels.
	selects := func(ns string, labels map[string]string) bool {
	next:
		for _, p := range pdbs {
			if p.Namespace != ns || p.Spec.Selector == nil || len(p.Spec.Selector.MatchLabels) == 0 {
				continue
			}
			for k, want := range p.Spec.Selector.MatchLabels {
				if labels[k] != want {
					continue next
				}
			}
			return true
		}
		return false
	}
	checkPod := func(o object, ns string, labels map[string]string, sel map[string]string, spec corev1.PodSpec) {
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match the pod template labels %v", o, k, v, labels)
			}
		}
		if sa := spec.ServiceAccountName; sa != "" && !accounts[ns+"/"+sa] {
			t.Errorf("%s: service account %s/%s is not defined in deploy/", o, ns, sa)
		}
		for _, vol := range spec.Volumes {
			if vol.ConfigMap != nil && !configMaps[ns+"/"+vol.ConfigMap.Name] {
				t.Errorf("%s: ConfigMap %s/%s is not defined in deploy/", o, ns, vol.ConfigMap.Name)
			}
		}
		var junction []corev1.Container
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			if c.Name == "junction" {
				junction = append(junction, c)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: container %s has no CPU request or memory limit", o, c.Name)
			}
		}
		if len(junction) != 1 {
			t.Fatalf("%s: %d junction containers, want 1", o, len(junction))
		}
		c := junction[0]
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		// Own metrics: served on the pod's address, on the port named
		// metrics, so that Prometheus can scrape them; the sidecar keeps
		// the collector's localhost default in the application's pod.
		for _, vol := range spec.Volumes {
			if vol.ConfigMap == nil || !strings.HasPrefix(vol.ConfigMap.Name, "junction-") {
				continue
			}
			role := strings.TrimPrefix(vol.ConfigMap.Name, "junction-")
			host, port := telemetryEndpoint(t, role)
			if role == "sidecar" {
				continue
			}
			if host != "0.0.0.0" || int(ports["metrics"]) != port {
				t.Errorf("%s: configs/%s.yaml serves its metrics on %s:%d; the junction container's port \"metrics\" is %d: serve them on 0.0.0.0 at that port", o, role, host, port, ports["metrics"])
			}
		}
		for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: junction container has no HTTP %s probe", o, name)
				continue
			}
			if got := ports[p.HTTPGet.Port.StrVal]; got != 13133 {
				t.Errorf("%s: %s probe port %q is %d, want health_check's 13133", o, name, p.HTTPGet.Port.StrVal, got)
			}
		}
	}
	var sawDS, sawGW, sawSTS bool
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.StatefulSet:
			sawSTS = true
			checkPod(o, v.Namespace, v.Spec.Template.Labels, v.Spec.Selector.MatchLabels, v.Spec.Template.Spec)
			checkSingleWriter(t, o, v)
		case *appsv1.DaemonSet:
			sawDS = true
			checkPod(o, v.Namespace, v.Spec.Template.Labels, v.Spec.Selector.MatchLabels, v.Spec.Template.Spec)
		case *appsv1.Deployment:
			if v.Name == "junction-gateway" {
				sawGW = true
			}
			checkPod(o, v.Namespace, v.Spec.Template.Labels, v.Spec.Selector.MatchLabels, v.Spec.Template.Spec)
			// A budget protects a Deployment of several replicas; with one it
			// could only block drains.
			if replicas := v.Spec.Replicas; (replicas == nil || *replicas > 1) && !selects(v.Namespace, v.Spec.Template.Labels) {
				t.Errorf("%s: Deployment %s has several replicas and no PodDisruptionBudget", o, v.Name)
			}
		}
	}
	if !sawDS || !sawGW || !sawSTS {
		t.Errorf("daemonset seen %v, gateway seen %v, statefulset seen %v", sawDS, sawGW, sawSTS)
	}
}

// checkSingleWriter checks a StatefulSet that holds a junction store: one
// replica (VictoriaMetrics locks its data directory and the alert log has
// one owner), the store's directory on a volume claim, that claim
// writable by the container's group, and a readiness probe on
// health_check.
func checkSingleWriter(t *testing.T, o object, s *appsv1.StatefulSet) {
	t.Helper()
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
		t.Errorf("%s: StatefulSet %s must run exactly one replica (one writer per store)", o, s.Name)
	}
	claims := map[string]bool{}
	for _, c := range s.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
		if len(c.Spec.AccessModes) != 1 || c.Spec.AccessModes[0] != corev1.ReadWriteOnce {
			t.Errorf("%s: claim %s has access modes %v, want [ReadWriteOnce]", o, c.Name, c.Spec.AccessModes)
		}
	}
	spec := s.Spec.Template.Spec
	if sc := spec.SecurityContext; sc == nil || sc.FSGroup == nil {
		t.Errorf("%s: no pod securityContext.fsGroup: the non-root container could not write its volume claim", o)
	}
	for _, c := range spec.Containers {
		if c.Name != "junction" {
			continue
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal != "health" {
			t.Errorf("%s: the junction container has no readiness probe on the port health", o)
		}
		dir := ""
		for _, vol := range spec.Volumes {
			if vol.ConfigMap == nil || !strings.HasPrefix(vol.ConfigMap.Name, "junction-") {
				continue
			}
			cm, err := confmaptest.LoadConf(filepath.Join("configs", strings.TrimPrefix(vol.ConfigMap.Name, "junction-")+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			dir, _ = cm.Get("exporters::junction::storage::directory").(string)
		}
		if dir == "" {
			t.Errorf("%s: its config sets no exporters::junction::storage::directory", o)
			continue
		}
		onClaim := false
		for _, m := range c.VolumeMounts {
			if claims[m.Name] && (dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
				onClaim = true
			}
		}
		if !onClaim {
			t.Errorf("%s: the store's directory %s is not on a volume claim", o, dir)
		}
	}
}

// telemetryEndpoint is where configs/<role>.yaml serves its own metrics
// for Prometheus: its first pull reader, else the collector's default.
func telemetryEndpoint(t *testing.T, role string) (string, int) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("configs", role+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readers, _ := cm.Get("service::telemetry::metrics::readers").([]any)
	for _, r := range readers {
		sub := confmap.NewFromStringMap(map[string]any{"r": r})
		if host, ok := sub.Get("r::pull::exporter::prometheus::host").(string); ok {
			port, _ := sub.Get("r::pull::exporter::prometheus::port").(int)
			return host, port
		}
	}
	return "localhost", 8888
}

// configMapFiles says where each role's ConfigMap is generated: the
// sidecar's next to the example application (its own namespace), the rest
// in configmaps.yaml (namespace junction), so that each file applies on its
// own.
var configMapFiles = map[string]struct{ file, namespace string }{
	"sidecar": {"sidecar-configmap.yaml", "shop"},
}

func configMapOf(role string) (file, namespace string) {
	if f, ok := configMapFiles[role]; ok {
		return f.file, f.namespace
	}
	return "configmaps.yaml", "junction"
}

// Grafana's data source provisioning, grafana/*.yaml, is shipped as one
// ConfigMap in Grafana's namespace, labelled as the Grafana Helm chart's
// provisioning sidecar looks for (docs/grafana.md "In a cluster").
const (
	grafanaConfigMapFile = "grafana-datasource.yaml"
	grafanaConfigMap     = "junction-grafana-datasource"
	grafanaNamespace     = "monitoring"
)

// configMapSources is, for each generated ConfigMap (namespace/name), the
// file each of its keys holds byte for byte.
type configMapSources map[string]map[string]string

// renderConfigMaps builds the ConfigMap files from configs/*.yaml and
// grafana/*.yaml.
func renderConfigMaps() (map[string][]byte, configMapSources, error) {
	files, err := filepath.Glob(filepath.Join("configs", "*.yaml"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	out := map[string]*bytes.Buffer{}
	sources := configMapSources{}
	add := func(file, from string, cm corev1.ConfigMap, src map[string]string) error {
		b := out[file]
		if b == nil {
			b = new(bytes.Buffer)
			fmt.Fprintf(b, "# Generated from deploy/%s/*.yaml by `go test ./deploy -run TestConfigMapsMatchConfigs -update`.\n# Edit the %s, not this file.\n", from, map[string]string{"configs": "configs", "grafana": "files of deploy/grafana"}[from])
			out[file] = b
		}
		y, err := yaml.Marshal(cm)
		if err != nil {
			return fmt.Errorf("%s: %w", cm.Name, err)
		}
		b.WriteString("---\n")
		b.Write(y)
		sources[cm.Namespace+"/"+cm.Name] = src
		return nil
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		role := strings.TrimSuffix(filepath.Base(f), ".yaml")
		file, ns := configMapOf(role)
		cm := corev1.ConfigMap{
			TypeMeta:   metaType("v1", "ConfigMap"),
			ObjectMeta: objectMeta("junction-"+role, ns),
			Data:       map[string]string{"config.yaml": string(data)},
		}
		if err := add(file, "configs", cm, map[string]string{"config.yaml": f}); err != nil {
			return nil, nil, err
		}
	}
	grafana, err := filepath.Glob(filepath.Join("grafana", "*.yaml"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(grafana)
	cm := corev1.ConfigMap{
		TypeMeta:   metaType("v1", "ConfigMap"),
		ObjectMeta: objectMeta(grafanaConfigMap, grafanaNamespace),
		Data:       map[string]string{},
	}
	cm.Labels = map[string]string{"grafana_datasource": "1"}
	src := map[string]string{}
	for _, f := range grafana {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		cm.Data[filepath.Base(f)] = string(data)
		src[filepath.Base(f)] = f
	}
	if len(grafana) > 0 {
		if err := add(grafanaConfigMapFile, "grafana", cm, src); err != nil {
			return nil, nil, err
		}
	}
	res := map[string][]byte{}
	for f, b := range out {
		res[f] = b.Bytes()
	}
	return res, sources, nil
}

// TestConfigMapsMatchConfigs keeps the ConfigMap files in step with
// configs/ and grafana/.
func TestConfigMapsMatchConfigs(t *testing.T) {
	want, sources, err := renderConfigMaps()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 3 {
		t.Fatalf("rendered %d ConfigMap files, want configmaps.yaml, %s and %s", len(want), configMapFiles["sidecar"].file, grafanaConfigMapFile)
	}
	for file, data := range want {
		if *update {
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s differs from configs/*.yaml and grafana/*.yaml: run `go test ./deploy -run TestConfigMapsMatchConfigs -update`", file)
		}
		objs, err := decodeAll(file, got)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			cm := o.obj.(*corev1.ConfigMap)
			src := sources[cm.Namespace+"/"+cm.Name]
			if len(src) == 0 || len(src) != len(cm.Data) {
				t.Errorf("%s: ConfigMap %s/%s holds keys %v, its sources are %v", o, cm.Namespace, cm.Name, keys(cm.Data), src)
			}
			for key, path := range src {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%s: %v", o, err)
				}
				if cm.Data[key] != string(data) {
					t.Errorf("%s: ConfigMap %s key %s does not hold %s byte for byte", o, cm.Name, key, path)
				}
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
