package sigma

import (
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// matcher is one compiled Sigma value. A field item ORs (or, with |all,
// ANDs) its matchers.
type matcher interface {
	// match tests a present value.
	match(c *evalCtx, v val) bool
	// absent tells the result when the field is not set.
	absent() bool
	// need returns a lower-case string that occurs in every value match
	// accepts, or ok=false when there is none (regexp, CIDR, numbers...).
	need() (lit string, ok bool)
}

// val is a field value: its raw text and its slot in the per-call cache of
// lower-cased values.
type val struct {
	raw  string
	slot int
}

type strKind uint8

const (
	kEq strKind = iota
	kPrefix
	kSuffix
	kContains
	kGlob
	kAny
)

type strMatcher struct {
	kind  strKind
	lit   string // the literal for kEq/kPrefix/kSuffix/kContains
	pat   sstr   // the pattern for kGlob
	cased bool
}

// newStrMatcher picks the cheapest test for the pattern. Sigma compares
// case-insensitively unless |cased: both sides are lower-cased.
func newStrMatcher(s sstr, cased bool) *strMatcher {
	if !cased {
		s = s.lower()
	}
	m := &strMatcher{cased: cased}
	inner := s
	lead := len(inner) > 0 && inner[0].wild == '*'
	if lead {
		inner = inner[1:]
	}
	trail := len(inner) > 0 && inner[len(inner)-1].wild == '*'
	if trail {
		inner = inner[:len(inner)-1]
	}
	switch {
	case inner.hasWild():
		m.kind, m.pat = kGlob, s
	case len(inner) == 0 && (lead || trail):
		m.kind = kAny
	default:
		m.lit = inner.plain()
		switch {
		case lead && trail:
			m.kind = kContains
		case lead:
			m.kind = kSuffix
		case trail:
			m.kind = kPrefix
		default:
			m.kind = kEq
		}
	}
	return m
}

func (m *strMatcher) match(c *evalCtx, v val) bool {
	s := v.raw
	if !m.cased {
		s = c.lower(v)
	}
	switch m.kind {
	case kEq:
		return s == m.lit
	case kPrefix:
		return strings.HasPrefix(s, m.lit)
	case kSuffix:
		return strings.HasSuffix(s, m.lit)
	case kContains:
		return strings.Contains(s, m.lit)
	case kAny:
		return true
	default:
		return globMatch(m.pat, s)
	}
}

// absent: events never store empty values, so ” means "not set".
func (m *strMatcher) absent() bool { return m.kind == kEq && m.lit == "" }

func (m *strMatcher) need() (string, bool) {
	var l string
	switch m.kind {
	case kAny:
		return "", false
	case kGlob:
		l = m.pat.longestLiteral()
	default:
		l = m.lit
	}
	if m.cased {
		l = strings.ToLower(l)
	}
	return l, l != ""
}

type reMatcher struct {
	re   *regexp.Regexp
	lits []string // lower-case literals one of which every match contains (reNeeds), or nil
	// minLen is a lower bound of the byte length of any match: shorter
	// values cannot match and skip the regexp engine.
	minLen int
	// runLen > 0 when the expression is only ".{runLen,}" (or with (?s),
	// anyNL): a length test. RE2 would expand it into runLen states and step
	// through all of them for every byte.
	runLen int
	anyNL  bool
}

func newReMatcher(expr string, re *regexp.Regexp) *reMatcher {
	m := &reMatcher{re: re}
	p, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return m
	}
	m.lits = reNeeds(p)
	m.minLen = minRunes(p)
	for p.Op == syntax.OpCapture {
		p = p.Sub[0]
	}
	if p.Op == syntax.OpRepeat && p.Max == -1 && p.Min > 0 &&
		(p.Sub[0].Op == syntax.OpAnyCharNotNL || p.Sub[0].Op == syntax.OpAnyChar) {
		m.runLen, m.anyNL = p.Min, p.Sub[0].Op == syntax.OpAnyChar
	}
	return m
}

func (m *reMatcher) match(_ *evalCtx, v val) bool {
	if len(v.raw) < m.minLen {
		return false
	}
	if m.runLen > 0 {
		return hasRun(v.raw, m.runLen, m.anyNL)
	}
	return m.re.MatchString(v.raw)
}
func (m *reMatcher) absent() bool { return false }
func (m *reMatcher) need() (string, bool) {
	if len(m.lits) == 1 {
		return m.lits[0], true
	}
	return "", false // see needs
}
func (m *reMatcher) needs() []string { return m.lits }

// hasRun reports whether s holds n runes in a row that are not newlines
// (any runes when anyNL): what ".{n,}" matches. Invalid UTF-8 bytes count
// as one rune each, as in package regexp.
func hasRun(s string, n int, anyNL bool) bool {
	if anyNL {
		return utf8.RuneCountInString(s) >= n
	}
	for len(s) >= n {
		line := s
		i := strings.IndexByte(s, '\n')
		if i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if len(line) >= n && utf8.RuneCountInString(line) >= n {
			return true
		}
	}
	return false
}

// minRunes is the least number of runes a match of re holds; each rune is
// at least one byte, so it bounds the byte length of a match from below.
func minRunes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minRunes(re.Sub[0])
	case syntax.OpRepeat:
		return min(re.Min*minRunes(re.Sub[0]), 1<<20)
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minRunes(sub)
		}
		return min(n, 1<<20)
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if k := minRunes(sub); n < 0 || k < n {
				n = k
			}
		}
		return max(n, 0)
	}
	return 0 // empty-width assertions, star, quest, empty match
}

