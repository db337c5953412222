// Package correlationprocessor joins traces, metrics and logs into Junction's
// entity graph. One instance per component id is shared by the traces,
// metrics and logs pipelines it is configured in; it passes all telemetry
// through unchanged, emits derived entity and edge metrics into the metrics
// pipeline and serves snapshots of the graph (entity.Source).
package correlationprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/junction-sre/junction/entity"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/graph"
	"github.com/junction-sre/junction/processors/correlationprocessor/internal/xchain"
	"github.com/junction-sre/junction/rules"
)

const (
	typeStr   = "correlation"
	stability = component.StabilityLevelAlpha
)

// Defaults (docs/entities.md).
const (
	defaultEmitInterval          = 15 * time.Second
	defaultBucket                = 10 * time.Second
	defaultLongWindow            = 30 * time.Minute
	defaultCoarseBucket          = 5 * time.Minute
	defaultSketchAccuracy        = 0.01
	defaultSketchMaxBins         = 1024
	defaultMaxEntitiesPerType    = 5000
	defaultMaxEdges              = 20000
	defaultEntityTTL             = 15 * time.Minute
	defaultMaxPendingSpans       = 100000
	defaultPendingSpanTTL        = 30 * time.Second
	defaultMaxSeriesPerEntity    = 500
	defaultMaxMetricsPerEntity   = 200
	defaultMaxPodsPerService     = 1000
	defaultMaxTemplatesPerEntity = 50
	defaultMaxLogSamples         = 5
	defaultMaxExemplars          = 5
	defaultMaxSampledTraces      = 500
	defaultMaxSpansPerTrace      = 1000
	defaultTraceIdle             = 10 * time.Second
	defaultSampleRatio           = 0.05
	defaultAvailabilityTarget    = 0.999
	defaultCPUCoreHour           = 0.0316 // on-demand vCPU-hour, general purpose
	defaultMemoryGiBHour         = 0.0042 // on-demand GiB-hour, general purpose
	defaultBaselineTimeConstant  = time.Hour
	defaultSlowQuery             = 500 * time.Millisecond
	defaultRulesReloadInterval   = 30 * time.Second
)

// NewFactory returns the factory of the correlation processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		component.MustNewType(typeStr),
		createDefaultConfig,
		processor.WithTraces(createTraces, stability),
		processor.WithMetrics(createMetrics, stability),
		processor.WithLogs(createLogs, stability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		EmitInterval: defaultEmitInterval,
		Clock:        ClockConfig{Source: ClockWall, MaxStep: defaultClockMaxStep},
		GraphSettings: GraphSettings{
			Window: graph.WindowSettings{
				Bucket:         defaultBucket,
				Long:           defaultLongWindow,
				CoarseBucket:   defaultCoarseBucket,
				SketchAccuracy: defaultSketchAccuracy,
				SketchMaxBins:  defaultSketchMaxBins,
			},
			Limits: graph.Limits{
				MaxEntitiesPerType:    defaultMaxEntitiesPerType,
				MaxEdges:              defaultMaxEdges,
				EntityTTL:             defaultEntityTTL,
				MaxPendingSpans:       defaultMaxPendingSpans,
				PendingSpanTTL:        defaultPendingSpanTTL,
				MaxSeriesPerEntity:    defaultMaxSeriesPerEntity,
				MaxMetricsPerEntity:   defaultMaxMetricsPerEntity,
				MaxPodsPerService:     defaultMaxPodsPerService,
				MaxTemplatesPerEntity: defaultMaxTemplatesPerEntity,
				MaxLogSamples:         defaultMaxLogSamples,
				MaxExemplars:          defaultMaxExemplars,
				MaxSampledTraces:      defaultMaxSampledTraces,
				MaxSpansPerTrace:      defaultMaxSpansPerTrace,
				TraceIdle:             defaultTraceIdle,
			},
			CriticalPath: graph.CriticalPathSettings{SampleRatio: defaultSampleRatio},
			SLO:          graph.SLOSettings{AvailabilityTarget: defaultAvailabilityTarget},
			Prices:       graph.Prices{CPUCoreHour: defaultCPUCoreHour, MemoryGiBHour: defaultMemoryGiBHour},
			Baseline:     graph.BaselineSettings{TimeConstant: defaultBaselineTimeConstant},
			SlowQuery:    defaultSlowQuery,
			Identity:     defaultIdentity(),
			AccessLog:    defaultAccessLog(),
			Metrics:      defaultMetrics(),
		},
		XChain: XChainConfig{XChainTrackerConfig: XChainTrackerConfig(xchain.DefaultConfig())},
		Rules: RulesConfig{
			ReloadInterval: defaultRulesReloadInterval,
			CostLimit:      rules.DefaultCostLimit,
		},
	}
}

