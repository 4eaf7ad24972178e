package sigma

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mamori-soc/mamori/internal/event"
)

// Ruleset is a compiled, immutable rule set. Safe for concurrent use.
type Ruleset struct {
	rules    []*Rule
	crules   []*crule
	corr     []CorrelationDoc
	warnings []Warning
	stats    Stats
	// byProduct → byCategory → byService → buckets (one per variant key).
	tree     map[string]map[string]map[string][]*bucket
	patRules [][]ruleGroup // global pattern id → the need groups it satisfies
	// kwBuckets are the buckets with keyword literals. The haystacks of an
	// event are the same for every bucket, so one pass over them serves all
	// the buckets the event visits: kwSets holds a literal index per set of
	// such buckets (by kwBit mask), built the first time an event visits
	// that set. Hits of buckets the event does not visit are dropped.
	kwBuckets []*bucket
	kwSets    sync.Map // uint64 → *litIndex
	nbuckets  int
	ruleIdx   map[*Rule]int
	nfields   int // distinct event field names rules read (see fieldIDs)
	nauto     atomic.Int32
	pool      sync.Pool
}

// Stats describes what a load produced.
type Stats struct {
	Files        int
	Loaded       int // rules compiled (active + dormant)
	Active       int // rules that some event can reach
	Skipped      int // rules that could not compile (see the LoadErrors)
	Dormant      int // compiled, but no event carries their logsource
	Correlations int
	Warnings     int
	Buckets      int
	Patterns     int // literals in the automatons
	AlwaysEval   int // compiled rules without a necessary literal (always evaluated in their bucket)
	IndexBytes   int // size of the automatons' tables
	// ByLogsource counts loaded rules per "product/category/service";
	// DormantByLogsource the dormant ones.
	ByLogsource        map[string]int
	DormantByLogsource map[string]int
}

// crule is a rule compiled for one bucket (logsource + variant).
type crule struct {
	full     uint8 // bit mask of all the rule's need groups (0: always evaluated)
	rule     *Rule
	ridx     int32
	searches []search
	cond     *cnode
	bk       *bucket
}

type bucket struct {
	id      int32
	kwBit   uint64           // this bucket's bit in kwSets keys, 0 without keyword literals
	kwLits  map[string]int32 // keyword literal → pattern id
	ls      Logsource
	variant string
	rules   []int32 // all compiled rules of the bucket
	always  []int32 // those without a necessary literal
	fields  []fieldIndex
}

type fieldIndex struct {
	name string
	id   int32 // see fieldIDs
	ac   *litIndex
}

// ruleGroup is one need group of a compiled rule.
type ruleGroup struct {
	rule  int32
	group uint8
}

// maxGroups is the most need groups a rule is indexed by: every group must
// have a hit for the rule to be evaluated.
const maxGroups = 2

// kwField names the keyword haystacks in need sets.
const kwField = "\x00keywords"

// need is a literal that occurs in the field's lower-cased value whenever
// the rule matches (one of a set of needs must occur).
type need struct{ field, lit string }

