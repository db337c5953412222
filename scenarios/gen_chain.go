package scenarios

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Cross-chain message stages (xchain.stage).
const (
	StageSent            = "sent"
	StageSourceFinalized = "source_finalized"
	StageRelayed         = "relayed"
	StageExecuted        = "executed"
	StageAcknowledged    = "acknowledged"
	StageFailed          = "failed"
	StageTimedOut        = "timed_out"
)

// Relayer wallets and chains.
const (
	// lateFailure is the share of messages relayed in the post-stall burst
	// that fail on the destination.
	lateFailure     = 0.04
	sourceAccount   = "osmo1rlyr8v4d9q6k2f0yzt3w5cj8x7mhu2ae5l4n0p"
	destAccount     = "noble1rlyr8v4d9q6k2f0yzt3w5cj8x7mhu2aekq9s2d"
	sourceBlockTime = 5 * time.Second
	destBlockTime   = 2 * time.Second
	recvGas         = 180_000
	ackGas          = 120_000
	destGasPrice    = 0.1    // uusdc per gas
	sourceGasPrice  = 0.0025 // uosmo per gas
)

// event is a Kafka record produced and not yet consumed.
type event struct {
	tid  pcommon.TraceID
	sid  pcommon.SpanID
	t    time.Time
	part int
}

// produce queues an order event for the dashboard consumer.
func (g *generator) produce(tid pcommon.TraceID, sid pcommon.SpanID, t time.Time, part int) {
	g.produced[part]++
	if len(g.queue) >= maxQueuedEvents {
		g.dropped++
		return
	}
	g.queue = append(g.queue, event{tid: tid, sid: sid, t: t, part: part})
}

// stream consumes what the dashboard consumer can this step.
func (g *generator) stream() {
	capacity := int(consumeCapPerSec * g.eff.consumeCapacity * g.p.Step.Seconds())
	n := min(capacity, len(g.queue))
	for _, ev := range g.queue[:n] {
		start := ev.t.Add(g.logn(40, 0.4))
		if start.Before(g.t0) {
			start = g.within()
		}
		sp := g.spans(sDashboard, 0).AppendEmpty()
		sp.SetTraceID(ev.tid)
		sp.SetSpanID(g.spanID())
		sp.SetParentSpanID(ev.sid)
		sp.SetName("process " + Topic)
		sp.SetKind(ptrace.SpanKindConsumer)
		sp.SetStartTimestamp(ts(start))
		sp.SetEndTimestamp(ts(start.Add(g.logn(specs[sDashboard].latency, 0.3))))
		a := sp.Attributes()
		a.PutStr("messaging.system", "kafka")
		a.PutStr("messaging.destination.name", Topic)
		a.PutStr("messaging.consumer.group.name", ConsumerGroup)
		a.PutStr("messaging.operation.type", "process")
		a.PutStr("messaging.operation.name", "process")
		a.PutInt("messaging.destination.partition.id", int64(ev.part))
		a.PutInt("messaging.kafka.offset", 1_200_000+g.consumed[ev.part])
		g.consumed[ev.part]++
	}
	g.queue = append(g.queue[:0], g.queue[n:]...)
	if len(g.queue) > 0 {
		age := g.t1.Sub(g.queue[0].t)
		if age > 30*time.Second {
			g.log(sDashboard, 0, nil, plog.SeverityNumberWarn, "dashboard-stale",
				fmt.Sprintf("dashboard orders-live is stale: oldest unapplied event is %ds old (consumer lag %d messages)",
					int(age.Seconds()), len(g.queue)))
		}
	}
}

