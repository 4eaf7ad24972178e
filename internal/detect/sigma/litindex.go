package sigma

import (
	"math/bits"
	"slices"
)

// litIndex finds which of a set of lower-case literals occur in a value,
// ASCII letters matching either case. It is what the rule index runs over
// each field value, so its cost is most of the cost of an event.
//
// Small sets are one Aho–Corasick automaton, whose tables stay in cache.
// Large sets (the process-creation command line has ~8,500 literals and an
// automaton of ~55,000 states) make the automaton walk a cache miss per
// byte; for them the literals of gramLen bytes or more go to a gramSet
// instead, which tests each 4-byte window of the text against a bitmap
// that fits in L1/L2 and verifies the few windows that pass. The shorter
// literals stay in a (small) automaton.
type litIndex struct {
	id     int32 // index among the Ruleset's indexes (scanCache key)
	ac     *automaton
	g      *gramSet
	wm     *wmSet
	minPat int
}

// wmMaxPatterns is the largest set searched with Wu–Manber: beyond it
// most windows end some literal's prefix and skips are short.
const wmMaxPatterns = 64

// gramMinPatterns is the set size from which long literals move to a
// gramSet. Below it the automaton is small enough to stay cached.
const gramMinPatterns = 512

func newLitIndex(pats []string, ids []int32) *litIndex {
	x := &litIndex{}
	var short, long []string
	var shortIDs, longIDs []int32
	for i, p := range pats {
		if p == "" {
			continue
		}
		if x.minPat == 0 || len(p) < x.minPat {
			x.minPat = len(p)
		}
		if len(p) >= gramLen {
			long, longIDs = append(long, p), append(longIDs, ids[i])
		} else {
			short, shortIDs = append(short, p), append(shortIDs, ids[i])
		}
	}
	if len(long) < gramMinPatterns {
		if len(short) == 0 && x.minPat >= wmMinLen && len(long) <= wmMaxPatterns {
			x.wm = newWMSet(long, longIDs)
			return x
		}
		x.ac = newAutomaton(pats, ids)
		return x
	}
	x.g = newGramSet(long, longIDs)
	if len(short) > 0 {
		x.ac = newAutomaton(short, shortIDs)
	}
	return x
}

// scan appends the ids of the literals occurring in s (an id once per
// occurrence; callers dedup). For non-ASCII text it returns ok=false at once
// and the caller scans the lower-cased text with scanLower.
func (x *litIndex) scan(s string, hits []int32) (_ []int32, ok bool) {
	if x.ac != nil && x.g == nil {
		return x.ac.scan(s, hits)
	}
	if !isASCII(s) {
		return hits, false
	}
	if len(s) < x.minPat {
		return hits, true
	}
	if x.wm != nil {
		return x.wm.scan(s, hits), true
	}
	hits = x.g.scan(s, hits)
	if x.ac != nil {
		hits, _ = x.ac.scan(s, hits)
	}
	return hits, true
}

// scanLower scans lower-case text (any bytes).
func (x *litIndex) scanLower(s string, hits []int32) []int32 {
	if x.wm != nil {
		return x.wm.scan(s, hits)
	}
	if x.g != nil {
		hits = x.g.scan(s, hits)
	}
	if x.ac != nil {
		hits = x.ac.scanLower(s, hits)
	}
	return hits
}

func (x *litIndex) size() int {
	n := 0
	if x.ac != nil {
		n += x.ac.size()
	}
	if x.g != nil {
		n += x.g.size()
	}
	if x.wm != nil {
		n += x.wm.size()
	}
	return n
}

// isASCII reports whether s has no byte ≥ 0x80, eight bytes at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// gramLen is the window a gramSet filters on.
const gramLen = 4

// gramFold maps a 4-byte window to its key: OR-ing 0x20 into each byte
// folds ASCII upper case onto lower case. It also merges a few punctuation
// pairs ('@' and '`', '[' and '{', …); that only lets more windows reach
// verification, which compares exactly.
const gramFold = 0x20202020

