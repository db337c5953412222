// Package gateway tests Junction's gateway tier end to end in one process:
// agents' kafka exporter → an in-process Kafka broker (franz-go's kfake,
// speaking the real wire protocol) → gateway replicas, each a kafka receiver
// in one consumer group feeding its own correlation processor. The exporter
// and receiver configs are the ones shipped in deploy/configs, so the tests
// check the partitioning users deploy (docs/deploy.md).
package gateway
