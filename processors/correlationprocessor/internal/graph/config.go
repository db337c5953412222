package graph

import (
	"errors"
	"fmt"
	"time"

	"github.com/junction-sre/junction/entity"
)

// Settings configure the graph. The processor's Config embeds them; the
// defaults live in the processor's createDefaultConfig.
type Settings struct {
	Window       WindowSettings           `mapstructure:"window"`
	Limits       Limits                   `mapstructure:"limits"`
	CriticalPath CriticalPathSettings     `mapstructure:"critical_path"`
	SLO          SLOSettings              `mapstructure:"slo"`
	Prices       Prices                   `mapstructure:"prices"`
	Baseline     BaselineSettings         `mapstructure:"baseline"`
	SlowQuery    time.Duration            `mapstructure:"slow_query_threshold"`
	Identity     Identity                 `mapstructure:"identity"`
	AccessLog    AccessLog                `mapstructure:"access_log"`
	Metrics      map[string]MetricMapping `mapstructure:"metrics"`
}

// WindowSettings size the time buckets.
type WindowSettings struct {
	// Bucket is the width of the fine buckets (10s).
	Bucket time.Duration `mapstructure:"bucket"`
	// Long is how far the fine buckets reach back (30m).
	Long time.Duration `mapstructure:"long"`
	// CoarseBucket is the width of the buckets behind burn rates beyond
	// Long (5m); they reach back 6h.
	CoarseBucket time.Duration `mapstructure:"coarse_bucket"`
	// SketchAccuracy is the relative accuracy of latency sketches (0.01).
	SketchAccuracy float64 `mapstructure:"sketch_accuracy"`
	// SketchMaxBins bounds the bins of one sketch (1024).
	SketchMaxBins int `mapstructure:"sketch_max_bins"`
}

// Limits bound every table.
type Limits struct {
	MaxEntitiesPerType    int           `mapstructure:"max_entities_per_type"`
	MaxEdges              int           `mapstructure:"max_edges"`
	EntityTTL             time.Duration `mapstructure:"entity_ttl"`
	MaxPendingSpans       int           `mapstructure:"max_pending_spans"`
	PendingSpanTTL        time.Duration `mapstructure:"pending_span_ttl"`
	MaxSeriesPerEntity    int           `mapstructure:"max_series_per_entity"`
	MaxMetricsPerEntity   int           `mapstructure:"max_metrics_per_entity"`
	MaxPodsPerService     int           `mapstructure:"max_pods_per_service"`
	MaxTemplatesPerEntity int           `mapstructure:"max_templates_per_entity"`
	MaxLogSamples         int           `mapstructure:"max_log_samples"`
	MaxExemplars          int           `mapstructure:"max_exemplars"`
	MaxSampledTraces      int           `mapstructure:"max_sampled_traces"`
	MaxSpansPerTrace      int           `mapstructure:"max_spans_per_trace"`
	TraceIdle             time.Duration `mapstructure:"trace_idle"`
}

// CriticalPathSettings choose the traces whose critical path is computed.
type CriticalPathSettings struct {
	// SampleRatio is the share of trace ids sampled (by trace id hash).
	SampleRatio float64 `mapstructure:"sample_ratio"`
}

// SLOSettings set the objective behind burn rates.
type SLOSettings struct {
	// AvailabilityTarget is the share of requests that must succeed.
	AvailabilityTarget float64 `mapstructure:"availability_target"`
}

// Prices is the price table behind cost features.
type Prices struct {
	CPUCoreHour   float64 `mapstructure:"cpu_core_hour"`
	MemoryGiBHour float64 `mapstructure:"memory_gib_hour"`
}

// BaselineSettings shape the EWMA baselines.
type BaselineSettings struct {
	// TimeConstant is the EWMA time constant: a change older than it
	// weighs 1/e.
	TimeConstant time.Duration `mapstructure:"time_constant"`
}

// Identity lists, per identity key, the attributes looked up in order
// (data point or span attributes first, then resource attributes). Each
// list names the current semantic-convention attribute first and the older
// ones after it, so spans written in either name the same entity.
type Identity struct {
	ServiceName      []string `mapstructure:"service_name"`
	ServiceNamespace []string `mapstructure:"service_namespace"`
	PodName          []string `mapstructure:"pod_name"`
	PodNamespace     []string `mapstructure:"pod_namespace"`
	DBSystem         []string `mapstructure:"db_system"`
	DBNamespace      []string `mapstructure:"db_namespace"`
	DBQuery          []string `mapstructure:"db_query"`
	// ServerAddress and ServerPort name the server a client span calls by
	// its logical name. They pair by position: the port of
	// server_address[i] is read from server_port[i] only, so a span never
	// joins one convention's host to another's port.
	ServerAddress []string `mapstructure:"server_address"`
	ServerPort    []string `mapstructure:"server_port"`
	// URL is the full URL of an HTTP client span, whose host[:port] names
	// the server when no server_address attribute does.
	URL []string `mapstructure:"url"`
	// PeerAddress and PeerPort are the socket-level peer (an IP address,
	// usually), the last resort when neither a server address nor a URL
	// names the server; they pair by position like server_address.
	PeerAddress []string `mapstructure:"peer_address"`
	PeerPort    []string `mapstructure:"peer_port"`
	// HTTPMethod marks an HTTP span (URL fallback, default ports).
	HTTPMethod       []string `mapstructure:"http_method"`
	PeerService      []string `mapstructure:"peer_service"`
	RPCSystem        []string `mapstructure:"rpc_system"`
	RPCService       []string `mapstructure:"rpc_service"`
	RPCMethod        []string `mapstructure:"rpc_method"`
	MessagingSystem  []string `mapstructure:"messaging_system"`
	ProxyRoute       []string `mapstructure:"proxy_route"`
	RelayerService   []string `mapstructure:"relayer_service"`
	SourceChain      []string `mapstructure:"source_chain"`
	DestinationChain []string `mapstructure:"destination_chain"`
	XChainMessage    []string `mapstructure:"xchain_message"`
	StreamTopic      []string `mapstructure:"stream_topic"`
	StreamGroup      []string `mapstructure:"stream_group"`
	HTTPStatus       []string `mapstructure:"http_status"`
}

