// Package realapp is a small application built from real OpenTelemetry
// instrumentation libraries, run against Junction to check detection on
// telemetry Junction's own simulator did not write (docs/realapp.md).
//
// Four services in one process, each with its own OTel SDK TracerProvider
// and resource, as separate deployments would have: frontend (HTTP,
// otelhttp) calls orders (HTTP, otelhttp), which calls inventory (gRPC,
// otelgrpc) and pricing (plain HTTP without tracing); inventory queries
// PostgreSQL through pgx with otelpgx. Spans leave through the SDK's OTLP
// exporters, to Junction and to a Recorder that writes them as the
// collector's file exporter does.
//
// Faults (Fault.Settings) are switched as a user would redeploy with other
// flags: a connection pool of one with a slow query, a worker pool of one,
// a slow untraced dependency; Healthy is the application with each fault
// fixed. Run plays every fault concurrently into one bin/junction and
// scores its graph and alerts against each instance's Truth; Record writes
// a recording of one fault with its Truth for offline triage.
package realapp
