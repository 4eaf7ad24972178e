package intel

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mamori-soc/mamori/internal/event"
)

// Hit is one indicator found in one event field.
type Hit struct {
	Indicator *Indicator // shared, read-only
	Field     string     // the event field, e.g. "dns.question.name"
	Value     string     // the observable as it appears in the field (the subdomain, the hash, the base name)
}

// Matcher finds the indicators an event mentions. Reads never lock: an
// immutable index is swapped atomically on every update. Writers are
// serialized; a small update goes to a delta that shadows the base for the
// keys it holds, and the delta is folded into a new base once it grows
// past 1/16 of it, so updates cost O(delta) amortized while a lookup costs
// at most one extra map probe (none when the delta is empty).
//
// The indicators live in pointer-free memory (see rec); the *Indicator of
// a Hit is decoded for that hit (hits are rare) and is the caller's.
// Identity is tenant, type and value: http://x/p and https://x/p are two
// indicators, and an event with either URL hits both.
type Matcher struct {
	mu      sync.Mutex // serializes writers
	snap    atomic.Pointer[index]
	now     func() time.Time
	seed    maphash.Seed
	tenants map[string]uint32 // writers' index of snap.tenants
}

// NewMatcher returns an empty matcher. now (nil: time.Now) is read once per
// event that has a candidate hit, to skip expired indicators.
func NewMatcher(now func() time.Time) *Matcher {
	if now == nil {
		now = time.Now
	}
	m := &Matcher{now: now, seed: maphash.MakeSeed(), tenants: map[string]uint32{"": 0}}
	x := &index{seed: m.seed, tenants: []string{""}}
	x.build()
	m.snap.Store(x)
	return m
}

// Len is the number of indicators loaded.
func (m *Matcher) Len() int { return m.snap.Load().n }

// index is one immutable state of a matcher. arena, recs and tenants are
// append-only and shared with the next states made by small updates:
// readers only look at the part their own slices cover.
type index struct {
	arena   []byte
	recs    []rec
	tenants []string

	// The base: an open-addressing hash table (linear probing, at most
	// half full) whose entries are hash>>32<<32 | id+1 of the first record
	// of a key; the others follow through rec.next.
	table []uint64
	seed  maphash.Seed
	// filter is a two-probe Bloom filter over the keys of the base (16
	// bits per key, ~1.5% false positives): most lookups are misses, and
	// a probe into a bit array that stays in cache is several times
	// cheaper than a miss in a large table.
	filter []uint64

	// delta holds the keys changed since the base was built, each with
	// all its record ids (empty: removed). Nil when empty.
	delta *[numKinds]map[string][]uint32
	dn    int // keys in delta

	cidrIDs []uint32 // the CIDR records
	cidr4   cidrSet
	cidr6   cidrSet
	n       int
	hasURL  bool
	// minDots is a lower bound of the dots in any domain indicator: the
	// suffix walk stops there (no lookups for "com" when no indicator is a
	// bare TLD). It only decreases until the next rebuild.
	minDots int
}

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (x *index) hash(kind int, key string) uint64 {
	return maphash.String(x.seed, key) ^ uint64(kind+1)*0x9e3779b97f4a7c15
}

func (x *index) filterBits(h uint64) (uint64, uint64) {
	mask := uint64(len(x.filter)*64 - 1)
	return bits.RotateLeft64(h, 21) & mask, bits.RotateLeft64(h, 43) & mask
}

func (x *index) mayHave(h uint64) bool {
	b1, b2 := x.filterBits(h)
	return x.filter[b1>>6]&(1<<(b1&63)) != 0 && x.filter[b2>>6]&(1<<(b2&63)) != 0
}