type cidrMatcher struct{ pfx netip.Prefix }

func (m *cidrMatcher) match(_ *evalCtx, v val) bool {
	a, err := netip.ParseAddr(strings.TrimSpace(v.raw))
	if err != nil {
		return false
	}
	return m.pfx.Contains(a.Unmap()) || m.pfx.Contains(a)
}
func (m *cidrMatcher) absent() bool         { return false }
func (m *cidrMatcher) need() (string, bool) { return "", false }

type numOp uint8

const (
	opEq numOp = iota
	opGt
	opGte
	opLt
	opLte
)

// numMatcher compares as numbers; an event value that is not a number
// falls back to text equality for opEq (EventID: 4688 vs "4688").
type numMatcher struct {
	op   numOp
	n    float64
	text string // lower-case rule text
}

// parseNum reads a plain decimal number ("42", "-1.5", "007"); hex,
// exponents, inf and nan are text. Keeping to plain decimals makes the
// digits of a non-negative integer a necessary substring of every value
// equal to it, which the index relies on.
func parseNum(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || c == '.' || (i == 0 && (c == '-' || c == '+'))) {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func (m *numMatcher) match(c *evalCtx, v val) bool {
	f, ok := parseNum(v.raw)
	if !ok {
		return m.op == opEq && c.lower(v) == m.text
	}
	switch m.op {
	case opGt:
		return f > m.n
	case opGte:
		return f >= m.n
	case opLt:
		return f < m.n
	case opLte:
		return f <= m.n
	default:
		return f == m.n
	}
}
func (m *numMatcher) absent() bool { return false }

// need: a value equal to a non-negative integer n is n's digits, maybe
// with leading zeros, a sign or a fraction of zeros: it contains them.
func (m *numMatcher) need() (string, bool) {
	if m.op != opEq || m.n < 0 || m.n != float64(int64(m.n)) {
		return "", false
	}
	d := strconv.FormatInt(int64(m.n), 10)
	if d != m.text { // e.g. 1e3: the text fallback would not contain the digits
		return "", false
	}
	return d, true
}

// nullMatcher is `Field: null`: the field is not set.
type nullMatcher struct{}

func (nullMatcher) match(*evalCtx, val) bool { return false }
func (nullMatcher) absent() bool             { return true }
func (nullMatcher) need() (string, bool)     { return "", false }

type existsMatcher struct{ want bool }

func (m existsMatcher) match(*evalCtx, val) bool { return m.want }
func (m existsMatcher) absent() bool             { return !m.want }
func (m existsMatcher) need() (string, bool)     { return "", false }

// neverMatcher stands for a value that cannot match, e.g. an |expand
// placeholder nobody configured.
type neverMatcher struct{}

func (neverMatcher) match(*evalCtx, val) bool { return false }
func (neverMatcher) absent() bool             { return false }
func (neverMatcher) need() (string, bool)     { return "", false }

// fieldrefMatcher compares with another field of the same event
// (case-insensitively, like any Sigma string).
type fieldrefMatcher struct {
	otherField string   // the Sigma field name
	other      []string // its event fields, set by bind
	otherIDs   fieldIDs
	kind       strKind
}

func (m *fieldrefMatcher) match(c *evalCtx, v val) bool {
	o, ok := c.get(m.other, m.otherIDs)
	if !ok {
		return false
	}
	s, t := c.lower(v), c.lower(o)
	switch m.kind {
	case kPrefix:
		return strings.HasPrefix(s, t)
	case kSuffix:
		return strings.HasSuffix(s, t)
	case kContains:
		return strings.Contains(s, t)
	default:
		return s == t
	}
}
func (m *fieldrefMatcher) absent() bool         { return false }
func (m *fieldrefMatcher) need() (string, bool) { return "", false }

// multiMatcher is the OR of many literal matchers (equal, prefix, suffix,
// contains) of one item, tested in one automaton pass instead of one by one.
type multiMatcher struct {
	ac    *automaton
	kinds []strKind
	lens  []int32
	lits  []string
}

// minMulti is the list length from which an automaton beats a loop.
const minMulti = 6

func newMultiMatcher(ms []*strMatcher) *multiMatcher {
	m := &multiMatcher{}
	pats := make([]string, len(ms))
	ids := make([]int32, len(ms))
	for i, s := range ms {
		pats[i], ids[i] = s.lit, int32(i)
		m.kinds = append(m.kinds, s.kind)
		m.lens = append(m.lens, int32(len(s.lit)))
		m.lits = append(m.lits, s.lit)
	}
	m.ac = newAutomaton(pats, ids)
	return m
}

func (m *multiMatcher) match(c *evalCtx, v val) bool {
	return m.ac.anyAnchored(c.lower(v), m.kinds, m.lens)
}
func (m *multiMatcher) absent() bool         { return false }
func (m *multiMatcher) need() (string, bool) { return "", false } // see needs

// needs: one of the literals occurs in every value the matcher accepts.
func (m *multiMatcher) needs() []string { return m.lits }

// mergeLiterals replaces the plain literal matchers of an OR item by one
// multiMatcher when there are many of them.
func mergeLiterals(ms []matcher) []matcher {
	var lits []*strMatcher
	var rest []matcher
	for _, x := range ms {
		if s, ok := x.(*strMatcher); ok && !s.cased && s.kind != kGlob && s.kind != kAny && s.lit != "" {
			lits = append(lits, s)
			continue
		}
		rest = append(rest, x)
	}
	if len(lits) < minMulti {
		return ms
	}
	return append([]matcher{newMultiMatcher(lits)}, rest...)
}
