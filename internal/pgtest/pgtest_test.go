package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	_ "github.com/lib/pq"
)

// TestStartServesAndStops starts a cluster with a connection limit, reads
// the limit back over a real connection, and checks Stop removes the
// cluster's directory.
func TestStartServesAndStops(t *testing.T) {
	bin, err := BinDir()
	if errors.Is(err, ErrNotInstalled) {
		t.Skipf("%v; .ci/run installs it", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pg, err := Start(context.Background(), bin, Options{MaxConnections: 37, Name: "pgtest"})
	if err != nil {
		t.Fatal(err)
	}
	dir := pg.dir
	db, err := sql.Open("postgres", pg.DSN("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var max string
	if err := db.QueryRow("SHOW max_connections").Scan(&max); err != nil {
		t.Fatalf("query: %v\n%s", err, pg.LogTail(2000))
	}
	db.Close()
	if max != "37" {
		t.Errorf("max_connections = %s, want 37", max)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there after Stop: %v", dir, err)
	}
}
