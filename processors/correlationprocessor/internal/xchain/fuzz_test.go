package xchain

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// FuzzParseRecord: whatever is in storage, Start must not panic; a record
// that parses must encode and parse back to the same record.
func FuzzParseRecord(f *testing.F) {
	m := &message{id: "m1", relayer: "hermes", src: "a", dst: "b", status: statusPending}
	m.add(stageRecord{stage: StageSent, time: 1, srcTx: "0x1", fee: 2, feeDenom: "uatom"})
	f.Add(appendRecord(nil, m))
	f.Add([]byte{recordVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseRecord(b)
		if err != nil {
			return
		}
		// Varints may be non-minimal in the input; the re-encoding is
		// canonical and must round-trip exactly.
		again := appendRecord(nil, got)
		got2, err := parseRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if third := appendRecord(nil, got2); string(third) != string(again) {
			t.Fatalf("record does not round-trip: %x -> %x", again, third)
		}
	})
}

// FuzzEventFromAttributes: user attributes never make it panic.
func FuzzEventFromAttributes(f *testing.F) {
	f.Add("m1", "sent", "12", "0.5", "1e3")
	f.Add("", "relayed", "x", "-1", "NaN")
	f.Fuzz(func(t *testing.T, id, stage, gas, price, fee string) {
		attrs := pcommon.NewMap()
		attrs.PutStr(AttrMessageID, id)
		attrs.PutStr(AttrStage, stage)
		attrs.PutStr(AttrGasUsed, gas)
		attrs.PutStr(AttrGasPrice, price)
		attrs.PutStr(AttrFeeAmount, fee)
		ev, ok, err := EventFromAttributes(pcommon.NewMap(), attrs, t0)
		if !ok {
			t.Fatal("a record with xchain.message.id is a cross-chain event")
		}
		if err == nil && (ev.MessageID == "" || ev.Stage == StageUnknown || ev.GasUsed < 0 || ev.GasPrice < 0 || ev.FeeAmount < 0) {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
	})
}
