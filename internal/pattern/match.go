package pattern

import "slices"

// Verification of one segment around an anchor hit. Fixed-length parts are
// compared directly; parts with variable gaps or alternatives of different
// lengths are matched by tracking the set of reachable positions, which is
// bounded by the segment's maximum span (no exponential backtracking).

type verifier struct {
	a, b []int
}

func altMatchAt(alt []celem, buf []byte, pos int) bool {
	if pos+len(alt) > len(buf) {
		return false
	}
	for i := range alt {
		if !alt[i].matchByte(buf[pos+i]) {
			return false
		}
	}
	return true
}

func anyAltAt(e *celem, buf []byte, pos int) bool {
	for _, a := range e.alts {
		if altMatchAt(a, buf, pos) {
			return true
		}
	}
	return false
}

// matchFixed matches fixed-length elements from pos and returns the end
// position, or -1.
func matchFixed(es []celem, buf []byte, pos int) int {
	for i := range es {
		e := &es[i]
		switch e.kind {
		case ceByte:
			if pos >= len(buf) || buf[pos]&e.mask != e.val {
				return -1
			}
			pos++
		case ceSet:
			if pos >= len(buf) || !e.set.has(buf[pos]) {
				return -1
			}
			pos++
		case ceGap:
			pos += e.min
			if pos > len(buf) {
				return -1
			}
		case ceAlt:
			if pos+e.min > len(buf) || anyAltAt(e, buf, pos) == e.neg {
				return -1
			}
			pos += e.min
		}
	}
	return pos
}

// ends returns the sorted set of positions where es can end when started
// at pos. The result aliases the verifier's scratch space.
func (v *verifier) ends(es []celem, buf []byte, pos int) []int {
	cur := append(v.a[:0], pos)
	nxt := v.b[:0]
	for i := range es {
		e := &es[i]
		nxt = nxt[:0]
		switch e.kind {
		case ceByte, ceSet:
			for _, p := range cur {
				if p < len(buf) && e.matchByte(buf[p]) {
					nxt = append(nxt, p+1)
				}
			}
		case ceGap:
			last := -1
			for _, p := range cur {
				for q := max(p+e.min, last+1); q <= p+e.max && q <= len(buf); q++ {
					nxt = append(nxt, q)
					last = q
				}
			}
		case ceAlt:
			for _, p := range cur {
				if e.neg {
					if p+e.min <= len(buf) && !anyAltAt(e, buf, p) {
						nxt = append(nxt, p+e.min)
					}
					continue
				}
				for _, a := range e.alts {
					if altMatchAt(a, buf, p) {
						nxt = append(nxt, p+len(a))
					}
				}
			}
			slices.Sort(nxt)
			nxt = slices.Compact(nxt)
		}
		cur, nxt = nxt, cur
		if len(cur) == 0 {
			break
		}
	}
	v.a, v.b = cur, nxt
	return cur
}

// verify checks segment s around an anchor found at buf[p:]. The match
// start must lie in [lo, hi] (buffer coordinates). It returns the leftmost
// allowed start and the earliest end.
func (v *verifier) verify(s *segment, buf []byte, p, lo, hi int) (start, end int, ok bool) {
	q := p + s.anchorLen
	if s.postFixed {
		if end = matchFixed(s.post, buf, q); end < 0 {
			return 0, 0, false
		}
	} else {
		e := v.ends(s.post, buf, q)
		if len(e) == 0 {
			return 0, 0, false
		}
		end = e[0]
	}
	lo = max(lo, 0, p-s.preMax)
	hi = min(hi, p-s.preMin)
	if s.preFixed {
		start = p - s.preMin
		if start < lo || start > hi || matchFixed(s.pre, buf, start) != p {
			return 0, 0, false
		}
		return start, end, true
	}
	for start = lo; start <= hi; start++ {
		if _, found := slices.BinarySearch(v.ends(s.pre, buf, start), p); found {
			return start, end, true
		}
	}
	return 0, 0, false
}

func isWordByte(b byte) bool {
	return b >= '0' && b <= '9' || b|0x20 >= 'a' && b|0x20 <= 'z'
}
