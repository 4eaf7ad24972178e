package pattern

import (
	"math/bits"
)

// Compiled body patterns. A pattern is a sequence of segments separated by
// unbounded gaps ('*', {n-}); a segment contains only bounded elements, so
// it has a maximum span and can be verified inside the scan window around
// one anchor. Every segment has its own anchor in the prefilter, which lets
// a pattern be matched in a single streaming pass: segment k is only
// accepted after segment k-1 ended, and the earliest end of each segment is
// kept, which is optimal for a sequence of gaps of unbounded maximum.

type ceKind uint8

const (
	ceByte ceKind = iota // (b & mask) == val: exact bytes and nibbles
	ceSet                // b in set
	ceGap                // skip min..max bytes
	ceAlt                // alternatives (each a sequence of ceByte/ceSet)
)

type byteSet [4]uint64

func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) count() int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

type celem struct {
	kind      ceKind
	mask, val byte
	neg       bool
	set       *byteSet
	min, max  int       // ceGap: byte count range; ceAlt: length range
	alts      [][]celem // ceAlt
}

// single reports whether e consumes exactly one byte with a byte test.
func (e *celem) single() bool { return e.kind == ceByte || e.kind == ceSet }

func (e *celem) fixedLen() bool {
	switch e.kind {
	case ceByte, ceSet:
		return true
	default:
		return e.min == e.max
	}
}

func (e *celem) minLen() int {
	if e.single() {
		return 1
	}
	return e.min
}

func (e *celem) maxLen() int {
	if e.single() {
		return 1
	}
	return e.max
}

func (e *celem) matchByte(b byte) bool {
	if e.kind == ceByte {
		return b&e.mask == e.val
	}
	return e.set.has(b)
}

// candidates returns the bytes e accepts (for anchor expansion).
func (e *celem) candidates(dst []byte) []byte {
	for c := 0; c < 256; c++ {
		if e.matchByte(byte(c)) {
			dst = append(dst, byte(c))
		}
	}
	return dst
}

func (e *celem) candidateCount() int {
	if e.kind == ceByte {
		return 1 << bits.OnesCount8(^e.mask)
	}
	return e.set.count()
}

type segment struct {
	elems     []celem
	anchor    int // index of the anchor's first element
	anchorLen int // 4 (hashed prefilter) or 2 (short table)
	pre       []celem
	post      []celem
	preMin    int
	preMax    int
	postMin   int
	postMax   int
	preFixed  bool
	postFixed bool
}

// bodyPat is one compiled body pattern: an .ndb signature, or one variant
// of an .ldb subsignature (ascii and wide forms are separate patterns with
// the same owner and sub).
type bodyPat struct {
	segs     []segment
	sepMin   []int // sepMin[k]: minimum distance from the end of segment k-1 to the start of segment k
	off      offset
	target   fileType
	fullword bool
	owner    int32 // signature id (ndb) or logical signature index (ldb)
	sub      int8  // subsignature index, -1 for ndb
	eof      bool  // matched in the tail pass (EOF-relative offset)
}

// Limits on compiled patterns, so that the scan window stays bounded.
const (
	maxSegSpan = 64 << 10  // max bytes one segment can cover
	maxEOFTail = 256 << 10 // max n in EOF-n
	maxExpand  = 16        // max anchor expansions (nibbles, nocase, short alternatives)
)

// byteScore estimates the information (in tenths of a bit) a fixed byte
// carries in typical files: zero, 0xff, white space, letters and common x86
// opcodes are frequent and make poor anchors.
func byteScore(b byte) int {
	switch {
	case b == 0x00:
		return 10
	case b == 0xff:
		return 35
	case b == ' ' || b == '\n' || b == '\r' || b == '\t':
		return 45
	case b >= 'a' && b <= 'z', b >= '0' && b <= '9':
		return 60
	case b >= 'A' && b <= 'Z':
		return 65
	case b == 0x01, b == 0x02, b == 0x04, b == 0x08, b == 0x10, b == 0x80,
		b == 0x8b, b == 0x89, b == 0x90, b == 0xcc, b == 0xe8, b == 0x48, b == 0x4c, b == 0x24, b == 0xc3:
		return 65
	}
	return 80
}

func elemScore(e *celem) int {
	if e.kind == ceByte && e.mask == 0xff {
		return byteScore(e.val)
	}
	n := e.candidateCount()
	if n <= 1 {
		return 80
	}
	return 80 - 10*bits.Len(uint(n-1))
}

// pickAnchor chooses the best window of width w among runs of single-byte
// elements: highest information, expansions bounded by maxExpand.
func pickAnchor(elems []celem, w int) (start, score int) {
	start, score = -1, -1
	for i := 0; i+w <= len(elems); i++ {
		prod, sc, same := 1, 0, true
		ok := true
		for j := i; j < i+w; j++ {
			e := &elems[j]
			if !e.single() {
				ok = false
				break
			}
			prod *= e.candidateCount()
			if prod > maxExpand {
				ok = false
				break
			}
			sc += elemScore(e)
			if !(e.kind == ceByte && e.mask == 0xff && elems[i].kind == ceByte && elems[i].mask == 0xff && e.val == elems[i].val) {
				same = false
			}
		}
		if !ok {
			continue
		}
		if same {
			// A run of one repeated byte hits at every position of a run
			// of that byte in the data (zero padding, "AAAA...").
			sc -= 20 * w
		}
		if sc > score {
			start, score = i, sc
		}
	}
	return start, score
}

func spanOf(es []celem) (min, max int, fixed bool) {
	fixed = true
	for i := range es {
		min += es[i].minLen()
		max += es[i].maxLen()
		if !es[i].fixedLen() {
			fixed = false
		}
	}
	return min, max, fixed
}

func newSegment(elems []celem) (segment, error) {
	s := segment{elems: elems}
	_, maxSpan, _ := spanOf(elems)
	if maxSpan > maxSegSpan {
		return s, limitf("a part of the pattern spans up to %d bytes (max %d)", maxSpan, maxSegSpan)
	}
	st, sc := pickAnchor(elems, 4)
	w := 4
	if st2, sc2 := pickAnchor(elems, 2); st < 0 || (sc < 160 && sc2 > sc) {
		st, sc, w = st2, sc2, 2
	}
	if st < 0 {
		return s, unsupportedf("a '*'-separated part has no run of 2 fixed bytes to anchor on")
	}
	s.anchor, s.anchorLen = st, w
	s.pre, s.post = elems[:st], elems[st+w:]
	s.preMin, s.preMax, s.preFixed = spanOf(s.pre)
	s.postMin, s.postMax, s.postFixed = spanOf(s.post)
	return s, nil
}

// anchorKeys appends every byte string the segment's anchor window accepts,
// packed little-endian (as the prefilter reads them).
func (s *segment) anchorKeys(dst []uint32) []uint32 {
	keys := []uint32{0}
	var cands []byte
	for j := 0; j < s.anchorLen; j++ {
		cands = s.elems[s.anchor+j].candidates(cands[:0])
		next := make([]uint32, 0, len(keys)*len(cands))
		for _, k := range keys {
			for _, c := range cands {
				next = append(next, k|uint32(c)<<(8*j))
			}
		}
		keys = next
	}
	return append(dst, keys...)
}
