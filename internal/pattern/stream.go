package pattern

// bodyScan matches body and logical patterns over one object streamed
// through Write. It keeps a window of the object: bytes before the next
// anchor position (lookBehind, or the tail length for EOF patterns) and a
// chunk ahead of it; an anchor is only examined once lookAhead bytes after
// it are in the window, so verification never needs bytes that were
// dropped. Memory per scan is the window plus state for the patterns that
// were actually hit.

const scanChunk = 256 << 10

type patState struct {
	pat      int32
	next     int32 // segment expected next
	minStart int64 // absolute: earliest start of segment next
	prevMin  int64 // absolute: earliest start allowed for segment next-1 (when next-1 > 0)
	first    int64 // absolute start of segment 0 of the current match
	done     bool
}

type lsState struct {
	ls    int32
	off   int   // match counts per subsignature: slab[off : off+maxSubsigs]
	first int64 // earliest subsignature match start
}

type bodyMatch struct {
	sig int32
	off int64
}

type bodyScan struct {
	set     *Set
	obj     objInfo
	buf     []byte
	base    int64 // absolute offset of buf[0]
	next    int64 // next anchor position to examine
	total   int64
	maxScan int64
	cut     bool // stopped at maxScan
	sniffed bool

	patSlot []int32
	states  []patState
	lsSlot  []int32
	lstates []lsState
	slab    []uint16
	v       verifier
	matches []bodyMatch
	hitFn   func(p int, refs []ref)
}

func newBodyScan(set *Set) *bodyScan {
	s := &bodyScan{set: set}
	s.hitFn = s.hit
	return s
}

func (s *bodyScan) keepBehind() int { return max(s.set.lookBehind, s.set.tailLen) }

// reset prepares for a new object of the given size (-1: unknown).
func (s *bodyScan) reset(size, maxScan int64) {
	want := scanChunk + s.keepBehind() + s.set.lookAhead
	if cap(s.buf) < want {
		s.buf = make([]byte, 0, want)
	}
	s.buf = s.buf[:0]
	if len(s.patSlot) != len(s.set.pats) {
		s.patSlot = make([]int32, len(s.set.pats))
	}
	if len(s.lsSlot) != len(s.set.lsigs) {
		s.lsSlot = make([]int32, len(s.set.lsigs))
	}
	s.obj = objInfo{size: size}
	s.base, s.next, s.total, s.maxScan = 0, 0, 0, maxScan
	s.cut, s.sniffed = false, false
	s.states, s.lstates, s.slab, s.matches = s.states[:0], s.lstates[:0], s.slab[:0], s.matches[:0]
}

func (s *bodyScan) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(s.buf) == cap(s.buf) {
			s.advance(false)
			s.compact()
		}
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		s.total += int64(c)
	}
	return n, nil
}

func (s *bodyScan) sniff() {
	if s.sniffed {
		return
	}
	s.sniffed = true
	// The window starts at offset 0 until the first compaction, which only
	// happens after this.
	s.obj.ftype, s.obj.pe = sniffExecutable(s.buf[:min(len(s.buf), headerLen)], s.obj.size)
}

// advance examines every anchor position whose verification window is
// complete (all remaining ones when final).
func (s *bodyScan) advance(final bool) {
	s.sniff()
	end := s.base + int64(len(s.buf))
	to := end
	if !final {
		to = end - int64(s.set.lookAhead)
	}
	if s.maxScan > 0 && to > s.maxScan {
		to = s.maxScan
		if end > s.maxScan {
			s.cut = true
		}
	}
	if to <= s.next {
		return
	}
	if s.set.main != nil {
		s.set.main.scan(s.buf, int(s.next-s.base), int(to-s.base), s.hitFn)
	}
	s.next = to
}

func (s *bodyScan) compact() {
	keep := s.next - int64(s.keepBehind())
	if s.maxScan > 0 && s.next >= s.maxScan {
		// Nothing more will be examined; keep only what the tail pass needs.
		keep = s.base + int64(len(s.buf)) - int64(s.keepBehind())
	}
	if keep <= s.base {
		if len(s.buf) == cap(s.buf) {
			// Cannot happen with the buffer sized in reset, but never
			// grow without bound.
			keep = s.base + int64(len(s.buf)/2)
		} else {
			return
		}
	}
	n := copy(s.buf, s.buf[keep-s.base:])
	s.buf = s.buf[:n]
	s.base = keep
}

