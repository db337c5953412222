package xchain

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// t0 is the fake clock's start: a fixed instant so figures are exact.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) Set(t time.Time)         { c.t = t }
func newClock() *fakeClock                   { return &fakeClock{t: t0} }
func at(d time.Duration) time.Time           { return t0.Add(d) }
func secondsOf(d time.Duration) float64      { return d.Seconds() }
func ctxb() context.Context                  { return context.Background() }
func mustNew(t testing.TB, cfg Config, set Settings) *Tracker {
	t.Helper()
	tr, err := New(cfg, set)
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctxb()))
	return tr
}

// fileStorage is a real file_storage extension over dir, as the collector
// runs it.
type fileStorage struct {
	ext    extension.Extension
	client storage.Client
}

func openFileStorage(t testing.TB, dir string) *fileStorage {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(ctxb(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(ctxb(), componenttest.NewNopHost()))
	client, err := ext.(storage.Extension).GetClient(ctxb(), component.KindProcessor, component.MustNewID("correlation"), "xchain")
	require.NoError(t, err)
	return &fileStorage{ext: ext, client: client}
}

// keys counts the records in storage.
func (fs *fileStorage) keys(t testing.TB) int {
	t.Helper()
	n := 0
	require.NoError(t, fs.client.(storage.Walker).Walk(ctxb(), func(string, []byte) ([]*storage.Operation, error) {
		n++
		return nil, nil
	}))
	return n
}

func ev(id string, stage Stage, when time.Time) Event {
	return Event{MessageID: id, Stage: stage, Time: when, Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}
}

const routeID = "relayer:hermes/osmosis-1/cosmoshub-4"
