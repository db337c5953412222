package xchain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/junction-sre/junction/entity"
)

// Tracker joins cross-chain events into message records and computes the
// relayer entities' features. All methods are safe for concurrent use;
// one lock guards all state. Storage writes are prepared under it (the
// changed records encoded into a batch of operations, each batch given its
// place in a sequence) and done after it is released, each batch after the
// one prepared before it, so the stored state follows the in-memory state
// and a slow disk never holds up the callers that only read or join.
type Tracker struct {
	cfg    Config
	store  storage.Client
	now    func() time.Time
	logger *zap.Logger
	tel    *telemetry
	ctx    context.Context // for telemetry calls
	alpha  float64         // EWMA weight per bucket

	mu       sync.Mutex
	msgs     map[string]*message
	pending  msgHeap
	closed   closedRing
	relayers map[string]*relayerState
	// routeRelayer is the relayer that last relayed a message of each
	// route (source, destination); bounded by max_relayers.
	routeRelayer map[[2]string]string
	scopes       map[string]*scopeState
	counts       Counts
	started      bool
	shutdown     bool
	// closedStore is set once Shutdown closed the storage client.
	closedStore bool
	// lastGC is when gcRelayers last ran: it walks the closed messages, so
	// a full table does not run it for every event.
	lastGC int64

	// Storage writes of the current call: dirty messages and deleted keys,
	// written as one storage batch.
	dirty   []*message
	deletes []string
	// lastWrite is closed when the storage batch prepared last has been
	// written; the next batch waits for it.
	lastWrite chan struct{}
	// bufs holds the encoding buffers of storage batches (*writeBuf).
	bufs sync.Pool
}

// Counts are the Tracker's totals since it was created (also exported as
// its own telemetry).
type Counts struct {
	// Pending and Closed are the messages held now.
	Pending, Closed int
	// Relayers and MetricScopes are the table sizes now.
	Relayers, MetricScopes int
	// Totals.
	ClosedTotal, Evicted, Expired, Duplicates, EventsDropped   uint64
	StorageErrors, CorruptRecords, FeesUnpriced, ScopesDropped uint64
	// Restored is the number of pending messages loaded by Start.
	Restored int
}

// New returns a Tracker. cfg must be valid (Config.Validate); it is not
// modified. Call Start before Observe when Settings.Storage is set.
func New(cfg Config, set Settings) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid xchain configuration: %w", err)
	}
	tel, err := newTelemetry(set.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("creating xchain telemetry: %w", err)
	}
	t := &Tracker{
		cfg:          cfg,
		store:        set.Storage,
		now:          set.Now,
		logger:       set.Logger,
		tel:          tel,
		ctx:          context.Background(),
		alpha:        1 - math.Exp(-math.Ln2*bucketWidth.Seconds()/cfg.BaselineHalfLife.Seconds()),
		msgs:         make(map[string]*message),
		pending:      msgHeap{global: true},
		relayers:     make(map[string]*relayerState),
		routeRelayer: make(map[[2]string]string),
		scopes:       make(map[string]*scopeState),
		lastWrite:    make(chan struct{}),
	}
	close(t.lastWrite)
	if t.now == nil {
		t.now = time.Now
	}
	if t.logger == nil {
		t.logger = zap.NewNop()
	}
	return t, nil
}