func (b *builder) build() (*Ruleset, []*LoadError) {
	rs := &Ruleset{
		rules: b.rules, corr: b.corr, warnings: b.warnings,
		tree:    map[string]map[string]map[string][]*bucket{},
		ruleIdx: make(map[*Rule]int, len(b.rules)),
	}
	st := &rs.stats
	st.Files, st.Skipped, st.Correlations, st.Warnings = b.files, b.skipped, len(b.corr), len(b.warnings)
	st.ByLogsource, st.DormantByLogsource = map[string]int{}, map[string]int{}
	type bkey struct {
		ls      Logsource
		variant string
	}
	buckets := map[bkey]*bucket{}
	var order []*bucket
	ids := map[string]int32{}
	for i, r := range b.rules {
		rs.ruleIdx[r] = i
		ls := r.Logsource
		key := ls.String()
		st.Loaded++
		st.ByLogsource[key]++
		if !live(ls) {
			r.Dormant = true
			st.Dormant++
			st.DormantByLogsource[key]++
			continue
		}
		st.Active++
		for _, v := range variants(ls) {
			k := bkey{Logsource{Product: ls.Product, Category: ls.Category, Service: ls.Service}, v}
			bk := buckets[k]
			if bk == nil {
				bk = &bucket{id: int32(len(order)), ls: k.ls, variant: v}
				buckets[k] = bk
				order = append(order, bk)
			}
			cr := &crule{rule: r, ridx: int32(i), searches: bind(b.dets[i].searches, ls, v, ids), cond: b.dets[i].cond, bk: bk}
			bk.rules = append(bk.rules, int32(len(rs.crules)))
			rs.crules = append(rs.crules, cr)
		}
	}
	kw := map[string]map[string]int32{} // product → keyword literal → pattern id
	for _, bk := range order {
		rs.index(bk, kw, ids)
		p := rs.tree[bk.ls.Product]
		if p == nil {
			p = map[string]map[string][]*bucket{}
			rs.tree[bk.ls.Product] = p
		}
		c := p[bk.ls.Category]
		if c == nil {
			c = map[string][]*bucket{}
			p[bk.ls.Category] = c
		}
		c[bk.ls.Service] = append(c[bk.ls.Service], bk)
	}
	rs.numberKeywordBuckets(order)
	rs.nbuckets = len(order)
	rs.nfields = len(ids)
	st.Buckets = len(order)
	st.Patterns = len(rs.patRules)
	rs.pool.New = func() any {
		return &evalCtx{mark: make([]uint32, len(rs.crules)), gmask: make([]uint8, len(rs.crules)), fired: make([]uint32, len(rs.rules)),
			visited: make([]uint32, len(order)),
			slot:    make([]int32, rs.nfields), slotGen: make([]uint32, rs.nfields),
			cache: newScanCache()}
	}
	errs := b.errs
	b.log.Info("sigma rules loaded", "files", st.Files, "loaded", st.Loaded, "active", st.Active,
		"dormant", st.Dormant, "skipped", st.Skipped, "correlations", st.Correlations, "warnings", st.Warnings)
	return rs, errs
}

// bind resolves Sigma field names to event fields for a logsource variant.
// ids numbers the event field names, shared by all of a Ruleset's rules.
func bind(ss []search, ls Logsource, variant string, ids map[string]int32) []search {
	out := make([]search, len(ss))
	for i, s := range ss {
		out[i] = search{name: s.name, alts: make([][]*item, len(s.alts))}
		for j, alt := range s.alts {
			na := make([]*item, len(alt))
			for k, it := range alt {
				c := *it
				if c.field != "" {
					c.names = mapField(ls, variant, c.field)
					c.ids = idsOf(c.names, ids)
				}
				c.ms = make([]matcher, len(it.ms))
				for m, x := range it.ms {
					if fr, ok := x.(*fieldrefMatcher); ok {
						cp := *fr
						cp.other = mapField(ls, variant, fr.otherField)
						cp.otherIDs = idsOf(cp.other, ids)
						x = &cp
					}
					c.ms[m] = x
				}
				na[k] = &c
			}
			out[i].alts[j] = na
		}
	}
	return out
}

func idsOf(names []string, ids map[string]int32) fieldIDs {
	out := make(fieldIDs, len(names))
	for i, n := range names {
		id, ok := ids[n]
		if !ok {
			id = int32(len(ids))
			ids[n] = id
		}
		out[i] = id
	}
	return out
}