// finish completes the object: examines the rest, runs the tail pass for
// EOF-relative patterns and evaluates logical signatures. fn receives each
// matching signature id with its offset. truncated means the object did
// not arrive completely (a read error or a limit): then nothing that
// depends on where the object ends is evaluated.
func (s *bodyScan) finish(truncated bool, fn func(sig int32, off int64)) {
	s.advance(true)
	s.obj.size = s.total
	if s.set.tail != nil && !truncated {
		from := max(s.base, s.total-int64(s.set.tailLen))
		s.set.tail.scan(s.buf, int(from-s.base), len(s.buf), s.hitFn)
	}
	for _, m := range s.matches {
		fn(m.sig, m.off)
	}
	partial := truncated || s.cut
	for i := range s.lstates {
		ls := &s.lstates[i]
		l := &s.set.lsigs[ls.ls]
		// With part of the object unseen, only expressions that cannot
		// turn false by seeing more (no "=n", "<n", no file size) may
		// alert.
		if partial && !l.monotone {
			continue
		}
		if !l.def.tdb.accepts(&s.obj) {
			continue
		}
		if ok, _, _ := l.def.expr.eval(s.slab[ls.off : ls.off+maxSubsigs]); ok {
			fn(l.sig, ls.first)
		}
	}
}

func (s *bodyScan) state(p int32) *patState {
	if i := s.patSlot[p]; int(i) < len(s.states) && s.states[i].pat == p {
		return &s.states[i]
	}
	return nil
}

func (s *bodyScan) newState(p int32) *patState {
	s.patSlot[p] = int32(len(s.states))
	s.states = append(s.states, patState{pat: p})
	return &s.states[len(s.states)-1]
}

func (s *bodyScan) lstate(l int32) *lsState {
	if i := s.lsSlot[l]; int(i) < len(s.lstates) && s.lstates[i].ls == l {
		return &s.lstates[i]
	}
	s.lsSlot[l] = int32(len(s.lstates))
	off := len(s.slab)
	// maxSubsigs counters so that eval can index any id without checks.
	for range maxSubsigs {
		s.slab = append(s.slab, 0)
	}
	s.lstates = append(s.lstates, lsState{ls: l, off: off, first: 1<<62 - 1})
	return &s.lstates[len(s.lstates)-1]
}

// hit verifies the patterns whose anchor was found at buf[p:].
func (s *bodyScan) hit(p int, refs []ref) {
	for _, r := range refs {
		pat := &s.set.pats[r.pat]
		if pat.target != typeOther && pat.target != s.obj.ftype {
			continue
		}
		st := s.state(r.pat)
		k := int(r.seg)
		expected := 0
		if st != nil {
			if st.done {
				continue
			}
			expected = int(st.next)
		}
		improve := false
		if k != expected {
			// A later occurrence of the segment just matched can end
			// earlier when its tail has variable length; keeping the
			// earliest end keeps the next segment's window widest.
			if st == nil || k != expected-1 || pat.segs[k].postFixed {
				continue
			}
			improve = true
		}
		var lo, hi int64
		switch {
		case k == 0:
			var ok bool
			if lo, hi, ok = pat.off.resolve(&s.obj); !ok {
				continue
			}
		case improve:
			lo, hi = st.prevMin, 1<<62-1
		default:
			lo, hi = st.minStart, 1<<62-1
		}
		blo := max(lo-s.base, -1)
		bhi := min(hi-s.base, int64(len(s.buf)))
		if bhi < blo || bhi < 0 {
			continue
		}
		seg := &pat.segs[k]
		start, end, ok := s.v.verify(seg, s.buf, p, int(blo), int(bhi))
		if !ok {
			continue
		}
		last := len(pat.segs) - 1
		if pat.fullword {
			if k == 0 && start > 0 && isWordByte(s.buf[start-1]) {
				continue
			}
			if k == last && end < len(s.buf) && isWordByte(s.buf[end]) {
				continue
			}
		}
		if improve {
			if m := s.base + int64(end) + int64(pat.sepMin[k+1]); m < st.minStart {
				st.minStart = m
				if k == 0 {
					st.first = s.base + int64(start)
				}
			}
			continue
		}
		if st == nil {
			st = s.newState(r.pat)
		}
		if k == 0 {
			st.first = s.base + int64(start)
		}
		if k < last {
			st.next = int32(k + 1)
			st.prevMin = lo
			st.minStart = s.base + int64(end) + int64(pat.sepMin[k+1])
			continue
		}
		s.complete(pat, st)
	}
}

func (s *bodyScan) complete(pat *bodyPat, st *patState) {
	if pat.sub < 0 {
		st.done = true
		s.matches = append(s.matches, bodyMatch{sig: pat.owner, off: st.first})
		return
	}
	ls := s.lstate(pat.owner)
	c := &s.slab[ls.off+int(pat.sub)]
	capc := s.set.lsigs[pat.owner].cap
	if *c < capc {
		*c++
	}
	if *c >= capc {
		st.done = true
	}
	ls.first = min(ls.first, st.first)
}