// Start loads the messages kept in storage: pending ones are pending again
// (and expire at once if they passed max_age while the collector was down),
// closed ones keep late stages from reopening them. Unreadable records are
// counted, logged and deleted. Without storage Start does nothing.
func (t *Tracker) Start(ctx context.Context) error {
	t.mu.Lock()
	started := t.started
	t.started = true
	t.mu.Unlock()
	if started {
		return errors.New("xchain tracker already started")
	}
	if t.store == nil {
		return nil
	}
	w, ok := t.store.(storage.Walker)
	if !ok {
		return errors.New("the xchain storage client cannot list its keys (storage.Walker): use the file_storage extension")
	}
	var loaded []*message
	var corrupt uint64
	err := w.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		if len(key) < len(keyPrefix) || key[:len(keyPrefix)] != keyPrefix {
			return nil, nil
		}
		m, err := parseRecord(value)
		if err == nil && storageKey(m.id) != key {
			err = fmt.Errorf("%w: stored under another message's key", errCorrupt)
		}
		if err != nil {
			t.logger.Warn("Deleting unreadable cross-chain message record", zap.String("key", key), zap.Error(err))
			corrupt++
			return []*storage.Operation{storage.DeleteOperation(key)}, nil
		}
		loaded = append(loaded, m)
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("loading cross-chain messages from storage: %w", err)
	}
	t.mu.Lock()
	t.counts.CorruptRecords += corrupt
	t.tel.corruptRecords.Add(t.ctx, int64(corrupt))
	now := t.now().UnixNano()
	// Closed first, in closing order, then pending oldest first so that a
	// lowered max_messages evicts the oldest.
	sort.Slice(loaded, func(i, j int) bool {
		a, b := loaded[i], loaded[j]
		if (a.status == statusPending) != (b.status == statusPending) {
			return a.status != statusPending
		}
		if a.status != statusPending {
			return a.closedAt < b.closedAt
		}
		a.begin, b.begin = a.start(), b.start()
		return a.begin < b.begin
	})
	for _, m := range loaded {
		m.begin = m.start()
		if old := t.msgs[m.id]; old != nil {
			continue
		}
		ent := t.relayerFor(m.relayer, m.src, m.dst, now)
		if ent == nil {
			t.counts.EventsDropped++
			t.tel.eventsDropped.Add(t.ctx, 1)
			t.deletes = append(t.deletes, storageKey(m.id))
			continue
		}
		m.ent = ent
		t.msgs[m.id] = m
		if m.recorded&relayerNamed != 0 {
			t.learnRouteRelayer(m)
		}
		if m.status != statusPending {
			t.pushClosed(m)
			continue
		}
		if t.pending.len() >= t.cfg.MaxMessages {
			t.evictOldest(now)
		}
		t.pending.push(m)
		ent.pending.push(m)
		t.tel.pending.Add(t.ctx, 1)
		t.counts.Restored++
	}
	t.housekeep(now)
	wr := t.takeWrite(false)
	t.mu.Unlock()
	return wr.Commit(ctx)
}

// Shutdown writes what is left, after the writes prepared before, and
// closes the storage client. It is idempotent.
func (t *Tracker) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.shutdown {
		t.mu.Unlock()
		return nil
	}
	t.shutdown = true
	w := t.takeWrite(true)
	t.closedStore = true // no write is prepared after this one
	t.mu.Unlock()
	err := w.Commit(ctx)
	if t.store != nil {
		err = errors.Join(err, t.store.Close(ctx))
	}
	return err
}

// Observe joins one event into its message and writes the message to
// storage before returning.
func (t *Tracker) Observe(ctx context.Context, ev Event) error {
	t.mu.Lock()
	now := t.now().UnixNano()
	err := t.observe(ev, now)
	t.housekeep(now)
	w := t.takeWrite(false)
	t.mu.Unlock()
	return errors.Join(err, w.Commit(ctx))
}

// ObserveBatch joins several events (say, one pdata batch) and writes the
// changed messages in one storage transaction before returning. Events
// with errors are skipped and their errors returned together.
func (t *Tracker) ObserveBatch(ctx context.Context, evs []Event) error {
	w, err := t.RecordBatch(evs)
	return errors.Join(err, w.Commit(ctx))
}

// RecordBatch is ObserveBatch without the storage write: it joins the
// events and returns the write of the changed messages, for the caller to
// Commit once its own locks are released (the correlation processor
// records under its telemetry clock and writes after leaving it). Commit
// every Write returned, exactly once: later writes wait for it.
func (t *Tracker) RecordBatch(evs []Event) (*Write, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now().UnixNano()
	var errs []error
	for i := range evs {
		if err := t.observe(evs[i], now); err != nil {
			errs = append(errs, err)
		}
	}
	t.housekeep(now)
	return t.takeWrite(false), errors.Join(errs...)
}

// Flush writes what the tracker changed without writing it yet: messages
// that Features expired or forgot.
func (t *Tracker) Flush(ctx context.Context) error {
	t.mu.Lock()
	w := t.takeWrite(false)
	t.mu.Unlock()
	return w.Commit(ctx)
}