// index builds the bucket's literal indexes from each rule's need groups.
// Keyword literals are numbered in kw, by product (a literal two buckets
// share is one pattern), and kept in the bucket's kwLits for kwIndex.
func (rs *Ruleset) index(bk *bucket, kw map[string]map[string]int32, ids map[string]int32) {
	perField := map[string]map[string]int32{} // field → literal → pattern id
	for _, ri := range bk.rules {
		cr := rs.crules[ri]
		groups, ok := condGroups(cr.cond, cr.searches)
		if !ok {
			bk.always = append(bk.always, ri)
			rs.stats.AlwaysEval++
			continue
		}
		cr.full = uint8(1)<<len(groups) - 1
		for gi, needs := range groups {
			for _, n := range needs {
				byLit := perField
				key := n.field
				if n.field == kwField {
					byLit, key = kw, bk.ls.Product
				}
				lits := byLit[key]
				if lits == nil {
					lits = map[string]int32{}
					byLit[key] = lits
				}
				pid, ok := lits[n.lit]
				if !ok {
					pid = int32(len(rs.patRules))
					rs.patRules = append(rs.patRules, nil)
					lits[n.lit] = pid
				}
				if n.field == kwField {
					if bk.kwLits == nil {
						bk.kwLits = map[string]int32{}
					}
					bk.kwLits[n.lit] = pid
				}
				rg := ruleGroup{rule: ri, group: uint8(gi)}
				if l := rs.patRules[pid]; len(l) == 0 || l[len(l)-1] != rg {
					rs.patRules[pid] = append(l, rg)
				}
			}
		}
	}
	for _, f := range sortedKeys(perField) {
		bk.fields = append(bk.fields, fieldIndex{name: f, id: idsOf([]string{f}, ids)[0], ac: rs.automatonOf(perField[f])})
	}
}

