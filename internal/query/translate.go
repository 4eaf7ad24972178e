package query

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// MaxQueryLen bounds the length of an analyst or expert query in bytes.
const MaxQueryLen = 64 << 10

// maxDepth bounds nesting of groups and negations.
const maxDepth = 100

// Translate parses an analyst query and returns the equivalent LogsQL.
// Errors are *Error with a position; errors.Is(err, ErrInvalid) holds.
//
// The returned LogsQL has no time range and no tenant filter: the caller adds
// them (see ValidateLogsQL for how). See SEARCH.md for the language.
func Translate(q string) (out string, err error) {
	if len(q) > MaxQueryLen {
		return "", errorf(MaxQueryLen, "query is longer than %d bytes", MaxQueryLen)
	}
	if !utf8.ValidString(q) {
		return "", errorf(invalidUTF8Pos(q), "query is not valid UTF-8")
	}
	p := &parser{s: q}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(*Error)
			if !ok {
				panic(r)
			}
			out, err = "", e
		}
	}()
	out = p.parseQuery()
	// Safety net: everything above is built to be valid LogsQL; if some
	// corner case is not, report it rather than hand out a bad query.
	if _, perr := logstorage.ParseQuery(out); perr != nil {
		return "", errorf(0, "cannot translate this query (generated LogsQL is rejected: %s)", perr)
	}
	return out, nil
}

func invalidUTF8Pos(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return 0
}

// ---- AST ----

type node interface{}

type leafNode struct{ s string } // one complete LogsQL filter
type allNode struct{}            // matches every event
type andNode struct{ kids []node }
type orNode struct{ kids []node }
type notNode struct{ kid node }

const (
	precOr = iota + 1
	precAnd
	precNot
)

func mkAnd(kids ...node) node {
	var out []node
	for _, k := range kids {
		switch t := k.(type) {
		case allNode:
			continue
		case andNode:
			out = append(out, t.kids...)
		default:
			out = append(out, k)
		}
	}
	switch len(out) {
	case 0:
		return allNode{}
	case 1:
		return out[0]
	}
	return andNode{out}
}

func mkOr(kids ...node) node {
	var out []node
	for _, k := range kids {
		switch t := k.(type) {
		case allNode:
			return allNode{}
		case orNode:
			out = append(out, t.kids...)
		default:
			out = append(out, k)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return orNode{out}
}

func mkNot(k node) node {
	if t, ok := k.(notNode); ok {
		return t.kid
	}
	return notNode{k}
}

func render(n node, parent int) string {
	switch t := n.(type) {
	case leafNode:
		return t.s
	case allNode:
		return "*"
	case notNode:
		return "NOT " + render(t.kid, precNot)
	case andNode:
		parts := make([]string, len(t.kids))
		for i, k := range t.kids {
			parts[i] = render(k, precAnd)
		}
		s := strings.Join(parts, " AND ")
		if parent > precAnd {
			s = "(" + s + ")"
		}
		return s
	case orNode:
		parts := make([]string, len(t.kids))
		for i, k := range t.kids {
			parts[i] = render(k, precOr)
		}
		s := strings.Join(parts, " OR ")
		if parent > precOr {
			s = "(" + s + ")"
		}
		return s
	}
	panic("unreachable")
}

// ---- parser ----

type parser struct {
	s     string
	pos   int
	depth int
}

func (p *parser) fail(pos int, format string, args ...any) {
	panic(errorf(pos, format, args...))
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) peekRune() (rune, int) {
	if p.eof() {
		return 0, 0
	}
	return utf8.DecodeRuneInString(p.s[p.pos:])
}

func (p *parser) skipWS() {
	for !p.eof() {
		r, size := p.peekRune()
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += size
	}
}

// isTerm reports whether r ends a bare word.
func isTerm(r rune) bool {
	return unicode.IsSpace(r) || r == '(' || r == ')' || r == '"' || r == '|'
}

// atTerm reports whether the input at i is a terminator or the end.
func (p *parser) atTerm(i int) bool {
	if i >= len(p.s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(p.s[i:])
	return isTerm(r)
}

// peekWord returns the raw bare word at the current position (no escapes
// processed), used to recognize operators.
func (p *parser) peekWord() string {
	i := p.pos
	for i < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[i:])
		if isTerm(r) {
			break
		}
		if r == '\\' && i+size < len(p.s) {
			_, s2 := utf8.DecodeRuneInString(p.s[i+size:])
			i += size + s2
			continue
		}
		i += size
	}
	return p.s[p.pos:i]
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.pos, "query is nested too deeply")
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) parseQuery() string {
	p.skipWS()
	var filter node = allNode{}
	if !p.eof() && !p.atPipe() {
		filter = p.parseOr("")
	}
	out := render(filter, 0)
	for {
		p.skipWS()
		if p.eof() {
			return out
		}
		if !p.atPipe() {
			r, _ := p.peekRune()
			if r == ')' {
				p.fail(p.pos, "unexpected ')'")
			}
			p.fail(p.pos, "unexpected %q", string(r))
		}
		out += " | " + p.parsePipe()
	}
}

