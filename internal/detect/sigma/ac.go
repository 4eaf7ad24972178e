package sigma

// automaton is an Aho–Corasick automaton over lower-case byte strings: one
// pass over a value reports every pattern that occurs in it.
//
// Layout: states are numbered breadth-first. The shallow states have dense
// DFA rows — all states when the table stays within denseBudget, else as
// many as fit (at least the root and depth 1) — so text costs one table
// load per byte until it reaches a deep state. Deeper states keep only
// their trie edges and a failure link. Bytes that occur in no pattern
// share class 0, which keeps rows short. A dense entry has outFlag set
// when its target state reports patterns, so the scan loop tests the
// entry it just loaded instead of the output table.
type automaton struct {
	classes   [256]uint8
	nclass    int32
	dense     []int32 // state*nclass + class → state | outFlag, for state < ndense
	ndense    int32
	edgeStart []int32 // edges of state s: edgeStart[s]..edgeStart[s+1]
	edgeClass []uint8
	edgeTo    []int32
	fail      []int32
	outStart  []int32 // outputs of state s: outIDs[outStart[s]:outStart[s+1]]
	outIDs    []int32 // pattern ids
	// pair[c1*nclass+c2] is false when, from the root, the bytes of classes
	// c1 c2 lead where c2 alone leads and c1 reports nothing: the scan can
	// then step over c1 without the automaton. nil when too many pairs are
	// true for skipping to pay (large pattern sets).
	pair []bool
	// minPat is the length of the shortest pattern: shorter text holds none.
	minPat int
}

// denseBudget bounds the dense table (entries of 4 bytes): small
// automatons are complete DFAs, big ones keep their hot shallow part in
// cache.
const denseBudget = 1 << 16

// outFlag marks a dense entry whose target state has outputs.
const outFlag = -1 << 31

type acEdge struct {
	c  uint8
	to int32
}

// newAutomaton builds the automaton; ids[i] is reported when pats[i]
// occurs. Empty patterns are ignored.
func newAutomaton(pats []string, ids []int32) *automaton {
	return buildAutomaton(pats, ids, denseBudget)
}

