package correlationprocessor

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
)

const entitiesDoc = "../../docs/entities.md"

// featureSources says how each feature is computed; docs/entities.md is
// generated from it, entity.Schema and the default config.
var featureSources = map[entity.Type]map[string]string{
	entity.Service: {
		"request.rate":               "SERVER and CONSUMER spans of the service per second",
		"error.ratio":                "share of those spans with status Error",
		"latency.p50_ms":             "DDSketch of their durations (relative accuracy `window::sketch_accuracy`)",
		"latency.p90_ms":             "same sketch",
		"latency.p99_ms":             "same sketch",
		"cpu.usage_cores":            "sum over its pods",
		"cpu.request_utilization":    "sum of pods' usage / sum of their requests (a pod's `cpu.request_cores`, else the request its utilization implies: usage / utilization)",
		"cpu.limit_utilization":      "sum of pods' usage / sum of their limits (likewise)",
		"cpu.throttling_ratio":       "the most throttled pod's ratio",
		"memory.usage_bytes":         "sum over its pods",
		"memory.request_utilization": "sum of pods' usage / sum of their requests (likewise)",
		"memory.limit_utilization":   "sum of pods' usage / sum of their limits (likewise)",
		"restarts":                   "sum over its pods",
		"oom_kills":                  "sum over its pods",
		"cost.per_hour":              "sum over its pods",
		"pool.utilization":           "input `pool.connections.used` / `pool.max`",
		"pool.pending":               "input `pool.pending`",
		"pool.wait_ms":               "increase of `pool.wait_time.sum` / increase of `pool.wait_time.count` (seconds → ms)",
		"pool.timeouts_rate":         "rate of input `pool.timeouts`",
		"log.error_rate":             "log records with severity ERROR or worse (or severity text error/fatal/critical) per second",
		"surge.factor":               "request.rate / its baseline",
		"critical_path.self_share":   "mean over sampled traces of the service's self time on the critical path / trace duration",
		"replicas":                   "pods with data linked to the service",
		"cpu.request_cores":          "sum of its pods' CPU requests",
		"cpu.limit_cores":            "sum of its pods' CPU limits",
		"memory.request_bytes":       "sum of its pods' memory requests",
		"memory.limit_bytes":         "sum of its pods' memory limits",
		"cost.per_1k_requests":       "cost.per_hour / (request.rate × 3600 / 1000)",
		"slo.burn_rate_5m":           "error ratio over 5 m / (1 − `slo::availability_target`)",
		"slo.burn_rate_30m":          "error ratio over 30 m (fine buckets) / (1 − target)",
		"slo.burn_rate_1h":           "error ratio over 1 h (coarse buckets) / (1 − target)",
		"slo.burn_rate_6h":           "error ratio over 6 h (coarse buckets) / (1 − target)",
	},
	entity.Pod: {
		"cpu.usage_cores":            "input `cpu.usage`, else the rate of `cpu.seconds`",
		"cpu.request_utilization":    "cpu.usage_cores / cpu.request_cores; without a request, input `cpu.request_utilization`",
		"cpu.limit_utilization":      "cpu.usage_cores / cpu.limit_cores; without a limit, input `cpu.limit_utilization`",
		"cpu.throttling_ratio":       "increase of `cpu.throttled_periods` / increase of `cpu.periods` (summed over containers)",
		"memory.usage_bytes":         "input `memory.working_set`, else `memory.container_working_set` (summed over containers)",
		"memory.request_utilization": "memory.usage_bytes / memory.request_bytes; without a request, memory.usage_bytes / (input `memory.usage` / input `memory.request_utilization`)",
		"memory.limit_utilization":   "memory.usage_bytes / memory.limit_bytes; without a limit, memory.usage_bytes / (input `memory.usage` / input `memory.limit_utilization`)",
		"restarts":                   "increase of input `restarts` in the window",
		"oom_kills":                  "increase of input `oom_kills` in the window",
		"cost.per_hour":              "requested (else used) cores × `prices::cpu_core_hour` + GiB × `prices::memory_gib_hour`",
		"cpu.request_cores":          "input `cpu.request` (sum over containers)",
		"cpu.limit_cores":            "input `cpu.limit` (sum over containers)",
		"memory.request_bytes":       "input `memory.request` (sum over containers)",
		"memory.limit_bytes":         "input `memory.limit` (sum over containers)",
	},
	entity.Database: {
		"request.rate":            "callers' client spans with `db.system(.name)` per second",
		"error.ratio":             "share of those spans with status Error",
		"latency.p50_ms":          "DDSketch of their durations",
		"latency.p90_ms":          "same sketch",
		"latency.p99_ms":          "same sketch",
		"pool.utilization":        "highest pool utilisation of the services whose only database this is",
		"pool.pending":            "sum of those services' pending requests",
		"pool.wait_ms":            "highest of those services' mean wait",
		"pool.timeouts_rate":      "sum of those services' timeout rates",
		"connections.active":      "input `connections.active`",
		"connections.max":         "input `connections.max` (server-wide values apply to every database of the server)",
		"connections.utilization": "connections.active / (connections.max - input `connections.reserved`, superuser-only connections)",
		"locks.waiting":           "input `locks` (postgres exporter: sessions waiting for a lock, `pg_locks_waiting_count`)",
		"deadlocks.rate":          "rate of input `deadlocks`",
		"query.slow_rate":         "client spans longer than `slow_query_threshold` per second",
	},
	entity.Proxy: {
		"request.rate":          "access-log records (and server spans with a route attribute) per second; without them the rate of `upstream.requests.*` or `requests`",
		"error.ratio":           "share of status ≥ 500 (or of `upstream.requests.5`)",
		"latency.p50_ms":        "DDSketch of access-log durations",
		"latency.p90_ms":        "same sketch",
		"latency.p99_ms":        "same sketch",
		"shed.ratio":            "share of 429 and 503 responses",
		"surge.factor":          "request.rate / its baseline",
		"pending.active":        "input `pending.active`",
		"pending.overflow_rate": "rate of input `pending.overflow`",
		"circuit_breaker.open":  "1 when input `circuit_breaker.open` is above 0, else 0",
		"connections.active":    "input `connections.active`",
	},
	entity.Relayer: {
		"backlog.size":   "input `backlog.size`",
		"wallet.balance": "input `wallet.balance`",
	},
	entity.Stream: {
		"lag.messages":    "input `lag.sum`, else the sum of `lag.partition` over partitions",
		"lag.growth_rate": "change of the lag per second over the window",
		"lag.seconds":     "lag.messages / consume.rate",
		"produce.rate":    "PRODUCER spans paired into the stream per second",
		"consume.rate":    "CONSUMER spans per second, else the rate of input `consumed.offset`",
	},
}