// atPipe: a single '|' (not the '||' operator).
func (p *parser) atPipe() bool {
	return strings.HasPrefix(p.s[p.pos:], "|") && !strings.HasPrefix(p.s[p.pos:], "||")
}

// atEndOfExpr: end of input, ')' or a pipe.
func (p *parser) atEndOfExpr() bool {
	return p.eof() || p.s[p.pos] == ')' || p.atPipe()
}

// field is the field of an enclosing `field:( ... )` group, "" at top level.
func (p *parser) parseOr(field string) node {
	kids := []node{p.parseAnd(field)}
	for {
		p.skipWS()
		switch {
		case strings.HasPrefix(p.s[p.pos:], "||"):
			p.pos += 2
		case p.peekWord() == "OR":
			p.pos += 2
		default:
			return mkOr(kids...)
		}
		p.skipWS()
		if p.atEndOfExpr() {
			p.fail(p.pos, "expected a search term after OR")
		}
		kids = append(kids, p.parseAnd(field))
	}
}

func (p *parser) parseAnd(field string) node {
	kids := []node{p.parseUnary(field)}
	for {
		p.skipWS()
		if p.atEndOfExpr() || strings.HasPrefix(p.s[p.pos:], "||") {
			return mkAnd(kids...)
		}
		switch w := p.peekWord(); w {
		case "OR":
			return mkAnd(kids...)
		case "AND", "&&":
			p.pos += len(w)
			p.skipWS()
			if p.atEndOfExpr() {
				p.fail(p.pos, "expected a search term after %s", w)
			}
		}
		kids = append(kids, p.parseUnary(field))
	}
}

func (p *parser) parseUnary(field string) node {
	p.enter()
	defer p.leave()
	p.skipWS()
	start := p.pos
	if p.eof() {
		p.fail(p.pos, "expected a search term")
	}
	w := p.peekWord()
	switch {
	case w == "NOT":
		p.pos += 3
	case p.s[p.pos] == '!' || p.s[p.pos] == '-':
		p.pos++
	case p.s[p.pos] == '+':
		// Lucene "required" marker: a term is required anyway (AND).
		p.pos++
		p.skipWS()
		if p.atEndOfExpr() {
			p.fail(p.pos, "expected a search term after '+'")
		}
		return p.parseUnary(field)
	case w == "AND" || w == "OR" || w == "&&":
		p.fail(p.pos, "expected a search term before %s", w)
	default:
		return p.parsePrimary(field)
	}
	p.skipWS()
	if p.atEndOfExpr() {
		p.fail(p.pos, "expected a search term after %s", strings.TrimSpace(p.s[start:p.pos]))
	}
	return mkNot(p.parseUnary(field))
}

func (p *parser) parsePrimary(field string) node {
	p.skipWS()
	if p.eof() {
		p.fail(p.pos, "expected a search term")
	}
	start := p.pos
	switch c := p.s[p.pos]; c {
	case '(':
		return p.parseGroup(field)
	case ')':
		p.fail(p.pos, "unexpected ')'")
	case '|':
		p.fail(p.pos, "expected a search term before '|'")
	case '"':
		return p.valueLeaf(field, p.readQuoted())
	case '/':
		if re, ok := p.tryRegex(); ok {
			return p.regexLeaf(field, re, start)
		}
	case '[', '{':
		if field != "" {
			return p.parseRange(field)
		}
		p.fail(p.pos, "a range needs a field, e.g. destination.port:[1 TO 1024]")
	case '>', '<':
		if field != "" {
			return p.parseCompare(field)
		}
		p.fail(p.pos, "a comparison needs a field, e.g. bytes:>1000")
	}
	v, name, ok := p.readBare(field == "")
	if !ok {
		return p.valueLeaf(field, v)
	}
	return p.parseFieldValue(name, start)
}

