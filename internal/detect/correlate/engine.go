package correlate

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options bound the Engine's memory; zero values take the defaults.
type Options struct {
	// MaxGroups caps the groups of one rule for one tenant (default 10,000);
	// the least recently updated group is evicted to make room.
	MaxGroups int
	// MaxEventsPerGroup caps the matches a group remembers (default 1,000);
	// the oldest are forgotten first. A rule whose threshold is higher gets
	// threshold+1 instead (at most 1,000,000), so that the cap never decides
	// whether it fires.
	MaxEventsPerGroup int
	// MaxEventIDs caps Firing.EventIDs (default 100).
	MaxEventIDs int
	// KnownRule reports whether a base rule with this id or name exists. With
	// it, New rejects correlations that reference unknown rules; without it,
	// every reference that is not a correlation is taken to be a base rule.
	KnownRule func(idOrName string) bool
	Logger    *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxGroups <= 0 {
		o.MaxGroups = 10_000
	}
	if o.MaxEventsPerGroup <= 0 {
		o.MaxEventsPerGroup = 1_000
	}
	if o.MaxEventIDs <= 0 {
		o.MaxEventIDs = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Match is one event that matched a rule the Engine references.
type Match struct {
	Tenant, RuleID, RuleName string
	Time                     time.Time
	EventID                  string
	// Value returns the event's value of a field named as in the
	// correlation rule (group-by fields, condition.field, alias targets);
	// the caller maps Sigma names to event fields. Nil means no fields.
	Value func(field string) (string, bool)
}

// Firing is a correlation whose condition held for one group.
type Firing struct {
	Rule   *Rule
	Tenant string
	// Group holds the group-by values, keyed by the names in Rule.GroupBy.
	Group map[string]string
	// Count is the number of matches in the window.
	Count int
	// Values is the number of distinct condition.field values (value_count)
	// or of distinct referenced rules seen (temporal, temporal_ordered).
	Values int
	// Aggregate is the sum (value_sum) or the average (value_avg).
	Aggregate   float64
	First, Last time.Time
	// EventIDs are the window's event ids in time order, at most
	// Options.MaxEventIDs; a chained firing lists its inputs' events.
	EventIDs []string
	// Suppressed: the rule is referenced by another correlation without
	// generate: true, so this firing is a building block, not an alert.
	Suppressed bool
}

// Stats counts what the Engine did; Groups is the current number of groups.
type Stats struct {
	Observed int64 // matches handed to a correlation (one match may feed several)
	Late     int64 // dropped: older than the window they would belong to
	Ignored  int64 // dropped: a group-by or condition field missing, or not numeric
	Evicted  int64 // groups dropped because MaxGroups was reached
	Expired  int64 // groups dropped because their window passed
	Fired    int64
	Groups   int64
}

type counters struct {
	observed, late, ignored, evicted, expired, fired, groups atomic.Int64
}

// Engine evaluates correlation rules over matches; it is safe for
// concurrent use.
type Engine struct {
	opts     Options
	rules    []*compiled
	byRule   map[*Rule]*compiled
	base     map[string][]ref // base rule id or name → the correlations using it
	suppress map[string]bool
	stats    counters
}

// ref is one correlation's use of a referenced rule: idx indexes Rule.Rules.
type ref struct {
	c   *compiled
	idx int
}

type compiled struct {
	rule       *Rule
	span       int64
	bounded    bool
	maxEntries int
	down       []ref // correlations fed by this one's firings
	suppressed bool

	mu      sync.Mutex
	tenants map[string]*tenantState
}

// New validates rules against each other and returns an Engine holding
// those that are usable. Each rejected rule yields one error naming its file
// and id; rules depending on a rejected correlation are rejected too.
func New(rules []*Rule, opts Options) (*Engine, []error) {
	opts.defaults()
	var errs []error
	reject := func(r *Rule, err error) {
		errs = append(errs, fmt.Errorf("%s: correlation %s: %w", r.Path, r, err))
	}

	// Every correlation's id and name, even of invalid ones, so that a
	// reference to a rejected correlation is not mistaken for a base rule.
	declared := make(map[string]bool)
	for _, r := range rules {
		if r == nil {
			continue
		}
		declared[r.ID], declared[r.Name] = true, true
	}
	delete(declared, "")

	byKey := make(map[string]*compiled)
	var ok []*compiled
	for _, r := range rules {
		if r == nil {
			continue
		}
		if err := validate(r); err != nil {
			reject(r, err)
			continue
		}
		if k := dupKey(byKey, r); k != "" {
			reject(r, fmt.Errorf("%w: %q is already used by %s", ErrDuplicate, k, byKey[k].rule.Path))
			continue
		}
		c := &compiled{rule: r, span: int64(r.Timespan), bounded: r.Condition.Bounded(),
			maxEntries: entryCap(r, opts.MaxEventsPerGroup), tenants: make(map[string]*tenantState)}
		for _, k := range []string{r.ID, r.Name} {
			if k != "" {
				byKey[k] = c
			}
		}
		ok = append(ok, c)
	}

	// Resolve references: a correlation first, else a base rule.
	deps := make(map[*compiled][]*compiled)
	bad := make(map[*compiled]error)
	for _, c := range ok {
		for _, name := range c.rule.Rules {
			if up, isCorr := byKey[name]; isCorr {
				deps[c] = append(deps[c], up)
				continue
			}
			switch {
			case declared[name]:
				bad[c] = fmt.Errorf("%w: %q is a correlation that was rejected", ErrUnknownRule, name)
			case opts.KnownRule != nil && !opts.KnownRule(name):
				bad[c] = fmt.Errorf("%w: no rule has id or name %q", ErrUnknownRule, name)
			}
		}
	}
	for c, err := range findCycles(ok, deps) {
		if bad[c] == nil {
			bad[c] = err
		}
	}
	// A correlation fed by a rejected one is rejected too, to a fixpoint.
	for changed := true; changed; {
		changed = false
		for _, c := range ok {
			if bad[c] != nil {
				continue
			}
			for _, up := range deps[c] {
				if bad[up] != nil {
					bad[c] = fmt.Errorf("%w: depends on rejected correlation %s", ErrUnknownRule, up.rule)
					changed = true
					break
				}
			}
		}
	}

	e := &Engine{opts: opts, byRule: make(map[*Rule]*compiled), base: make(map[string][]ref), suppress: make(map[string]bool)}
	for _, c := range ok {
		if err := bad[c]; err != nil {
			reject(c.rule, err)
			continue
		}
		e.rules = append(e.rules, c)
		e.byRule[c.rule] = c
	}
	generated := make(map[string]bool)
	for _, c := range e.rules {
		for i, name := range c.rule.Rules {
			if up, isCorr := byKey[name]; isCorr {
				up.down = append(up.down, ref{c: c, idx: i})
			} else {
				e.base[name] = append(e.base[name], ref{c: c, idx: i})
			}
			if c.rule.Generate {
				generated[name] = true
			}
			e.suppress[name] = !generated[name]
		}
	}
	for _, c := range e.rules {
		c.suppressed = e.SuppressBase(c.rule.ID) || e.SuppressBase(c.rule.Name)
	}
	for _, err := range errs {
		opts.Logger.Warn("correlation rule rejected", "component", "correlate", "err", err)
	}
	return e, errs
}

// hardEntryCap bounds a group's memory whatever the rule's threshold.
const hardEntryCap = 1_000_000

func entryCap(r *Rule, max int) int {
	if r.Type != EventCount && r.Type != ValueCount {
		return max
	}
	for _, p := range r.Condition.Predicates {
		if need := int(min(p.Value, hardEntryCap-1)) + 1; need > max {
			max = need
		}
	}
	return max
}

func dupKey(byKey map[string]*compiled, r *Rule) string {
	for _, k := range []string{r.ID, r.Name} {
		if _, dup := byKey[k]; k != "" && dup {
			return k
		}
	}
	return ""
}

// validate checks a Rule that may have been built in code.
func validate(r *Rule) error {
	switch r.Type {
	case EventCount, ValueCount, Temporal, TemporalOrdered, ValueSum, ValueAvg:
	default:
		return fmt.Errorf("%w: type %q", ErrInvalid, r.Type)
	}
	if len(r.Rules) == 0 {
		return fmt.Errorf("%w: rules", ErrMissing)
	}
	for i, name := range r.Rules {
		if name == "" || slices.Contains(r.Rules[:i], name) {
			return fmt.Errorf("%w: rules[%d] %q is empty or listed twice", ErrInvalid, i, name)
		}
	}
	if r.Timespan <= 0 || r.Timespan > MaxTimespan {
		return fmt.Errorf("%w: timespan %v outside (0, 366d]", ErrInvalid, r.Timespan)
	}
	return r.Condition.validate(r)
}

// findCycles returns every correlation that lies on a reference cycle.
func findCycles(nodes []*compiled, deps map[*compiled][]*compiled) map[*compiled]error {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[*compiled]int, len(nodes))
	out := make(map[*compiled]error)
	var stack []*compiled
	var visit func(c *compiled)
	visit = func(c *compiled) {
		state[c] = active
		stack = append(stack, c)
		for _, up := range deps[c] {
			switch state[up] {
			case unseen:
				visit(up)
			case active:
				for i := len(stack) - 1; i >= 0; i-- {
					out[stack[i]] = fmt.Errorf("%w: through %s", ErrCycle, up.rule)
					if stack[i] == up {
						break
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[c] = done
	}
	for _, c := range nodes {
		if state[c] == unseen {
			visit(c)
		}
	}
	return out
}

// Rules returns the correlations the Engine evaluates.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, len(e.rules))
	for i, c := range e.rules {
		out[i] = c.rule
	}
	return out
}

// Referenced reports whether a correlation uses the base rule with this id
// or name; matches of other rules need not be observed.
func (e *Engine) Referenced(ruleIDOrName string) bool {
	return len(e.base[ruleIDOrName]) > 0
}

// SuppressBase reports whether the rule (base rule or correlation, by the id
// or name the correlations reference it by) is only a building block: it is
// referenced, and no referencing correlation says generate: true. Its own
// matches should then not become alerts. Callers holding both the id and the
// name should ask for each.
func (e *Engine) SuppressBase(ruleIDOrName string) bool {
	return e.suppress[ruleIDOrName]
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	s := &e.stats
	return Stats{Observed: s.observed.Load(), Late: s.late.Load(), Ignored: s.ignored.Load(),
		Evicted: s.evicted.Load(), Expired: s.expired.Load(), Fired: s.fired.Load(), Groups: s.groups.Load()}
}

// Observe feeds one match to every correlation referencing its rule (by id
// or by name) and returns what fired, including correlations fed by those
// firings (chaining) and bounded windows of the same rules and tenant that
// the match's time closed.
func (e *Engine) Observe(m Match) []Firing {
	byID, byName := e.base[m.RuleID], e.base[m.RuleName]
	if len(byID) == 0 && len(byName) == 0 {
		return nil
	}
	var out []Firing
	for _, r := range byID {
		out = r.c.observe(e, m, r.idx, nil, out)
	}
	for _, r := range byName {
		if m.RuleID != m.RuleName && !containsRule(byID, r.c) {
			out = r.c.observe(e, m, r.idx, nil, out)
		}
	}
	return e.chain(out, 0)
}

func containsRule(refs []ref, c *compiled) bool {
	for _, r := range refs {
		if r.c == c {
			return true
		}
	}
	return false
}

// Tick advances every (rule, tenant) watermark to now: windows that ended
// are evaluated (bounded conditions) or expired. now is event time: pass
// the wall clock minus the lateness the senders are allowed, or a match
// arriving later will be dropped as late.
func (e *Engine) Tick(now time.Time) []Firing {
	t := now.UnixNano()
	var out []Firing
	for _, c := range e.rules {
		c.mu.Lock()
		for _, ts := range c.tenants {
			out = c.advance(e, ts, t, out)
		}
		c.mu.Unlock()
	}
	return e.chain(out, 0)
}

// chain feeds firings[from:] to the correlations that reference their rule;
// New rejected cycles, so this terminates.
func (e *Engine) chain(firings []Firing, from int) []Firing {
	for i := from; i < len(firings); i++ {
		f := &firings[i]
		c := e.byRule[f.Rule]
		if c == nil || len(c.down) == 0 {
			continue
		}
		group := f.Group
		m := Match{Tenant: f.Tenant, RuleID: f.Rule.ID, RuleName: f.Rule.Name, Time: f.Last,
			Value: func(field string) (string, bool) { v, ok := group[field]; return v, ok }}
		ids := f.EventIDs
		for _, d := range c.down {
			firings = d.c.observe(e, m, d.idx, ids, firings)
		}
	}
	return firings
}

// field resolves a group-by or condition field name through the aliases for
// the referenced rule that matched.
func (c *compiled) field(name string, idx int, m *Match) string {
	a, ok := c.rule.Aliases[name]
	if !ok {
		return name
	}
	for _, k := range [...]string{c.rule.Rules[idx], m.RuleName, m.RuleID} {
		if f, ok := a[k]; ok && k != "" {
			return f
		}
	}
	return name
}

func (c *compiled) observe(e *Engine, m Match, idx int, ids []string, out []Firing) []Firing {
	e.stats.observed.Add(1)
	r := c.rule
	var keyBuf [256]byte
	key := keyBuf[:0]
	var valsBuf [8]string
	vals := valsBuf[:0]
	for _, name := range r.GroupBy {
		v, ok := lookupValue(&m, c.field(name, idx, &m))
		if !ok {
			e.stats.ignored.Add(1)
			return out
		}
		key = strconv.AppendInt(key, int64(len(v)), 10)
		key = append(key, ':')
		key = append(key, v...)
		vals = append(vals, v)
	}
	// Retained strings are cloned: callers may hand out strings that share a
	// reused buffer (events decoded from the bus).
	en := entry{t: m.Time.UnixNano(), src: int32(idx), id: strings.Clone(m.EventID), ids: ids}
	if r.Type.aggregates() {
		v, ok := lookupValue(&m, c.field(r.Condition.Field, idx, &m))
		if !ok {
			e.stats.ignored.Add(1)
			return out
		}
		if r.Type == ValueCount {
			en.val = strings.Clone(v)
		} else {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				e.stats.ignored.Add(1)
				return out
			}
			en.num = x
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.tenants[m.Tenant]
	if ts == nil {
		ts = &tenantState{name: m.Tenant, wm: math.MinInt64, groups: make(map[string]*group)}
		c.tenants[m.Tenant] = ts
	}
	out = c.advance(e, ts, en.t, out)
	if en.t <= ts.wm-c.span {
		e.stats.late.Add(1)
		return out
	}
	g := ts.groups[string(key)]
	if c.bounded && g != nil && en.t >= g.start+c.span {
		// Out of list order: the window ended but the sweep has not
		// reached it yet.
		out = c.close(e, ts, g, out)
		g = nil
	}
	if g == nil {
		if len(ts.groups) >= e.opts.MaxGroups && ts.head != nil {
			ts.remove(ts.head)
			e.stats.evicted.Add(1)
			e.stats.groups.Add(-1)
		}
		g = newGroup(string(key), vals, r, en.t)
		ts.add(g)
		e.stats.groups.Add(1)
	}
	if c.bounded {
		if en.t < g.start {
			e.stats.late.Add(1)
			return out
		}
		g.insert(en)
		g.limit(c.maxEntries)
		return out
	}
	return c.arrive(e, ts, g, en, out)
}

func lookupValue(m *Match, field string) (string, bool) {
	if m.Value == nil {
		return "", false
	}
	return m.Value(field)
}

// arrive handles a match for a monotone condition: sliding window, fire on
// the first arrival that makes the condition hold.
func (c *compiled) arrive(e *Engine, ts *tenantState, g *group, en entry, out []Firing) []Firing {
	if en.t <= g.floor {
		e.stats.late.Add(1) // belongs to a window that already fired
		return out
	}
	g.insert(en)
	if en.t > g.newest {
		g.newest = en.t
		g.prune(g.newest - c.span)
	}
	g.limit(c.maxEntries)
	ts.touch(g)
	if g.newest < g.blocked || !g.holds(c.rule) {
		return out
	}
	out = append(out, c.firing(e, ts, g))
	g.floor, g.blocked = g.newest, g.newest+c.span
	g.reset()
	return out
}

// advance moves the tenant's watermark to t and retires the windows that
// lie behind it: bounded windows are evaluated, sliding ones expire.
func (c *compiled) advance(e *Engine, ts *tenantState, t int64, out []Firing) []Firing {
	if t <= ts.wm {
		return out
	}
	ts.wm = t
	for g := ts.head; g != nil; g = ts.head {
		if c.bounded {
			if g.start+c.span > t {
				break
			}
			out = c.close(e, ts, g, out)
			continue
		}
		if g.newest > t-c.span {
			break
		}
		ts.remove(g)
		e.stats.expired.Add(1)
		e.stats.groups.Add(-1)
	}
	return out
}

// close evaluates a bounded window once and drops the group.
func (c *compiled) close(e *Engine, ts *tenantState, g *group, out []Firing) []Firing {
	if len(g.entries) > 0 && g.holds(c.rule) {
		out = append(out, c.firing(e, ts, g))
	}
	ts.remove(g)
	e.stats.groups.Add(-1)
	return out
}

func (c *compiled) firing(e *Engine, ts *tenantState, g *group) Firing {
	e.stats.fired.Add(1)
	r := c.rule
	f := Firing{Rule: r, Tenant: ts.name, Count: len(g.entries) + g.overflow, Suppressed: c.suppressed}
	if len(r.GroupBy) > 0 {
		f.Group = make(map[string]string, len(r.GroupBy))
		for i, name := range r.GroupBy {
			f.Group[name] = g.vals[i]
		}
	}
	switch r.Type {
	case ValueCount:
		f.Values = len(g.distinct)
	case Temporal, TemporalOrdered:
		f.Values = g.rulesSeen()
	case ValueSum:
		f.Aggregate = g.total()
	case ValueAvg:
		f.Aggregate = g.average()
	}
	if n := len(g.entries); n > 0 {
		f.First = time.Unix(0, g.entries[0].t).UTC()
		f.Last = time.Unix(0, g.entries[n-1].t).UTC()
	}
	max := e.opts.MaxEventIDs
	for i := range g.entries {
		en := &g.entries[i]
		if en.id != "" && len(f.EventIDs) < max {
			f.EventIDs = append(f.EventIDs, en.id)
		}
		for _, id := range en.ids {
			if len(f.EventIDs) >= max {
				break
			}
			f.EventIDs = append(f.EventIDs, id)
		}
		if len(f.EventIDs) >= max {
			break
		}
	}
	return f
}
