// Package scenarios simulates the system Junction watches — an edge proxy
// in front of a shop on Kubernetes, Postgres behind client connection
// pools, a Kafka-fed dashboard and a cross-chain relayer — and injects one
// fault per scenario: a surge at the proxy, a CPU-throttled hop, pool
// exhaustion, a relayer stall, consumer lag, and a cost/reliability
// trade-off. Each scenario declares its ground truth (the rules that must
// fire, the entity they must blame, the fault window), which package
// detect scores alerts against.
//
// Generation is deterministic: one seeded random stream and a virtual
// clock, so the same Plan always yields the same batches, as fast as the
// Sink takes them or paced by a Clock. docs/scenarios.md lists every
// emitted signal.
package scenarios