// gramSet is a q-gram filter over literals of at least gramLen bytes. Each
// literal is represented by one anchor: a 4-byte window of it, chosen to be
// rare in log text. A text window whose folded key has its bit set in the
// bitmap is looked up in the anchor table, and each literal anchored there
// is compared with the text around the window.
type gramSet struct {
	bits  []uint64
	shift uint32 // hash → bit index: the top log2(len(bits)*64) bits
	slots []gramSlot
	sMask uint32
	ents  []gramEnt
	pats  []string
	ids   []int32
}

type gramSlot struct {
	key        uint32
	start, end uint32 // ents[start:end]; end == 0 is an empty slot
}

type gramEnt struct {
	pat int32 // index in pats
	off int32 // the anchor's offset in the literal
}

func gramHash(k uint32) uint32 { return k * 0x9e3779b1 }

func gramKey(s string, i int) uint32 {
	return (uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24) | gramFold
}

func newGramSet(pats []string, ids []int32) *gramSet {
	g := &gramSet{pats: pats, ids: ids}
	// Anchor each literal at its rarest window, spreading literals over
	// anchors so that no window verifies too many of them.
	use := map[uint32]int{}
	anchor := make([]gramEnt, len(pats))
	keys := make([]uint32, len(pats))
	for i, p := range pats {
		best, bestScore := 0, -1
		for k := 0; k+gramLen <= len(p); k++ {
			sc := use[gramKey(p, k)] * 8
			for j := k; j < k+gramLen; j++ {
				sc += int(byteCommon[p[j]])
			}
			if bestScore < 0 || sc < bestScore {
				best, bestScore = k, sc
			}
		}
		keys[i] = gramKey(p, best)
		use[keys[i]]++
		anchor[i] = gramEnt{pat: int32(i), off: int32(best)}
	}
	// Bitmap of ~32 bits per literal: about 3% of random windows pass.
	logBits := bits.Len(uint(len(pats)*32 - 1))
	logBits = min(max(logBits, 12), 19)
	g.bits = make([]uint64, 1<<(logBits-6))
	g.shift = uint32(32 - logBits)
	// Anchor table: open addressing over the distinct keys, entries grouped
	// by key.
	nslots := 1 << bits.Len(uint(2*len(use)))
	g.slots = make([]gramSlot, nslots)
	g.sMask = uint32(nslots - 1)
	byKey := map[uint32][]gramEnt{}
	order := []uint32{}
	for i, k := range keys {
		if byKey[k] == nil {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], anchor[i])
	}
	for _, k := range order {
		h := gramHash(k) >> g.shift
		g.bits[h>>6] |= 1 << (h & 63)
		start := uint32(len(g.ents))
		g.ents = append(g.ents, byKey[k]...)
		s := gramHash(k^0x5bd1e995) & g.sMask
		for g.slots[s].end != 0 {
			s = (s + 1) & g.sMask
		}
		g.slots[s] = gramSlot{key: k, start: start, end: uint32(len(g.ents))}
	}
	return g
}

// scan appends the ids of the literals occurring in s. s is ASCII (any
// case) or already lower-cased.
func (g *gramSet) scan(s string, hits []int32) []int32 {
	if len(s) < gramLen {
		return hits
	}
	bm, shift := g.bits, g.shift
	w := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16
	for i := 0; i+gramLen <= len(s); i++ {
		w = w&0xffffff | uint32(s[i+3])<<24
		k := w | gramFold
		h := gramHash(k) >> shift
		if bm[h>>6]&(1<<(h&63)) != 0 {
			hits = g.verify(s, i, k, hits)
		}
		w >>= 8
	}
	return hits
}

func (g *gramSet) verify(s string, i int, k uint32, hits []int32) []int32 {
	for sl := gramHash(k^0x5bd1e995) & g.sMask; g.slots[sl].end != 0; sl = (sl + 1) & g.sMask {
		if g.slots[sl].key != k {
			continue
		}
		for _, e := range g.ents[g.slots[sl].start:g.slots[sl].end] {
			p := g.pats[e.pat]
			start := i - int(e.off)
			if start >= 0 && start+len(p) <= len(s) && foldEqual(s[start:start+len(p)], p) {
				hits = append(hits, g.ids[e.pat])
			}
		}
		break
	}
	return hits
}

