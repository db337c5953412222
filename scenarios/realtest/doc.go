// Package realtest runs Junction against real components: Debian's NGINX
// proxying to a test service and writing JSON access logs, and Debian's
// PostgreSQL watched by Debian's prometheus-postgres-exporter, while load
// makes the proxy shed and the database run out of connections and wait on
// locks. The test checks that the correlation processor joins the signals
// onto the proxy and database entities and that the built-in rule packs
// raise the surge and database alerts with the right blame
// (docs/scenarios.md, "Real components").
//
// The test starts private instances on free loopback ports and skips only
// when one of the binaries is not installed (.ci/run installs them).
package realtest
