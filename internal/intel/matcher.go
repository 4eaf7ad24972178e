package intel

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
// serialized; a small update goes to a delta index that shadows the base
// for the keys it holds, and the delta is folded into a new base once it
// grows past 1/16 of it, so updates cost O(delta) amortized while a lookup
// costs at most one extra map probe (none when the delta is empty).
type Matcher struct {
	mu   sync.Mutex // serializes writers
	snap atomic.Pointer[index]
	now  func() time.Time
}

// NewMatcher returns an empty matcher. now (nil: time.Now) is read once per
// event that has a candidate hit, to skip expired indicators.
func NewMatcher(now func() time.Time) *Matcher {
	if now == nil {
		now = time.Now
	}
	m := &Matcher{now: now}
	m.snap.Store(&index{base: newTables(0), minDots: 127})
	return m
}

// Len is the number of indicators loaded.
func (m *Matcher) Len() int { return m.snap.Load().n }

// string-keyed tables, one per kind of observable.
const (
	kDomain = iota
	kURL
	kMD5
	kSHA1
	kSHA256
	kEmail
	kFile
	numKinds
)

type list = []*Indicator

type tables struct {
	ip  map[netip.Addr]list
	str [numKinds]map[string]list

	// filter is a two-probe Bloom filter over the string keys of a base
	// (16 bits per key, ~1.5% false positives): most lookups are misses,
	// and a probe into a bit array that stays in cache is several times
	// cheaper than a miss in a million-entry map. Nil: no filter.
	filter []uint64
	seed   maphash.Seed
}

func filterHash(seed maphash.Seed, kind int, key string) uint64 {
	return maphash.String(seed, key) ^ uint64(kind)*0x9e3779b97f4a7c15
}

// buildFilter sizes and fills the filter of a base.
func (t *tables) buildFilter() {
	n := 0
	for k := range t.str {
		n += len(t.str[k])
	}
	words := 1
	for words*64 < 16*n {
		words <<= 1
	}
	t.seed = maphash.MakeSeed()
	t.filter = make([]uint64, words)
	mask := uint64(words*64 - 1)
	for k := range t.str {
		for key := range t.str[k] {
			h := filterHash(t.seed, k, key)
			for _, b := range [2]uint64{h & mask, (h >> 32) & mask} {
				t.filter[b>>6] |= 1 << (b & 63)
			}
		}
	}
}

func (t *tables) mayHave(kind int, key string) bool {
	if t.filter == nil {
		return true
	}
	h := filterHash(t.seed, kind, key)
	mask := uint64(len(t.filter)*64 - 1)
	b1, b2 := h&mask, (h>>32)&mask
	return t.filter[b1>>6]&(1<<(b1&63)) != 0 && t.filter[b2>>6]&(1<<(b2&63)) != 0
}

func newTables(n int) *tables {
	t := &tables{ip: make(map[netip.Addr]list, n/4)}
	for k := range t.str {
		t.str[k] = make(map[string]list, n/8)
	}
	return t
}

func (t *tables) size() int {
	n := len(t.ip)
	for k := range t.str {
		n += len(t.str[k])
	}
	return n
}

type index struct {
	base   *tables
	delta  *tables // nil when empty; an entry (even an empty list) shadows base
	cidrs  map[netip.Prefix]list
	cidr4  cidrSet
	cidr6  cidrSet
	n      int
	hasURL bool
	// minDots is a lower bound of the dots in any domain indicator: the
	// suffix walk stops there (no lookups for "com" when no indicator is a
	// bare TLD). It only decreases until the next Replace.
	minDots int
}

// slot says where an indicator lives in the tables.
type slot struct {
	prefix bool
	pfx    netip.Prefix
	ip     bool
	addr   netip.Addr
	kind   int
	key    string
}

