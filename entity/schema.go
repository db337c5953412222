package entity

// Feature describes one feature of an entity or edge type. Names are dotted
// paths; rules use them as fields (service.latency.p99_ms).
type Feature struct {
	Name        string
	Unit        string
	Description string
	// Baseline is true when the feature has a baseline value
	// (Entity.Baseline): an EWMA of its short-window value.
	Baseline bool
}

var (
	red = []Feature{
		{Name: "request.rate", Unit: "1/s", Description: "requests per second", Baseline: true},
		{Name: "error.ratio", Unit: "1", Description: "share of requests that failed", Baseline: true},
		{Name: "latency.p50_ms", Unit: "ms", Description: "median latency", Baseline: true},
		{Name: "latency.p90_ms", Unit: "ms", Description: "90th percentile latency", Baseline: true},
		{Name: "latency.p99_ms", Unit: "ms", Description: "99th percentile latency", Baseline: true},
	}
	cost = []Feature{
		{Name: "cost.per_hour", Unit: "currency/h", Description: "cost of the resources requested, from the price table"},
	}
	pool = []Feature{
		{Name: "pool.utilization", Unit: "1", Description: "used / max connections of the client connection pool (db.client.connection.*)"},
		{Name: "pool.pending", Unit: "{request}", Description: "requests waiting for a pooled connection"},
		{Name: "pool.wait_ms", Unit: "ms", Description: "mean time to get a connection from the pool"},
		{Name: "pool.timeouts_rate", Unit: "1/s", Description: "pool acquisition timeouts per second"},
	}
	resources = []Feature{
		{Name: "cpu.usage_cores", Unit: "{core}", Description: "CPU used"},
		{Name: "cpu.request_utilization", Unit: "1", Description: "CPU used / CPU requested"},
		{Name: "cpu.limit_utilization", Unit: "1", Description: "CPU used / CPU limit"},
		{Name: "cpu.throttling_ratio", Unit: "1", Description: "share of CPU periods throttled"},
		{Name: "memory.usage_bytes", Unit: "By", Description: "working-set memory"},
		{Name: "memory.request_utilization", Unit: "1", Description: "memory used / memory requested"},
		{Name: "memory.limit_utilization", Unit: "1", Description: "memory used / memory limit"},
		{Name: "restarts", Unit: "{restart}", Description: "container restarts in the window"},
		{Name: "oom_kills", Unit: "{kill}", Description: "OOM kills in the window"},
	}
)

