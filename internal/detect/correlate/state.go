package correlate

import (
	"math"
	"slices"
	"strings"
)

// tenantState holds one rule's groups for one tenant. The list runs from
// the oldest group to the newest: by last update for sliding windows, by
// window start for bounded ones, so expiry, closing and eviction all work
// from the head.
type tenantState struct {
	name       string
	wm         int64 // newest match time seen (Unix ns)
	groups     map[string]*group
	head, tail *group
}

func (ts *tenantState) add(g *group) {
	ts.groups[g.key] = g
	g.prev, g.next = ts.tail, nil
	if ts.tail != nil {
		ts.tail.next = g
	} else {
		ts.head = g
	}
	ts.tail = g
}

func (ts *tenantState) unlink(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		ts.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		ts.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

func (ts *tenantState) remove(g *group) {
	ts.unlink(g)
	delete(ts.groups, g.key)
}

// touch moves g to the tail (most recently updated).
func (ts *tenantState) touch(g *group) {
	if ts.tail == g {
		return
	}
	ts.unlink(g)
	g.prev = ts.tail
	ts.tail.next = g
	ts.tail = g
}

// entry is one remembered match.
type entry struct {
	t   int64  // Unix ns
	src int32  // index of the referenced rule in Rule.Rules
	id  string // event id
	val string // value_count: the counted value
	num float64
	ids []string // a chained match: the upstream firing's event ids
}

// group is the window state of one group-by tuple.
type group struct {
	key     string
	vals    []string
	entries []entry // sorted by (t, src)

	newest  int64 // sliding: newest match time in the group
	floor   int64 // sliding: matches at or before this time were consumed by a firing
	blocked int64 // sliding: no new firing before the group's newest time reaches this
	start   int64 // bounded: the window is [start, start+timespan)

	overflow    int            // matches forgotten by the cap (counts stay exact)
	overflowSum float64        // their values (sums stay exact)
	distinct    map[string]int // value_count: value → matches in window
	sum         float64        // value_sum, value_avg
	perRule     []int32        // temporal: matches per referenced rule
	prev        *group
	next        *group
}

func newGroup(key string, vals []string, r *Rule, t int64) *group {
	owned := make([]string, len(vals))
	for i, v := range vals {
		owned[i] = strings.Clone(v)
	}
	g := &group{key: key, vals: owned, newest: math.MinInt64, floor: math.MinInt64,
		blocked: math.MinInt64, start: t}
	switch r.Type {
	case ValueCount:
		g.distinct = make(map[string]int)
	case Temporal, TemporalOrdered:
		g.perRule = make([]int32, len(r.Rules))
	}
	return g
}

// insert keeps entries sorted; in-order arrival is an append.
func (g *group) insert(en entry) {
	i := len(g.entries)
	for i > 0 && (g.entries[i-1].t > en.t || (g.entries[i-1].t == en.t && g.entries[i-1].src > en.src)) {
		i--
	}
	g.entries = slices.Insert(g.entries, i, en)
	g.account(&en, 1)
}

func (g *group) account(en *entry, sign int) {
	if g.distinct != nil {
		if n := g.distinct[en.val] + sign; n > 0 {
			g.distinct[en.val] = n
		} else {
			delete(g.distinct, en.val)
		}
	}
	g.sum += float64(sign) * en.num
	if g.perRule != nil {
		g.perRule[en.src] += int32(sign)
	}
}

// prune drops entries at or before cutoff (outside the sliding window).
func (g *group) prune(cutoff int64) {
	n := 0
	for n < len(g.entries) && g.entries[n].t <= cutoff {
		g.account(&g.entries[n], -1)
		n++
	}
	if n > 0 {
		g.dropFront(n)
		// Forgotten matches were older than any remembered one, so the
		// window has passed them too.
		g.overflow, g.overflowSum = 0, 0
	}
}

// limit forgets the oldest entries beyond max; event_count keeps counting
// them in overflow.
func (g *group) limit(max int) {
	n := len(g.entries) - max
	if n <= 0 {
		return
	}
	for i := range n {
		g.account(&g.entries[i], -1)
		g.overflowSum += g.entries[i].num
	}
	g.dropFront(n)
	g.overflow += n
}

func (g *group) dropFront(n int) {
	if n == 0 {
		return
	}
	clear(g.entries[:n])
	g.entries = g.entries[n:]
	// Reclaim the backing array once it is mostly dead space.
	if cap(g.entries) > 64 && len(g.entries) < cap(g.entries)/4 {
		g.entries = slices.Clone(g.entries)
	}
}

// reset empties the window after a sliding firing.
func (g *group) reset() {
	clear(g.entries)
	g.entries = g.entries[:0]
	g.overflow, g.overflowSum = 0, 0
	g.sum = 0
	clear(g.distinct)
	clear(g.perRule)
	if cap(g.entries) > 64 {
		g.entries = nil
	}
}

func (g *group) total() float64 { return g.sum + g.overflowSum }

func (g *group) average() float64 {
	return g.total() / float64(len(g.entries)+g.overflow)
}

func (g *group) rulesSeen() int {
	n := 0
	for _, c := range g.perRule {
		if c > 0 {
			n++
		}
	}
	return n
}

// holds evaluates the rule's condition over the current window.
func (g *group) holds(r *Rule) bool {
	c := &r.Condition
	switch r.Type {
	case EventCount:
		return c.Holds(float64(len(g.entries) + g.overflow))
	case ValueCount:
		return c.Holds(float64(len(g.distinct)))
	case ValueSum:
		return c.Holds(g.total())
	case ValueAvg:
		return c.Holds(g.average())
	case Temporal:
		if c.expr != nil {
			var buf [16]bool
			present := buf[:0]
			for _, n := range g.perRule {
				present = append(present, n > 0)
			}
			return c.expr.eval(present)
		}
		if len(c.Predicates) > 0 {
			return c.Holds(float64(g.rulesSeen()))
		}
		return g.rulesSeen() == len(g.perRule)
	case TemporalOrdered:
		return g.inOrder()
	}
	return false
}

// inOrder reports whether the window holds matches of every referenced rule
// in the listed order (equal times count as ordered). Greedy earliest
// choice is optimal for a subsequence, and the whole window spans less than
// the timespan, so no further time check is needed.
func (g *group) inOrder() bool {
	want := int32(0)
	for i := range g.entries {
		if g.entries[i].src == want {
			want++
			if int(want) == len(g.perRule) {
				return true
			}
		}
	}
	return false
}
