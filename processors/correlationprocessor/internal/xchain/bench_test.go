package xchain

import (
	"strconv"
	"testing"
	"time"
)

// lifecycleEvents returns n events of messages going through sent,
// source_finalized, relayed and executed, 1000 messages in flight at a
// time, one fake millisecond apart.
func lifecycleEvents(n int) []Event {
	stages := []Stage{StageSent, StageSourceFinalized, StageRelayed, StageExecuted}
	evs := make([]Event, n)
	for i := range evs {
		block, within := i/4000, i%4000
		id := "transfer/channel-0/" + strconv.Itoa(block*1000+within%1000)
		e := ev(id, stages[within/1000], at(time.Duration(i)*time.Millisecond))
		e.SourceTxHash = "8F3A0C6E2D1B4F5A9C7E8D6B5A4F3E2D1C0B9A8F7E6D5C4B3A2F1E0D9C8B7A6F"
		if e.Stage == StageExecuted {
			e.GasUsed, e.GasPrice, e.FeeAmount, e.FeeDenom = 120000, 0.025, 3000, "uatom"
		}
		evs[i] = e
	}
	return evs
}

// BenchmarkObserve measures events per second into the tracker, one event
// per call (each call is one storage transaction when storage is on) and
// in batches of 100 (one transaction per batch, as the processor calls it
// per pdata batch).
func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name    string
		storage bool
		batch   int
	}{
		{"storage=off/batch=1", false, 1},
		{"storage=off/batch=100", false, 100},
		{"storage=file/batch=1", true, 1},
		{"storage=file/batch=100", true, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			evs := lifecycleEvents(400_000)
			clock := newClock()
			set := Settings{Now: clock.Now}
			var fs *fileStorage
			if bc.storage {
				fs = openFileStorage(b, b.TempDir())
				set.Storage = fs.client
			}
			tr := mustNew(b, DefaultConfig(), set)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += bc.batch {
				j := min(i+bc.batch, b.N)
				batch := make([]Event, 0, bc.batch)
				for k := i; k < j; k++ {
					e := evs[k%len(evs)]
					// Keep ids unique past one pass over the events.
					if k >= len(evs) {
						e.MessageID += "/" + strconv.Itoa(k/len(evs))
					}
					batch = append(batch, e)
				}
				clock.Set(batch[len(batch)-1].Time)
				var err error
				if bc.batch == 1 {
					err = tr.Observe(ctxb(), batch[0])
				} else {
					err = tr.ObserveBatch(ctxb(), batch)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if fs != nil {
				_ = tr.Shutdown(ctxb())
				_ = fs.ext.Shutdown(ctxb())
			}
		})
	}
}