func (t *Tracker) observe(ev Event, now int64) error {
	if t.shutdown {
		return errors.New("xchain tracker is shut down")
	}
	if ev.MessageID == "" {
		return errors.New("cross-chain event without " + AttrMessageID)
	}
	if ev.Stage == StageUnknown || ev.Stage >= numStages {
		return fmt.Errorf("message %q: invalid stage %d", ev.MessageID, ev.Stage)
	}
	ts := ev.Time.UnixNano()
	if ev.Time.IsZero() {
		ts = now
	}
	r := stageRecord{
		stage: ev.Stage, time: ts, srcTx: ev.SourceTxHash, dstTx: ev.DestinationTxHash,
		gasUsed: ev.GasUsed, gasPrice: ev.GasPrice, fee: ev.FeeAmount, feeDenom: ev.FeeDenom,
	}
	m := t.msgs[ev.MessageID]
	named, authoritative := namedRelayer(ev)
	if m == nil {
		relayer := named
		if !authoritative {
			relayer = t.provisionalRelayer(ev)
		}
		ent := t.relayerFor(relayer, ev.SourceChain, ev.DestinationChain, now)
		if ent == nil {
			t.counts.EventsDropped++
			t.tel.eventsDropped.Add(t.ctx, 1)
			return nil
		}
		if t.pending.len() >= t.cfg.MaxMessages {
			t.evictOldest(now)
		}
		m = &message{
			id: ev.MessageID, relayer: relayer, src: ev.SourceChain, dst: ev.DestinationChain,
			ent: ent, globalIdx: -1, entIdx: -1,
		}
		if authoritative {
			m.recorded |= relayerNamed
		}
		m.add(r)
		m.begin = ts
		t.msgs[m.id] = m
		t.pending.push(m)
		ent.pending.push(m)
		t.tel.pending.Add(t.ctx, 1)
	} else if added, changed := m.add(r); !added {
		t.counts.Duplicates++
		t.tel.duplicates.Add(t.ctx, 1)
		if changed {
			if b := m.start(); b != m.begin {
				m.begin = b
				if m.status == statusPending {
					t.pending.fix(m.globalIdx)
					m.ent.pending.fix(m.entIdx)
				}
			}
			t.markDirty(m)
		}
		return nil
	} else {
		t.updateIdentity(m, ev, named, authoritative, now)
		if b := m.start(); b != m.begin {
			m.begin = b
			if m.status == statusPending {
				t.pending.fix(m.globalIdx)
				m.ent.pending.fix(m.entIdx)
			}
		}
	}
	if m.recorded&relayerNamed != 0 {
		t.learnRouteRelayer(m)
	}
	ent := m.ent
	ent.lastActive = now
	bk := ent.advance(now, t.alpha)
	// gas.price is the destination chain's: one chain's gas unit per
	// entity, and the chain where relaying spends the relayer's wallet.
	if ev.GasPrice > 0 && (ev.Stage == StageRelayed || ev.Stage == StageExecuted) {
		bk.gasPriceSum += ev.GasPrice
		bk.gasPriceN++
	}
	if ev.FeeAmount > 0 {
		if v, ok := t.convertFee(ev.FeeAmount, ev.FeeDenom); ok {
			bk.feeSum += v
			bk.feeN++
		} else {
			t.counts.FeesUnpriced++
			t.tel.feesUnpriced.Add(t.ctx, 1)
		}
	}
	t.recordLatencies(m, bk)
	if m.status == statusPending && ev.Stage.Terminal() {
		st := statusDelivered
		switch ev.Stage {
		case StageFailed:
			st = statusFailed
		case StageTimedOut:
			st = statusTimedOut
		}
		t.close(m, st, now, bk)
	}
	t.markDirty(m)
	return nil
}

// namedRelayer is the relayer an event names with authority: xchain.relayer
// on any stage, or the emitting service on the relayed stage (the relayer
// is who relays).
func namedRelayer(ev Event) (string, bool) {
	if ev.Relayer != "" {
		return ev.Relayer, true
	}
	if ev.Stage == StageRelayed && ev.Service != "" {
		return ev.Service, true
	}
	return "", false
}