var edgeSources = map[string]string{
	"request.rate":   "client spans of the pair per second",
	"error.ratio":    "share of those with status Error",
	"latency.p50_ms": "DDSketch of the client spans' durations",
	"latency.p99_ms": "same sketch",
	"latency.share":  "mean over sampled traces of the call's duration / the duration of the caller's enclosing SERVER or CONSUMER span (summed per trace, at most 1)",
}

func genFeatures() string {
	var b strings.Builder
	for _, typ := range entity.Types {
		fmt.Fprintf(&b, "### %s\n\n| feature | unit | baseline | computed from |\n| --- | --- | --- | --- |\n", typ)
		for _, f := range entity.Schema[typ] {
			src := featureSources[typ][f.Name]
			if src == "" {
				src = "the cross-chain tracker (docs/crosschain.md)"
			}
			base := ""
			if f.Baseline {
				base = "yes"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Unit, base, src)
		}
		b.WriteString("\n")
	}
	b.WriteString("### edges\n\n| feature | unit | computed from |\n| --- | --- | --- |\n")
	for _, f := range entity.EdgeSchema {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Name, f.Unit, edgeSources[f.Name])
	}
	return b.String()
}

func genMappings() string {
	cfg := createDefaultConfig().(*Config)
	byType := map[entity.Type][]string{}
	for name := range cfg.Metrics {
		byType[cfg.Metrics[name].Entity] = append(byType[cfg.Metrics[name].Entity], name)
	}
	var b strings.Builder
	for _, typ := range entity.Types {
		names := byType[typ]
		if len(names) == 0 {
			continue
		}
		sort.Strings(names)
		fmt.Fprintf(&b, "#### %s\n\n| metric | input | split_by | assumed attributes | server_from | excluded data points |\n| --- | --- | --- | --- | --- | --- |\n", typ)
		for _, n := range names {
			m := cfg.Metrics[n]
			var attrs []string
			for k, v := range m.Attributes {
				attrs = append(attrs, k+"="+v)
			}
			sort.Strings(attrs)
			var ex []string
			for k, vals := range m.Exclude {
				for _, v := range vals {
					ex = append(ex, fmt.Sprintf("`%s=%q`", k, v))
				}
			}
			sort.Strings(ex)
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s | %s |\n", n, m.Input, code(m.SplitBy), strings.Join(attrs, ", "), code(m.ServerFrom), strings.Join(ex, ", "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func code(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return strings.Join(out, ", ")
}

// yamlKeys lists the leaf fields of v with their YAML keys and values.
func yamlKeys(prefix string, v reflect.Value, out *[][2]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		fv := v.Field(i)
		if tag == "" && f.Anonymous {
			yamlKeys(prefix, fv, out)
			continue
		}
		if tag == "" || (prefix == "" && tag == "metrics") {
			continue
		}
		key := prefix + tag
		switch {
		case fv.Kind() == reflect.Struct:
			yamlKeys(key+"::", fv, out)
		case fv.Kind() == reflect.Pointer && fv.IsNil(), (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map || fv.Kind() == reflect.String) && fv.Len() == 0:
			*out = append(*out, [2]string{key, "none"})
		case fv.Kind() == reflect.Slice:
			*out = append(*out, [2]string{key, code(fv.Interface().([]string))})
		default:
			*out = append(*out, [2]string{key, fmt.Sprintf("`%v`", fv.Interface())})
		}
	}
}

func genConfig() string {
	var kv [][2]string
	yamlKeys("", reflect.ValueOf(*createDefaultConfig().(*Config)), &kv)
	var b strings.Builder
	b.WriteString("| key | default |\n| --- | --- |\n")
	for _, p := range kv {
		fmt.Fprintf(&b, "| `%s` | %s |\n", p[0], p[1])
	}
	return b.String()
}

func genTelemetry() string {
	whats := make([]string, 0, len(instrumentNames))
	for w := range instrumentNames {
		whats = append(whats, instrumentNames[w])
	}
	sort.Strings(whats)
	var b strings.Builder
	b.WriteString("| counter | counts |\n| --- | --- |\n")
	for _, p := range whats {
		extra := ""
		if p == "entities" {
			extra = " (attribute `entity_type`)"
		}
		fmt.Fprintf(&b, "| `otelcol_processor_correlation_%s_dropped`%s | %s dropped because their table was full |\n", p, extra, strings.ReplaceAll(p, "_", " "))
		fmt.Fprintf(&b, "| `otelcol_processor_correlation_%s_evicted`%s | %s evicted because they aged out or made room |\n", p, extra, strings.ReplaceAll(p, "_", " "))
	}
	return b.String()
}

var generated = map[string]func() string{
	"features":  genFeatures,
	"mappings":  genMappings,
	"config":    genConfig,
	"telemetry": genTelemetry,
}

// TestEntitiesDocInSync checks that the generated blocks of
// docs/entities.md match entity.Schema and the default config.
// Regenerate with: go test -run TestEntitiesDocInSync -update
func TestEntitiesDocInSync(t *testing.T) {
	for typ, m := range featureSources {
		names := map[string]bool{}
		for _, f := range entity.Schema[typ] {
			names[f.Name] = true
		}
		for f := range m {
			assert.True(t, names[f], "featureSources[%s][%s] is not in entity.Schema", typ, f)
		}
	}
	doc, err := os.ReadFile(entitiesDoc)
	require.NoError(t, err)
	out := string(doc)
	for name, gen := range generated {
		re := regexp.MustCompile(`(?s)(<!-- BEGIN GENERATED ` + name + ` -->\n).*?(<!-- END GENERATED ` + name + ` -->)`)
		require.True(t, re.MatchString(out), "docs/entities.md has no generated block %q", name)
		out = re.ReplaceAllLiteralString(out, "<!-- BEGIN GENERATED "+name+" -->\n"+gen()+"<!-- END GENERATED "+name+" -->")
	}
	if *update {
		require.NoError(t, os.WriteFile(entitiesDoc, []byte(out), 0o644))
		return
	}
	assert.Equal(t, out, string(doc), "docs/entities.md is out of date: go test ./processors/correlationprocessor -run TestEntitiesDocInSync -update")
}

var _ = graph.InCPUUsage