// buildAutomaton is newAutomaton with a dense table of at most budget
// entries beyond the root and depth 1 (tests use it to cover both paths).
func buildAutomaton(pats []string, ids []int32, budget int) *automaton {
	a := &automaton{}
	var used [256]bool
	count := 0
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			if !used[p[i]] {
				used[p[i]] = true
				count++
			}
		}
	}
	// Class 0 is "a byte in no pattern" unless all 256 byte values occur;
	// then every byte has a class of its own. Unused non-ASCII bytes get a
	// class of their own too, so that skipping (pair) stops at them: the
	// scan refuses non-ASCII text.
	n := int32(1)
	if count == 256 {
		n = 0
	}
	for b := 0; b < 256; b++ {
		if used[b] {
			a.classes[b] = uint8(n)
			n++
		}
	}
	hiClass := -1
	for b := 0x80; b < 256 && n < 256; b++ {
		if !used[b] {
			if hiClass < 0 {
				hiClass = int(n)
				n++
			}
			a.classes[b] = uint8(hiClass)
		}
	}
	a.nclass = n
	// Patterns are lower-case: upper-case ASCII shares the lower-case
	// class, so ASCII text is scanned without lowering it first.
	for b := 'A'; b <= 'Z'; b++ {
		a.classes[b] = a.classes[b+'a'-'A']
	}

	// Trie with sparse children, in insertion order.
	kids := [][]acEdge{nil}
	outs := [][]int32{nil}
	depth := []int32{0}
	child := func(s int32, c uint8) int32 {
		for _, e := range kids[s] {
			if e.c == c {
				return e.to
			}
		}
		return -1
	}
	for pi, p := range pats {
		if p == "" {
			continue
		}
		if a.minPat == 0 || len(p) < a.minPat {
			a.minPat = len(p)
		}
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.classes[p[i]]
			nx := child(s, c)
			if nx < 0 {
				nx = int32(len(kids))
				kids = append(kids, nil)
				outs = append(outs, nil)
				depth = append(depth, depth[s]+1)
				kids[s] = append(kids[s], acEdge{c, nx})
			}
			s = nx
		}
		outs[s] = append(outs[s], ids[pi])
	}

	// Breadth-first order, failure links and merged outputs.
	states := len(kids)
	order := make([]int32, 0, states)
	order = append(order, 0)
	fail := make([]int32, states)
	for qi := 0; qi < len(order); qi++ {
		u := order[qi]
		for _, e := range kids[u] {
			v := e.to
			if u != 0 {
				f := fail[u]
				for {
					if nx := child(f, e.c); nx >= 0 {
						fail[v] = nx
						break
					}
					if f == 0 {
						break
					}
					f = fail[f]
				}
			}
			outs[v] = append(outs[v], outs[fail[v]]...)
			order = append(order, v)
		}
	}
	renum := make([]int32, states)
	for i, s := range order {
		renum[s] = int32(i)
	}

	// Sparse part, in the new numbering.
	a.edgeStart = make([]int32, states+1)
	a.fail = make([]int32, states)
	a.outStart = make([]int32, states+1)
	for i, s := range order {
		a.edgeStart[i] = int32(len(a.edgeTo))
		for _, e := range kids[s] {
			a.edgeClass = append(a.edgeClass, e.c)
			a.edgeTo = append(a.edgeTo, renum[e.to])
		}
		a.fail[i] = renum[fail[s]]
		a.outStart[i] = int32(len(a.outIDs))
		a.outIDs = append(a.outIDs, outs[s]...)
	}
	a.edgeStart[states] = int32(len(a.edgeTo))
	a.outStart[states] = int32(len(a.outIDs))

	// Dense rows for the shallow states.
	nd := 0
	for nd < states && (depth[order[nd]] <= 1 || (nd+1)*int(n) <= budget) {
		nd++
	}
	a.ndense = int32(nd)
	a.dense = make([]int32, nd*int(n))
	for s := 0; s < nd; s++ {
		for c := int32(0); c < n; c++ {
			var to int32
			if nx := a.edge(int32(s), uint8(c)); nx >= 0 {
				to = nx
			} else if s != 0 {
				to = a.dense[a.fail[s]*n+c] &^ outFlag // the failure state is shallower: its row exists
			}
			a.dense[int32(s)*n+c] = a.flagged(to)
		}
	}
	a.pair = a.pairs(hiClass)
	return a
}

// maxPairShare is the share of printable ASCII byte pairs that may stop
// the skip loop for skipping to be used.
const maxPairShare = 0.15

// pairs computes the pair table (see automaton.pair), or nil.
func (a *automaton) pairs(hiClass int) []bool {
	n := a.nclass
	pair := make([]bool, n*n)
	for c1 := int32(0); c1 < n; c1++ {
		x := a.step(0, uint8(c1))
		q := x &^ outFlag
		for c2 := int32(0); c2 < n; c2++ {
			pair[c1*n+c2] = x < 0 || int(c1) == hiClass || int(c2) == hiClass ||
				a.step(q, uint8(c2)) != a.step(0, uint8(c2))
		}
	}
	stops := 0
	for b1 := 0x20; b1 < 0x7f; b1++ {
		for b2 := 0x20; b2 < 0x7f; b2++ {
			if pair[int32(a.classes[b1])*n+int32(a.classes[b2])] {
				stops++
			}
		}
	}
	if float64(stops) > maxPairShare*95*95 {
		return nil
	}
	return pair
}

// flagged is state st with outFlag when it has outputs.
func (a *automaton) flagged(st int32) int32 {
	if a.outStart[st] != a.outStart[st+1] {
		return st | outFlag
	}
	return st
}

