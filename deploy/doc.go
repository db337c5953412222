// Package deploy holds Junction's Kubernetes manifests (the agent as a
// DaemonSet and as a sidecar, the gateway tier as a Deployment with an HPA
// and a PodDisruptionBudget, the ruler, the store and the single node as a
// StatefulSet with a volume claim, the Grafana data source as a ConfigMap)
// and the collector config of each role under configs/. It has no code: its
// tests decode every manifest strictly into the Kubernetes API types, keep
// the generated ConfigMaps in step with configs/ and grafana/, check every
// config with `junction validate`, check that every address a component
// sends to is served by a Service of its layout or is something the user
// brings, and run the store's config in bin/junction (docs/deploy.md).
package deploy
