package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompb"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/storage"
)

// precisionBits keeps 64-bit float precision (lossless for the values the
// processor emits); VictoriaMetrics allows 1..64.
const precisionBits = 64

// maxSearchSeries bounds how many series one query may touch.
const maxSearchSeries = 1_000_000

// searchTimeout bounds one storage search.
const searchTimeout = 30 * time.Second

// Series is the embedded VictoriaMetrics storage of derived series.
type Series struct {
	vm   *storage.Storage
	path string

	// syncMu serialises Sync: each one creates and deletes a snapshot.
	syncMu sync.Mutex
}

// OpenSeries opens (or creates) the series storage in dir/series. The caller
// checks dir with CheckDirectory first: VictoriaMetrics ends the process on
// disk errors.
func OpenSeries(dir string, retention, flushInterval time.Duration, minFree uint64) *Series {
	initVictoriaMetrics()
	// Data reaches disk at least every flushInterval (VictoriaMetrics' own
	// background flush; it never goes below its 2 s pending-rows interval).
	storage.SetDataFlushInterval(flushInterval)
	// Below this, VictoriaMetrics turns read-only instead of failing writes
	// half way; Health reports it.
	storage.SetFreeDiskSpaceLimit(int64(minFree))
	// VictoriaMetrics caches "filters -> series" per day and resets that
	// cache up to 10 s after new series are indexed: a graph or series
	// query repeated in that time would miss new entities. Junction's
	// queries are few and use exact names, so the cache is kept to one byte
	// (off).
	storage.SetTagFiltersCacheSize(1)
	path := filepath.Join(dir, "series")
	vm := storage.MustOpenStorage(path, storage.OpenOptions{Retention: retention})
	return &Series{vm: vm, path: path}
}

// Close flushes and closes the storage.
func (s *Series) Close() { s.vm.MustClose() }

// ReadOnly reports whether the storage stopped accepting writes because the
// disk is (nearly) full.
func (s *Series) ReadOnly() bool { return s.vm.IsReadOnly() }

// Add writes rows. The rows become searchable within about a second (or at
// once after Sync) and durable after the flush interval (or Sync).
func (s *Series) Add(rows []storage.MetricRow) {
	if len(rows) > 0 {
		s.vm.AddRows(rows, precisionBits)
	}
}

// Sync makes every row added so far searchable and writes it to disk. It
// works by creating a snapshot (which flushes in-memory parts to files) and
// deleting it at once: VictoriaMetrics has no other exported way to force
// its in-memory parts to disk.
func (s *Series) Sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.vm.DebugFlush()
	name := s.vm.MustCreateSnapshot()
	if err := s.vm.DeleteSnapshot(name); err != nil {
		return fmt.Errorf("delete flush snapshot %s: %w", name, err)
	}
	return nil
}

// SearchableFlush makes rows added so far visible to searches (not durable).
func (s *Series) SearchableFlush() { s.vm.DebugFlush() }

// RowBuilder appends rows with their raw metric names into reused buffers.
type RowBuilder struct {
	Rows   []storage.MetricRow
	buf    []byte
	labels []prompb.Label
}

// Reset empties the builder, keeping its buffers.
func (b *RowBuilder) Reset() {
	clear(b.Rows)
	b.Rows = b.Rows[:0]
	b.buf = b.buf[:0]
	b.labels = b.labels[:0]
}

// StartSeries begins the label set of the next row with the metric name.
func (b *RowBuilder) StartSeries(name string) {
	b.labels = append(b.labels[:0], prompb.Label{Name: "__name__", Value: name})
}

// Label adds a label to the series being built. Empty values are skipped,
// as in Prometheus.
func (b *RowBuilder) Label(name, value string) {
	if value != "" {
		b.labels = append(b.labels, prompb.Label{Name: name, Value: value})
	}
}

// Append adds one sample of the series being built.
func (b *RowBuilder) Append(tsMillis int64, value float64) {
	start := len(b.buf)
	b.buf = storage.MarshalMetricNameRaw(b.buf, b.labels)
	b.Rows = append(b.Rows, storage.MetricRow{Timestamp: tsMillis, Value: value})
	// Slices into buf are fixed up in Finish: buf may still grow.
	b.Rows[len(b.Rows)-1].MetricNameRaw = b.buf[start:len(b.buf):len(b.buf)]
}

// Finish points every row at its name in the final buffer and returns the
// rows.
func (b *RowBuilder) Finish() []storage.MetricRow {
	off := 0
	for i := range b.Rows {
		n := len(b.Rows[i].MetricNameRaw)
		b.Rows[i].MetricNameRaw = b.buf[off : off+n : off+n]
		off += n
	}
	return b.Rows
}

// Filter selects series by one label: Name empty means the metric name.
type Filter struct {
	Label  string
	Value  string
	Regexp bool
}

// SeriesBlock is one block of samples of one series, in time order.
type SeriesBlock struct {
	Name *storage.MetricName
	// NewSeries is false when the block continues the series of the
	// previous block: callers may reuse what they derived from Name.
	NewSeries  bool
	Timestamps []int64
	Values     []float64
}

// Search calls fn for every block of the series matching all filters in
// [from, to] (Unix ms). Blocks of one series come in time order; the slices
// are reused after fn returns.
func (s *Series) Search(filters []Filter, from, to int64, fn func(SeriesBlock)) error {
	tfs := storage.NewTagFilters()
	for _, f := range filters {
		var key []byte
		if f.Label != "" && f.Label != "__name__" {
			key = []byte(f.Label)
		}
		if err := tfs.Add(key, []byte(f.Value), false, f.Regexp); err != nil {
			return fmt.Errorf("series filter %s=%q: %w", f.Label, f.Value, err)
		}
	}
	tr := storage.TimeRange{MinTimestamp: from, MaxTimestamp: to}
	var sr storage.Search
	deadline := uint64(time.Now().Add(searchTimeout).Unix())
	sr.Init(nil, s.vm, []*storage.TagFilters{tfs}, tr, maxSearchSeries, deadline)
	defer sr.MustClose()
	var (
		blk       storage.Block
		mn        storage.MetricName
		ts        []int64
		vs        []float64
		prev      []byte
		newSeries bool
	)
	for sr.NextMetricBlock() {
		ref := sr.MetricBlockRef
		// newSeries stays set until a block of the series is delivered:
		// a first block may hold no rows in the range.
		if string(ref.MetricName) != string(prev) {
			newSeries = true
			if err := mn.Unmarshal(ref.MetricName); err != nil {
				return fmt.Errorf("series name: %w", err)
			}
			prev = append(prev[:0], ref.MetricName...)
		}
		ref.BlockRef.MustReadBlock(&blk)
		if err := blk.UnmarshalData(); err != nil {
			return fmt.Errorf("series block of %s: %w", mn.String(), err)
		}
		ts, vs = blk.AppendRowsWithTimeRangeFilter(ts[:0], vs[:0], tr)
		if len(ts) > 0 {
			fn(SeriesBlock{Name: &mn, NewSeries: newSeries, Timestamps: ts, Values: vs})
			newSeries = false
		}
	}
	if err := sr.Error(); err != nil {
		return fmt.Errorf("series search: %w", err)
	}
	return nil
}
