package xchain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// status is where a message stands.
type status uint8

const (
	statusPending status = iota
	statusDelivered
	statusFailed
	statusTimedOut
	// statusExpired: pending longer than max_age, reported as timed out.
	statusExpired
	// statusEvicted: pushed out by max_messages while pending.
	statusEvicted
)

var statusNames = [...]string{"pending", "delivered", "failed", "timed_out", "expired", "evicted"}

func (s status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Flags of a message: the latency pairs recorded once each, as soon as
// both ends are known, and whether its relayer was named with authority.
const (
	recSentToRelayed uint8 = 1 << iota
	recRelayedToExecuted
	recEndToEnd
	relayerNamed
)

// StageRecord is one known stage of a message.
type StageRecord struct {
	Stage             Stage     `json:"stage"`
	Time              time.Time `json:"time"`
	SourceTxHash      string    `json:"source_tx_hash,omitempty"`
	DestinationTxHash string    `json:"destination_tx_hash,omitempty"`
	GasUsed           float64   `json:"gas_used,omitempty"`
	GasPrice          float64   `json:"gas_price,omitempty"`
	FeeAmount         float64   `json:"fee_amount,omitempty"`
	FeeDenom          string    `json:"fee_denom,omitempty"`
}

// message is the joined record of one message. It is what is persisted.
type message struct {
	id       string
	relayer  string
	src, dst string
	status   status
	recorded uint8
	// closedAt is the clock time the message left the pending set (0 while
	// pending).
	closedAt int64
	// stages holds the known stages in lifecycle order, one per stage.
	stages []stageRecord

	// In-memory only.
	begin     int64 // start(), cached: the heaps' key
	ent       *relayerState
	globalIdx int  // index in Tracker.pending; -1 when not pending
	entIdx    int  // index in ent.pending; -1 when not pending
	dirty     bool // in Tracker.dirty, to be written
}

type stageRecord struct {
	stage             Stage
	time              int64 // unix nanoseconds
	srcTx, dstTx      string
	gasUsed, gasPrice float64
	fee               float64
	feeDenom          string
}

// start is the earliest known stage time: the message's age counts from it.
func (m *message) start() int64 {
	var s int64 = math.MaxInt64
	for i := range m.stages {
		if m.stages[i].time < s {
			s = m.stages[i].time
		}
	}
	return s
}

func (m *message) stage(s Stage) (stageRecord, bool) {
	for _, r := range m.stages {
		if r.stage == s {
			return r, true
		}
	}
	return stageRecord{}, false
}

// lastStage is the furthest stage known.
func (m *message) lastStage() Stage {
	if len(m.stages) == 0 {
		return StageUnknown
	}
	return m.stages[len(m.stages)-1].stage
}

// add merges one stage; it reports false when the stage was already known
// (a duplicate). A duplicate adds only what the stage lacked: an earlier
// time and transaction hashes not yet known (changed reports either). A
// stage is thus as early as the earliest of its events (a span ends after
// the log line of the same stage), whatever order they arrive in, so
// gateway replicas that each saw one of them agree with one node
// (internal/mergedgraph merges their stuck messages so).
func (m *message) add(r stageRecord) (added, changed bool) {
	i := 0
	for ; i < len(m.stages); i++ {
		if cur := &m.stages[i]; cur.stage == r.stage {
			if r.time < cur.time {
				cur.time, changed = r.time, true
			}
			if cur.srcTx == "" && r.srcTx != "" {
				cur.srcTx, changed = r.srcTx, true
			}
			if cur.dstTx == "" && r.dstTx != "" {
				cur.dstTx, changed = r.dstTx, true
			}
			return false, changed
		}
		if m.stages[i].stage > r.stage {
			break
		}
	}
	m.stages = append(m.stages, stageRecord{})
	copy(m.stages[i+1:], m.stages[i:])
	m.stages[i] = r
	return true, false
}

func (m *message) stageRecords() []StageRecord {
	out := make([]StageRecord, len(m.stages))
	for i, r := range m.stages {
		out[i] = StageRecord{
			Stage: r.stage, Time: time.Unix(0, r.time).UTC(),
			SourceTxHash: r.srcTx, DestinationTxHash: r.dstTx,
			GasUsed: r.gasUsed, GasPrice: r.gasPrice, FeeAmount: r.fee, FeeDenom: r.feeDenom,
		}
	}
	return out
}

// Storage keys: one key per message, pending or closed.
const (
	keyPrefix     = "xchain/msg/"
	recordVersion = 1
)

func storageKey(id string) string { return keyPrefix + id }

// appendRecord appends the binary encoding of m to dst.
func appendRecord(dst []byte, m *message) []byte {
	dst = append(dst, recordVersion, byte(m.status), m.recorded)
	dst = appendString(dst, m.id)
	dst = appendString(dst, m.relayer)
	dst = appendString(dst, m.src)
	dst = appendString(dst, m.dst)
	dst = binary.AppendVarint(dst, m.closedAt)
	dst = binary.AppendUvarint(dst, uint64(len(m.stages)))
	for _, r := range m.stages {
		dst = append(dst, byte(r.stage))
		dst = binary.AppendVarint(dst, r.time)
		dst = appendString(dst, r.srcTx)
		dst = appendString(dst, r.dstTx)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.gasUsed))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.gasPrice))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.fee))
		dst = appendString(dst, r.feeDenom)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errCorrupt = errors.New("corrupt message record")

// parseRecord decodes a record written by appendRecord.
func parseRecord(b []byte) (*message, error) {
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCorrupt, v, recordVersion)
	}
	m := &message{globalIdx: -1, entIdx: -1}
	m.status = status(d.byte())
	m.recorded = d.byte()
	m.id, m.relayer, m.src, m.dst = d.string(), d.string(), d.string(), d.string()
	m.closedAt = d.varint()
	n := d.uvarint()
	if n > uint64(numStages) {
		return nil, fmt.Errorf("%w: %d stages", errCorrupt, n)
	}
	for range n {
		var r stageRecord
		r.stage = Stage(d.byte())
		r.time = d.varint()
		r.srcTx, r.dstTx = d.string(), d.string()
		r.gasUsed, r.gasPrice, r.fee = d.float(), d.float(), d.float()
		r.feeDenom = d.string()
		if r.stage == StageUnknown || r.stage >= numStages {
			d.err = true
		}
		m.stages = append(m.stages, r)
	}
	if d.err || len(d.b) != 0 || int(m.status) >= len(statusNames) || m.id == "" || len(m.stages) == 0 {
		return nil, errCorrupt
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.err = true
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}