// defaultIdentity is graph.DefaultIdentity: the graph's tests check the
// semantic conventions of real instrumentation against these lists, so they
// live beside the code that reads them.
func defaultIdentity() graph.Identity {
	return graph.DefaultIdentity()
}

func defaultAccessLog() graph.AccessLog {
	return graph.AccessLog{
		Status:     []string{"status", "response_code", "status_code"},
		DurationMs: []string{"duration", "duration_ms"},
		DurationS:  []string{"request_time"},
		Route:      []string{"upstream_cluster", "upstream", "route_name", "route"},
	}
}

func m(t entity.Type, input string) graph.MetricMapping {
	return graph.MetricMapping{Entity: t, Input: input}
}

// cadvisor maps a cAdvisor metric onto the pod named by its pod and
// namespace labels, skipping the rows that are not one container's.
func cadvisor(input string) graph.MetricMapping {
	return graph.MetricMapping{Entity: entity.Pod, Input: input, Exclude: map[string][]string{"container": {"", "POD"}}}
}

// hermesCounters are Hermes counters, mapped under their name and with the
// _total suffix Prometheus scrapes may add.
var hermesCounters = []string{
	"send_packet_events", "acknowledgement_events", "timeout_events", "cleared_send_packet_events",
	"cleared_acknowledgment_events", "broadcast_errors", "simulate_errors", "tx_submitted",
	"tx_confirmed", "total_messages_submitted", "client_updates_submitted", "ws_events", "queries",
}

func defaultMetrics() map[string]graph.MetricMapping {
	mm := baseMetrics()
	for _, c := range hermesCounters {
		mm[c] = m(entity.Relayer, graph.InHermes+"."+c)
		mm[c+"_total"] = m(entity.Relayer, graph.InHermes+"."+c)
	}
	return mm
}

