package sigma

// automaton is an Aho–Corasick automaton over lower-case byte strings: one
// pass over a value reports every pattern that occurs in it.
//
// Layout: states are numbered breadth-first. The shallow states (the root
// and depth 1, plus depth 2 while it stays small) have dense DFA rows, so
// the common case — text that matches nothing deep — costs one table load
// per byte. Deeper states keep only their trie edges and a failure link.
// Bytes that occur in no pattern share class 0, which keeps rows short.
type automaton struct {
	classes   [256]uint8
	nclass    int32
	dense     []int32 // state*nclass + class → state, for state < ndense
	ndense    int32
	edgeStart []int32 // edges of state s: edgeStart[s]..edgeStart[s+1]
	edgeClass []uint8
	edgeTo    []int32
	fail      []int32
	outStart  []int32 // outputs of state s: outIDs[outStart[s]:outStart[s+1]]
	outIDs    []int32 // pattern ids
}

// maxDense bounds the states with dense rows.
const maxDense = 1024

type acEdge struct {
	c  uint8
	to int32
}

// newAutomaton builds the automaton; ids[i] is reported when pats[i]
// occurs. Empty patterns are ignored.
func newAutomaton(pats []string, ids []int32) *automaton {
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
	// then every byte has a class of its own.
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
	for nd < states && (depth[order[nd]] <= 1 || (depth[order[nd]] == 2 && nd < maxDense)) {
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
				to = a.dense[a.fail[s]*n+c] // the failure state is shallower: its row exists
			}
			a.dense[int32(s)*n+c] = to
		}
	}
	return a
}

// next is the transition from st on byte class c: a table load for the
// shallow states, trie edges and failure links below them.
func (a *automaton) next(st int32, c uint8) int32 {
	for {
		if st < a.ndense {
			return a.dense[st*a.nclass+int32(c)]
		}
		if nx := a.edge(st, c); nx >= 0 {
			return nx
		}
		st = a.fail[st]
	}
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
	st := int32(0)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return hits, false
		}
		c := a.classes[s[i]]
		st = a.next(st, c)
		if lo, hi := a.outStart[st], a.outStart[st+1]; lo != hi {
			hits = append(hits, a.outIDs[lo:hi]...)
		}
	}
	return hits, true
}

// scanLower scans lower-case text (any bytes).
func (a *automaton) scanLower(s string, hits []int32) []int32 {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		c := a.classes[s[i]]
		st = a.next(st, c)
		if lo, hi := a.outStart[st], a.outStart[st+1]; lo != hi {
			hits = append(hits, a.outIDs[lo:hi]...)
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
		c := a.classes[s[i]]
		st = a.next(st, c)
		for k := a.outStart[st]; k < a.outStart[st+1]; k++ {
			id := a.outIDs[k]
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