// provisionalRelayer attributes an event that names no relayer (a dapp's
// sent, an indexer's executed): the relayer that last relayed a message of
// the route, else the emitting service until a relayer is named.
func (t *Tracker) provisionalRelayer(ev Event) string {
	if r := t.routeRelayer[[2]string{ev.SourceChain, ev.DestinationChain}]; r != "" && ev.SourceChain != "" && ev.DestinationChain != "" {
		return r
	}
	return ev.Service
}

func (t *Tracker) learnRouteRelayer(m *message) {
	if m.src == "" || m.dst == "" || m.relayer == "" {
		return
	}
	k := [2]string{m.src, m.dst}
	r, ok := t.routeRelayer[k]
	if r == m.relayer || !ok && len(t.routeRelayer) >= t.cfg.MaxRelayers {
		return
	}
	t.routeRelayer[k] = m.relayer
}

// updateIdentity applies what a later event says about the message's
// relayer and route: chains fill in when unknown; a relayer named with
// authority (namedRelayer) replaces a provisional one or an earlier named
// one. A pending message moves to its new relayer entity (unless the
// relayer table is full).
func (t *Tracker) updateIdentity(m *message, ev Event, named string, authoritative bool, now int64) {
	relayer, src, dst := m.relayer, m.src, m.dst
	if authoritative {
		relayer = named
	} else if relayer == "" && m.recorded&relayerNamed == 0 {
		relayer = t.provisionalRelayer(ev)
	}
	if src == "" {
		src = ev.SourceChain
	}
	if dst == "" {
		dst = ev.DestinationChain
	}
	if authoritative {
		m.recorded |= relayerNamed
	}
	if relayer == m.relayer && src == m.src && dst == m.dst {
		return
	}
	ent := t.relayerFor(relayer, src, dst, now)
	if ent == nil {
		t.counts.EventsDropped++
		t.tel.eventsDropped.Add(t.ctx, 1)
		return
	}
	m.relayer, m.src, m.dst = relayer, src, dst
	if ent == m.ent {
		return
	}
	if m.status == statusPending {
		m.ent.pending.remove(m)
		ent.pending.push(m)
	}
	m.ent = ent
}

func (t *Tracker) convertFee(amount float64, denom string) (float64, bool) {
	if t.cfg.Fee.Unit == FeeUnitNative {
		return amount, true
	}
	p, ok := t.cfg.Fee.Prices[denom]
	return amount * p, ok
}

// recordLatencies adds each stage latency once, as soon as both of its ends
// are known, whatever order the stages arrived in.
func (t *Tracker) recordLatencies(m *message, bk *bucket) {
	sent, hasSent := m.stage(StageSent)
	relayed, hasRelayed := m.stage(StageRelayed)
	done, hasDone := m.stage(StageExecuted)
	if !hasDone {
		done, hasDone = m.stage(StageAcknowledged)
	}
	if hasSent && hasRelayed && m.recorded&recSentToRelayed == 0 {
		m.recorded |= recSentToRelayed
		addLatency(&bk.s2r, float64(relayed.time-sent.time)/1e9)
	}
	if hasRelayed && hasDone && m.recorded&recRelayedToExecuted == 0 {
		m.recorded |= recRelayedToExecuted
		addLatency(&bk.r2e, float64(done.time-relayed.time)/1e9)
	}
	if hasSent && hasDone && m.recorded&recEndToEnd == 0 {
		m.recorded |= recEndToEnd
		addLatency(&bk.e2e, float64(done.time-sent.time)/1e9)
	}
}

// close takes a pending message out of the pending set with its outcome.
func (t *Tracker) close(m *message, st status, now int64, bk *bucket) {
	t.pending.remove(m)
	m.ent.pending.remove(m)
	m.status = st
	m.closedAt = now
	t.tel.pending.Add(t.ctx, -1)
	if st != statusEvicted {
		bk.closed++
		switch st {
		case statusFailed:
			bk.failed++
		case statusTimedOut, statusExpired:
			bk.timedOut++
		}
		t.counts.ClosedTotal++
		t.tel.closed.Add(t.ctx, 1)
	}
	t.pushClosed(m)
	t.markDirty(m)
}