func baseMetrics() map[string]graph.MetricMapping {
	pg := map[string]string{"db.system.name": "postgresql"}
	// postgres_exporter labels every series with the database it watches,
	// "host:port"; the scrape's resource names the exporter.
	pgServer := []string{"server"}
	return map[string]graph.MetricMapping{
		// kubeletstats receiver (docs/entities.md "Pod resources"): usage,
		// and its optional utilization ratios, which stand in for the
		// limits and requests where k8s_cluster does not report them
		"k8s.pod.cpu.usage":                  m(entity.Pod, graph.InCPUUsage),
		"k8s.pod.memory.working_set":         m(entity.Pod, graph.InMemWorkingSet),
		"k8s.pod.memory.usage":               m(entity.Pod, graph.InMemUsage),
		"k8s.pod.cpu_request_utilization":    m(entity.Pod, graph.InCPURequestUtil),
		"k8s.pod.cpu_limit_utilization":      m(entity.Pod, graph.InCPULimitUtil),
		"k8s.pod.memory_request_utilization": m(entity.Pod, graph.InMemRequestUtil),
		"k8s.pod.memory_limit_utilization":   m(entity.Pod, graph.InMemLimitUtil),
		// k8s_cluster receiver: per container, summed over the pod's
		// containers (each container is its own resource)
		"k8s.container.cpu_request":    m(entity.Pod, graph.InCPURequest),
		"k8s.container.cpu_limit":      m(entity.Pod, graph.InCPULimit),
		"k8s.container.memory_request": m(entity.Pod, graph.InMemRequest),
		"k8s.container.memory_limit":   m(entity.Pod, graph.InMemLimit),
		"k8s.container.restarts":       m(entity.Pod, graph.InRestarts),
		// cAdvisor through the kubelet (/metrics/cadvisor), as scraped by
		// the prometheus receiver: the containers' rows only, not the
		// pod's cgroup or its pause container (container "" or "POD")
		"container_cpu_usage_seconds_total":         cadvisor(graph.InCPUSeconds),
		"container_memory_working_set_bytes":        cadvisor(graph.InContainerWorkingSet),
		"container_cpu_cfs_throttled_periods_total": cadvisor(graph.InThrottledPeriods),
		"container_cpu_cfs_periods_total":           cadvisor(graph.InPeriods),
		"container_oom_events_total":                cadvisor(graph.InOOMKills),
		// db.client.connection.* pool metrics of callers
		"db.client.connection.count":            {Entity: entity.Service, Input: graph.InPoolConnections, SplitBy: []string{"db.client.connection.state", "state"}},
		"db.client.connection.max":              m(entity.Service, graph.InPoolMax),
		"db.client.connection.pending_requests": m(entity.Service, graph.InPoolPending),
		"db.client.connection.wait_time":        m(entity.Service, graph.InPoolWait),
		"db.client.connection.timeouts":         m(entity.Service, graph.InPoolTimeouts),
		// postgres exporter
		"pg_stat_database_numbackends":               {Entity: entity.Database, Input: graph.InConnActive, Attributes: pg, ServerFrom: pgServer},
		"pg_settings_max_connections":                {Entity: entity.Database, Input: graph.InConnMax, Attributes: pg, ServerFrom: pgServer},
		"pg_settings_superuser_reserved_connections": {Entity: entity.Database, Input: graph.InConnReserved, Attributes: pg, ServerFrom: pgServer},
		// sessions waiting for a lock: the exporter's custom query
		// pg_locks_waiting (docs/scenarios.md, "Real components"); its
		// built-in pg_locks_count counts held locks too
		"pg_locks_waiting_count":     {Entity: entity.Database, Input: graph.InLocks, Attributes: pg, ServerFrom: pgServer},
		"pg_stat_database_deadlocks": {Entity: entity.Database, Input: graph.InDeadlocks, Attributes: pg, ServerFrom: pgServer},
		// Envoy stats, as scraped by the prometheus receiver
		"envoy_cluster_upstream_rq_pending_overflow":             m(entity.Proxy, graph.InPendingOverflow),
		"envoy_cluster_upstream_rq_pending_active":               m(entity.Proxy, graph.InPendingActive),
		"envoy_cluster_circuit_breakers_default_rq_open":         m(entity.Proxy, graph.InCircuitBreaker),
		"envoy_cluster_circuit_breakers_default_cx_open":         m(entity.Proxy, graph.InCircuitBreaker),
		"envoy_cluster_circuit_breakers_default_rq_pending_open": m(entity.Proxy, graph.InCircuitBreaker),
		"envoy_cluster_upstream_rq_xx":                           {Entity: entity.Proxy, Input: graph.InUpstreamRequests, SplitBy: []string{"envoy_response_code_class"}},
		"envoy_http_downstream_cx_active":                        m(entity.Proxy, graph.InDownstreamConns),
		// NGINX stub_status (nginx-prometheus-exporter)
		"nginx_connections_active":  m(entity.Proxy, graph.InDownstreamConns),
		"nginx_http_requests_total": m(entity.Proxy, graph.InProxyRequests),
		// Hermes relayer telemetry
		"backlog_size":             m(entity.Relayer, graph.InBacklogSize),
		"wallet_balance":           m(entity.Relayer, graph.InWalletBalance),
		"backlog_oldest_timestamp": m(entity.Relayer, graph.InHermes+".backlog_oldest_timestamp"),
		"backlog_oldest_sequence":  m(entity.Relayer, graph.InHermes+".backlog_oldest_sequence"),
		"tx_latency_confirmed":     m(entity.Relayer, graph.InHermes+".tx_latency_confirmed"),
		"tx_latency_submitted":     m(entity.Relayer, graph.InHermes+".tx_latency_submitted"),
		"fee_amounts":              m(entity.Relayer, graph.InHermes+".fee_amounts"),
		// Kafka consumer lag: kafkametrics receiver and kafka_exporter
		"kafka.consumer_group.lag":               m(entity.Stream, graph.InLagPartition),
		"kafka.consumer_group.lag_sum":           m(entity.Stream, graph.InLagSum),
		"kafka.consumer_group.offset_sum":        m(entity.Stream, graph.InConsumedOffset),
		"kafka_consumergroup_lag":                m(entity.Stream, graph.InLagPartition),
		"kafka_consumergroup_lag_sum":            m(entity.Stream, graph.InLagSum),
		"kafka_consumergroup_current_offset_sum": m(entity.Stream, graph.InConsumedOffset),
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := getShared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p.setTraces(next)
	return &tracesProcessor{pipelineRef{p}, next}, nil
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := getShared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p.setMetrics(next)
	return &metricsProcessor{pipelineRef{p}, next}, nil
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := getShared(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p.setLogs(next)
	return &logsProcessor{pipelineRef{p}, next}, nil
}