// streamMetrics writes the kafkametrics receiver's consumer group metrics.
func (g *generator) streamMetrics() {
	km := g.mset(g.metricScope(func(m pcommon.Map) { m.PutStr("kafka.cluster.alias", "shop-events") }))
	var lagByPart [Partitions]int64
	for _, ev := range g.queue {
		lagByPart[ev.part]++
	}
	lag := km.gauge("kafka.consumer_group.lag", "{message}", "Current approximate lag of consumer group at partition of topic")
	off := km.gauge("kafka.consumer_group.offset", "", "Current offset of the consumer group at partition of topic")
	cur := km.gauge("kafka.partition.current_offset", "", "Current offset of partition of topic.")
	var sum int64
	for p := 0; p < Partitions; p++ {
		part := strconv.Itoa(p)
		km.int(lag, lagByPart[p], "group", ConsumerGroup, "topic", Topic, "partition", part)
		km.int(off, 1_200_000+g.consumed[p], "group", ConsumerGroup, "topic", Topic, "partition", part)
		km.int(cur, 1_200_000+g.produced[p], "topic", Topic, "partition", part)
		sum += lagByPart[p]
	}
	var offSum int64
	for p := 0; p < Partitions; p++ {
		offSum += 1_200_000 + g.consumed[p]
	}
	km.int(km.gauge("kafka.consumer_group.offset_sum", "", "Sum of consumer group offset across partitions of topic"),
		offSum, "group", ConsumerGroup, "topic", Topic)
	km.int(km.gauge("kafka.consumer_group.lag_sum", "{message}", "Current approximate sum of consumer group lag across all partitions of topic"),
		sum, "group", ConsumerGroup, "topic", Topic)
}

// xmsg is one cross-chain message on its way from the source chain to the
// destination chain and back (acknowledgement).
type xmsg struct {
	id       string
	seq      uint64
	tid      pcommon.TraceID
	root     pcommon.SpanID
	stage    int // index in stageOrder of the last stage emitted
	next     time.Time
	sent     time.Time
	relayed  time.Time
	srcTx    string
	dstTx    string
	gasPrice float64
	// late is set when the message was relayed after a stall, in the
	// burst that drains the backlog.
	late bool
}

var stageOrder = [...]string{StageSent, StageSourceFinalized, StageRelayed, StageExecuted, StageAcknowledged}

// xchain advances every pending message and sends new ones.
func (g *generator) xchain() {
	for i, n := 0, g.poisson(messagesPerSecond*g.p.Step.Seconds()); i < n; i++ {
		if len(g.xmsgs) >= maxPendingXChain {
			g.dropped++
			continue
		}
		g.nextSeq++
		m := &xmsg{
			id:  SourceChain + "/" + Channel + "/" + Port + "/" + strconv.FormatUint(g.nextSeq, 10),
			seq: g.nextSeq, tid: g.traceID(), root: g.spanID(), sent: g.within(), srcTx: g.txHash(), stage: -1,
		}
		m.next = m.sent
		g.xmsgs = append(g.xmsgs, m)
	}
	relays := 0
	keep := g.xmsgs[:0]
	for _, m := range g.xmsgs {
		for m.stage < len(stageOrder)-1 && !m.next.After(g.t1) {
			next := m.stage + 1
			if stageOrder[next] == StageRelayed {
				if g.t1.Sub(m.sent) > xchainTimeout && !g.eff.relayerStall {
					g.stageEvent(m, StageTimedOut, g.within())
					m.stage = len(stageOrder) // terminal
					break
				}
				if g.eff.relayerStall || relays >= maxRelaysPerStep {
					break
				}
				relays++
				if m.next.Before(g.t0) {
					m.next = g.within() // relayed late, after a stall
					m.late = true
				}
				m.dstTx = g.txHash()
				m.gasPrice = destGasPrice * g.eff.gasPrice * (1 + 0.05*g.rng.NormFloat64())
				m.relayed = m.next
				g.wallet[1] -= recvGas * m.gasPrice
			}
			if stageOrder[next] == StageExecuted && m.late && g.rng.Float64() < lateFailure {
				// The burst trips the destination's transfer rate limit:
				// the packet is acknowledged with an error.
				g.stageEvent(m, StageFailed, m.next)
				m.stage = len(stageOrder) // terminal
				break
			}
			m.stage = next
			at := m.next
			g.stageEvent(m, stageOrder[next], at)
			switch stageOrder[next] {
			case StageSent:
				m.next = at.Add(time.Duration(g.uniform(5, 8) * float64(time.Second)))
			case StageSourceFinalized:
				m.next = at.Add(time.Duration(g.uniform(3, 10) * float64(time.Second)))
			case StageRelayed:
				m.next = at.Add(time.Duration(g.uniform(2, 5) * float64(time.Second)))
			case StageExecuted:
				lat := at.Sub(m.relayed)
				g.hist("tx_latency/"+DestinationChain, txLatencyBnds).observe(float64(lat.Milliseconds()), 1)
				wait := time.Duration(g.uniform(6, 14)*float64(time.Second)) + time.Duration(g.eff.finalityLag)*destBlockTime
				m.next = at.Add(wait)
			case StageAcknowledged:
				g.wallet[0] -= ackGas * sourceGasPrice
				g.hist("tx_latency/"+SourceChain, txLatencyBnds).observe(g.uniform(4000, 9000), 1)
			}
		}
		if m.stage < len(stageOrder)-1 {
			keep = append(keep, m)
		}
	}
	clear(g.xmsgs[len(keep):])
	g.xmsgs = keep

	if g.eff.relayerStall {
		// The relayer keeps retrying with a stale account sequence; every
		// failed broadcast still pays its fee at the spiking gas price.
		n := g.poisson(0.5 * g.p.Step.Seconds())
		for i := 0; i < n; i++ {
			price := destGasPrice * g.eff.gasPrice * (1 + 0.05*g.rng.NormFloat64())
			g.wallet[1] -= recvGas * price
			g.add("hermes.broadcast_errors", 1)
			g.log(sRelayer, 0, nil, plog.SeverityNumberError, "broadcast-failed",
				fmt.Sprintf("failed to broadcast tx to chain %s: account sequence mismatch, expected %d, got %d: incorrect account sequence",
					DestinationChain, 88_120+g.rng.IntN(40), 88_100+g.rng.IntN(20)))
		}
	}
	if age := g.backlogAge(); age > 2*time.Minute {
		g.log(sRelayer, 0, nil, plog.SeverityNumberWarn, "backlog-growing",
			fmt.Sprintf("packet backlog on %s/%s is growing: %d pending, oldest %ds", SourceChain, Channel, g.backlog(), int(age.Seconds())))
	}
	g.heights[0] += int64(g.p.Step / sourceBlockTime)
	g.heights[1] += int64(g.p.Step / destBlockTime)
}

