package pattern

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
	"strings"
)

// Hash signatures: ClamAV .hdb/.hsb lines ("<hex>:<size>:<name>[:<flevel>]",
// size may be "*") and KindHash records ("<hex>:<size>").

type hashType uint8

const (
	hashMD5 hashType = iota
	hashSHA1
	hashSHA256
	numHashTypes
)

var hashWidth = [numHashTypes]int{16, 20, 32}

func hashTypeOfHexLen(n int) (hashType, bool) {
	switch n {
	case 32:
		return hashMD5, true
	case 40:
		return hashSHA1, true
	case 64:
		return hashSHA256, true
	}
	return 0, false
}

// anySize marks a hash signature that matches objects of any size.
const anySize = -1

// parseHashData validates "<hex>:<size|*>" and returns the digest, its
// type and the size (anySize for "*").
func parseHashData(data string) (digest []byte, ht hashType, size int64, err error) {
	return parseHashDataInto(nil, data)
}

// parseHashDataInto is parseHashData decoding into buf when it is large
// enough.
func parseHashDataInto(buf []byte, data string) (digest []byte, ht hashType, size int64, err error) {
	hx, sz, ok := strings.Cut(data, ":")
	if !ok {
		return nil, 0, 0, syntaxf("hash data needs \"<hex>:<size>\"")
	}
	ht, ok = hashTypeOfHexLen(len(hx))
	if !ok {
		return nil, 0, 0, syntaxf("hash %q is not 32, 40 or 64 hex digits", trunc(hx))
	}
	if cap(buf) < len(hx)/2 {
		buf = make([]byte, len(hx)/2)
	}
	digest = buf[:len(hx)/2]
	if _, err = hex.Decode(digest, []byte(hx)); err != nil {
		return nil, 0, 0, syntaxf("hash %q is not hex", trunc(hx))
	}
	size, err = parseHashSize(sz)
	return digest, ht, size, err
}

func parseHashSize(sz string) (int64, error) {
	if sz == "*" {
		return anySize, nil
	}
	if sz == "" || len(sz) > 19 || strings.TrimLeft(sz, "0123456789") != "" {
		return 0, syntaxf("hash size %q is not a number or \"*\"", trunc(sz))
	}
	n, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return 0, syntaxf("hash size %q out of range", trunc(sz))
	}
	return n, nil
}

func formatHashData(digest []byte, size int64) string {
	s := "*"
	if size != anySize {
		s = strconv.FormatInt(size, 10)
	}
	return hex.EncodeToString(digest) + ":" + s
}

// parseHashLine parses one .hdb/.hsb line into a record. ClamAV documents
// .hdb as md5 and .hsb as sha1/sha256, but accepts any of the three in
// either; so do we, by digest length. Database files hold hundreds of
// thousands of these lines, so this avoids allocating beyond the record.
func parseHashLine(line string) (Record, error) {
	hx, rest, ok1 := strings.Cut(line, ":")
	sz, rest, ok2 := strings.Cut(rest, ":")
	name, flevel, hasFLevel := strings.Cut(rest, ":")
	if !ok1 || !ok2 || strings.IndexByte(flevel, ':') >= 0 {
		return Record{}, syntaxf("hash signature needs 3 or 4 ':'-separated fields")
	}
	if err := validName(name); err != nil {
		return Record{Name: name}, err
	}
	if hasFLevel {
		if err := checkMinFLevel(flevel); err != nil {
			return Record{Name: name}, err
		}
	}
	if _, ok := hashTypeOfHexLen(len(hx)); !ok {
		return Record{Name: name}, syntaxf("hash %q is not 32, 40 or 64 hex digits", trunc(hx))
	}
	lower := true
	for i := 0; i < len(hx); i++ {
		switch c := hx[i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			lower = false
		default:
			return Record{Name: name}, syntaxf("hash %q is not hex", trunc(hx))
		}
	}
	if _, err := parseHashSize(sz); err != nil {
		return Record{Name: name}, err
	}
	if !lower {
		hx = strings.ToLower(hx)
	}
	if sz != "*" {
		// Canonical decimal: no leading zeros.
		if t := strings.TrimLeft(sz, "0"); t != sz {
			sz = t
			if sz == "" {
				sz = "0"
			}
		}
	}
	return Record{Kind: KindHash, Name: name, Data: hx + ":" + sz}, nil
}

