// Package deploy holds Junction's Kubernetes manifests (the agent as a
// DaemonSet and as a sidecar, the gateway tier as a Deployment with an HPA
// and a PodDisruptionBudget) and the collector config of each role under
// configs/. It has no code: its tests decode every manifest strictly into the
// Kubernetes API types, keep the generated ConfigMaps in step with configs/, and check
// every config with `junction validate` (docs/deploy.md).
package deploy