func concat(parts ...[]Feature) []Feature {
	var out []Feature
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Schema lists, per entity type, the features the correlation processor
// computes and rules may use. docs/entities.md is written from it.
var Schema = map[Type][]Feature{
	Service: concat(red, resources, cost, pool, []Feature{
		{Name: "log.error_rate", Unit: "1/s", Description: "error and fatal log records per second", Baseline: true},
		{Name: "surge.factor", Unit: "1", Description: "request rate / its baseline"},
		{Name: "critical_path.self_share", Unit: "1", Description: "share of sampled traces' critical path spent in this service itself"},
		{Name: "replicas", Unit: "{pod}", Description: "pods seen for the service"},
		{Name: "cpu.request_cores", Unit: "{core}", Description: "CPU requested by its pods"},
		{Name: "cpu.limit_cores", Unit: "{core}", Description: "CPU limit of its pods"},
		{Name: "memory.request_bytes", Unit: "By", Description: "memory requested by its pods"},
		{Name: "memory.limit_bytes", Unit: "By", Description: "memory limit of its pods"},
		{Name: "cost.per_1k_requests", Unit: "currency", Description: "cost per hour / (requests per hour / 1000)", Baseline: true},
		{Name: "slo.burn_rate_5m", Unit: "1", Description: "error-budget burn rate over 5 minutes"},
		{Name: "slo.burn_rate_30m", Unit: "1", Description: "error-budget burn rate over 30 minutes"},
		{Name: "slo.burn_rate_1h", Unit: "1", Description: "error-budget burn rate over 1 hour"},
		{Name: "slo.burn_rate_6h", Unit: "1", Description: "error-budget burn rate over 6 hours"},
	}),
	Pod: concat(resources, cost, []Feature{
		{Name: "cpu.request_cores", Unit: "{core}", Description: "CPU requested"},
		{Name: "cpu.limit_cores", Unit: "{core}", Description: "CPU limit"},
		{Name: "memory.request_bytes", Unit: "By", Description: "memory requested"},
		{Name: "memory.limit_bytes", Unit: "By", Description: "memory limit"},
	}),
	Database: concat(red, pool, []Feature{
		{Name: "connections.active", Unit: "{connection}", Description: "server connections in use"},
		{Name: "connections.max", Unit: "{connection}", Description: "server connection limit"},
		{Name: "connections.utilization", Unit: "1", Description: "active / max server connections"},
		{Name: "locks.waiting", Unit: "{lock}", Description: "sessions waiting for a lock (postgres exporter: the pg_locks_waiting custom query on pg_stat_activity)", Baseline: true},
		{Name: "deadlocks.rate", Unit: "1/s", Description: "deadlocks per second"},
		{Name: "query.slow_rate", Unit: "1/s", Description: "queries slower than the slow-query threshold per second"},
	}),
	Proxy: concat(red, []Feature{
		{Name: "shed.ratio", Unit: "1", Description: "share of requests shed with 429 or 503"},
		{Name: "surge.factor", Unit: "1", Description: "request rate / its baseline"},
		{Name: "pending.active", Unit: "{request}", Description: "requests queued for an upstream connection"},
		{Name: "pending.overflow_rate", Unit: "1/s", Description: "requests rejected because the pending queue overflowed"},
		{Name: "circuit_breaker.open", Unit: "1", Description: "1 when a circuit breaker of the upstream is open"},
		{Name: "connections.active", Unit: "{connection}", Description: "active downstream connections"},
	}),
	Relayer: {
		{Name: "backlog.size", Unit: "{message}", Description: "relayer backlog (Hermes backlog_size)"},
		{Name: "backlog.oldest_age_s", Unit: "s", Description: "age of the oldest backlog entry"},
		{Name: "backlog.growth_rate", Unit: "1/s", Description: "change of the backlog per second"},
		{Name: "messages.pending", Unit: "{message}", Description: "cross-chain messages sent and not yet terminal"},
		{Name: "messages.oldest_pending_age_s", Unit: "s", Description: "age of the oldest pending message"},
		{Name: "messages.throughput", Unit: "1/s", Description: "messages reaching a terminal stage per second", Baseline: true},
		{Name: "messages.failure_ratio", Unit: "1", Description: "share of closed messages that failed"},
		{Name: "messages.timeout_ratio", Unit: "1", Description: "share of closed messages that timed out"},
		{Name: "latency.end_to_end_p99_s", Unit: "s", Description: "sent to executed/acknowledged, 99th percentile"},
		{Name: "latency.sent_to_relayed_p99_s", Unit: "s", Description: "sent to relayed, 99th percentile"},
		{Name: "latency.relayed_to_executed_p99_s", Unit: "s", Description: "relayed to executed, 99th percentile"},
		{Name: "gas.price", Unit: "{native}/gas", Description: "mean gas price paid", Baseline: true},
		{Name: "fee.per_message", Unit: "currency", Description: "mean fee per message in the configured unit"},
		{Name: "wallet.balance", Unit: "{native}", Description: "relayer wallet balance"},
		{Name: "wallet.burn_rate_per_hour", Unit: "{native}/h", Description: "wallet balance spent per hour"},
		{Name: "wallet.hours_left", Unit: "h", Description: "balance / burn rate"},
		{Name: "finality.lag_blocks", Unit: "{block}", Description: "current height - finalized height"},
		{Name: "finality.lag_s", Unit: "s", Description: "finality lag in seconds"},
		{Name: "tx.latency_confirmed_ms", Unit: "ms", Description: "relayer transaction confirmation latency"},
		{Name: "broadcast.errors_rate", Unit: "1/s", Description: "transaction broadcast errors per second"},
	},
	Stream: {
		{Name: "lag.messages", Unit: "{message}", Description: "consumer group lag"},
		{Name: "lag.growth_rate", Unit: "1/s", Description: "change of the lag per second"},
		{Name: "lag.seconds", Unit: "s", Description: "lag / consume rate: how stale the consumer is"},
		{Name: "produce.rate", Unit: "1/s", Description: "messages produced per second", Baseline: true},
		{Name: "consume.rate", Unit: "1/s", Description: "messages consumed per second", Baseline: true},
	},
}

// EdgeSchema lists the features of every edge.
var EdgeSchema = []Feature{
	{Name: "request.rate", Unit: "1/s", Description: "calls per second"},
	{Name: "error.ratio", Unit: "1", Description: "share of calls that failed"},
	{Name: "latency.p50_ms", Unit: "ms", Description: "median call latency seen by the client"},
	{Name: "latency.p99_ms", Unit: "ms", Description: "99th percentile call latency seen by the client"},
	{Name: "latency.share", Unit: "1", Description: "share of the client's latency spent in this call (critical path of sampled traces)"},
}

// Derived metrics: the correlation processor emits every feature as a gauge
// named MetricPrefix+feature (entity features) or EdgeMetricPrefix+feature
// (edge features), e.g. junction.latency.p99_ms. Entity identity travels as
// resource attributes, edge identity as data point attributes.
const (
	MetricPrefix     = "junction."
	EdgeMetricPrefix = "junction.edge."

	AttrEntityType = "junction.entity.type"
	AttrEntityID   = "junction.entity.id"
	AttrEntityName = "junction.entity.name"
	AttrVirtual    = "junction.entity.virtual"

	AttrEdgeSource = "junction.edge.source"
	AttrEdgeTarget = "junction.edge.target"
	AttrEdgeType   = "junction.edge.type"
)