// AccessLog names the fields of JSON access logs (Envoy, NGINX): a log
// record whose body (a map, or a string holding a JSON object) has a
// status field and a duration field counts as one proxied request.
type AccessLog struct {
	Status     []string `mapstructure:"status"`
	DurationMs []string `mapstructure:"duration_ms"`
	DurationS  []string `mapstructure:"duration_s"`
	Route      []string `mapstructure:"route"`
}

// MetricMapping joins a metric onto an entity type as one input of its
// features (docs/entities.md lists the inputs each feature reads).
type MetricMapping struct {
	// Entity is the entity type the metric belongs to.
	Entity entity.Type `mapstructure:"entity"`
	// Input is the input name the features read (cpu.usage, pool.max...).
	Input string `mapstructure:"input"`
	// SplitBy names attributes whose value (the first present) is appended
	// to the input name: db.client.connection.count with
	// split_by [db.client.connection.state] gives pool.connections.used and
	// pool.connections.idle.
	SplitBy []string `mapstructure:"split_by"`
	// Attributes are identity attributes to assume when the telemetry does
	// not carry them (db.system.name: postgresql for the postgres exporter).
	Attributes map[string]string `mapstructure:"attributes"`
	// ServerFrom names data point attributes holding the "host:port" of
	// the server a database metric describes (the first present), used
	// instead of identity::server_address and server_port: a scrape's
	// resource names the exporter scraped, not the database it watches
	// (postgres_exporter's `server` label).
	ServerFrom []string `mapstructure:"server_from"`
	// Exclude skips the data points whose attribute (the key) has one of
	// the listed values; "" also matches a data point without it.
	// cAdvisor's rows of a pod's cgroup and of its pause container
	// (container "" or "POD") repeat what its containers' rows add up to.
	Exclude map[string][]string `mapstructure:"exclude"`
}