// step is the transition from st on byte class c, with outFlag when the
// new state has outputs: a table load for the shallow states, trie edges
// and failure links below them.
func (a *automaton) step(st int32, c uint8) int32 {
	if st < a.ndense {
		return a.dense[st*a.nclass+int32(c)]
	}
	return a.stepSparse(st, c)
}

func (a *automaton) stepSparse(st int32, c uint8) int32 {
	for {
		if st < a.ndense {
			return a.dense[st*a.nclass+int32(c)]
		}
		if nx := a.edge(st, c); nx >= 0 {
			return a.flagged(nx)
		}
		st = a.fail[st]
	}
}

// outputs are the pattern ids state st reports.
func (a *automaton) outputs(st int32) []int32 {
	return a.outIDs[a.outStart[st]:a.outStart[st+1]]
}

func (a *automaton) edge(s int32, c uint8) int32 {
	for i := a.edgeStart[s]; i < a.edgeStart[s+1]; i++ {
		if a.edgeClass[i] == c {
			return a.edgeTo[i]
		}
	}
	return -1
}

// scan appends to hits the ids of the patterns occurring in s (an id once
// per occurrence; callers dedup). ASCII letters match either case; for
// non-ASCII text scan returns ok=false at once and the caller scans the
// lower-cased text instead.
func (a *automaton) scan(s string, hits []int32) (_ []int32, ok bool) {
	if len(s) < a.minPat {
		// Too short, unless lowering lengthens it (Ⱥ → ⱥ): non-ASCII
		// text goes to scanLower as usual.
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return hits, false
			}
		}
		return hits, true
	}
	st := int32(0)
	dense, n, nd, pair := a.dense, a.nclass, a.ndense, a.pair
	for i := 0; i < len(s); i++ {
		if st == 0 && pair != nil {
			for i+1 < len(s) && !pair[int32(a.classes[s[i]])*n+int32(a.classes[s[i+1]])] {
				i++
			}
		}
		b := s[i]
		if b >= 0x80 {
			return hits, false
		}
		var x int32
		if st < nd {
			x = dense[st*n+int32(a.classes[b])]
		} else {
			x = a.stepSparse(st, a.classes[b])
		}
		st = x &^ outFlag
		if x < 0 {
			hits = append(hits, a.outputs(st)...)
		}
	}
	return hits, true
}

// scanLower scans lower-case text (any bytes).
func (a *automaton) scanLower(s string, hits []int32) []int32 {
	if len(s) < a.minPat {
		return hits
	}
	st := int32(0)
	n, pair := a.nclass, a.pair
	for i := 0; i < len(s); i++ {
		if st == 0 && pair != nil {
			for i+1 < len(s) && !pair[int32(a.classes[s[i]])*n+int32(a.classes[s[i+1]])] {
				i++
			}
		}
		x := a.step(st, a.classes[s[i]])
		st = x &^ outFlag
		if x < 0 {
			hits = append(hits, a.outputs(st)...)
		}
	}
	return hits
}

func (a *automaton) size() int {
	return 4*(len(a.dense)+len(a.edgeStart)+len(a.edgeTo)+len(a.fail)+len(a.outStart)+len(a.outIDs)) + len(a.edgeClass) + 256
}

// anyAnchored reports whether some pattern occurs in lower-case s with its
// anchoring: kinds[id] says whether pattern id must start at 0 (kPrefix),
// end at len(s) (kSuffix), both (kEq) or neither (kContains); lens[id] is
// its length. Stops at the first hit.
func (a *automaton) anyAnchored(s string, kinds []strKind, lens []int32) bool {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		x := a.step(st, a.classes[s[i]])
		st = x &^ outFlag
		if x >= 0 {
			continue
		}
		for _, id := range a.outputs(st) {
			end := i + 1
			switch kinds[id] {
			case kContains:
				return true
			case kPrefix:
				if end == int(lens[id]) {
					return true
				}
			case kSuffix:
				if end == len(s) {
					return true
				}
			case kEq:
				if end == len(s) && end == int(lens[id]) {
					return true
				}
			}
		}
	}
	return false
}
