package sigma

import "hash/maphash"

// scanCache remembers which patterns recent field values contain, per
// automaton. Field values repeat heavily in real streams (image paths,
// parent images, hashes, users, providers, service command lines), and a
// large automaton costs a cache-missing table walk per byte; a probe costs
// two hashes and one slot load. Direct-mapped: a new value evicts the slot
// it hashes to, so values seen once pass through without crowding the rest.
//
// A slot is keyed by two independent 64-bit hashes of the value (plus the
// automaton and the length), never by the value itself: event values may
// point into a decode buffer that is reused after the call. Two different
// values of one length would have to collide in 128 bits to be confused.
//
// Only the large indexes use it (see evalCtx.scan). One per evalCtx, so
// per worker goroutine: no locking.
type scanCache struct {
	slots        []cacheSlot
	seed1, seed2 maphash.Seed
	probes, hits uint64
}

// cacheSlots is the number of slots (a power of two): 8192 × 48 B.
const cacheSlots = 1 << 13

// cacheMaxIDs is the most pattern ids a slot keeps; values with more
// distinct hits are scanned every time.
const cacheMaxIDs = 7

type cacheSlot struct {
	h1, h2 uint64
	key    uint32 // automaton id + 1; 0 is an empty slot
	n      uint8
	ids    [cacheMaxIDs]int32
}

func newScanCache() *scanCache {
	return &scanCache{slots: make([]cacheSlot, cacheSlots), seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
}

// lookup returns the slot for value s of automaton id and whether it holds
// s's hits.
func (sc *scanCache) lookup(id int32, s string) (*cacheSlot, uint64, uint64, bool) {
	sc.probes++
	h1 := maphash.String(sc.seed1, s)
	h2 := maphash.String(sc.seed2, s) ^ uint64(len(s))
	sl := &sc.slots[(h1^uint64(id)*0x9e3779b97f4a7c15)&(cacheSlots-1)]
	if sl.key == uint32(id)+1 && sl.h1 == h1 && sl.h2 == h2 {
		sc.hits++
		return sl, h1, h2, true
	}
	return sl, h1, h2, false
}

// store fills sl with the distinct ids of hits; false when they do not fit.
func (sl *cacheSlot) store(id int32, h1, h2 uint64, hits []int32) {
	n := 0
outer:
	for _, h := range hits {
		for _, x := range sl.ids[:n] {
			if x == h {
				continue outer
			}
		}
		if n == cacheMaxIDs {
			sl.key = 0
			return
		}
		sl.ids[n] = h
		n++
	}
	sl.key, sl.h1, sl.h2, sl.n = uint32(id)+1, h1, h2, uint8(n)
}
