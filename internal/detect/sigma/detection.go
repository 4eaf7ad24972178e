package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf16"

	"gopkg.in/yaml.v3"
)

// detection is a rule's compiled detection before field mapping: items
// carry Sigma field names; bind() resolves them per logsource variant.
type detection struct {
	searches []search
	cond     *cnode
	names    []string
}

// compiler compiles one rule's detection; warnings collect problems that do
// not stop the rule.
type compiler struct {
	placeholders map[string][]string
	warnings     []string
	warnLine     []int
}

func (c *compiler) warn(line int, format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
	c.warnLine = append(c.warnLine, line)
}

func (c *compiler) compileDetection(n *yaml.Node) (*detection, error) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, failf(lineOf(n), ErrRule, "detection must be a mapping")
	}
	d := &detection{}
	var conds []string
	condLine := n.Line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			condLine = k.Line
			switch v.Kind {
			case yaml.ScalarNode:
				conds = append(conds, v.Value)
			case yaml.SequenceNode:
				for _, x := range v.Content {
					if x.Kind != yaml.ScalarNode {
						return nil, failf(x.Line, ErrCondition, "condition list must hold strings")
					}
					conds = append(conds, x.Value)
				}
			default:
				return nil, failf(v.Line, ErrCondition, "condition must be a string or a list of strings")
			}
			continue
		case "timeframe":
			continue // only meaningful with the deprecated aggregations, refused below
		}
		s, err := c.compileSearch(k.Value, v)
		if err != nil {
			return nil, err
		}
		d.searches = append(d.searches, s)
		d.names = append(d.names, k.Value)
	}
	if len(conds) == 0 {
		return nil, failf(n.Line, ErrCondition, "missing condition")
	}
	var kids []*cnode
	for _, cs := range conds {
		cn, err := parseCondition(cs, d.names)
		if err != nil {
			return nil, &errAt{line: condLine, err: fmt.Errorf("%q: %w", cs, err)}
		}
		kids = append(kids, cn)
	}
	d.cond = kids[0]
	if len(kids) > 1 { // a list of conditions is their OR (Sigma 1)
		d.cond = &cnode{op: cOr, kids: kids}
	}
	return d, nil
}

func (c *compiler) compileSearch(name string, v *yaml.Node) (search, error) {
	s := search{name: name}
	switch v.Kind {
	case yaml.MappingNode:
		alt, err := c.compileMap(v)
		if err != nil {
			return s, err
		}
		s.alts = append(s.alts, alt)
	case yaml.SequenceNode:
		var kw []*yaml.Node
		for _, x := range v.Content {
			switch x.Kind {
			case yaml.MappingNode:
				alt, err := c.compileMap(x)
				if err != nil {
					return s, err
				}
				s.alts = append(s.alts, alt)
			case yaml.ScalarNode:
				kw = append(kw, x)
			default:
				return s, failf(x.Line, ErrRule, "search %s: a list must hold maps or keywords", name)
			}
		}
		if len(kw) > 0 {
			it, err := c.compileItem("", &yaml.Node{Kind: yaml.SequenceNode, Content: kw, Line: kw[0].Line})
			if err != nil {
				return s, err
			}
			s.alts = append(s.alts, []*item{it})
		}
	case yaml.ScalarNode:
		it, err := c.compileItem("", v)
		if err != nil {
			return s, err
		}
		s.alts = append(s.alts, []*item{it})
	default:
		return s, failf(v.Line, ErrRule, "search %s: unexpected YAML node", name)
	}
	if len(s.alts) == 0 {
		return s, failf(v.Line, ErrRule, "search %s is empty", name)
	}
	return s, nil
}

func (c *compiler) compileMap(m *yaml.Node) ([]*item, error) {
	var alt []*item
	for i := 0; i+1 < len(m.Content); i += 2 {
		it, err := c.compileItem(m.Content[i].Value, m.Content[i+1])
		if err != nil {
			return nil, err
		}
		alt = append(alt, it)
	}
	if len(alt) == 0 {
		return nil, failf(m.Line, ErrRule, "empty selection map")
	}
	return alt, nil
}

// mods is a parsed "|a|b|c" modifier chain.
type mods struct {
	chain                    []string // value transformations, in order
	all, cased, re, cidr     bool
	exists, fieldref, expand bool
	windash                  bool
	reFlags                  string
	cmp                      numOp
	hasCmp                   bool
	pos                      strKind // kEq, kPrefix, kSuffix, kContains (for fieldref)
}

