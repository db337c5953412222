package graph

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestSampleHashIsLastEightBytes(t *testing.T) {
	id := pcommon.TraceID{0, 1, 2, 3, 4, 5, 6, 7, 0x80, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xff}
	if got := sampleHash(id); got != 0x80112233445566ff {
		t.Fatalf("sampleHash = %#x", got)
	}
}