func (p *parser) parseGroup(field string) node {
	open := p.pos
	p.pos++
	p.skipWS()
	if !p.eof() && p.s[p.pos] == ')' {
		p.fail(open, "empty group '()'")
	}
	n := p.parseOr(field)
	p.skipWS()
	if p.eof() || p.s[p.pos] != ')' {
		p.fail(p.pos, "expected ')' to close '(' at position %d", open)
	}
	p.pos++
	p.checkAfterValue()
	return n
}

// checkAfterValue rejects a value glued to a quote or a parenthesis, which is
// almost always a typo or an unquoted value with special chars.
func (p *parser) checkAfterValue() {
	if p.eof() {
		return
	}
	switch c := p.s[p.pos]; c {
	case '"', '(':
		p.fail(p.pos, "unexpected %q right after a value; put the whole value in quotes or escape it with '\\'", string(c))
	}
}

// parseFieldValue parses what follows `name:`; namePos is where name starts.
func (p *parser) parseFieldValue(name string, namePos int) node {
	if name == "_exists_" {
		v, _, _ := p.readBare(false)
		if v.quoted || len(v.parts) != 1 || v.parts[0].star || !analystFieldRe.MatchString(v.parts[0].lit) {
			p.fail(v.pos, "_exists_ expects a field name")
		}
		f := p.fieldName(v.parts[0].lit, v.pos)
		return p.existsLeaf(f)
	}
	field := p.fieldName(name, namePos)
	if p.eof() || p.atTerm(p.pos) && p.s[p.pos] != '(' && p.s[p.pos] != '"' {
		p.fail(p.pos, "expected a value after '%s:'", name)
	}
	start := p.pos
	switch p.s[p.pos] {
	case '(':
		return p.parseGroup(field)
	case '"':
		return p.valueLeaf(field, p.readQuoted())
	case '/':
		if re, ok := p.tryRegex(); ok {
			return p.regexLeaf(field, re, start)
		}
	case '[', '{':
		return p.parseRange(field)
	case '>', '<':
		return p.parseCompare(field)
	}
	v, _, _ := p.readBare(false)
	return p.valueLeaf(field, v)
}

func (p *parser) fieldName(name string, pos int) string {
	f := mapField(name)
	switch f {
	case "_stream", "_stream_id":
		p.fail(pos, "field %q cannot be searched", name)
	}
	return f
}

// ---- values ----

type part struct {
	lit  string
	star bool
}

type value struct {
	parts  []part // literal runs and '*' wildcards (quoted values have no wildcards)
	quoted bool
	pos    int
}

// literal returns the value when it has no wildcard.
func (v value) literal() (string, bool) {
	if len(v.parts) == 0 {
		return "", true
	}
	if len(v.parts) == 1 && !v.parts[0].star {
		return v.parts[0].lit, true
	}
	return "", false
}

// escapable are the chars a backslash escapes in a bare word; before any
// other char a backslash is kept as is (so C:\Windows stays C:\Windows).
func escapable(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(`\"():*|/[]{}<>!-+&~^=?,`, r)
}

// readBare reads a bare word. If fieldSplit is set and the word so far is a
// field name followed by ':', it stops there and returns (name, true) with the
// position after the ':'.
func (p *parser) readBare(fieldSplit bool) (value, string, bool) {
	start := p.pos
	v := value{pos: start}
	var cur strings.Builder
	plain := true // no escapes and no wildcard so far
	flush := func() {
		if cur.Len() > 0 {
			v.parts = append(v.parts, part{lit: cur.String()})
			cur.Reset()
		}
	}
	for !p.eof() {
		r, size := p.peekRune()
		if isTerm(r) {
			break
		}
		switch r {
		case '\\':
			if p.pos+size < len(p.s) {
				r2, s2 := utf8.DecodeRuneInString(p.s[p.pos+size:])
				if escapable(r2) {
					cur.WriteRune(r2)
					p.pos += size + s2
					plain = false
					continue
				}
			}
			cur.WriteByte('\\')
			p.pos += size
			continue
		case '*':
			flush()
			if n := len(v.parts); n == 0 || !v.parts[n-1].star {
				v.parts = append(v.parts, part{star: true})
			}
			p.pos += size
			plain = false
			continue
		case ':':
			if fieldSplit && plain && analystFieldRe.MatchString(p.s[start:p.pos]) &&
				!strings.HasPrefix(p.s[p.pos:], "://") {
				name := p.s[start:p.pos]
				p.pos += size
				return value{}, name, true
			}
		}
		cur.WriteRune(r)
		p.pos += size
	}
	flush()
	if p.pos == start {
		r, _ := p.peekRune()
		p.fail(p.pos, "unexpected %q", string(r))
	}
	p.checkAfterValue()
	return v, "", false
}

