package logtemplate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Drain defaults: the values of the Drain paper (He et al., "Drain: An Online
// Log Parsing Approach with Fixed Depth Tree", ICWS 2017) and of Drain3.
const (
	DefaultDepth       = 4   // root, token count, then Depth-2 prefix tokens
	DefaultSimilarity  = 0.5 // share of equal non-wildcard tokens to join a template
	DefaultMaxChildren = 100 // children of one tree node; more go to <*>
)

// DrainConfig configures a Miner.
type DrainConfig struct {
	// MaxTemplates bounds the templates the miner keeps; when full, the
	// least recently matched one is evicted (and counted).
	MaxTemplates int
	// Depth is the depth of the parse tree's leaves, at least 3.
	Depth int
	// Similarity is Drain's similarity threshold, in (0, 1].
	Similarity float64
	// MaxChildren bounds the children of a tree node, at least 2.
	MaxChildren int
}

// Validate reports a config the miner cannot run with.
func (c DrainConfig) Validate() error {
	switch {
	case c.MaxTemplates < 1:
		return fmt.Errorf("max templates %d: must be at least 1", c.MaxTemplates)
	case c.Depth < 3:
		return fmt.Errorf("depth %d: must be at least 3", c.Depth)
	case !(c.Similarity > 0 && c.Similarity <= 1):
		return fmt.Errorf("similarity %v: must be in (0, 1]", c.Similarity)
	case c.MaxChildren < 2:
		return fmt.Errorf("max children %d: must be at least 2", c.MaxChildren)
	}
	return nil
}

// Miner mines the templates of one stream of log lines (one entity's) with
// Drain. Each line is first masked by Append (Drain's preprocessing step:
// numbers, ids, hex strings, quoted strings), split into tokens at spaces,
// and routed down a tree of fixed depth by its token count and its first
// tokens to a leaf; among the leaf's templates the most similar one takes
// the line if its similarity reaches the threshold, and the positions where
// they differ become <*>. Otherwise the line starts a new template.
//
// A template's id never changes; its text may, as it generalises. The miner
// is bounded: at most MaxTemplates templates (the least recently matched is
// evicted), at most MaxChildren children per node, and templates of at most
// MaxLen bytes. It is not safe for concurrent use.
type Miner struct {
	cfg    DrainConfig
	root   *node
	n      int
	nextID uint64
	// LRU list of templates, most recently matched at head.
	head, tail *cluster
	evicted    uint64

	buf  []byte
	toks [][]byte
}

// Match is the outcome of Add.
type Match struct {
	// ID identifies the template for the miner's life; never 0.
	ID uint64
	// Template is the template's text now.
	Template string
	// New: the line started the template. Changed: the line generalised it
	// (Template differs from what the previous Match of ID said).
	New, Changed bool
	// Evicted is the id of the template evicted to make room, or 0.
	Evicted uint64
}

type node struct {
	key      string
	parent   *node
	children map[string]*node
	clusters []*cluster
}

type cluster struct {
	id         uint64
	tokens     []string
	params     int // tokens that are <*>
	text       string
	leaf       *node
	prev, next *cluster
}

// NewMiner returns a Drain miner; the config must be valid.
func NewMiner(cfg DrainConfig) (*Miner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Miner{cfg: cfg, root: &node{children: map[string]*node{}}}, nil
}

// Len is the number of templates kept.
func (m *Miner) Len() int { return m.n }

// Evicted is the number of templates evicted so far.
func (m *Miner) Evicted() uint64 { return m.evicted }

// Add mines line and returns the template it belongs to.
func (m *Miner) Add(line string) Match {
	m.buf = Append(m.buf[:0], line)
	m.toks = m.toks[:0]
	for rest := m.buf; len(rest) > 0; {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			i = len(rest)
		}
		if i > 0 {
			m.toks = append(m.toks, rest[:i])
		}
		rest = rest[min(i+1, len(rest)):]
	}
	leaf := m.leaf(m.toks)
	if c := m.best(leaf, m.toks); c != nil {
		changed := false
		for i, t := range c.tokens {
			if t != Placeholder && t != string(m.toks[i]) {
				c.tokens[i] = Placeholder
				c.params++
				changed = true
			}
		}
		if changed {
			c.text = strings.Join(c.tokens, " ")
		}
		m.touch(c)
		return Match{ID: c.id, Template: c.text, Changed: changed}
	}
	var evicted uint64
	if m.n >= m.cfg.MaxTemplates {
		evicted = m.evict()
	}
	m.nextID++
	c := &cluster{id: m.nextID, tokens: make([]string, len(m.toks)), leaf: leaf}
	for i, t := range m.toks {
		c.tokens[i] = string(t)
		if c.tokens[i] == Placeholder {
			c.params++
		}
	}
	c.text = strings.Join(c.tokens, " ")
	leaf.clusters = append(leaf.clusters, c)
	m.n++
	m.touch(c)
	return Match{ID: c.id, Template: c.text, New: true, Evicted: evicted}
}