// find returns id+1 of the first base record of key, 0 when none.
func (x *index) find(h uint64, kind int, key string) uint32 {
	mask := uint64(len(x.table) - 1)
	tag := h >> 32
	for i := h & mask; ; i = (i + 1) & mask {
		e := x.table[i]
		if e == 0 {
			return 0
		}
		if e>>32 == tag {
			r := &x.recs[uint32(e)-1]
			if int(r.kind) == kind && x.key(r) == key {
				return uint32(e)
			}
		}
	}
}

// group is the records of one key: a base chain or a delta list.
type group struct {
	head uint32 // id+1
	ids  []uint32
}

func (g group) empty() bool { return g.head == 0 && len(g.ids) == 0 }

// lookup returns the records of key.
func (x *index) lookup(kind int, key string) group {
	if x.delta != nil {
		if ids, ok := x.delta[kind][key]; ok {
			return group{ids: ids}
		}
	}
	h := x.hash(kind, key)
	if !x.mayHave(h) {
		return group{}
	}
	return group{head: x.find(h, kind, key)}
}

// ids appends the record ids of g to dst.
func (x *index) appendIDs(dst []uint32, g group) []uint32 {
	for id := g.head; id != 0; id = x.recs[id-1].next {
		dst = append(dst, id-1)
	}
	return append(dst, g.ids...)
}

// each calls fn for every indicator (in no particular order) until fn
// returns false.
func (x *index) each(fn func(id uint32) bool) {
	for _, e := range x.table {
		if e == 0 {
			continue
		}
		if x.delta != nil {
			r := &x.recs[uint32(e)-1]
			if _, ok := x.delta[r.kind][x.key(r)]; ok {
				continue
			}
		}
		for id := uint32(e); id != 0; id = x.recs[id-1].next {
			if !fn(id - 1) {
				return
			}
		}
	}
	if x.delta != nil {
		for k := range x.delta {
			for _, ids := range x.delta[k] {
				for _, id := range ids {
					if !fn(id) {
						return
					}
				}
			}
		}
	}
}

// build makes x's base from all of x.recs, in order: a later record with
// the tenant, type and value of an earlier one replaces it.
func (x *index) build() {
	size := 8
	for size < 2*len(x.recs) {
		size <<= 1
	}
	words := 1
	for words*64 < 16*len(x.recs) {
		words <<= 1
	}
	x.table = make([]uint64, size)
	x.filter = make([]uint64, words)
	x.delta, x.dn = nil, 0
	x.n, x.hasURL, x.minDots, x.cidrIDs = 0, false, 127, nil
	tails := make([]uint32, len(x.recs)) // at a first record: id+1 of the last one
	mask := uint64(size - 1)
	for id := range x.recs {
		r := &x.recs[id]
		key := x.key(r)
		h := x.hash(int(r.kind), key)
		i := h & mask
		for ; x.table[i] != 0; i = (i + 1) & mask {
			e := x.table[i]
			if e>>32 != h>>32 {
				continue
			}
			if f := &x.recs[uint32(e)-1]; f.kind != r.kind || x.key(f) != key {
				continue
			}
			if dup := x.sameIn(group{head: uint32(e)}, r); dup >= 0 {
				next := x.recs[dup].next
				x.recs[dup] = *r // the bytes of the replaced one stay unused
				x.recs[dup].next = next
			} else {
				head := uint32(e) - 1
				x.recs[tails[head]-1].next = uint32(id) + 1
				tails[head] = uint32(id) + 1
				x.count(r, uint32(id))
			}
			break
		}
		if x.table[i] == 0 {
			x.table[i] = h>>32<<32 | uint64(id+1)
			tails[id] = uint32(id) + 1
			x.count(r, uint32(id))
		}
		b1, b2 := x.filterBits(h)
		x.filter[b1>>6] |= 1 << (b1 & 63)
		x.filter[b2>>6] |= 1 << (b2 & 63)
	}
	x.rebuildCIDR()
}

// count notes a record added to x (not replacing one).
func (x *index) count(r *rec, id uint32) {
	x.n++
	x.note(r, id, &x.cidrIDs)
}

