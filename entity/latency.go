package entity

// LatencySketches are the latency sketches behind the latency features of
// an entity or edge, for merging replicas' sketches by addition
// (docs/deploy.md "Merged series"). The correlation processor fills them
// only when it emits mergeable series; otherwise they are nil.
type LatencySketches struct {
	// Short is the sketch of the short window (Features): 1 minute.
	Short *LatencySketch `json:"short,omitempty"`
	// Long is the sketch of the long window (Features5m): 5 minutes. Edges
	// have no long-window features, so no long sketch.
	Long *LatencySketch `json:"long,omitempty"`
}

// LatencySketch holds the bins of a DDSketch of latencies in milliseconds
// whose index mapping is the cubically interpolated one of
// RelativeAccuracy: bin Index counts the latencies the mapping indexes to
// Index. Two sketches of the same mapping merge by adding the counts of
// equal indexes, which is exactly the sketch of all their latencies.
type LatencySketch struct {
	// RelativeAccuracy is the mapping's relative accuracy (the processor's
	// window::sketch_accuracy).
	RelativeAccuracy float64 `json:"relative_accuracy"`
	// Zero counts the latencies of 0 ms, which no index holds.
	Zero float64 `json:"zero,omitempty"`
	// Bins are the nonempty bins by ascending Index.
	Bins []LatencyBin `json:"bins,omitempty"`
}

// LatencyBin is one nonempty bin of a LatencySketch.
type LatencyBin struct {
	Index int32   `json:"index"`
	Count float64 `json:"count"`
}

// Count returns the number of latencies in s.
func (s *LatencySketch) Count() float64 {
	n := s.Zero
	for _, b := range s.Bins {
		n += b.Count
	}
	return n
}