// wildcard reports whether a token routes to the <*> child: masked parts
// and anything holding a digit, as in Drain.
func wildcard(t []byte) bool {
	if bytes.Contains(t, []byte(Placeholder)) {
		return true
	}
	for _, c := range t {
		if isDigit(c) {
			return true
		}
	}
	return false
}

// leaf returns (creating it) the leaf the tokens route to.
func (m *Miner) leaf(toks [][]byte) *node {
	n := m.child(m.root, lengthKey(len(toks)))
	for i := 0; i < m.cfg.Depth-2 && i < len(toks); i++ {
		key := Placeholder
		if t := toks[i]; !wildcard(t) {
			if c, ok := n.children[string(t)]; ok {
				n = c
				continue
			}
			// One slot stays for <*>, which takes the rest.
			if len(n.children) < m.cfg.MaxChildren-1 {
				key = string(t)
			}
		}
		n = m.child(n, key)
	}
	return n
}

// lengthKeys are the tree's first-level keys, made once: a template of
// MaxLen bytes has at most MaxLen/2+1 tokens.
var lengthKeys = func() []string {
	k := make([]string, MaxLen/2+2)
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

func lengthKey(n int) string { return lengthKeys[min(n, len(lengthKeys)-1)] }

func (m *Miner) child(n *node, key string) *node {
	if c, ok := n.children[key]; ok {
		return c
	}
	c := &node{key: key, parent: n, children: map[string]*node{}}
	n.children[key] = c
	return c
}

// best returns the leaf's most similar template if it reaches the
// threshold; among equals the one with more <*>, as in Drain.
func (m *Miner) best(leaf *node, toks [][]byte) *cluster {
	var best *cluster
	bestSim, bestParams := -1.0, -1
	for _, c := range leaf.clusters {
		if len(c.tokens) != len(toks) {
			continue
		}
		same := 0
		// A <*> of the template matches a masked part of the line, as
		// Drain3 counts its masks, not a word the template generalised.
		for i, t := range c.tokens {
			if t == string(toks[i]) {
				same++
			}
		}
		sim := 1.0
		if len(toks) > 0 {
			sim = float64(same) / float64(len(toks))
		}
		if sim > bestSim || (sim == bestSim && c.params > bestParams) {
			best, bestSim, bestParams = c, sim, c.params
		}
	}
	if best == nil || bestSim < m.cfg.Similarity {
		return nil
	}
	return best
}

// touch moves c to the head of the LRU list.
func (m *Miner) touch(c *cluster) {
	if m.head == c {
		return
	}
	m.unlink(c)
	c.next = m.head
	if m.head != nil {
		m.head.prev = c
	}
	m.head = c
	if m.tail == nil {
		m.tail = c
	}
}

func (m *Miner) unlink(c *cluster) {
	if c.prev != nil {
		c.prev.next = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	if m.head == c {
		m.head = c.next
	}
	if m.tail == c {
		m.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// evict drops the least recently matched template and the tree nodes left
// empty, so the tree stays bounded by the templates kept.
func (m *Miner) evict() uint64 {
	c := m.tail
	m.unlink(c)
	leaf := c.leaf
	for i, x := range leaf.clusters {
		if x == c {
			last := len(leaf.clusters) - 1
			leaf.clusters[i] = leaf.clusters[last]
			leaf.clusters[last] = nil
			leaf.clusters = leaf.clusters[:last]
			break
		}
	}
	for n := leaf; n.parent != nil && len(n.children) == 0 && len(n.clusters) == 0; n = n.parent {
		delete(n.parent.children, n.key)
	}
	m.n--
	m.evicted++
	return c.id
}