func (g *generator) backlog() int {
	n := 0
	for _, m := range g.xmsgs {
		if m.stage < 2 {
			n++
		}
	}
	return n
}

func (g *generator) backlogOldest() (time.Time, uint64, bool) {
	for _, m := range g.xmsgs { // in send order
		if m.stage < 2 {
			return m.sent, m.seq, true
		}
	}
	return time.Time{}, 0, false
}

func (g *generator) backlogAge() time.Duration {
	if t, _, ok := g.backlogOldest(); ok {
		return g.t1.Sub(t)
	}
	return 0
}

// stageEvent writes one lifecycle event as a log record and a span.
func (g *generator) stageEvent(m *xmsg, stage string, at time.Time) {
	sp := g.spans(sRelayer, 0).AppendEmpty()
	sp.SetTraceID(m.tid)
	if stage == StageSent {
		sp.SetSpanID(m.root)
	} else {
		sp.SetSpanID(g.spanID())
		sp.SetParentSpanID(m.root)
	}
	sp.SetName("xchain " + stage)
	kind := ptrace.SpanKindInternal
	switch stage {
	case StageRelayed, StageAcknowledged, StageTimedOut:
		kind = ptrace.SpanKindClient
	}
	sp.SetKind(kind)
	sp.SetStartTimestamp(ts(at))
	sp.SetEndTimestamp(ts(at.Add(g.logn(specs[sRelayer].latency*10, 0.4))))

	lr := g.logRecords(sRelayer, 0).AppendEmpty()
	lr.SetTimestamp(ts(at))
	lr.SetObservedTimestamp(ts(at))
	lr.SetTraceID(m.tid)
	lr.SetSpanID(sp.SpanID())
	lr.SetEventName("xchain.message")
	sev := plog.SeverityNumberInfo
	if stage == StageTimedOut || stage == StageFailed {
		sev = plog.SeverityNumberWarn
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	lr.SetSeverityNumber(sev)
	lr.SetSeverityText(severityText(sev))
	lr.Body().SetStr("message " + m.id + " " + stage)

	for _, a := range []pcommon.Map{sp.Attributes(), lr.Attributes()} {
		a.PutStr("xchain.message.id", m.id)
		a.PutStr("xchain.stage", stage)
		a.PutStr("xchain.source.chain", SourceChain)
		a.PutStr("xchain.destination.chain", DestinationChain)
		a.PutStr("xchain.source.tx.hash", m.srcTx)
		if m.dstTx != "" {
			a.PutStr("xchain.destination.tx.hash", m.dstTx)
		}
		switch stage {
		case StageRelayed:
			a.PutInt("xchain.gas.used", recvGas)
			a.PutDouble("xchain.gas.price", math.Round(m.gasPrice*1e6)/1e6)
			a.PutDouble("xchain.fee.amount", math.Round(recvGas*m.gasPrice))
			a.PutStr("xchain.fee.denom", DestDenom)
			a.PutStr("server.address", "rpc."+DestinationChain+".bridge.svc")
			a.PutInt("server.port", 26657)
		case StageAcknowledged, StageTimedOut:
			a.PutInt("xchain.gas.used", ackGas)
			a.PutDouble("xchain.gas.price", sourceGasPrice)
			a.PutDouble("xchain.fee.amount", ackGas*sourceGasPrice)
			a.PutStr("xchain.fee.denom", SourceDenom)
			a.PutStr("server.address", "rpc."+SourceChain+".bridge.svc")
			a.PutInt("server.port", 26657)
		}
	}
}

// relayerMetrics writes Hermes' telemetry and the chains' heads as the
// prometheus receiver turns them into OTLP.
func (g *generator) relayerMetrics() {
	p := &g.pods[sRelayer][0]
	hm := g.mset(g.metricScope(func(m pcommon.Map) { putScrapeResource(m, Relayer, p.ip+":3001") }))
	path := []string{"chain", SourceChain, "counterparty_chain", DestinationChain, "channel", Channel, "port", Port}
	oldest, seq, ok := g.backlogOldest()
	if !ok {
		// An empty backlog reports the scrape time: age zero.
		oldest = g.t1
	}
	hm.int(hm.gauge("backlog_size", "", "Total number of SendPacket events observed which are pending on the source chain"), int64(g.backlog()), path...)
	hm.int(hm.gauge("backlog_oldest_timestamp", "", "Local timestamp for the oldest SendPacket event in the backlog"), oldest.Unix(), path...)
	hm.int(hm.gauge("backlog_oldest_sequence", "", "Sequence number of the oldest SendPacket event in the backlog"), int64(seq), path...)
	wb := hm.gauge("wallet_balance", "", "The balance of each wallet Hermes uses per chain")
	hm.dbl(wb, math.Round(g.wallet[0]), "account", sourceAccount, "chain", SourceChain, "denom", SourceDenom)
	hm.dbl(wb, math.Round(g.wallet[1]), "account", destAccount, "chain", DestinationChain, "denom", DestDenom)
	tl := hm.hist("tx_latency_confirmed", "ms", "The latency for all transactions submitted & confirmed to a specific chain")
	hm.histPoint(tl, g.hist("tx_latency/"+DestinationChain, txLatencyBnds), "chain", DestinationChain, "counterparty", SourceChain, "channel", CounterChannel, "port", Port)
	hm.histPoint(tl, g.hist("tx_latency/"+SourceChain, txLatencyBnds), "chain", SourceChain, "counterparty", DestinationChain, "channel", Channel, "port", Port)
	hm.cumDbl(hm.sum("broadcast_errors", "", "Number of errors observed by Hermes when broadcasting a Tx", true),
		g.cum["hermes.broadcast_errors"], "account", destAccount, "chain", DestinationChain, "error_code", "32", "error_description", "incorrect account sequence")
	head := hm.gauge("chain_head_height", "{block}", "Latest block height seen on the chain")
	fin := hm.gauge("chain_finalized_height", "{block}", "Latest finalized block height of the chain")
	hm.int(head, g.heights[0], "chain", SourceChain)
	hm.int(head, g.heights[1], "chain", DestinationChain)
	hm.int(fin, g.heights[0]-1, "chain", SourceChain)
	hm.int(fin, g.heights[1]-2-g.eff.finalityLag, "chain", DestinationChain)
}
