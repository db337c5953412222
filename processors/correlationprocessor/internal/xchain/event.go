// Package xchain tracks the lifecycle of cross-chain messages and the health
// of the relayers that carry them.
//
// Events (spans or log records carrying xchain.* attributes) are joined into
// one message record per xchain.message.id; the record lives in a storage
// extension so a restart loses no pending message. Per relayer entity
// (relayer service + source chain + destination chain) the Tracker keeps
// stage latencies as sketches, failure and timeout ratios, gas price against
// its baseline, fees and throughput, and joins Hermes-style relayer metrics
// (backlog, wallet, finality) into the relayer features of entity.Schema.
//
// The package knows pdata only at its edges (EventFromAttributes,
// ScopeFromMetric); everything else works on plain values so the correlation
// processor drives it from any signal. docs/crosschain.md is the user's
// reference.
package xchain

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Attribute names read from spans and log records (DESIGN §4 "Cross-chain
// attributes"). No semantic convention exists for them yet.
const (
	AttrMessageID         = "xchain.message.id"
	AttrSourceChain       = "xchain.source.chain"
	AttrDestinationChain  = "xchain.destination.chain"
	AttrStage             = "xchain.stage"
	AttrSourceTxHash      = "xchain.source.tx.hash"
	AttrDestinationTxHash = "xchain.destination.tx.hash"
	AttrGasUsed           = "xchain.gas.used"
	AttrGasPrice          = "xchain.gas.price"
	AttrFeeAmount         = "xchain.fee.amount"
	AttrFeeDenom          = "xchain.fee.denom"
	// AttrRelayer names the relayer explicitly. It is optional: without it
	// the relayer is the resource's service.name.
	AttrRelayer = "xchain.relayer"

	attrServiceName = "service.name"
)

// Stage is one step of a cross-chain message's lifecycle.
type Stage uint8

// Stages in lifecycle order. Executed, Acknowledged, Failed and TimedOut are
// terminal: the first of them closes the message.
const (
	StageUnknown Stage = iota
	StageSent
	StageSourceFinalized
	StageRelayed
	StageExecuted
	StageAcknowledged
	StageFailed
	StageTimedOut
	numStages
)

var stageNames = [numStages]string{
	StageUnknown:         "unknown",
	StageSent:            "sent",
	StageSourceFinalized: "source_finalized",
	StageRelayed:         "relayed",
	StageExecuted:        "executed",
	StageAcknowledged:    "acknowledged",
	StageFailed:          "failed",
	StageTimedOut:        "timed_out",
}

// String returns the stage as written in xchain.stage.
func (s Stage) String() string {
	if s < numStages {
		return stageNames[s]
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the stage as written in xchain.stage.
func (s Stage) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseStage reads an xchain.stage value.
func ParseStage(v string) (Stage, error) {
	for s := StageSent; s < numStages; s++ {
		if stageNames[s] == v {
			return s, nil
		}
	}
	return StageUnknown, fmt.Errorf("unknown %s %q: want one of sent, source_finalized, relayed, executed, acknowledged, failed, timed_out", AttrStage, v)
}

// Terminal reports whether the stage closes a message.
func (s Stage) Terminal() bool { return s >= StageExecuted && s < numStages }

// Event is one observed stage of one message.
type Event struct {
	MessageID        string
	Stage            Stage
	SourceChain      string
	DestinationChain string
	// Relayer names the relayer explicitly (xchain.relayer); usually
	// empty.
	Relayer string
	// Service is the emitting resource's service.name. It names the
	// relayer on the relayed stage; on other stages it is only a fallback
	// (see Tracker.Observe).
	Service           string
	Time              time.Time
	SourceTxHash      string
	DestinationTxHash string
	// GasUsed, GasPrice and FeeAmount are 0 when the event did not carry
	// them. GasPrice is in the native unit per gas; FeeAmount in FeeDenom.
	GasUsed   float64
	GasPrice  float64
	FeeAmount float64
	FeeDenom  string
}

// EventFromAttributes reads a cross-chain event from a span's or log
// record's attributes, falling back to the resource attributes for each
// key. ok is false when neither carries xchain.message.id (the record is not
// a cross-chain event). A present but malformed value is an error naming the
// attribute; it never panics.
func EventFromAttributes(resource, attrs pcommon.Map, ts time.Time) (ev Event, ok bool, err error) {
	get := func(key string) (pcommon.Value, bool) {
		if v, found := attrs.Get(key); found {
			return v, true
		}
		return resource.Get(key)
	}
	idv, found := get(AttrMessageID)
	if !found {
		return Event{}, false, nil
	}
	ev.MessageID = idv.AsString()
	if ev.MessageID == "" {
		return Event{}, true, fmt.Errorf("%s is empty", AttrMessageID)
	}
	sv, found := get(AttrStage)
	if !found {
		return Event{}, true, fmt.Errorf("message %q: %s is missing", ev.MessageID, AttrStage)
	}
	if ev.Stage, err = ParseStage(sv.AsString()); err != nil {
		return Event{}, true, fmt.Errorf("message %q: %w", ev.MessageID, err)
	}
	str := func(key string) string {
		if v, found := get(key); found {
			return v.AsString()
		}
		return ""
	}
	ev.SourceChain = str(AttrSourceChain)
	ev.DestinationChain = str(AttrDestinationChain)
	ev.SourceTxHash = str(AttrSourceTxHash)
	ev.DestinationTxHash = str(AttrDestinationTxHash)
	ev.FeeDenom = str(AttrFeeDenom)
	ev.Relayer = str(AttrRelayer)
	if v, found := resource.Get(attrServiceName); found {
		ev.Service = v.AsString()
	}
	ev.Time = ts
	for _, f := range []struct {
		key string
		dst *float64
	}{{AttrGasUsed, &ev.GasUsed}, {AttrGasPrice, &ev.GasPrice}, {AttrFeeAmount, &ev.FeeAmount}} {
		v, found := get(f.key)
		if !found {
			continue
		}
		x, err := number(v)
		if err != nil {
			return Event{}, true, fmt.Errorf("message %q: %s: %w", ev.MessageID, f.key, err)
		}
		*f.dst = x
	}
	return ev, true, nil
}

// number reads a non-negative finite number from an int, double or string
// attribute (amounts in wei overflow int64, so strings are common).
func number(v pcommon.Value) (float64, error) {
	var x float64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		x = float64(v.Int())
	case pcommon.ValueTypeDouble:
		x = v.Double()
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(v.Str(), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", v.Str())
		}
		x = f
	default:
		return 0, fmt.Errorf("want a number, got a %s value", v.Type())
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return 0, fmt.Errorf("%v is not a non-negative finite number", x)
	}
	return x, nil
}
