package xchain

import (
	"context"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// slowStore is an in-memory storage client whose Batch blocks until the
// test releases it: it first sends the keys the batch sets or deletes on
// entered, then waits for release.
type slowStore struct {
	entered chan []string
	release chan struct{}

	mu   sync.Mutex
	data map[string][]byte
}

func newSlowStore() *slowStore {
	return &slowStore{entered: make(chan []string), release: make(chan struct{}), data: map[string][]byte{}}
}

func (s *slowStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[key], nil
}

func (s *slowStore) Set(ctx context.Context, key string, value []byte) error {
	return s.Batch(ctx, storage.SetOperation(key, value))
}

func (s *slowStore) Delete(ctx context.Context, key string) error {
	return s.Batch(ctx, storage.DeleteOperation(key))
}

func (s *slowStore) Batch(_ context.Context, ops ...*storage.Operation) error {
	keys := make([]string, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	sort.Strings(keys)
	s.entered <- keys
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			s.data[op.Key] = append([]byte(nil), op.Value...)
		case storage.Delete:
			delete(s.data, op.Key)
		}
	}
	return nil
}

func (s *slowStore) Walk(_ context.Context, fn storage.WalkFunc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.data {
		if _, err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (s *slowStore) Close(context.Context) error { return nil }

// TestSlowStorageDoesNotHoldTheTracker: while one batch's records are
// being written, the tracker still answers Features and Counts and takes
// relayer metrics. (Before the write moved out of the tracker's lock,
// those waited for the disk: this test then fails after its timeout.)
func TestSlowStorageDoesNotHoldTheTracker(t *testing.T) {
	store := newSlowStore()
	clock := newClock()
	tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: store})

	written := make(chan error, 1)
	go func() { written <- tr.ObserveBatch(ctxb(), []Event{ev("transfer/channel-0/1", StageSent, at(0))}) }()
	select {
	case keys := <-store.entered:
		require.Equal(t, []string{storageKey("transfer/channel-0/1")}, keys)
	case <-time.After(30 * time.Second):
		t.Fatal("the batch never reached storage")
	}

	answered := make(chan map[string]RelayerView, 1)
	go func() {
		tr.ObserveScopeMetric(Scope{Relayer: "hermes", SourceChain: "osmosis-1", DestinationChain: "cosmoshub-4"}, MetricBacklogSize, 3, at(time.Second))
		_ = tr.Counts()
		answered <- tr.Features(at(time.Second))
	}()
	select {
	case views := <-answered:
		require.Contains(t, views, routeID)
		require.Equal(t, 1.0, views[routeID].Features["messages.pending"])
	case <-time.After(10 * time.Second):
		close(store.release)
		t.Fatal("the tracker waited for a slow storage write")
	}
	close(store.release)
	require.NoError(t, <-written)
	go func() { // Shutdown's write, if any, must not block
		for range store.entered {
		}
	}()
	require.NoError(t, tr.Shutdown(ctxb()))
	close(store.entered)
}

// TestStorageWritesInPreparedOrder: a batch joined while the previous
// batch is still being written is written after it, so storage ends up
// with the newer record of a message both batches changed.
func TestStorageWritesInPreparedOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newSlowStore()
		clock := newClock()
		tr := mustNew(t, DefaultConfig(), Settings{Now: clock.Now, Storage: store})
		id1, id2 := "transfer/channel-0/1", "transfer/channel-0/2"

		first := make(chan error, 1)
		go func() { first <- tr.ObserveBatch(ctxb(), []Event{ev(id1, StageSent, at(0))}) }()
		require.Equal(t, []string{storageKey(id1)}, <-store.entered)

		second := make(chan error, 1)
		go func() {
			second <- tr.ObserveBatch(ctxb(), []Event{ev(id1, StageRelayed, at(time.Second)), ev(id2, StageSent, at(time.Second))})
		}()
		synctest.Wait()
		require.Equal(t, 2, tr.Counts().Pending, "the second batch was joined while the first was written")
		select {
		case keys := <-store.entered:
			t.Fatalf("batch %v was written before the batch prepared earlier", keys)
		default:
		}

		store.release <- struct{}{}
		require.NoError(t, <-first)
		require.Equal(t, []string{storageKey(id1), storageKey(id2)}, <-store.entered)
		store.release <- struct{}{}
		require.NoError(t, <-second)

		m, err := parseRecord(store.data[storageKey(id1)])
		require.NoError(t, err)
		_, relayed := m.stage(StageRelayed)
		require.True(t, relayed, "the stored record of %s is the one written last", id1)
		require.NoError(t, tr.Shutdown(ctxb()))
	})
}