// Validate checks the settings; messages name the YAML key.
func (s *Settings) Validate() error {
	var errs []error
	pos := func(key string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", key, d))
		}
	}
	posInt := func(key string, n int) {
		if n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", key, n))
		}
	}
	pos("window::bucket", s.Window.Bucket)
	pos("window::long", s.Window.Long)
	pos("window::coarse_bucket", s.Window.CoarseBucket)
	if s.Window.Bucket > 0 && s.Window.Long < 5*time.Minute {
		errs = append(errs, fmt.Errorf("window::long must be at least 5m (the long feature window), got %s", s.Window.Long))
	}
	if s.Window.Bucket > 0 && s.Window.Long > 0 && s.Window.Long/s.Window.Bucket > 100000 {
		errs = append(errs, fmt.Errorf("window::long / window::bucket must be at most 100000 buckets"))
	}
	if s.Window.Bucket > time.Minute {
		errs = append(errs, fmt.Errorf("window::bucket must be at most 1m (the short feature window), got %s", s.Window.Bucket))
	}
	if s.Window.CoarseBucket > 0 && s.Window.CoarseBucket < s.Window.Bucket {
		errs = append(errs, fmt.Errorf("window::coarse_bucket (%s) must not be shorter than window::bucket (%s)", s.Window.CoarseBucket, s.Window.Bucket))
	}
	if a := s.Window.SketchAccuracy; !(a > 0 && a < 1) {
		errs = append(errs, fmt.Errorf("window::sketch_accuracy must be in (0, 1), got %g", a))
	}
	if s.Window.SketchMaxBins < 16 {
		errs = append(errs, fmt.Errorf("window::sketch_max_bins must be at least 16, got %d", s.Window.SketchMaxBins))
	}
	l := s.Limits
	posInt("limits::max_entities_per_type", l.MaxEntitiesPerType)
	posInt("limits::max_edges", l.MaxEdges)
	pos("limits::entity_ttl", l.EntityTTL)
	posInt("limits::max_pending_spans", l.MaxPendingSpans)
	pos("limits::pending_span_ttl", l.PendingSpanTTL)
	posInt("limits::max_series_per_entity", l.MaxSeriesPerEntity)
	posInt("limits::max_metrics_per_entity", l.MaxMetricsPerEntity)
	posInt("limits::max_pods_per_service", l.MaxPodsPerService)
	posInt("limits::max_templates_per_entity", l.MaxTemplatesPerEntity)
	posInt("limits::max_log_samples", l.MaxLogSamples)
	posInt("limits::max_exemplars", l.MaxExemplars)
	posInt("limits::max_sampled_traces", l.MaxSampledTraces)
	posInt("limits::max_spans_per_trace", l.MaxSpansPerTrace)
	pos("limits::trace_idle", l.TraceIdle)
	if r := s.CriticalPath.SampleRatio; r < 0 || r > 1 {
		errs = append(errs, fmt.Errorf("critical_path::sample_ratio must be in [0, 1], got %g", r))
	}
	if t := s.SLO.AvailabilityTarget; !(t > 0 && t < 1) {
		errs = append(errs, fmt.Errorf("slo::availability_target must be in (0, 1), got %g", t))
	}
	if s.Prices.CPUCoreHour < 0 {
		errs = append(errs, fmt.Errorf("prices::cpu_core_hour must not be negative, got %g", s.Prices.CPUCoreHour))
	}
	if s.Prices.MemoryGiBHour < 0 {
		errs = append(errs, fmt.Errorf("prices::memory_gib_hour must not be negative, got %g", s.Prices.MemoryGiBHour))
	}
	pos("baseline::time_constant", s.Baseline.TimeConstant)
	pos("slow_query_threshold", s.SlowQuery)
	for _, k := range []struct {
		key  string
		list []string
	}{
		{"identity::service_name", s.Identity.ServiceName},
		{"identity::pod_name", s.Identity.PodName},
		{"identity::db_system", s.Identity.DBSystem},
		{"identity::stream_topic", s.Identity.StreamTopic},
		{"access_log::status", s.AccessLog.Status},
	} {
		if len(k.list) == 0 {
			errs = append(errs, fmt.Errorf("%s must list at least one attribute", k.key))
		}
	}
	for name, m := range s.Metrics {
		if _, ok := entity.Schema[m.Entity]; !ok {
			errs = append(errs, fmt.Errorf("metrics::%s::entity: unknown entity type %q (one of %v)", name, m.Entity, entity.Types))
		}
		if m.Input == "" {
			errs = append(errs, fmt.Errorf("metrics::%s::input must not be empty", name))
		}
		if len(m.ServerFrom) > 0 && m.Entity != entity.Database {
			errs = append(errs, fmt.Errorf("metrics::%s::server_from: only database metrics name a server, this one is a %s metric", name, m.Entity))
		}
	}
	return errors.Join(errs...)
}

// DefaultIdentity is the processor's default identity lists
// (createDefaultConfig uses it; the graph's tests check the conventions
// against it). Every list names the current semantic-convention attribute
// first, then the older ones (docs/entities.md, "Semantic-convention
// versions", lists which version wrote which).
func DefaultIdentity() Identity {
	return Identity{
		ServiceName:      []string{"service.name"},
		ServiceNamespace: []string{"service.namespace"},
		PodName:          []string{"k8s.pod.name", "pod"},
		PodNamespace:     []string{"k8s.namespace.name", "namespace"},
		DBSystem:         []string{"db.system.name", "db.system"},
		DBNamespace:      []string{"db.namespace", "db.name", "db.redis.database_index", "datname"},
		DBQuery:          []string{"db.query.text", "db.statement"},
		ServerAddress:    []string{"server.address", "net.peer.name"},
		ServerPort:       []string{"server.port", "net.peer.port"},
		URL:              []string{"url.full", "http.url"},
		PeerAddress:      []string{"network.peer.address", "net.sock.peer.addr", "net.peer.ip"},
		PeerPort:         []string{"network.peer.port", "net.sock.peer.port", "net.peer.port"},
		HTTPMethod:       []string{"http.request.method", "http.method"},
		PeerService:      []string{"peer.service", "service.peer.name"},
		RPCSystem:        []string{"rpc.system.name", "rpc.system"},
		RPCService:       []string{"rpc.service"},
		RPCMethod:        []string{"rpc.method"},
		MessagingSystem:  []string{"messaging.system"},
		ProxyRoute:       []string{"envoy_cluster_name", "upstream_cluster", "cluster_name", "upstream", "route", "route_name"},
		RelayerService:   []string{"xchain.relayer", "service.name"},
		SourceChain:      []string{"xchain.source.chain", "src_chain", "chain", "chain_id"},
		DestinationChain: []string{"xchain.destination.chain", "dst_chain", "counterparty_chain", "counterparty", "counterparty_chain_id"},
		XChainMessage:    []string{"xchain.message.id", "xchain.destination.chain"},
		StreamTopic:      []string{"messaging.destination.name", "messaging.destination", "messaging.source.name", "topic"},
		StreamGroup:      []string{"messaging.consumer.group.name", "messaging.kafka.consumer.group", "messaging.kafka.consumer_group", "group", "consumergroup"},
		HTTPStatus:       []string{"http.response.status_code", "http.status_code"},
	}
}