// note updates hasURL and minDots for record id and adds it to cidrs if
// it is a CIDR.
func (x *index) note(r *rec, id uint32, cidrs *[]uint32) {
	switch r.kind {
	case kURL:
		x.hasURL = true
	case kDomain:
		x.minDots = min(x.minDots, strings.Count(x.value(r), "."))
	case kCIDR:
		*cidrs = append(*cidrs, id)
	}
}

// sameIn returns the id of the record of g with r's tenant and value, -1
// when none.
func (x *index) sameIn(g group, r *rec) int {
	v := x.value(r)
	for id := g.head; id != 0; id = x.recs[id-1].next {
		if o := &x.recs[id-1]; o.tenant == r.tenant && o.typ == r.typ && x.value(o) == v {
			return int(id - 1)
		}
	}
	for _, id := range g.ids {
		if o := &x.recs[id]; o.tenant == r.tenant && o.typ == r.typ && x.value(o) == v {
			return int(id)
		}
	}
	return -1
}

// Replace loads exactly all (the Store calls it at Open).
func (m *Matcher) Replace(all []*Indicator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenants = map[string]uint32{"": 0}
	x := &index{seed: m.seed, tenants: []string{""}, recs: make([]rec, 0, len(all))}
	for _, ind := range all {
		x.appendRec(ind, m.tenantID(x, ind.Tenant))
	}
	x.build()
	m.snap.Store(x)
}

func (m *Matcher) tenantID(x *index, t string) uint32 {
	id, ok := m.tenants[t]
	if !ok {
		id = uint32(len(x.tenants))
		x.tenants = append(x.tenants, t)
		m.tenants[t] = id
	}
	return id
}

// appendRec encodes ind at the end of x (not yet findable) and returns its id.
func (x *index) appendRec(ind *Indicator, tenant uint32) (uint32, bool) {
	arena, r, ok := appendIndicator(x.arena, ind, tenant)
	if !ok {
		return 0, false
	}
	x.arena = arena
	x.recs = append(x.recs, r)
	return uint32(len(x.recs) - 1), true
}

// Update adds or replaces the given indicators (same tenant, type and
// value replaces) and removes the given keys. The indicators are copied.
func (m *Matcher) Update(upsert []*Indicator, remove []Key) {
	if len(upsert) == 0 && len(remove) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	if old.dn+len(upsert)+len(remove) > max(1024, old.n/16) {
		m.snap.Store(m.fold(old, upsert, remove))
		return
	}
	x := *old
	x.delta = new([numKinds]map[string][]uint32)
	for k := range x.delta {
		if old.delta != nil {
			x.delta[k] = maps.Clone(old.delta[k])
		}
		if x.delta[k] == nil {
			x.delta[k] = map[string][]uint32{}
		}
	}
	cidrGone := map[uint32]bool{}
	set := func(kind int, key string, ids []uint32) {
		if _, ok := x.delta[kind][key]; !ok {
			x.dn++
		}
		x.delta[kind][key] = ids
	}
	for _, k := range remove {
		id, ok := x.get(k)
		if !ok {
			continue
		}
		r := &x.recs[id]
		key := x.key(r)
		ids := x.appendIDs(nil, x.lookup(int(r.kind), key))
		set(int(r.kind), key, slices.DeleteFunc(ids, func(o uint32) bool { return o == id }))
		x.n--
		if r.kind == kCIDR {
			cidrGone[id] = true
		}
	}
	var cidrNew []uint32
	for _, ind := range upsert {
		id, ok := x.appendRec(ind, m.tenantID(&x, ind.Tenant))
		if !ok {
			continue
		}
		r := &x.recs[id]
		key := x.key(r)
		g := x.lookup(int(r.kind), key)
		ids := x.appendIDs(nil, g)
		if dup := x.sameIn(g, r); dup >= 0 {
			ids = slices.DeleteFunc(ids, func(o uint32) bool { return o == uint32(dup) })
			if r.kind == kCIDR {
				cidrGone[uint32(dup)] = true
			}
		} else {
			x.n++
		}
		set(int(r.kind), key, append(ids, id))
		x.note(r, id, &cidrNew)
	}
	if len(cidrGone) > 0 || len(cidrNew) > 0 {
		x.cidrIDs = slices.DeleteFunc(append(slices.Clone(old.cidrIDs), cidrNew...), func(id uint32) bool { return cidrGone[id] })
		x.rebuildCIDR()
	}
	m.snap.Store(&x)
}

