package correlationprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/junction-sre/junction/entity"
)

// TestPostgresExporterServerLabelNamesTheDatabase: a scrape of
// postgres_exporter carries the exporter's address in its resource
// (server.address, server.port, as the prometheus receiver sets them) and
// the database's in each series' `server` label: the metrics join the
// database entity that callers' client spans name, not one named after the
// exporter.
func TestPostgresExporterServerLabelNamesTheDatabase(t *testing.T) {
	now := t0
	e, err := NewEmbedded(context.Background(), EmbeddedSettings{Now: func() time.Time { return now }})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "postgres")
	rm.Resource().Attributes().PutStr("server.address", "pg-exporter.monitoring")
	rm.Resource().Attributes().PutStr("server.port", "9187")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for name, v := range map[string]float64{"pg_stat_database_numbackends": 30, "pg_locks_waiting_count": 7} {
		m := ms.AppendEmpty()
		m.SetName(name)
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr("datname", "shop")
		dp.Attributes().PutStr("server", "10.0.0.7:5432")
	}
	require.NoError(t, e.ConsumeMetrics(context.Background(), md))
	now = now.Add(15 * time.Second)
	require.NoError(t, e.Tick(context.Background(), now))

	snap, err := e.Snapshot(context.Background(), now)
	require.NoError(t, err)
	db, ok := snap.Entity(entity.ID(entity.Database, "postgresql", "10.0.0.7:5432", "shop"))
	require.True(t, ok, "no database entity named by the server label; entities: %v", entityIDs(snap))
	require.Equal(t, 7.0, db.Features["locks.waiting"])
	_, wrong := snap.Entity(entity.ID(entity.Database, "postgresql", "pg-exporter.monitoring:9187", "shop"))
	require.False(t, wrong, "a database entity named after the exporter")
}

func entityIDs(snap *entity.Snapshot) []string {
	out := make([]string, len(snap.Entities))
	for i := range snap.Entities {
		out[i] = snap.Entities[i].ID
	}
	return out
}