// evictOldest makes room under max_messages: the oldest pending message
// leaves the pending set, counted and reported in its relayer's evidence.
func (t *Tracker) evictOldest(now int64) {
	m := t.pending.min()
	if m == nil {
		return
	}
	t.counts.Evicted++
	t.tel.evicted.Add(t.ctx, 1)
	t.report(m, statusEvicted, now)
	t.close(m, statusEvicted, now, nil)
}

// housekeep expires messages pending longer than max_age and forgets
// closed messages older than closed_retention.
func (t *Tracker) housekeep(now int64) {
	limit := now - int64(t.cfg.MaxAge)
	for m := t.pending.min(); m != nil && m.begin < limit; m = t.pending.min() {
		t.counts.Expired++
		t.tel.expired.Add(t.ctx, 1)
		bk := m.ent.advance(now, t.alpha)
		t.report(m, statusExpired, now)
		t.close(m, statusExpired, now, bk)
	}
	keep := now - int64(t.cfg.ClosedRetention)
	for m := t.closed.peek(); m != nil && m.closedAt < keep; m = t.closed.peek() {
		t.closed.pop()
		t.forget(m)
	}
}

// report lists an expired or evicted message in its relayer's evidence.
func (t *Tracker) report(m *message, st status, now int64) {
	if t.cfg.MaxEvidence == 0 {
		return
	}
	s := t.stuck(m, now)
	s.Status = st.String()
	m.ent.report(s, t.cfg.MaxEvidence)
}

func (t *Tracker) stuck(m *message, now int64) StuckMessage {
	s := StuckMessage{
		MessageID: m.id, Status: m.status.String(), EntityID: m.ent.id,
		Relayer: m.relayer, SourceChain: m.src, DestinationChain: m.dst,
		Since: time.Unix(0, m.begin).UTC(), AgeSeconds: float64(now-m.begin) / 1e9,
		LastStage: m.lastStage(), Stages: m.stageRecords(), ReportedAt: time.Unix(0, now).UTC(),
	}
	if len(t.scopes) == 0 {
		return s
	}
	f := map[string]float64{}
	for k, v := range t.healthFeatures(m.ent.scopes, now, shortWindow, f) {
		f[k] = v
	}
	if len(f) > 0 {
		s.Metrics = f
	}
	return s
}

func (t *Tracker) pushClosed(m *message) {
	if t.closed.len() >= t.cfg.MaxClosed {
		t.forget(t.closed.pop())
	}
	t.closed.push(m)
}

// forget drops a closed message from memory and storage.
func (t *Tracker) forget(m *message) {
	delete(t.msgs, m.id)
	m.ent = nil
	if t.store != nil {
		t.deletes = append(t.deletes, storageKey(m.id))
	}
}

func (t *Tracker) markDirty(m *message) {
	if t.store == nil || m.dirty {
		return
	}
	m.dirty = true
	t.dirty = append(t.dirty, m)
}

// Write is one storage batch the tracker prepared under its lock, to be
// written with Commit after the lock is released. A nil Write writes
// nothing.
type Write struct {
	t   *Tracker
	buf *writeBuf
	// prev is closed when the batch prepared before this one is written;
	// done when this one is.
	prev, done chan struct{}
}

// writeBuf holds one storage batch's operations and the encoded records
// they point into.
type writeBuf struct {
	rec   []byte
	opArr []storage.Operation
	ops   []*storage.Operation
}

// Commit writes the batch once the batches prepared before it are written.
// A failed write is counted and returned.
func (w *Write) Commit(ctx context.Context) error {
	if w == nil {
		return nil
	}
	defer close(w.done)
	<-w.prev
	var err error
	if len(w.buf.ops) > 0 {
		err = w.t.store.Batch(ctx, w.buf.ops...)
	}
	w.t.putBuf(w.buf)
	if err != nil {
		w.t.mu.Lock()
		w.t.counts.StorageErrors++
		w.t.mu.Unlock()
		w.t.tel.storageErrors.Add(w.t.ctx, 1)
		return fmt.Errorf("writing cross-chain message state to storage: %w", err)
	}
	return nil
}