// foldEqual reports whether text t equals lower-case literal p, ASCII
// letters of t in either case.
func foldEqual(t, p string) bool {
	for j := 0; j < len(p); j++ {
		c := t[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[j] {
			return false
		}
	}
	return true
}

func (g *gramSet) size() int {
	n := 8*len(g.bits) + 12*len(g.slots) + 8*len(g.ents) + 4*len(g.ids) + 16*len(g.pats)
	for _, p := range g.pats {
		n += len(p)
	}
	return n
}

// byteCommon rates how common a byte is in log text (paths, command lines,
// URLs): anchors avoid common bytes. Unlisted bytes are rare (1).
var byteCommon = func() [256]uint8 {
	var t [256]uint8
	for i := range t {
		t[i] = 1
	}
	for i, c := range "etaoinsrlhcdmupfgwybvkxjqz" {
		t[c] = uint8(40 - i) // English letter frequency, roughly
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 20
	}
	for c, v := range map[byte]uint8{' ': 45, '\\': 40, '.': 38, '/': 30, '-': 28, ':': 22, '_': 15, '"': 18, '=': 15, ',': 12, '\'': 8} {
		t[c] = v
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = t[c+'a'-'A']
	}
	return t
}()

// wmSet is a Wu–Manber search for small sets of literals of wmMinLen bytes
// or more: it looks at the last two bytes of a window as long as the
// shortest literal and skips ahead as far as no literal can end sooner, so
// it reads a fraction of the text (keyword haystacks are every field of a
// Windows record; most literals are 8 bytes and longer). Windows whose last
// two bytes end some literal's prefix are verified against those literals.
type wmSet struct {
	m     int // window: the shortest literal's length
	shift []uint8
	// bucket[h] lists the literals whose m-byte prefix ends in a block of
	// hash h: pats[bstart[h]:bstart[h+1]].
	bstart []int32
	bpat   []int32
	pats   []string
	ids    []int32
}

const (
	wmMinLen  = 4
	wmBits    = 12
	wmMaxSkip = 255
)

func wmHash(a, b byte) uint32 {
	return (uint32(a|0x20)<<8 | uint32(b|0x20)) * 0x9e3779b1 >> (32 - wmBits)
}

func newWMSet(pats []string, ids []int32) *wmSet {
	w := &wmSet{pats: pats, ids: ids, m: len(pats[0])}
	for _, p := range pats {
		w.m = min(w.m, len(p))
	}
	w.m = min(w.m, wmMaxSkip+1)
	const size = 1 << wmBits
	w.shift = make([]uint8, size)
	for i := range w.shift {
		w.shift[i] = uint8(w.m - 1)
	}
	count := make([]int32, size+1)
	for _, p := range pats {
		for q := 0; q+2 <= w.m; q++ {
			h := wmHash(p[q], p[q+1])
			w.shift[h] = min(w.shift[h], uint8(w.m-2-q))
		}
		count[wmHash(p[w.m-2], p[w.m-1])]++
	}
	w.bstart = make([]int32, size+1)
	for h := 0; h < size; h++ {
		w.bstart[h+1] = w.bstart[h] + count[h]
	}
	w.bpat = make([]int32, len(pats))
	fill := slices.Clone(w.bstart[:size])
	for i, p := range pats {
		h := wmHash(p[w.m-2], p[w.m-1])
		w.bpat[fill[h]] = int32(i)
		fill[h]++
	}
	return w
}

// scan appends the ids of the literals occurring in s: ASCII text in any
// case, or lower-cased text.
func (w *wmSet) scan(s string, hits []int32) []int32 {
	m := w.m
	for i := m - 1; i < len(s); {
		h := wmHash(s[i-1], s[i])
		if sh := w.shift[h]; sh > 0 {
			i += int(sh)
			continue
		}
		start := i - m + 1
		for _, pi := range w.bpat[w.bstart[h]:w.bstart[h+1]] {
			p := w.pats[pi]
			if start+len(p) <= len(s) && foldEqual(s[start:start+len(p)], p) {
				hits = append(hits, w.ids[pi])
			}
		}
		i++
	}
	return hits
}

func (w *wmSet) size() int {
	n := len(w.shift) + 4*len(w.bstart) + 4*len(w.bpat) + 4*len(w.ids) + 16*len(w.pats)
	for _, p := range w.pats {
		n += len(p)
	}
	return n
}