// fold makes a new base from old's indicators and the changes, copying
// the live bytes into a new arena (the replaced ones are dropped).
func (m *Matcher) fold(old *index, upsert []*Indicator, remove []Key) *index {
	gone := map[uint32]bool{}
	for _, k := range remove {
		if id, ok := old.get(k); ok {
			gone[id] = true
		}
	}
	x := &index{seed: old.seed, tenants: old.tenants, recs: make([]rec, 0, old.n-len(gone)+len(upsert))}
	size := 0
	old.each(func(id uint32) bool {
		if !gone[id] {
			size += int(old.recs[id].size)
		}
		return true
	})
	x.arena = make([]byte, 0, size+size/8)
	old.each(func(id uint32) bool {
		if gone[id] {
			return true
		}
		r := old.recs[id]
		x.arena = append(x.arena, old.arena[r.off:r.off+uint64(r.size)]...)
		r.off, r.next = uint64(len(x.arena)-int(r.size)), 0
		x.recs = append(x.recs, r)
		return true
	})
	for _, ind := range upsert {
		x.appendRec(ind, m.tenantID(x, ind.Tenant))
	}
	x.build()
	return x
}

// get returns the id of the indicator with key k.
func (x *index) get(k Key) (uint32, bool) {
	kind, bin, start, end, ok := keyOf(k.Type, k.Value)
	if !ok {
		return 0, false
	}
	key := k.Value[start:end]
	if bin != nil {
		key = unsafeString(bin)
	}
	g := x.lookup(kind, key)
	for id := g.head; id != 0; id = x.recs[id-1].next {
		if x.keyFor(id-1) == k {
			return id - 1, true
		}
	}
	for _, id := range g.ids {
		if x.keyFor(id) == k {
			return id, true
		}
	}
	return 0, false
}

// cidrSet finds every prefix containing an address without scanning:
// prefixes are either nested or disjoint, so sorted by start (wider first)
// each one's parent is its closest enclosing prefix. The containing prefixes
// of an address are the first ancestor, from the last prefix starting at
// or before it, that contains it, and all of that one's ancestors.
type cidrSet struct {
	starts []u128 // e[i].start, dense for the binary search
	e      []cidrEntry
	ids    []uint32 // e[i]'s records are ids[e[i].first:e[i].end]
}

type cidrEntry struct {
	start, last u128
	parent      int32
	first, end  uint32
}

type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func lastAddr(p netip.Prefix) u128 {
	s := toU128(p.Addr())
	host := p.Addr().BitLen() - p.Bits() // host bits
	switch {
	case host >= 128:
		return u128{^uint64(0), ^uint64(0)}
	case host >= 64:
		return u128{s.hi | (uint64(1)<<(host-64) - 1), ^uint64(0)}
	case host > 0:
		return u128{s.hi, s.lo | (uint64(1)<<host - 1)}
	}
	return s
}

// prefixOf reads the binary key of a CIDR record.
func (x *index) prefixOf(r *rec) netip.Prefix {
	k := x.key(r)
	a := netip.AddrFrom16([16]byte([]byte(k[:16])))
	if k[16] == 1 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, int(k[17]))
}