// takeWrite encodes the dirty messages and deletions into one storage
// batch and gives it its place after the batches taken before. It returns
// nil when there is nothing to write, unless wait is set (Shutdown's write
// waits for the earlier ones). Called under t.mu.
func (t *Tracker) takeWrite(wait bool) *Write {
	if t.store == nil || t.closedStore || (len(t.dirty) == 0 && len(t.deletes) == 0 && !wait) {
		clear(t.dirty)
		t.dirty, t.deletes = t.dirty[:0], t.deletes[:0]
		return nil
	}
	wb, _ := t.bufs.Get().(*writeBuf)
	if wb == nil {
		wb = &writeBuf{}
	}
	// Deletes first: a message forgotten and seen again in the same call
	// must end up stored.
	for _, k := range t.deletes {
		wb.opArr = append(wb.opArr, storage.Operation{Type: storage.Delete, Key: k})
	}
	for _, m := range t.dirty {
		m.dirty = false
		if m.ent == nil { // forgotten in the same call: only the delete stands
			continue
		}
		start := len(wb.rec)
		wb.rec = appendRecord(wb.rec, m)
		wb.opArr = append(wb.opArr, storage.Operation{Type: storage.Set, Key: storageKey(m.id), Value: wb.rec[start:len(wb.rec):len(wb.rec)]})
	}
	for i := range wb.opArr {
		wb.ops = append(wb.ops, &wb.opArr[i])
	}
	clear(t.dirty)
	t.dirty, t.deletes = t.dirty[:0], t.deletes[:0]
	w := &Write{t: t, buf: wb, prev: t.lastWrite, done: make(chan struct{})}
	t.lastWrite = w.done
	return w
}

func (t *Tracker) putBuf(wb *writeBuf) {
	clear(wb.opArr)
	clear(wb.ops)
	wb.rec, wb.opArr, wb.ops = wb.rec[:0], wb.opArr[:0], wb.ops[:0]
	t.bufs.Put(wb)
}

// relayerFor returns the relayer entity, creating it when there is room.
func (t *Tracker) relayerFor(relayer, src, dst string, now int64) *relayerState {
	id := entity.ID(entity.Relayer, relayer, src, dst)
	if r := t.relayers[id]; r != nil {
		return r
	}
	if len(t.relayers) >= t.cfg.MaxRelayers {
		t.gcRelayers(now)
		if len(t.relayers) >= t.cfg.MaxRelayers {
			return nil
		}
	}
	r := newRelayerState(id, relayer, src, dst, now)
	t.relayers[id] = r
	return r
}

// gcRelayers removes relayer entities with nothing pending, no closed
// message still referring to them and no activity in the long window.
func (t *Tracker) gcRelayers(now int64) {
	if t.lastGC != 0 && now-t.lastGC < int64(bucketWidth) {
		return
	}
	t.lastGC = now
	inUse := make(map[*relayerState]bool)
	for i := 0; i < t.closed.len(); i++ {
		inUse[t.closed.at(i).ent] = true
	}
	for id, r := range t.relayers {
		if r.pending.len() == 0 && !inUse[r] && now-r.lastActive > int64(longWindow) {
			delete(t.relayers, id)
		}
	}
}

// Counts returns the Tracker's current totals.
func (t *Tracker) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts
	c.Pending = t.pending.len()
	c.Closed = t.closed.len()
	c.Relayers = len(t.relayers)
	c.MetricScopes = len(t.scopes)
	return c
}

// closedRing is a FIFO of closed messages in closing order.
type closedRing struct {
	buf  []*message
	head int
	n    int
}

func (r *closedRing) len() int { return r.n }

func (r *closedRing) at(i int) *message { return r.buf[(r.head+i)%len(r.buf)] }

func (r *closedRing) peek() *message {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.head]
}

func (r *closedRing) push(m *message) {
	if r.n == len(r.buf) {
		// Grow, unrolling the ring; bounded by max_closed via pushClosed.
		nb := make([]*message, max(2*len(r.buf), 16))
		for i := 0; i < r.n; i++ {
			nb[i] = r.at(i)
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.n++
}

func (r *closedRing) pop() *message {
	m := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return m
}