// hashTable holds the signatures of one hash type, sorted by digest then
// size so one binary search finds every signature of a digest.
type hashTable struct {
	width   int
	digests []byte  // width bytes per entry, sorted
	sizes   []int64 // per entry; anySize for "*"
	sigs    []int32 // per entry
	// sized holds the distinct sizes of sized entries: an object whose
	// size is not among them is not hashed for this type at all.
	sized    []int64
	maxSized int64
	wildcard bool
}

// hashBuild collects the signatures of one hash type before sorting:
// digests are decoded into one arena, and entries carry the first 8 digest
// bytes as an integer so that sorting rarely has to compare more.
type hashBuild struct {
	width   int
	arena   []byte
	entries []hashBuildEntry
}

type hashBuildEntry struct {
	pre  uint64
	off  int32 // digest at arena[off : off+width]
	sig  int32
	size int64
}

func (b *hashBuild) add(digest []byte, size int64, sig int32) {
	b.entries = append(b.entries, hashBuildEntry{pre: binary.BigEndian.Uint64(digest), off: int32(len(b.arena)), sig: sig, size: size})
	b.arena = append(b.arena, digest...)
}

func (b *hashBuild) build() hashTable {
	w := b.width
	es := b.entries
	slices.SortFunc(es, func(x, y hashBuildEntry) int {
		if x.pre != y.pre {
			return cmp.Compare(x.pre, y.pre)
		}
		if c := bytes.Compare(b.arena[x.off:int(x.off)+w], b.arena[y.off:int(y.off)+w]); c != 0 {
			return c
		}
		if x.size != y.size {
			return cmp.Compare(x.size, y.size)
		}
		return cmp.Compare(x.sig, y.sig)
	})
	t := hashTable{
		width:   w,
		digests: make([]byte, 0, w*len(es)),
		sizes:   make([]int64, 0, len(es)),
		sigs:    make([]int32, 0, len(es)),
	}
	for _, e := range es {
		t.digests = append(t.digests, b.arena[e.off:int(e.off)+w]...)
		t.sizes = append(t.sizes, e.size)
		t.sigs = append(t.sigs, e.sig)
		if e.size == anySize {
			t.wildcard = true
		} else {
			t.sized = append(t.sized, e.size)
			t.maxSized = max(t.maxSized, e.size)
		}
	}
	slices.Sort(t.sized)
	t.sized = slices.Clip(slices.Compact(t.sized))
	return t
}

func (t *hashTable) len() int { return len(t.sigs) }

// needs reports whether an object of this size (-1: unknown) must be
// hashed with this table's hash type.
func (t *hashTable) needs(size int64) bool {
	if t.len() == 0 {
		return false
	}
	if size < 0 || t.wildcard {
		return true
	}
	_, found := slices.BinarySearch(t.sized, size)
	return found
}

// lookup calls fn for every signature matching digest and size.
func (t *hashTable) lookup(digest []byte, size int64, fn func(sig int32)) {
	w := t.width
	lo, hi := 0, len(t.sigs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bytes.Compare(t.digests[m*w:m*w+w], digest) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for j := lo; j < len(t.sigs) && bytes.Equal(t.digests[j*w:j*w+w], digest); j++ {
		if t.sizes[j] == anySize || t.sizes[j] == size {
			fn(t.sigs[j])
		}
	}
}

// hashSink computes the digests an object needs while it streams through.
// For objects of unknown size it hashes speculatively and gives a type up
// as soon as the object grows past every sized signature of that type
// (unless a size-wildcard signature of that type exists).
type hashSink struct {
	set *Set
	h   [numHashTypes]hash.Hash
	n   int64
	buf [sha256.Size]byte
}

func (s *hashSink) reset(set *Set, size int64) bool {
	s.set, s.n = set, 0
	any := false
	for t := range numHashTypes {
		s.h[t] = nil
		if set.hashes[t].needs(size) {
			switch t {
			case hashMD5:
				s.h[t] = md5.New()
			case hashSHA1:
				s.h[t] = sha1.New()
			case hashSHA256:
				s.h[t] = sha256.New()
			}
			any = true
		}
	}
	return any
}

func (s *hashSink) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	for t, h := range s.h {
		if h == nil {
			continue
		}
		tb := &s.set.hashes[t]
		if !tb.wildcard && s.n > tb.maxSized {
			s.h[t] = nil
			continue
		}
		h.Write(p)
	}
	return len(p), nil
}

// finish reports the matching signatures for the final size.
func (s *hashSink) finish(fn func(sig int32)) {
	for t, h := range s.h {
		if h == nil {
			continue
		}
		d := h.Sum(s.buf[:0])
		s.set.hashes[t].lookup(d, s.n, fn)
		s.h[t] = nil
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