func slotOf(ind *Indicator) (slot, bool) {
	switch ind.Type {
	case TypeIPv4, TypeIPv6:
		a, err := netip.ParseAddr(ind.Value)
		return slot{ip: true, addr: a}, err == nil
	case TypeCIDR:
		p, err := netip.ParsePrefix(ind.Value)
		return slot{prefix: true, pfx: p.Masked()}, err == nil
	case TypeDomain:
		return slot{kind: kDomain, key: ind.Value}, true
	case TypeURL:
		_, rest, ok := strings.Cut(ind.Value, "://")
		return slot{kind: kURL, key: rest}, ok
	case TypeMD5:
		return slot{kind: kMD5, key: ind.Value}, true
	case TypeSHA1:
		return slot{kind: kSHA1, key: ind.Value}, true
	case TypeSHA256:
		return slot{kind: kSHA256, key: ind.Value}, true
	case TypeEmail:
		return slot{kind: kEmail, key: ind.Value}, true
	case TypeFilename:
		return slot{kind: kFile, key: ind.Value}, true
	}
	return slot{}, false
}

func (x *index) get(s slot) list {
	switch {
	case s.prefix:
		return x.cidrs[s.pfx]
	case s.ip:
		if x.delta != nil {
			if l, ok := x.delta.ip[s.addr]; ok {
				return l
			}
		}
		return x.base.ip[s.addr]
	}
	if x.delta != nil {
		if l, ok := x.delta.str[s.kind][s.key]; ok {
			return l
		}
	}
	return x.base.str[s.kind][s.key]
}

func put(t *tables, s slot, l list) {
	if s.ip {
		t.ip[s.addr] = l
	} else {
		t.str[s.kind][s.key] = l
	}
}

// without returns l minus the indicator of tenant (a new slice; l is shared).
func without(l list, tenant string) (list, bool) {
	i := slices.IndexFunc(l, func(o *Indicator) bool { return o.Tenant == tenant })
	if i < 0 {
		return l, false
	}
	out := make(list, 0, len(l)-1)
	out = append(out, l[:i]...)
	return append(out, l[i+1:]...), true
}

// Replace loads exactly all (the Store calls it at Open).
func (m *Matcher) Replace(all []*Indicator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x := &index{base: newTables(len(all)), cidrs: map[netip.Prefix]list{}, minDots: 127}
	x.apply(x.base, all, nil)
	x.base.buildFilter()
	x.rebuildCIDR()
	m.snap.Store(x)
}

// Update adds or replaces the given indicators (same tenant, type and
// value replaces) and removes the given keys. The indicators must not be
// modified afterwards.
func (m *Matcher) Update(upsert []*Indicator, remove []Key) {
	if len(upsert) == 0 && len(remove) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	x := &index{base: old.base, cidrs: old.cidrs, cidr4: old.cidr4, cidr6: old.cidr6, n: old.n, hasURL: old.hasURL, minDots: old.minDots}
	deltaLen := 0
	if old.delta != nil {
		deltaLen = old.delta.size()
	}
	var target *tables
	if deltaLen+len(upsert)+len(remove) > max(1024, old.base.size()/16) {
		// Fold: a new base from clones (maps.Clone copies the table memory
		// wholesale, far cheaper than re-inserting).
		target = &tables{ip: maps.Clone(old.base.ip)}
		for k := range target.str {
			target.str[k] = maps.Clone(old.base.str[k])
		}
		if old.delta != nil {
			foldInto(target, old.delta)
		}
		x.base = target
	} else {
		target = newTables(0)
		if old.delta != nil {
			target.ip = maps.Clone(old.delta.ip)
			for k := range target.str {
				target.str[k] = maps.Clone(old.delta.str[k])
			}
		}
		x.delta = target
	}
	cidrChanged := x.apply(target, upsert, remove)
	if x.base == target {
		prune(target)
		target.buildFilter()
	}
	if cidrChanged {
		x.rebuildCIDR()
	}
	m.snap.Store(x)
}

func foldInto(dst, delta *tables) {
	maps.Copy(dst.ip, delta.ip)
	for k := range dst.str {
		maps.Copy(dst.str[k], delta.str[k])
	}
}

// prune drops the empty lists (tombstones) a fold carried into a base.
func prune(t *tables) {
	maps.DeleteFunc(t.ip, func(_ netip.Addr, l list) bool { return len(l) == 0 })
	for k := range t.str {
		maps.DeleteFunc(t.str[k], func(_ string, l list) bool { return len(l) == 0 })
	}
}

