package pattern

import (
	"math"
	"strings"
)

// Set is a compiled, immutable signature set. It is safe for concurrent
// use by any number of Scanners.
type Set struct {
	names  []string  // per signature id
	kinds  []kindIdx // per signature id
	hashes [numHashTypes]hashTable
	pats   []bodyPat
	lsigs  []lsig
	main   *prefilter // anchors of patterns matched in the streaming pass
	tail   *prefilter // anchors of EOF-relative patterns, matched at the end
	// Window geometry: bytes needed after an anchor position and before
	// it to verify any segment, and the length of the tail pass.
	lookAhead  int
	lookBehind int
	tailLen    int
	stats      Stats
}

type lsig struct {
	sig      int32
	def      ldbDef
	cap      uint16
	nsub     int
	monotone bool // more matches can never make the expression false
}

// Stats describes a compiled Set.
type Stats struct {
	Hash     int // hash signatures (all types)
	MD5      int
	SHA1     int
	SHA256   int
	Body     int // body signatures
	Logical  int // logical signatures
	Cleanup  int // cleanup records carried, not evaluated
	Patterns int // compiled body patterns (body sigs + logical subsignature variants)
	Anchors  int // distinct prefilter anchors
	Skipped  int // records rejected by Compile
}

// Stats returns counts describing the set.
func (s *Set) Stats() Stats { return s.stats }

// Compile builds a Set from records. Records that do not validate are
// skipped and reported as warnings (with their File and Line when set);
// the error is only for limits that make the whole set unusable.
func Compile(recs []Record) (*Set, []Warning, error) {
	if len(recs) > math.MaxInt32/2 {
		return nil, nil, limitf("%d records (max %d)", len(recs), math.MaxInt32/2)
	}
	s := &Set{}
	var (
		warns  []Warning
		hashes [numHashTypes]hashBuild
		dbuf   [32]byte
	)
	warn := func(r Record, err error) {
		warns = append(warns, Warning{File: r.File, Line: r.Line, Name: r.Name, Err: err})
		s.stats.Skipped++
	}
	addSig := func(r Record) int32 {
		s.names = append(s.names, r.Name)
		s.kinds = append(s.kinds, kindIndex(r.Kind))
		return int32(len(s.names) - 1)
	}
	// Sizing the big arrays up front halves the garbage of compiling
	// large hash sets.
	s.names = make([]string, 0, len(recs))
	s.kinds = make([]kindIdx, 0, len(recs))
	var nHash [numHashTypes]int
	for i := range recs {
		if recs[i].Kind == KindHash {
			if ht, ok := hashTypeOfHexLen(strings.IndexByte(recs[i].Data, ':')); ok {
				nHash[ht]++
			}
		}
	}
	for t := range numHashTypes {
		hashes[t].width = hashWidth[t]
		hashes[t].entries = make([]hashBuildEntry, 0, nHash[t])
		hashes[t].arena = make([]byte, 0, nHash[t]*hashWidth[t])
	}
	for _, r := range recs {
		if err := r.validFraming(); err != nil {
			warn(r, err)
			continue
		}
		switch r.Kind {
		case KindHash:
			digest, ht, size, err := parseHashDataInto(dbuf[:], r.Data)
			if err != nil {
				warn(r, err)
				continue
			}
			hashes[ht].add(digest, size, addSig(r))
		case KindBody:
			d, err := parseBodyData(r.Data)
			var p bodyPat
			if err == nil {
				p, err = d.compile(bodyMods{})
			}
			if err != nil {
				warn(r, err)
				continue
			}
			p.owner = addSig(r)
			s.pats = append(s.pats, p)
			s.stats.Body++
		case KindLogical:
			l, err := parseLogicalData(r.Data)
			var pats []bodyPat
			for i, ss := range l.subs {
				if err != nil {
					break
				}
				for _, m := range ss.modSets() {
					p, e := ss.body.compile(m)
					if e != nil {
						err = wrapSub(i, e)
						break
					}
					p.owner, p.sub = int32(len(s.lsigs)), int8(i)
					pats = append(pats, p)
				}
			}
			if err != nil {
				warn(r, err)
				continue
			}
			s.lsigs = append(s.lsigs, lsig{sig: addSig(r), def: l, cap: l.countCap(), nsub: len(l.subs), monotone: l.monotone()})
			s.pats = append(s.pats, pats...)
			s.stats.Logical++
		case KindCleanup:
			s.stats.Cleanup++
		}
	}
	if len(s.pats) > math.MaxInt32/2 {
		return nil, warns, limitf("%d body patterns", len(s.pats))
	}
	for t := range numHashTypes {
		s.hashes[t] = hashes[t].build()
		hashes[t] = hashBuild{}
	}
	s.stats.MD5, s.stats.SHA1, s.stats.SHA256 = s.hashes[hashMD5].len(), s.hashes[hashSHA1].len(), s.hashes[hashSHA256].len()
	s.stats.Hash = s.stats.MD5 + s.stats.SHA1 + s.stats.SHA256
	s.stats.Patterns = len(s.pats)
	s.buildPrefilters()
	return s, warns, nil
}

func (s *Set) buildPrefilters() {
	var mainLong, mainShort, tailLong, tailShort []keyRef
	var keys []uint32
	s.lookAhead, s.lookBehind = 4, 1
	for pi := range s.pats {
		p := &s.pats[pi]
		if p.eof {
			s.tailLen = max(s.tailLen, int(p.off.n)+1)
		}
		for si := range p.segs {
			seg := &p.segs[si]
			// +1 on both sides: fullword checks look at the neighbour bytes.
			s.lookAhead = max(s.lookAhead, seg.anchorLen+seg.postMax+1)
			s.lookBehind = max(s.lookBehind, seg.preMax+1)
			keys = seg.anchorKeys(keys[:0])
			r := ref{pat: int32(pi), seg: int32(si)}
			for _, k := range keys {
				kr := keyRef{key: k, ref: r}
				switch {
				case p.eof && seg.anchorLen == 4:
					tailLong = append(tailLong, kr)
				case p.eof:
					tailShort = append(tailShort, kr)
				case seg.anchorLen == 4:
					mainLong = append(mainLong, kr)
				default:
					mainShort = append(mainShort, kr)
				}
			}
		}
	}
	if len(mainLong)+len(mainShort) > 0 {
		s.main = buildPrefilter(mainLong, mainShort)
		s.stats.Anchors += s.main.nkeys
	}
	if len(tailLong)+len(tailShort) > 0 {
		s.tail = buildPrefilter(tailLong, tailShort)
		s.stats.Anchors += s.tail.nkeys
	}
}

// kindIdx stores a signature's Kind in one byte.
type kindIdx uint8

var kindByIdx = [...]Kind{KindHash, KindBody, KindLogical, KindCleanup}

func kindIndex(k Kind) kindIdx {
	for i, kk := range kindByIdx {
		if kk == k {
			return kindIdx(i)
		}
	}
	return 0
}

func (k kindIdx) Kind() Kind { return kindByIdx[k] }

// hasBody reports whether any body or logical pattern exists.
func (s *Set) hasBody() bool { return len(s.pats) > 0 }
