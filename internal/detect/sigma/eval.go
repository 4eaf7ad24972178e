package sigma

import (
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/mamori-soc/mamori/internal/event"
)

// item is one "Field|modifiers: values" of a selection, or keywords when
// field is "". names are the event fields the Sigma field maps to, tried in
// order: the first one set is the field's value.
type item struct {
	field string
	names []string
	ids   fieldIDs // names' slots in the per-call look-up cache, set by bind
	ms    []matcher
	all   bool
	line  int
}

func (it *item) eval(c *evalCtx) bool {
	if it.field == "" {
		return it.evalKeywords(c)
	}
	v, ok := c.get(it.names, it.ids)
	for _, m := range it.ms {
		var r bool
		if ok {
			r = m.match(c, v)
		} else {
			r = m.absent()
		}
		if r != it.all {
			return r // first hit of an OR, first miss of an AND
		}
	}
	return it.all
}

// evalKeywords searches message and the original text, or every field value
// of events without a message (Windows records).
func (it *item) evalKeywords(c *evalCtx) bool {
	for _, m := range it.ms {
		r := c.anyHaystack(m)
		if r != it.all {
			return r
		}
	}
	return it.all
}

// search is a search identifier: an OR of maps, each an AND of items.
type search struct {
	name string
	alts [][]*item
}

func (s *search) eval(c *evalCtx) bool {
	for _, alt := range s.alts {
		ok := true
		for _, it := range alt {
			if !it.eval(c) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// evalCtx is the per-call scratch: the event, lower-cased values computed
// at most once per call, and the candidate marks. Pooled by the Ruleset.
type evalCtx struct {
	e       *event.Event
	gen     uint32
	lowered []string
	stamps  []uint32
	arena   []byte

	// candidates
	mark    []uint32 // per global compiled rule
	gmask   []uint8  // per compiled rule: need groups hit, valid when mark is current
	fired   []uint32 // per Rule, dedup across buckets
	cand    []int32
	markGen uint32
	hits    []int32  // automaton output scratch
	visited []uint32 // per bucket: c.gen when the event visits it
	cache   *scanCache

	// field look-up cache, by field id: slot[id] is valid when
	// slotGen[id] == gen.
	slot    []int32
	slotGen []uint32
}

func (c *evalCtx) reset(e *event.Event) {
	c.e = e
	c.gen++
	if c.gen == 0 { // wrapped: forget every stamp
		clear(c.stamps)
		clear(c.fired)
		clear(c.visited)
		clear(c.slotGen)
		c.gen = 1
	}
	n := len(e.Fields) + 1 // the last slot is Original
	if cap(c.stamps) < n {
		c.stamps = make([]uint32, n)
		c.lowered = make([]string, n)
	}
	c.stamps = c.stamps[:n]
	c.lowered = c.lowered[:n]
	c.arena = c.arena[:0]
}

func (c *evalCtx) origSlot() int { return len(c.e.Fields) }

// find is the index of a field in the sorted event, or -1.
func (c *evalCtx) find(name string) int {
	f := c.e.Fields
	lo, hi := 0, len(f)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(f) && f[lo].Name == name {
		return lo
	}
	return -1
}

// fieldIDs number event field names across a Ruleset, so that an event
// field is looked up once per call however many rules read it.
type fieldIDs []int32

// get returns the first of names the event sets. ids, when bound, are the
// names' look-up cache slots.
func (c *evalCtx) get(names []string, ids fieldIDs) (val, bool) {
	cached := len(ids) == len(names)
	for k, n := range names {
		var i int
		if cached {
			i = c.findCached(n, ids[k])
		} else {
			i = c.find(n)
		}
		if i >= 0 {
			return val{raw: c.e.Fields[i].Value, slot: i}, true
		}
	}
	return val{}, false
}

// findCached is find, remembered per call under the name's id.
func (c *evalCtx) findCached(name string, id int32) int {
	if c.slotGen[id] == c.gen {
		return int(c.slot[id])
	}
	i := c.find(name)
	c.slotGen[id], c.slot[id] = c.gen, int32(i)
	return i
}

// lower returns the lower-cased value, computed once per call. ASCII text
// is lowered into a per-call arena without allocating; the strings point
// into the arena and never outlive the call (the arena is only appended to
// while they live, and reset at the next call).
func (c *evalCtx) lower(v val) string {
	if c.stamps[v.slot] == c.gen {
		return c.lowered[v.slot]
	}
	s := lowerInto(&c.arena, v.raw)
	c.stamps[v.slot] = c.gen
	c.lowered[v.slot] = s
	return s
}

func lowerInto(arena *[]byte, s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= utf8.RuneSelf {
			return foldLower(s)
		}
		if 'A' <= b && b <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return s
	}
	a := *arena
	start := len(a)
	if cap(a)-len(a) < len(s) {
		// Grow into a new array; strings already handed out keep the old one.
		a = make([]byte, 0, max(2*cap(a), len(s)+4096))
		start = 0
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		a = append(a, b)
	}
	*arena = a
	return unsafe.String(&a[start], len(s))
}

// foldLower lower-cases non-ASCII text, and maps the long s "ſ", which
// folds with "s" (strings.EqualFold, regexp (?i)) but stays itself under
// ToLower, to "s": lower-case literals then find what case folding finds.
func foldLower(s string) string {
	l := strings.ToLower(s)
	if strings.Contains(l, "ſ") {
		l = strings.ReplaceAll(l, "ſ", "s")
	}
	return l
}

// haystacks calls fn with each keyword haystack: message and the original
// text when the event has a message; otherwise every field value (the
// original text of a message-less event is a structured record: its keys
// and escaping would only add false hits). fn returns true to stop.
func (c *evalCtx) haystacks(fn func(v val) bool) {
	if i := c.find(event.FieldMessage); i >= 0 {
		if fn(val{raw: c.e.Fields[i].Value, slot: i}) {
			return
		}
		if c.e.Original != "" {
			fn(val{raw: c.e.Original, slot: c.origSlot()})
		}
		return
	}
	for i := range c.e.Fields {
		if fn(val{raw: c.e.Fields[i].Value, slot: i}) {
			return
		}
	}
}

func (c *evalCtx) anyHaystack(m matcher) bool {
	hit := false
	c.haystacks(func(v val) bool {
		hit = m.match(c, v)
		return hit
	})
	return hit
}