func parseMods(spec []string, line int) (mods, error) {
	var m mods
	for _, x := range spec {
		switch x {
		case "contains":
			m.chain = append(m.chain, x)
			m.pos = kContains
		case "startswith":
			m.chain = append(m.chain, x)
			m.pos = kPrefix
		case "endswith":
			m.chain = append(m.chain, x)
			m.pos = kSuffix
		case "base64", "base64offset", "wide", "utf16le", "utf16be", "utf16":
			m.chain = append(m.chain, x)
		case "all":
			m.all = true
		case "cased":
			m.cased = true
		case "re":
			m.re = true
		case "i", "m", "s":
			if !m.re {
				return m, failf(line, ErrModifier, "|%s only follows |re", x)
			}
			m.reFlags += x
		case "cidr":
			m.cidr = true
		case "exists":
			m.exists = true
		case "fieldref":
			m.fieldref = true
		case "expand":
			m.expand = true
		case "windash":
			m.windash = true
		case "gt":
			m.cmp, m.hasCmp = opGt, true
		case "gte":
			m.cmp, m.hasCmp = opGte, true
		case "lt":
			m.cmp, m.hasCmp = opLt, true
		case "lte":
			m.cmp, m.hasCmp = opLte, true
		default:
			return m, failf(line, ErrModifier, "unknown modifier |%s", x)
		}
	}
	return m, nil
}

// compileItem compiles "Field|mods: value(s)". field "" is a keyword search.
func (c *compiler) compileItem(spec string, v *yaml.Node) (*item, error) {
	parts := strings.Split(spec, "|")
	it := &item{field: parts[0], line: v.Line}
	md, err := parseMods(parts[1:], v.Line)
	if err != nil {
		return nil, err
	}
	it.all = md.all
	if it.field == "" && md.pos == kEq {
		// Keywords search the text: a substring match, as full-text search
		// backends treat unbound values.
		md.chain = append(md.chain, "contains")
	}
	var values []*yaml.Node
	switch v.Kind {
	case yaml.SequenceNode:
		values = v.Content
	case yaml.ScalarNode:
		values = []*yaml.Node{v}
	case yaml.AliasNode:
		values = []*yaml.Node{v.Alias}
	default:
		return nil, failf(v.Line, ErrRule, "field %s: value must be a scalar or a list", spec)
	}
	if len(values) == 0 {
		return nil, failf(v.Line, ErrRule, "field %s: empty value list", spec)
	}
	for _, x := range values {
		ms, err := c.compileValue(spec, md, x)
		if err != nil {
			return nil, err
		}
		it.ms = append(it.ms, ms...)
	}
	if !it.all {
		it.ms = mergeLiterals(it.ms)
	}
	if it.field == "" {
		for _, m := range it.ms {
			if _, ok := m.(nullMatcher); ok {
				return nil, failf(v.Line, ErrRule, "keyword search cannot be null")
			}
		}
	}
	return it, nil
}

func isNull(x *yaml.Node) bool { return x.Kind == yaml.ScalarNode && x.ShortTag() == "!!null" }

func (c *compiler) compileValue(spec string, md mods, x *yaml.Node) ([]matcher, error) {
	if x.Kind != yaml.ScalarNode {
		return nil, failf(x.Line, ErrRule, "field %s: nested value (only scalars are allowed in a value list)", spec)
	}
	tag := x.ShortTag()
	switch {
	case md.exists:
		var b bool
		if err := x.Decode(&b); err != nil || tag != "!!bool" {
			return nil, failf(x.Line, ErrModifier, "field %s: |exists takes true or false", spec)
		}
		return []matcher{existsMatcher{want: b}}, nil
	case isNull(x):
		return []matcher{nullMatcher{}}, nil
	case md.re:
		flags := "" // |re is case-sensitive unless |i
		if md.reFlags != "" {
			flags = "(?" + md.reFlags + ")"
		}
		re, err := regexp.Compile(flags + x.Value)
		if err != nil {
			return nil, failf(x.Line, ErrRegexp, "field %s: %v", spec, err)
		}
		return []matcher{newReMatcher(flags+x.Value, re)}, nil
	case md.cidr:
		p, err := netip.ParsePrefix(strings.TrimSpace(x.Value))
		if err != nil {
			return nil, failf(x.Line, ErrModifier, "field %s: |cidr: %v", spec, err)
		}
		return []matcher{&cidrMatcher{pfx: p.Masked()}}, nil
	case md.hasCmp:
		f, ok := parseNum(x.Value)
		if !ok {
			return nil, failf(x.Line, ErrModifier, "field %s: comparison needs a number, got %q", spec, x.Value)
		}
		return []matcher{&numMatcher{op: md.cmp, n: f, text: x.Value}}, nil
	case md.fieldref:
		return []matcher{&fieldrefMatcher{otherField: x.Value, kind: md.pos}}, nil
	}
	if (tag == "!!int" || tag == "!!float") && len(md.chain) == 0 && !md.windash && !md.expand {
		f, ok := parseNum(x.Value)
		if ok {
			return []matcher{&numMatcher{op: opEq, n: f, text: strings.ToLower(x.Value)}}, nil
		}
	}
	texts := []string{x.Value}
	if md.expand {
		texts = c.expandPlaceholders(texts, x.Line, spec)
		if len(texts) == 0 {
			return []matcher{neverMatcher{}}, nil
		}
	}
	if md.windash {
		var out []string
		for _, t := range texts {
			v := windashVariants(t)
			if v == nil {
				return nil, failf(x.Line, ErrModifier, "field %s: |windash: more than %d dashes would expand to too many values", spec, maxWindash)
			}
			out = append(out, v...)
		}
		texts = out
	}
	var out []matcher
	for _, t := range texts {
		vs := []sstr{parseSigmaString(t)}
		for _, step := range md.chain {
			var next []sstr
			for _, s := range vs {
				r, err := applyTransform(step, s)
				if err != nil {
					return nil, failf(x.Line, ErrModifier, "field %s: %v", spec, err)
				}
				next = append(next, r...)
			}
			vs = next
		}
		for _, s := range vs {
			out = append(out, newStrMatcher(s, md.cased))
		}
	}
	return out, nil
}