// apply writes upserts and removals into target (base or delta of x) and
// reports whether the CIDR set changed.
func (x *index) apply(target *tables, upsert []*Indicator, remove []Key) (cidrChanged bool) {
	cidrCloned := false
	cloneCIDRs := func() {
		if !cidrCloned {
			x.cidrs = maps.Clone(x.cidrs)
			if x.cidrs == nil {
				x.cidrs = map[netip.Prefix]list{}
			}
			cidrCloned, cidrChanged = true, true
		}
	}
	for _, k := range remove {
		s, ok := slotOf(&Indicator{Type: k.Type, Value: k.Value})
		if !ok {
			continue
		}
		l, found := without(x.get(s), k.Tenant)
		if !found {
			continue
		}
		x.n--
		if s.prefix {
			cloneCIDRs()
			if len(l) == 0 {
				delete(x.cidrs, s.pfx)
			} else {
				x.cidrs[s.pfx] = l
			}
			continue
		}
		put(target, s, l)
	}
	for _, ind := range upsert {
		s, ok := slotOf(ind)
		if !ok {
			continue
		}
		l, found := without(x.get(s), ind.Tenant)
		if !found {
			x.n++
		}
		l = append(l, ind)
		switch ind.Type {
		case TypeURL:
			x.hasURL = true
		case TypeDomain:
			x.minDots = min(x.minDots, strings.Count(ind.Value, "."))
		}
		if s.prefix {
			cloneCIDRs()
			x.cidrs[s.pfx] = l
			continue
		}
		put(target, s, l)
	}
	return cidrChanged
}

// cidrSet finds every prefix containing an address without scanning:
// prefixes are either nested or disjoint, so sorted by start (wider first)
// each one's parent is its closest enclosing prefix. The containing prefixes
// of an address are the first ancestor, from the last prefix starting at
// or before it, that contains it, and all of that one's ancestors.
type cidrSet struct {
	starts []u128 // e[i].start, dense for the binary search
	e      []cidrEntry
}

type cidrEntry struct {
	start, last u128
	parent      int32
	inds        list
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

func (x *index) rebuildCIDR() {
	var v4, v6 []cidrEntry
	for p, l := range x.cidrs {
		if len(l) == 0 {
			continue
		}
		e := cidrEntry{start: toU128(p.Addr()), last: lastAddr(p), inds: l}
		if p.Addr().Is4() {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	x.cidr4, x.cidr6 = buildCIDRSet(v4), buildCIDRSet(v6)
}

func buildCIDRSet(e []cidrEntry) cidrSet {
	slices.SortFunc(e, func(a, b cidrEntry) int {
		if c := a.start.cmp(b.start); c != 0 {
			return c
		}
		return b.last.cmp(a.last) // wider first
	})
	var stack []int32
	for i := range e {
		for len(stack) > 0 && e[stack[len(stack)-1]].last.cmp(e[i].start) < 0 {
			stack = stack[:len(stack)-1]
		}
		e[i].parent = -1
		if len(stack) > 0 {
			e[i].parent = stack[len(stack)-1]
		}
		stack = append(stack, int32(i))
	}
	starts := make([]u128, len(e))
	for i := range e {
		starts[i] = e[i].start
	}
	return cidrSet{starts: starts, e: e}
}

// lookup calls fn for every prefix containing a, most specific first.
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
		st.emit(c.e[i].inds, field, value)
	}
}

// matchState carries one Match call's context; now is read lazily.
type matchState struct {
	x       *index
	e       *event.Event
	fn      func(Hit)
	clock   func() time.Time
	now     time.Time
	haveNow bool

	lastDomain      string // the last name looked up by domain
	lastDomainField string
	lastDomainHit   bool
	buf             [256]byte // scratch for lower-casing and URL keys
}

func (st *matchState) emit(l list, field, value string) {
	for _, ind := range l {
		if ind.Tenant != "" && ind.Tenant != st.e.Tenant {
			continue
		}
		if !st.haveNow {
			st.now, st.haveNow = st.clock(), true
		}
		if !ind.Active(st.now) {
			continue
		}
		st.fn(Hit{Indicator: ind, Field: field, Value: value})
	}
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
