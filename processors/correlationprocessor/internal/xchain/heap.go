package xchain

// msgHeap is a min-heap of pending messages by begin (earliest stage time),
// so the oldest pending message is at index 0. A message sits in two heaps
// at once, the Tracker's and its relayer's, each keeping its own index in
// the message so removal and re-keying are O(log n).
type msgHeap struct {
	items  []*message
	global bool
}

func (h *msgHeap) index(m *message) *int {
	if h.global {
		return &m.globalIdx
	}
	return &m.entIdx
}

func (h *msgHeap) len() int { return len(h.items) }

func (h *msgHeap) min() *message {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *msgHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.begin != b.begin {
		return a.begin < b.begin
	}
	return a.id < b.id
}

func (h *msgHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.index(h.items[i]) = i
	*h.index(h.items[j]) = j
}

func (h *msgHeap) push(m *message) {
	h.items = append(h.items, m)
	*h.index(m) = len(h.items) - 1
	h.up(len(h.items) - 1)
}

func (h *msgHeap) remove(m *message) {
	i := *h.index(m)
	if i < 0 || i >= len(h.items) || h.items[i] != m {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	*h.index(m) = -1
	if i != last {
		h.fix(i)
	}
}

// fix restores the heap after the key of the item at i changed.
func (h *msgHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *msgHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *msgHeap) down(i0 int) bool {
	i, n := i0, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

// oldest returns up to k messages in begin order without changing the heap:
// a best-first walk from the root. The frontier never exceeds k+1 entries,
// so for the small k of the evidence a linear scan of it is cheapest.
func (h *msgHeap) oldest(k int) []*message {
	if k <= 0 || len(h.items) == 0 {
		return nil
	}
	out := make([]*message, 0, k)
	cands := make([]int, 0, k+1)
	pushCand := func(i int) {
		if i < len(h.items) {
			cands = append(cands, i)
		}
	}
	pushCand(0)
	for len(out) < k && len(cands) > 0 {
		best := 0
		for c := 1; c < len(cands); c++ {
			if h.less(cands[c], cands[best]) {
				best = c
			}
		}
		i := cands[best]
		cands[best] = cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		out = append(out, h.items[i])
		pushCand(2*i + 1)
		pushCand(2*i + 2)
	}
	return out
}