// readQuoted reads "..." where \" and \\ are escapes and any other backslash
// is literal (so "C:\Windows\System32" means what it says). A '*' right after
// the closing quote makes it a prefix.
func (p *parser) readQuoted() value {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.eof() {
			p.fail(start, "unterminated quoted string")
		}
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			v := value{quoted: true, pos: start}
			if b.Len() > 0 {
				v.parts = []part{{lit: b.String()}}
			}
			if !p.eof() && p.s[p.pos] == '*' {
				p.pos++
				v.parts = append(v.parts, part{star: true})
			}
			if !p.atTerm(p.pos) {
				p.fail(p.pos, "unexpected %q right after a quoted string; put a space before it", p.s[p.pos:p.pos+1])
			}
			p.checkAfterValue()
			return v
		case c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '"' || p.s[p.pos+1] == '\\'):
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// tryRegex reads /regex/ when the closing '/' is followed by the end of the
// word; otherwise (e.g. /etc/passwd) it leaves the position alone.
func (p *parser) tryRegex() (string, bool) {
	start := p.pos
	var b strings.Builder
	for i := start + 1; i < len(p.s); i++ {
		c := p.s[i]
		switch {
		case c == '\\' && i+1 < len(p.s) && p.s[i+1] == '/':
			b.WriteByte('/')
			i++
		case c == '\\' && i+1 < len(p.s):
			b.WriteByte('\\')
			b.WriteByte(p.s[i+1])
			i++
		case c == '/':
			if !p.atTerm(i + 1) {
				return "", false
			}
			p.pos = i + 1
			return b.String(), true
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

// ---- leaves ----

// prefixFor is the "field:" in front of a LogsQL filter. _msg is spelled out
// (LogsQL rejects e.g. `a AND ~"re"` without a field in front of '~').
func prefixFor(field string) string {
	if field == "" {
		field = msgField
	}
	return quoteField(field) + ":"
}

// wordPrefixFor is prefixFor for i(...) filters, where _msg can be implied.
func wordPrefixFor(field string) string {
	if field == "" || field == msgField {
		return ""
	}
	return prefixFor(field)
}

func isText(field string) bool { return field == "" || textFields[field] }

func (p *parser) existsLeaf(field string) node {
	if field == timeField {
		return allNode{}
	}
	if field == msgField {
		return leafNode{msgField + ":*"}
	}
	return leafNode{quoteField(field) + ":*"}
}

func (p *parser) valueLeaf(field string, v value) node {
	if field == timeField {
		return p.timeValueLeaf(v)
	}
	pre := prefixFor(field)
	text := isText(field)
	parts := v.parts
	if len(parts) == 0 {
		if field == "" || field == msgField {
			p.fail(v.pos, "empty search phrase")
		}
		// field:"" matches events without the field (LogsQL treats empty as missing).
		return leafNode{pre + `=""`}
	}
	if len(parts) == 1 && parts[0].star {
		if field == "" {
			return allNode{}
		}
		return p.existsLeaf(field)
	}
	if lit, ok := v.literal(); ok {
		if !v.quoted && !text {
			if n, ok := ipLeaf(pre, lit); ok {
				return n
			}
		}
		if text {
			return leafNode{wordPrefixFor(field) + "i(" + quoteValue(lit) + ")"}
		}
		return leafNode{pre + "=" + quoteValue(lit)}
	}
	// prefix: lit*
	if len(parts) == 2 && !parts[0].star && parts[1].star {
		if text {
			return leafNode{wordPrefixFor(field) + "i(" + quoteValue(parts[0].lit) + "*)"}
		}
		return leafNode{pre + "=" + quoteValue(parts[0].lit) + "*"}
	}
	// substring: *lit*
	if len(parts) == 3 && parts[0].star && !parts[1].star && parts[2].star && !text {
		return leafNode{pre + "*" + quoteValue(parts[1].lit) + "*"}
	}
	return leafNode{pre + "~" + quoteValue(wildcardRegex(parts, text))}
}

// ipLeaf turns a CIDR into ipv4_range/ipv6_range and a bare IPv6 address into
// ipv6_range (representation-independent); a bare IPv4 stays an exact match.
func ipLeaf(pre, lit string) (node, bool) {
	if strings.Contains(lit, "/") {
		pfx, err := netip.ParsePrefix(lit)
		if err != nil {
			return nil, false
		}
		pfx = pfx.Masked()
		if pfx.Addr().Is4() {
			return leafNode{pre + "ipv4_range(" + quoteValue(pfx.String()) + ")"}, true
		}
		return leafNode{pre + "ipv6_range(" + quoteValue(pfx.String()) + ")"}, true
	}
	if strings.Contains(lit, ":") {
		a, err := netip.ParseAddr(lit)
		if err == nil && a.Is6() && a.Zone() == "" {
			return leafNode{pre + "ipv6_range(" + quoteValue(a.String()) + ")"}, true
		}
	}
	return nil, false
}

// wildcardRegex converts a wildcard pattern to RE2.
//
// Keyword fields match the whole value; '*' is any run of chars.
//
// Text fields match case-insensitively inside the text; '*' stays within one
// whitespace-separated word; a word boundary (\b, ASCII) is added where the
// pattern starts or ends with an ASCII word char. A middle '*' becomes
// [^\s\x{212A}]* with (?i:...) around each literal instead of a global (?i)
// and \S*: LogsQL prints every regex it parses (regexp/syntax String), and
// for a class closed under case folding, such as \S or \S under (?i), that
// walks ~125k runes (tens of ms per parse). Leaving out U+212A KELVIN SIGN
// (which folds with 'k') makes it stop at once; no log word is expected to
// hold that char.
func wildcardRegex(parts []part, text bool) string {
	leadStar := parts[0].star
	trailStar := parts[len(parts)-1].star
	first, last := 0, len(parts)
	if leadStar {
		first++
	}
	if trailStar {
		last--
	}
	mid := parts[first:last]
	hasStar := len(mid) > 1
	var b strings.Builder
	if text {
		if !hasStar {
			b.WriteString("(?i)")
		}
		if !leadStar && startsWithASCIIWord(mid[0].lit) {
			b.WriteString(`\b`)
		}
		for _, pt := range mid {
			switch {
			case pt.star:
				b.WriteString(`[^\s\x{212A}]*`)
			case hasStar:
				b.WriteString("(?i:" + regexp.QuoteMeta(pt.lit) + ")")
			default:
				b.WriteString(regexp.QuoteMeta(pt.lit))
			}
		}
		if !trailStar && endsWithASCIIWord(mid[len(mid)-1].lit) {
			b.WriteString(`\b`)
		}
		return b.String()
	}
	if hasStar {
		b.WriteString("(?s)")
	}
	if !leadStar {
		b.WriteString("^")
	}
	for _, pt := range mid {
		if pt.star {
			b.WriteString(".*")
		} else {
			b.WriteString(regexp.QuoteMeta(pt.lit))
		}
	}
	if !trailStar {
		b.WriteString("$")
	}
	return b.String()
}

func isASCIIWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func startsWithASCIIWord(s string) bool { return s != "" && isASCIIWord(s[0]) }

func endsWithASCIIWord(s string) bool { return s != "" && isASCIIWord(s[len(s)-1]) }

func (p *parser) regexLeaf(field, re string, pos int) node {
	if field == timeField {
		p.fail(pos, "@timestamp cannot be matched with a regex")
	}
	if re == "" {
		p.fail(pos, "empty regex")
	}
	if _, err := regexp.Compile(re); err != nil {
		p.fail(pos, "invalid regex: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return leafNode{prefixFor(field) + "~" + quoteValue(re)}
}

// timeLeaf checks a _time filter with LogsQL itself, which owns the
// timestamp and duration formats.
func (p *parser) timeLeaf(filter string, pos int) node {
	if _, err := logstorage.ParseFilter(filter); err != nil {
		p.fail(pos, "invalid timestamp for @timestamp (use e.g. 2024-05-01, 2024-05-01T10:00:00Z or a duration such as 1h)")
	}
	return leafNode{filter}
}

func (p *parser) timeValueLeaf(v value) node {
	if len(v.parts) == 1 && v.parts[0].star {
		return allNode{}
	}
	lit, ok := v.literal()
	if !ok || lit == "" {
		p.fail(v.pos, "@timestamp does not support wildcards; use a timestamp or a range")
	}
	return p.timeLeaf(timeField+":"+quoteValue(lit), v.pos)
}

// ---- ranges and comparisons ----

var numberRe = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)

type bound struct {
	s      string
	quoted bool
	pos    int
}

func (b bound) isStar() bool { return !b.quoted && b.s == "*" }

func (p *parser) readBound() bound {
	p.skipWS()
	if p.eof() {
		p.fail(p.pos, "unterminated range")
	}
	if p.s[p.pos] == '"' {
		v := p.readQuotedPlain()
		return v
	}
	start := p.pos
	for !p.eof() {
		r, size := p.peekRune()
		if unicode.IsSpace(r) || r == ']' || r == '}' || r == '[' || r == '{' || r == '(' || r == ')' || r == '"' || r == '|' {
			break
		}
		p.pos += size
	}
	if p.pos == start {
		p.fail(p.pos, "expected a range bound")
	}
	return bound{s: p.s[start:p.pos], pos: start}
}

// readQuotedPlain reads a quoted string with no wildcard suffix.
func (p *parser) readQuotedPlain() bound {
	start := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.eof() {
			p.fail(start, "unterminated quoted string")
		}
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			return bound{s: b.String(), quoted: true, pos: start}
		case c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '"' || p.s[p.pos+1] == '\\'):
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *parser) parseRange(field string) node {
	open := p.pos
	incLo := p.s[p.pos] == '['
	p.pos++
	lo := p.readBound()
	p.skipWS()
	if w := p.peekWord(); !strings.EqualFold(w, "TO") {
		p.fail(p.pos, "expected TO in range")
	}
	p.pos += 2
	hi := p.readBound()
	p.skipWS()
	if p.eof() || (p.s[p.pos] != ']' && p.s[p.pos] != '}') {
		p.fail(p.pos, "expected ']' or '}' to close the range at position %d", open)
	}
	incHi := p.s[p.pos] == ']'
	p.pos++
	if !p.atTerm(p.pos) {
		p.fail(p.pos, "unexpected %q after range", p.s[p.pos:p.pos+1])
	}
	p.checkAfterValue()

	opLo, opHi := ">", "<"
	if incLo {
		opLo = ">="
	}
	if incHi {
		opHi = "<="
	}
	switch {
	case lo.isStar() && hi.isStar():
		return p.existsLeaf(field)
	case lo.isStar():
		return p.compareLeaf(field, opHi, hi)
	case hi.isStar():
		return p.compareLeaf(field, opLo, lo)
	}

	if field == timeField {
		l, r := "(", ")"
		if incLo {
			l = "["
		}
		if incHi {
			r = "]"
		}
		return p.timeLeaf(timeField+":"+l+quoteValue(lo.s)+", "+quoteValue(hi.s)+r, lo.pos)
	}
	if numberRe.MatchString(lo.s) && numberRe.MatchString(hi.s) {
		l, r := "(", ")"
		if incLo {
			l = "["
		}
		if incHi {
			r = "]"
		}
		return leafNode{prefixFor(field) + "range" + l + lo.s + ", " + hi.s + r}
	}
	loA, err1 := netip.ParseAddr(lo.s)
	hiA, err2 := netip.ParseAddr(hi.s)
	if err1 == nil && err2 == nil && loA.Zone() == "" && hiA.Zone() == "" {
		if loA.Is4() != hiA.Is4() {
			p.fail(hi.pos, "range bounds mix IPv4 and IPv6")
		}
		if !incLo {
			loA = loA.Next()
		}
		if !incHi {
			hiA = hiA.Prev()
		}
		if !loA.IsValid() || !hiA.IsValid() || hiA.Less(loA) {
			p.fail(open, "empty IP range")
		}
		return ipRangeLeaf(field, loA, hiA)
	}
	bad := lo
	if numberRe.MatchString(lo.s) || err1 == nil {
		bad = hi
	}
	p.fail(bad.pos, "range bound %q is not a number or an IP address", bad.s)
	return nil
}

func ipRangeLeaf(field string, lo, hi netip.Addr) node {
	fn := "ipv6_range"
	if lo.Is4() {
		fn = "ipv4_range"
	}
	return leafNode{prefixFor(field) + fn + "(" + quoteValue(lo.String()) + ", " + quoteValue(hi.String()) + ")"}
}

func (p *parser) parseCompare(field string) node {
	op := p.s[p.pos : p.pos+1]
	p.pos++
	if !p.eof() && p.s[p.pos] == '=' {
		op += "="
		p.pos++
	}
	if p.eof() || p.atTerm(p.pos) && p.s[p.pos] != '"' {
		p.fail(p.pos, "expected a value after '%s'", op)
	}
	var b bound
	if p.s[p.pos] == '"' {
		b = p.readQuotedPlain()
		if !p.atTerm(p.pos) {
			p.fail(p.pos, "unexpected %q after a quoted string", p.s[p.pos:p.pos+1])
		}
	} else {
		start := p.pos
		for !p.eof() {
			r, size := p.peekRune()
			if isTerm(r) {
				break
			}
			p.pos += size
		}
		b = bound{s: p.s[start:p.pos], pos: start}
	}
	p.checkAfterValue()
	return p.compareLeaf(field, op, b)
}

func (p *parser) compareLeaf(field, op string, b bound) node {
	if field == timeField {
		return p.timeLeaf(timeField+":"+op+quoteValue(b.s), b.pos)
	}
	if numberRe.MatchString(b.s) {
		return leafNode{prefixFor(field) + op + b.s}
	}
	if a, err := netip.ParseAddr(b.s); err == nil && a.Zone() == "" {
		lo, hi := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
		if a.Is6() {
			lo, hi = netip.IPv6Unspecified(), netip.AddrFrom16([16]byte{
				255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
		}
		switch op {
		case ">":
			lo = a.Next()
		case ">=":
			lo = a
		case "<":
			hi = a.Prev()
		case "<=":
			hi = a
		}
		if !lo.IsValid() || !hi.IsValid() {
			p.fail(b.pos, "empty IP range")
		}
		return ipRangeLeaf(field, lo, hi)
	}
	p.fail(b.pos, "expected a number or an IP address after '%s', got %q", op, b.s)
	return nil
}

// ---- pipes ----

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (p *parser) readIdent() string {
	start := p.pos
	for !p.eof() && isIdentByte(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// peekKeyword reports (case-insensitively) whether kw is the next word.
func (p *parser) peekKeyword(kw string) bool {
	p.skipWS()
	end := p.pos + len(kw)
	if end > len(p.s) || !strings.EqualFold(p.s[p.pos:end], kw) {
		return false
	}
	return end >= len(p.s) || !isIdentByte(p.s[end]) && p.s[end] != '.' && p.s[end] != '@' && p.s[end] != '-'
}

func (p *parser) expectByte(c byte, what string) {
	p.skipWS()
	if p.eof() || p.s[p.pos] != c {
		p.fail(p.pos, "expected %s", what)
	}
	p.pos++
}

func (p *parser) parsePipeField() string {
	p.skipWS()
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if !isIdentByte(c) && c != '.' && c != '@' && c != '-' {
			break
		}
		p.pos++
	}
	name := p.s[start:p.pos]
	if name == "" || !pipeFieldRe.MatchString(name) {
		p.fail(start, "expected a field name")
	}
	return quoteField(mapField(name))
}

// parseFieldList: a, b, c  or  (a, b, c)
func (p *parser) parseFieldList() []string {
	p.skipWS()
	paren := !p.eof() && p.s[p.pos] == '('
	if paren {
		p.pos++
	}
	var out []string
	for {
		out = append(out, p.parsePipeField())
		p.skipWS()
		if !p.eof() && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		break
	}
	if paren {
		p.expectByte(')', "')' after the field list")
	}
	return out
}

func (p *parser) parseCount(what string, max uint64) uint64 {
	p.skipWS()
	start := p.pos
	for !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseUint(p.s[start:p.pos], 10, 64)
	if err != nil || n == 0 || n > max {
		p.fail(start, "expected %s: a whole number from 1 to %d", what, max)
	}
	return n
}

const maxPipeN = 1_000_000_000

func (p *parser) parsePipe() string {
	p.pos++ // '|'
	p.skipWS()
	namePos := p.pos
	name := strings.ToLower(p.readIdent())
	var out string
	switch name {
	case "stats":
		out = p.parseStats()
	case "top":
		n := uint64(10)
		p.skipWS()
		if !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			n = p.parseCount("the number of top values", maxPipeN)
		}
		if p.peekKeyword("by") {
			p.pos += 2
		}
		out = "top " + strconv.FormatUint(n, 10) + " by (" + strings.Join(p.parseFieldList(), ", ") + ")"
	case "sort":
		if p.peekKeyword("by") {
			p.pos += 2
		}
		var items []string
		for {
			f := p.parsePipeField()
			switch {
			case p.peekKeyword("desc"):
				p.pos += 4
				f += " desc"
			case p.peekKeyword("asc"):
				p.pos += 3
			}
			items = append(items, f)
			p.skipWS()
			if !p.eof() && p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			break
		}
		out = "sort by (" + strings.Join(items, ", ") + ")"
	case "head", "limit":
		out = "limit " + strconv.FormatUint(p.parseCount("the number of events", maxPipeN), 10)
	case "fields":
		out = "fields " + strings.Join(p.parseFieldList(), ", ")
	case "":
		p.fail(namePos, "expected a pipe name after '|' (stats, top, sort, head, limit, fields)")
	default:
		p.fail(namePos, "unknown pipe %q; supported pipes: stats, top, sort, head, limit, fields", name)
	}
	p.skipWS()
	if !p.eof() && !p.atPipe() {
		p.fail(p.pos, "unexpected %q after the %s pipe", p.s[p.pos:p.pos+1], name)
	}
	// LogsQL has the last word on pipe details (e.g. duplicate result names).
	if _, err := logstorage.ParseQuery("* | " + out); err != nil {
		p.fail(namePos, "invalid %s pipe: %s", name, err)
	}
	return out
}

var statsFuncs = map[string]struct {
	fn      string
	minArgs int
	maxArgs int
}{
	"count":          {"count", 0, 1},
	"count_uniq":     {"count_uniq", 1, 1},
	"dc":             {"count_uniq", 1, 1},
	"distinct_count": {"count_uniq", 1, 1},
	"sum":            {"sum", 1, 1},
	"avg":            {"avg", 1, 1},
	"min":            {"min", 1, 1},
	"max":            {"max", 1, 1},
}

func (p *parser) parseStats() string {
	var by []string
	if p.peekKeyword("by") {
		p.pos += 2
		by = p.parseFieldList()
	}
	var aggs []string
	for {
		p.skipWS()
		fpos := p.pos
		fname := strings.ToLower(p.readIdent())
		spec, ok := statsFuncs[fname]
		if !ok {
			if fname == "" {
				p.fail(fpos, "expected a stats function: count(), count_uniq(f), sum(f), avg(f), min(f), max(f)")
			}
			p.fail(fpos, "unknown stats function %q; supported: count, count_uniq, sum, avg, min, max", fname)
		}
		p.expectByte('(', "'(' after "+fname)
		var args []string
		p.skipWS()
		if !p.eof() && p.s[p.pos] != ')' {
			args = append(args, p.parsePipeField())
		}
		p.expectByte(')', "')' to close "+fname+"(")
		if len(args) < spec.minArgs || len(args) > spec.maxArgs {
			if spec.minArgs == 1 {
				p.fail(fpos, "%s() needs one field", fname)
			}
			p.fail(fpos, "%s() takes at most one field", fname)
		}
		agg := spec.fn + "(" + strings.Join(args, "") + ")"
		if p.peekKeyword("as") {
			p.pos += 2
			agg += " as " + p.parsePipeField()
		}
		aggs = append(aggs, agg)
		p.skipWS()
		if !p.eof() && p.s[p.pos] == ',' {
			p.pos++
			continue
		}
		break
	}
	if by == nil && p.peekKeyword("by") {
		p.pos += 2
		by = p.parseFieldList()
	}
	out := "stats "
	if len(by) > 0 {
		out += "by (" + strings.Join(by, ", ") + ") "
	}
	return out + strings.Join(aggs, ", ")
}