func applyTransform(step string, s sstr) ([]sstr, error) {
	switch step {
	case "contains":
		return []sstr{s.startStar().endStar()}, nil
	case "startswith":
		return []sstr{s.endStar()}, nil
	case "endswith":
		return []sstr{s.startStar()}, nil
	}
	if s.hasWild() {
		return nil, fmt.Errorf("|%s cannot encode a value with wildcards (%s)", step, s)
	}
	p := s.plain()
	switch step {
	case "wide", "utf16le":
		return []sstr{literal(utf16Bytes(p, false, false))}, nil
	case "utf16be":
		return []sstr{literal(utf16Bytes(p, true, false))}, nil
	case "utf16":
		return []sstr{literal(utf16Bytes(p, false, true))}, nil
	case "base64":
		return []sstr{literal(base64.StdEncoding.EncodeToString([]byte(p)))}, nil
	case "base64offset":
		var out []sstr
		for _, v := range base64Offsets(p) {
			out = append(out, literal(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown transformation %s", step)
}

// base64Offsets are the three encodings of v at byte offsets 0, 1 and 2 of
// a longer base64 text, trimmed to the characters that do not depend on
// the surrounding bytes (as the Sigma specification defines |base64offset).
func base64Offsets(v string) []string {
	start := [3]int{0, 2, 3}
	endTrim := [3]int{0, 3, 2}
	out := make([]string, 0, 3)
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, i, i+len(v)), v...))
		end := len(enc) - endTrim[(len(v)+i)%3]
		if start[i] >= end {
			continue
		}
		out = append(out, enc[start[i]:end])
	}
	return out
}

func utf16Bytes(s string, bigEndian, bom bool) string {
	var b []byte
	if bom {
		b = append(b, 0xFF, 0xFE)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}

// maxWindash bounds the dashes |windash expands (5^n values).
const maxWindash = 4

// windashVariants expands every dash or slash that starts a word (regexp
// \B[-/]\b) to -, /, en dash, em dash and horizontal bar, as |windash does;
// nil when there are more than maxWindash.
func windashVariants(s string) []string {
	isWord := func(b byte) bool {
		return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
	}
	var pos []int
	for i := 0; i < len(s); i++ {
		if (s[i] == '-' || s[i] == '/') && (i == 0 || !isWord(s[i-1])) && i+1 < len(s) && isWord(s[i+1]) {
			pos = append(pos, i)
		}
	}
	if len(pos) > maxWindash {
		return nil
	}
	out := []string{""}
	last := 0
	for _, p := range pos {
		var next []string
		for _, o := range out {
			for _, d := range []string{"-", "/", "–", "—", "―"} {
				next = append(next, o+s[last:p]+d)
			}
		}
		out = next
		last = p + 1
	}
	for i := range out {
		out[i] += s[last:]
	}
	return out
}

// expandPlaceholders replaces %name% by each configured value. A value with
// an unknown placeholder is dropped with a warning (it matches nothing).
func (c *compiler) expandPlaceholders(texts []string, line int, spec string) []string {
	var out []string
	for _, t := range texts {
		out = append(out, c.expandOne(t, line, spec)...)
	}
	return out
}

func (c *compiler) expandOne(t string, line int, spec string) []string {
	i := strings.IndexByte(t, '%')
	if i < 0 {
		return []string{t}
	}
	j := strings.IndexByte(t[i+1:], '%')
	if j < 0 {
		return []string{t}
	}
	name := t[i+1 : i+1+j]
	vals, ok := c.placeholders[name]
	if !ok {
		for k, v := range c.placeholders {
			if strings.EqualFold(k, name) {
				vals, ok = v, true
				break
			}
		}
	}
	if !ok {
		c.warn(line, "field %s: placeholder %%%s%% has no values configured; this value matches nothing", spec, name)
		return nil
	}
	// Only the rest of the text is expanded further: a configured value may
	// itself contain a %.
	tails := c.expandOne(t[i+2+j:], line, spec)
	var out []string
	for _, v := range vals {
		for _, tail := range tails {
			out = append(out, t[:i]+v+tail)
		}
	}
	return out
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}