func (x *index) rebuildCIDR() {
	type item struct {
		cidrEntry
		id uint32
	}
	var v4, v6 []item
	for _, id := range x.cidrIDs {
		p := x.prefixOf(&x.recs[id])
		it := item{cidrEntry{start: toU128(p.Addr()), last: lastAddr(p)}, id}
		if p.Addr().Is4() {
			v4 = append(v4, it)
		} else {
			v6 = append(v6, it)
		}
	}
	build := func(items []item) cidrSet {
		slices.SortStableFunc(items, func(a, b item) int {
			if c := a.start.cmp(b.start); c != 0 {
				return c
			}
			return b.last.cmp(a.last) // wider first
		})
		var c cidrSet
		for _, it := range items {
			if n := len(c.e); n > 0 && c.e[n-1].start == it.start && c.e[n-1].last == it.last {
				c.e[n-1].end++
			} else {
				c.e = append(c.e, cidrEntry{start: it.start, last: it.last, first: uint32(len(c.ids)), end: uint32(len(c.ids)) + 1})
			}
			c.ids = append(c.ids, it.id)
		}
		var stack []int32
		for i := range c.e {
			for len(stack) > 0 && c.e[stack[len(stack)-1]].last.cmp(c.e[i].start) < 0 {
				stack = stack[:len(stack)-1]
			}
			c.e[i].parent = -1
			if len(stack) > 0 {
				c.e[i].parent = stack[len(stack)-1]
			}
			stack = append(stack, int32(i))
		}
		c.starts = make([]u128, len(c.e))
		for i := range c.e {
			c.starts[i] = c.e[i].start
		}
		return c
	}
	x.cidr4, x.cidr6 = build(v4), build(v6)
}

// lookup emits every prefix containing a, most specific first.
func (c *cidrSet) lookup(a u128, st *matchState, field, value string) {
	lo, hi := 0, len(c.starts) // first index with start > a
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s := c.starts[mid]; s.hi < a.hi || s.hi == a.hi && s.lo <= a.lo {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	i := int32(lo - 1)
	for i >= 0 && c.e[i].last.cmp(a) < 0 {
		i = c.e[i].parent
	}
	for ; i >= 0; i = c.e[i].parent {
		st.emit(group{ids: c.ids[c.e[i].first:c.e[i].end]}, field, value)
	}
}

// matchState carries one Match call's context; now is read lazily.
type matchState struct {
	x       *index
	e       *event.Event
	fn      func(Hit)
	clock   func() time.Time
	nowSec  int64
	nowNs   int32
	haveNow bool

	lastDomain      string // the last name looked up by domain
	lastDomainField string
	lastDomainHit   bool
	buf             [256]byte // scratch for lower-casing and URL keys
}

func (st *matchState) emit(g group, field, value string) {
	for id := g.head; id != 0; id = st.x.recs[id-1].next {
		st.emitOne(id-1, field, value)
	}
	for _, id := range g.ids {
		st.emitOne(id, field, value)
	}
}

func (st *matchState) emitOne(id uint32, field, value string) {
	r := &st.x.recs[id]
	if r.tenant != 0 && st.x.tenants[r.tenant] != st.e.Tenant {
		return
	}
	if !st.haveNow {
		now := st.clock()
		st.nowSec, st.nowNs, st.haveNow = now.Unix(), int32(now.Nanosecond()), true
	}
	if !r.active(st.nowSec, st.nowNs) {
		return
	}
	st.fn(Hit{Indicator: st.x.decode(id), Field: field, Value: value})
}

// Match calls fn for every active indicator, global or of the event's
// tenant, that one of the event's observable fields mentions (see
// observableKind for the fields). It allocates nothing on a miss.
func (m *Matcher) Match(e *event.Event, fn func(Hit)) {
	x := m.snap.Load()
	if x.n == 0 {
		return
	}
	st := matchState{x: x, e: e, fn: fn, clock: m.now}
	for i := range e.Fields {
		f := &e.Fields[i]
		if k := observableKind(f.Name); k != 0 {
			st.field(k, f.Name, f.Value)
		}
	}
}