// automatonOf builds the literal index of literal → pattern id, in a
// deterministic order.
func (rs *Ruleset) automatonOf(lits map[string]int32) *litIndex {
	pats := sortedKeys(lits)
	ids := make([]int32, len(pats))
	for i, p := range pats {
		ids[i] = lits[p]
	}
	ac := newLitIndex(pats, ids)
	ac.id = rs.nauto.Add(1) - 1
	rs.stats.IndexBytes += ac.size()
	return ac
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// numberKeywordBuckets gives each bucket with keyword literals its kwBit.
func (rs *Ruleset) numberKeywordBuckets(order []*bucket) {
	for _, bk := range order {
		if bk.kwLits != nil {
			// Past 64 buckets bits are shared: a set's index then holds the
			// literals of more buckets than the event visits, which only
			// costs dropped hits.
			bk.kwBit = 1 << (len(rs.kwBuckets) % 64)
			rs.kwBuckets = append(rs.kwBuckets, bk)
		}
	}
}

// kwIndex returns the keyword literal index of the buckets in mask.
func (rs *Ruleset) kwIndex(mask uint64) *litIndex {
	if x, ok := rs.kwSets.Load(mask); ok {
		return x.(*litIndex)
	}
	lits := map[string]int32{}
	for _, bk := range rs.kwBuckets {
		if bk.kwBit&mask != 0 {
			maps.Copy(lits, bk.kwLits)
		}
	}
	pats := sortedKeys(lits)
	ids := make([]int32, len(pats))
	for i, p := range pats {
		ids[i] = lits[p]
	}
	x := newLitIndex(pats, ids)
	x.id = rs.nauto.Add(1) - 1
	got, _ := rs.kwSets.LoadOrStore(mask, x)
	return got.(*litIndex)
}

// minNeedLen: shorter literals occur in almost every value and would make
// the rule a candidate anyway; such a rule is better left "always".
const minNeedLen = 2

// rareByte: a one-character literal is still worth indexing when it is
// punctuation that rarely occurs (a backtick, a caret), as regexps for
// obfuscation often require.
func rareByte(lit string) bool {
	return len(lit) == 1 && strings.IndexByte("`^~|{}<>$&;!@#%*+=?'\"[]", lit[0]) >= 0
}

// condGroups returns need groups of a condition: sets of needs such that,
// whenever the condition is true, each set has a need that occurs. At most
// maxGroups, the most selective first; ok=false when none is known.
func condGroups(n *cnode, ss []search) ([][]need, bool) {
	switch n.op {
	case cSearch:
		return searchGroups(&ss[n.search])
	case cAnd:
		var all [][]need
		for _, k := range n.kids {
			if gs, ok := condGroups(k, ss); ok {
				all = append(all, gs...)
			}
		}
		return topGroups(all)
	case cOr, cAtLeast:
		var union []need
		for _, k := range n.kids {
			gs, ok := condGroups(k, ss)
			if !ok {
				return nil, false
			}
			union = append(union, gs[0]...)
		}
		return [][]need{union}, true
	}
	return nil, false // not: nothing is necessary
}

// searchGroups: one map gives a group per item with needs; several maps
// (an OR) give one group, the union of each map's best.
func searchGroups(s *search) ([][]need, bool) {
	var union []need
	for _, alt := range s.alts {
		var gs [][]need
		for _, it := range alt {
			if ns, ok := itemNeeds(it); ok {
				gs = append(gs, ns)
			}
		}
		if len(s.alts) == 1 {
			return topGroups(gs)
		}
		gs, ok := topGroups(gs)
		if !ok {
			return nil, false
		}
		union = append(union, gs[0]...)
	}
	return [][]need{union}, len(union) > 0
}

// topGroups keeps the maxGroups most selective groups, best first.
func topGroups(gs [][]need) ([][]need, bool) {
	if len(gs) == 0 {
		return nil, false
	}
	gs = slices.Clone(gs)
	slices.SortStableFunc(gs, func(a, b []need) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
	return gs[:min(len(gs), maxGroups)], true
}

func itemNeeds(it *item) ([]need, bool) {
	fields := it.names
	if it.field == "" {
		fields = []string{kwField}
	}
	var all, bestAll []need
	foundAll := false
	for _, m := range it.ms {
		lits, ok := matcherNeeds(m)
		if !it.all && !ok {
			return nil, false
		}
		if !ok {
			continue
		}
		ns := make([]need, 0, len(lits)*len(fields))
		for _, lit := range lits {
			for _, f := range fields {
				ns = append(ns, need{field: f, lit: lit})
			}
		}
		if it.all {
			if !foundAll || better(ns, bestAll) {
				bestAll, foundAll = ns, true
			}
			continue
		}
		all = append(all, ns...)
	}
	if it.all {
		return bestAll, foundAll
	}
	return all, len(all) > 0
}

// matcherNeeds: literals one of which occurs in every value m matches.
func matcherNeeds(m matcher) ([]string, bool) {
	if ms, ok := m.(interface{ needs() []string }); ok {
		if lits := ms.needs(); lits != nil {
			return lits, usefulNeeds(lits)
		}
	}
	lit, ok := m.need()
	return []string{lit}, ok && (len(lit) >= minNeedLen || rareByte(lit))
}

// better prefers need sets whose shortest literal is longer (fewer false
// candidates), then fewer literals, then fields over keyword haystacks.
func better(a, b []need) bool {
	sa, sb := needScore(a), needScore(b)
	if sa != sb {
		return sa > sb
	}
	return len(a) < len(b)
}

func needScore(ns []need) int {
	m := 1 << 30
	for _, n := range ns {
		l := min(len(n.lit), 12)
		if n.field == kwField {
			l -= 4
		}
		if enumFields[n.field] {
			l = min(l, 2)
		}
		m = min(m, l)
	}
	return m
}

// enumFields take few distinct values, so a literal that selects one of
// them is in a large share of events however long it is ("Microsoft
// Corporation", "System", an event id): as needs they are a last resort.
var enumFields = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range []string{
		event.FieldWinEventID, event.FieldWinProvider, event.FieldWinChannel,
		event.FieldCategory, event.FieldType, event.FieldAction, event.FieldOutcome,
		event.FieldNetworkTransport, event.FieldNetworkProtocol, event.FieldHTTPMethod,
		event.FieldHTTPStatus, event.FieldDNSQuestionType, event.FieldDNSResponseCode,
	} {
		m[f] = true
	}
	for _, f := range []string{
		"Company", "Product", "Description", "FileVersion", "IntegrityLevel", "User",
		"LogonType", "ObjectType", "ObjectServer", "Status", "FailureCode", "ServiceType",
		"StartType", "AccessMask", "AccessList", "Signed", "SignatureStatus", "Signature",
		"SubjectUserSid", "TargetUserSid", "SubjectUserName", "SubjectDomainName",
		"EventType", "State", "Type", "Level", "Provider", "Initiated", "Protocol",
	} {
		m["winlog.event_data."+f] = true
	}
	return m
}()

// Rules returns every loaded rule (dormant ones too), in load order.
func (rs *Ruleset) Rules() []*Rule { return slices.Clone(rs.rules) }

// Correlations returns the correlation documents, raw.
func (rs *Ruleset) Correlations() []CorrelationDoc { return slices.Clone(rs.corr) }

// Warnings returns the load warnings.
func (rs *Ruleset) Warnings() []Warning { return slices.Clone(rs.warnings) }

// Stats returns counts of the load.
func (rs *Ruleset) Stats() Stats { return rs.stats }

// Match calls fn once for every rule that matches the event.
func (rs *Ruleset) Match(e *event.Event, fn func(*Rule)) {
	rs.match(e, fn, false)
}

func (rs *Ruleset) getCtx(e *event.Event) *evalCtx {
	c := rs.pool.Get().(*evalCtx)
	c.reset(e)
	return c
}

func (rs *Ruleset) match(e *event.Event, fn func(*Rule), unindexed bool) {
	if len(rs.crules) == 0 {
		return
	}
	c := rs.getCtx(e)
	defer rs.pool.Put(c)
	var src sources
	route(e, &src)
	if unindexed {
		rs.eachBucket(&src, func(bk *bucket) { rs.evalAll(c, bk.rules, fn) })
	} else {
		rs.evalIndexed(c, &src, fn)
	}
	c.e = nil
}

// eachBucket visits the buckets whose logsource the event carries.
func (rs *Ruleset) eachBucket(src *sources, fn func(*bucket)) {
	for pi := -1; pi < src.np; pi++ {
		p := ""
		if pi >= 0 {
			p = src.prods[pi]
		}
		pm := rs.tree[p]
		if pm == nil {
			continue
		}
		for ci := -1; ci < src.nc; ci++ {
			cat, variant := "", ""
			if ci >= 0 {
				cat, variant = src.cats[ci].cat, src.cats[ci].variant
			}
			cm := pm[cat]
			if cm == nil {
				continue
			}
			for si := -1; si < src.ns; si++ {
				s := ""
				if si >= 0 {
					s = src.svcs[si]
				}
				for _, bk := range cm[s] {
					if bk.variant == variant {
						fn(bk)
					}
				}
			}
		}
	}
}

func (c *evalCtx) nextMark() uint32 {
	c.markGen++
	if c.markGen == 0 {
		clear(c.mark)
		c.markGen = 1
	}
	return c.markGen
}

// evalIndexed evaluates the candidates of all the event's buckets: the
// rules each of whose need groups some literal index found, and those
// without needs. Keyword literals are searched once for all the buckets the
// event visits.
func (rs *Ruleset) evalIndexed(c *evalCtx, src *sources, fn func(*Rule)) {
	g := c.nextMark()
	c.cand = c.cand[:0]
	c.hits = c.hits[:0]
	var kwMask uint64
	rs.eachBucket(src, func(bk *bucket) {
		c.visited[bk.id] = c.gen
		c.cand = append(c.cand, bk.always...)
		kwMask |= bk.kwBit
		// Both lists are sorted by name: walk them together, and note
		// where the fields are for the rules that will read them.
		ef, bf := c.e.Fields, bk.fields
		for i, j := 0, 0; i < len(ef) && j < len(bf); {
			switch {
			case ef[i].Name < bf[j].name:
				i++
			case ef[i].Name > bf[j].name:
				c.slotGen[bf[j].id], c.slot[bf[j].id] = c.gen, -1
				j++
			default:
				c.slotGen[bf[j].id], c.slot[bf[j].id] = c.gen, int32(i)
				c.scan(bf[j].ac, val{raw: ef[i].Value, slot: i})
				i++
				j++
			}
		}
	})
	if kwMask != 0 {
		ac := rs.kwIndex(kwMask)
		c.haystacks(func(v val) bool {
			c.scan(ac, v)
			return false
		})
	}
	// A rule is a candidate when each of its need groups has a hit.
	for _, pid := range c.hits {
		for _, rg := range rs.patRules[pid] {
			ri := rg.rule
			cr := rs.crules[ri]
			if c.visited[cr.bk.id] != c.gen {
				continue
			}
			if c.mark[ri] != g {
				c.mark[ri], c.gmask[ri] = g, 0
			}
			if m := c.gmask[ri]; m != cr.full {
				m |= 1 << rg.group
				c.gmask[ri] = m
				if m == cr.full {
					c.cand = append(c.cand, ri)
				}
			}
		}
	}
	slices.Sort(c.cand) // deterministic order: load order
	rs.evalAll(c, c.cand, fn)
}

// scan runs a literal index over a value, lowering it first only when it is
// not ASCII (the index folds ASCII case itself). The large indexes go
// through the worker's scanCache: for the small ones a probe costs about
// what a scan does.
func (c *evalCtx) scan(a *litIndex, v val) {
	if a.g == nil || len(v.raw) < a.minPat {
		c.scanRaw(a, v) // nothing to find, or non-ASCII text that lowering lengthens
		return
	}
	sl, h1, h2, ok := c.cache.lookup(a.id, v.raw)
	if ok {
		c.hits = append(c.hits, sl.ids[:sl.n]...)
		return
	}
	n := len(c.hits)
	c.scanRaw(a, v)
	sl.store(a.id, h1, h2, c.hits[n:])
}

// scanRaw is scan without the cache.
func (c *evalCtx) scanRaw(a *litIndex, v val) {
	n := len(c.hits)
	hits, ok := a.scan(v.raw, c.hits)
	if !ok {
		hits = a.scanLower(c.lower(v), hits[:n])
	}
	c.hits = hits
}

func (rs *Ruleset) evalAll(c *evalCtx, idx []int32, fn func(*Rule)) {
	for _, ri := range idx {
		cr := rs.crules[ri]
		if c.fired[cr.ridx] == c.gen {
			continue
		}
		if cr.cond.eval(c, cr.searches) {
			c.fired[cr.ridx] = c.gen
			fn(cr.rule)
		}
	}
}

// matchUnindexed checks every compiled rule of the event's buckets one by
// one, without the automatons: the baseline of the benchmark and the
// reference of the differential test.
func (rs *Ruleset) matchUnindexed(e *event.Event, fn func(*Rule)) { rs.match(e, fn, true) }

// matchNaive checks every loaded rule one by one: does its logsource
// apply to the event, then its full condition. The baseline of the
// benchmark; it must agree with Match.
func (rs *Ruleset) matchNaive(e *event.Event, fn func(*Rule)) {
	c := rs.getCtx(e)
	defer rs.pool.Put(c)
	var src sources
	route(e, &src)
	for ri := range rs.crules {
		cr := rs.crules[ri]
		if c.fired[cr.ridx] != c.gen && src.covers(cr.bk) && cr.cond.eval(c, cr.searches) {
			c.fired[cr.ridx] = c.gen
			fn(cr.rule)
		}
	}
	c.e = nil
}

// covers reports whether the event's logsources include the bucket's.
func (s *sources) covers(bk *bucket) bool {
	ok := bk.ls.Product == ""
	for i := 0; i < s.np && !ok; i++ {
		ok = s.prods[i] == bk.ls.Product
	}
	if !ok {
		return false
	}
	ok = bk.ls.Category == "" && bk.variant == ""
	for i := 0; i < s.nc && !ok; i++ {
		ok = s.cats[i].cat == bk.ls.Category && s.cats[i].variant == bk.variant
	}
	if !ok {
		return false
	}
	ok = bk.ls.Service == ""
	for i := 0; i < s.ns && !ok; i++ {
		ok = s.svcs[i] == bk.ls.Service
	}
	return ok
}

// Lookup returns the value of a Sigma field name of rule r in event e, with
// the field mapping r uses on that event (for correlation group-by).
func (rs *Ruleset) Lookup(e *event.Event, r *Rule, sigmaField string) (string, bool) {
	var src sources
	route(e, &src)
	variant := ""
	for i := 0; i < src.nc; i++ {
		if src.cats[i].cat == r.Logsource.Category && src.cats[i].variant != "" {
			variant = src.cats[i].variant
		}
	}
	for _, n := range mapField(r.Logsource, variant, sigmaField) {
		if v, ok := e.Get(n); ok {
			return v, true
		}
	}
	return "", false
}
