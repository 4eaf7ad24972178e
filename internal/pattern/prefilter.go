package pattern

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// The prefilter finds anchor candidates in one pass whose cost depends on
// the data, not on the number of signatures: every position is tested
// against a bitmap indexed by a multiplicative hash of the 4 bytes starting
// there (sized to ~1.5% false positives), and only bitmap hits probe the
// exact table of anchors. Segments whose best fixed run is shorter than 4
// bytes use a direct 64 Ki-entry table of 2-byte anchors instead.

const hashMul = 0x9E3779B1

type ref struct {
	pat int32
	seg int32
}

type keyRef struct {
	key uint32
	ref ref
}

type prefilter struct {
	shift  uint8
	bloom  []uint64
	tmask  uint32
	tshift uint8
	tkey   []uint32
	tidx   []int32 // index into koff, -1 for an empty slot
	koff   []int32 // refs of unique key i: refs[koff[i]:koff[i+1]]
	refs   []ref
	nkeys  int
	sbloom []uint64 // 2-byte anchors: one bit per 16-bit value
	soff   []int32  // 65537 entries
	srefs  []ref
}

func groupRefs(pairs []keyRef) (keys []uint32, off []int32, refs []ref) {
	slices.SortFunc(pairs, func(a, b keyRef) int {
		switch {
		case a.key != b.key:
			if a.key < b.key {
				return -1
			}
			return 1
		case a.ref.pat != b.ref.pat:
			return int(a.ref.pat - b.ref.pat)
		default:
			return int(a.ref.seg - b.ref.seg)
		}
	})
	pairs = slices.Compact(pairs)
	refs = make([]ref, len(pairs))
	for i, p := range pairs {
		if i == 0 || p.key != pairs[i-1].key {
			keys = append(keys, p.key)
			off = append(off, int32(i))
		}
		refs[i] = p.ref
	}
	off = append(off, int32(len(pairs)))
	return keys, off, refs
}

func buildPrefilter(long, short []keyRef) *prefilter {
	pf := &prefilter{}
	if len(long) > 0 {
		keys, off, refs := groupRefs(long)
		pf.nkeys, pf.koff, pf.refs = len(keys), off, refs
		// ~64 bitmap bits per key keeps false positives near 1.5%.
		bb := bits.Len(uint(len(keys))*64 - 1)
		bb = min(max(bb, 16), 28)
		pf.shift = uint8(32 - bb)
		pf.bloom = make([]uint64, 1<<bb/64)
		tb := bits.Len(uint(len(keys))*2 - 1)
		tb = max(tb, 4)
		pf.tmask = 1<<tb - 1
		pf.tshift = uint8(32 - tb)
		pf.tkey = make([]uint32, 1<<tb)
		pf.tidx = make([]int32, 1<<tb)
		for i := range pf.tidx {
			pf.tidx[i] = -1
		}
		for i, k := range keys {
			h := k * hashMul
			b := h >> pf.shift
			pf.bloom[b>>6] |= 1 << (b & 63)
			for s := h >> pf.tshift; ; s = (s + 1) & pf.tmask {
				if pf.tidx[s] < 0 {
					pf.tkey[s], pf.tidx[s] = k, int32(i)
					break
				}
			}
		}
	}
	if len(short) > 0 {
		keys, off, refs := groupRefs(short)
		pf.sbloom = make([]uint64, 1<<16/64)
		pf.soff = make([]int32, 1<<16+1)
		pf.srefs = refs
		// Expand the grouped offsets into a direct table over all 16-bit
		// keys; keys without refs get an empty range.
		ki := 0
		for k := 0; k < 1<<16; k++ {
			if ki < len(keys) && keys[ki] == uint32(k) {
				pf.soff[k] = off[ki]
				pf.sbloom[k>>6] |= 1 << (k & 63)
				ki++
			} else {
				pf.soff[k] = off[ki]
			}
		}
		pf.soff[1<<16] = off[len(keys)]
	}
	return pf
}

// lookup returns the refs of a 4-byte key, or nil.
func (pf *prefilter) lookup(k uint32) []ref {
	for s := (k * hashMul) >> pf.tshift; ; s = (s + 1) & pf.tmask {
		i := pf.tidx[s]
		if i < 0 {
			return nil
		}
		if pf.tkey[s] == k {
			return pf.refs[pf.koff[i]:pf.koff[i+1]]
		}
	}
}

// scan calls hit for every anchor candidate starting in buf[from:to], in
// position order (the per-pattern state machine relies on it). Anchors
// must lie entirely inside buf.
func (pf *prefilter) scan(buf []byte, from, to int, hit func(p int, refs []ref)) {
	switch {
	case pf.nkeys > 0 && pf.soff == nil:
		end := min(to, len(buf)-3)
		shift, bloom := pf.shift, pf.bloom
		i := from
		// Four positions per 8-byte load; the bitmap test is all that
		// runs for almost every position.
		for ; i+8 <= len(buf) && i+4 <= end; i += 4 {
			v := binary.LittleEndian.Uint64(buf[i : i+8])
			b0 := (uint32(v) * hashMul) >> shift
			b1 := (uint32(v>>8) * hashMul) >> shift
			b2 := (uint32(v>>16) * hashMul) >> shift
			b3 := (uint32(v>>24) * hashMul) >> shift
			m := bloom[b0>>6]>>(b0&63)&1 | (bloom[b1>>6]>>(b1&63)&1)<<1 |
				(bloom[b2>>6]>>(b2&63)&1)<<2 | (bloom[b3>>6]>>(b3&63)&1)<<3
			if m == 0 {
				continue
			}
			for j := 0; j < 4; j++ {
				if m&(1<<j) != 0 {
					if refs := pf.lookup(uint32(v >> (8 * j))); refs != nil {
						hit(i+j, refs)
					}
				}
			}
		}
		for ; i < end; i++ {
			k := binary.LittleEndian.Uint32(buf[i : i+4])
			b := (k * hashMul) >> shift
			if bloom[b>>6]&(1<<(b&63)) == 0 {
				continue
			}
			if refs := pf.lookup(k); refs != nil {
				hit(i, refs)
			}
		}
	case pf.soff != nil:
		end := min(to, len(buf)-1)
		for i := from; i < end; i++ {
			k := binary.LittleEndian.Uint16(buf[i : i+2])
			if pf.sbloom[k>>6]&(1<<(k&63)) != 0 {
				hit(i, pf.srefs[pf.soff[k]:pf.soff[k+1]])
			}
			if pf.nkeys == 0 || i+4 > len(buf) {
				continue
			}
			k4 := binary.LittleEndian.Uint32(buf[i : i+4])
			b := (k4 * hashMul) >> pf.shift
			if pf.bloom[b>>6]&(1<<(b&63)) == 0 {
				continue
			}
			if refs := pf.lookup(k4); refs != nil {
				hit(i, refs)
			}
		}
	}
}
