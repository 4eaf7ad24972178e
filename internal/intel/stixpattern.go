package intel

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// STIX 2.1 patterning (STIX 2.1 part 9): a parser to an AST, a canonical
// renderer (String) and the extraction of matchable observables.
//
// Grammar, lowest precedence first:
//
//	pattern      = obsExpr EOF
//	obsExpr      = obsOr  { FOLLOWEDBY obsOr }
//	obsOr        = obsAnd { OR obsAnd }
//	obsAnd       = obsUnit { AND obsUnit }
//	obsUnit      = ( "[" compExpr "]" | "(" obsExpr ")" ) { qualifier }
//	qualifier    = WITHIN number SECONDS | REPEATS int TIMES | START t'…' STOP t'…'
//	compExpr     = compAnd { OR compAnd }
//	compAnd      = compUnit { AND compUnit }
//	compUnit     = "(" compExpr ")" | EXISTS path | path [NOT] op value
//	op           = "=" "==" "!=" "<>" "<" "<=" ">" ">=" | IN set | LIKE | MATCHES | ISSUBSET | ISSUPERSET
//	path         = objectType ":" key { "." key | "[" (int | "*") "]" }
//	key          = identifier | 'string'
//	value        = 'string' | int | float | true | false | t'…' | h'…' | b'…'
//
// Keywords are upper case, as in the specification's grammar. Strings
// escape only \' and \\.

// Pattern is a parsed STIX pattern.
type Pattern struct {
	Expr ObsExpr
}

// ObsExpr is an observation expression: *ObsBool, *Observation or *ObsGroup.
type ObsExpr interface{ obsString(*strings.Builder) }

// ObsBool joins observation expressions with AND, OR or FOLLOWEDBY.
type ObsBool struct {
	Op    string
	Items []ObsExpr
}

// Observation is "[ comparison expression ]" with its qualifiers.
type Observation struct {
	Comp  CompExpr
	Quals []Qualifier
}

// ObsGroup is "( observation expression )" with its qualifiers.
type ObsGroup struct {
	Inner ObsExpr
	Quals []Qualifier
}

// Qualifier is WITHIN n SECONDS, REPEATS n TIMES or START t'…' STOP t'…'.
type Qualifier struct {
	Kind  string // WITHIN, REPEATS, START
	N     string // the number, as written
	Start string // START timestamp (RFC 3339)
	Stop  string
}

// CompExpr is a comparison expression: *CompBool, *CompGroup or *Comparison.
type CompExpr interface{ compString(*strings.Builder) }

// CompBool joins comparison expressions with AND or OR.
type CompBool struct {
	Op    string
	Items []CompExpr
}

// CompGroup is "( comparison expression )".
type CompGroup struct{ Inner CompExpr }

// Comparison is one property test.
type Comparison struct {
	Path    ObjectPath
	Negated bool      // NOT before the operator
	Op      string    // =, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET, EXISTS
	Value   Literal   // unset for IN and EXISTS
	Set     []Literal // IN
}

// ObjectPath is "type:step.step[0]…".
type ObjectPath struct {
	ObjectType string
	Steps      []PathStep
}

// PathStep is a property key or a list index.
type PathStep struct {
	Key    string
	Quoted bool // the key was written as a string ('SHA-256')
	Index  string
	IsList bool // [Index], Index is a number or "*"
}

// Literal kinds.
const (
	LitString    = "string"
	LitInt       = "int"
	LitFloat     = "float"
	LitBool      = "bool"
	LitTimestamp = "timestamp"
	LitHex       = "hex"
	LitBinary    = "binary"
)

// Literal is a constant; Str holds strings and the contents of t”, h”
// and b” decoded; Raw is other kinds as written.
type Literal struct {
	Kind string
	Str  string
	Raw  string
}

// PatternError locates a syntax error; it wraps ErrPattern.
type PatternError struct {
	Pos int // byte offset in the pattern
	Msg string
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("invalid STIX pattern at byte %d: %s", e.Pos, e.Msg)
}

// Unwrap makes errors.Is(err, ErrPattern) true.
func (e *PatternError) Unwrap() error { return ErrPattern }

// ParsePattern parses a STIX 2.1 pattern.
func ParsePattern(s string) (*Pattern, error) {
	p := &patParser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	expr, err := p.obsExpr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s after the pattern", t.desc())
	}
	return &Pattern{Expr: expr}, nil
}

// String renders the pattern canonically (single spaces, strings quoted
// with ”); parsing the result gives the same pattern.
func (p *Pattern) String() string {
	var b strings.Builder
	p.Expr.obsString(&b)
	return b.String()
}

func (o *ObsBool) obsString(b *strings.Builder) {
	writeJoined(b, o.Op, o.Items, ObsExpr.obsString)
}

// writeJoined renders items separated by " op ".
func writeJoined[T any](b *strings.Builder, op string, items []T, write func(T, *strings.Builder)) {
	for i, it := range items {
		if i > 0 {
			b.WriteString(" " + op + " ")
		}
		write(it, b)
	}
}

func (o *Observation) obsString(b *strings.Builder) {
	b.WriteByte('[')
	o.Comp.compString(b)
	b.WriteByte(']')
	writeQuals(b, o.Quals)
}

func (o *ObsGroup) obsString(b *strings.Builder) {
	b.WriteByte('(')
	o.Inner.obsString(b)
	b.WriteByte(')')
	writeQuals(b, o.Quals)
}

func writeQuals(b *strings.Builder, qs []Qualifier) {
	for _, q := range qs {
		switch q.Kind {
		case "WITHIN":
			b.WriteString(" WITHIN " + q.N + " SECONDS")
		case "REPEATS":
			b.WriteString(" REPEATS " + q.N + " TIMES")
		case "START":
			b.WriteString(" START t'" + q.Start + "' STOP t'" + q.Stop + "'")
		}
	}
}

func (c *CompBool) compString(b *strings.Builder) {
	writeJoined(b, c.Op, c.Items, CompExpr.compString)
}

func (c *CompGroup) compString(b *strings.Builder) {
	b.WriteByte('(')
	c.Inner.compString(b)
	b.WriteByte(')')
}

func (c *Comparison) compString(b *strings.Builder) {
	if c.Op == "EXISTS" {
		b.WriteString("EXISTS " + c.Path.String())
		return
	}
	b.WriteString(c.Path.String())
	b.WriteByte(' ')
	if c.Negated {
		b.WriteString("NOT ")
	}
	b.WriteString(c.Op)
	b.WriteByte(' ')
	if c.Op == "IN" {
		b.WriteByte('(')
		for i, l := range c.Set {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(l.String())
		}
		b.WriteByte(')')
		return
	}
	b.WriteString(c.Value.String())
}

// String renders the path as written in STIX (hashes.'SHA-256').
func (op ObjectPath) String() string {
	var b strings.Builder
	b.WriteString(op.ObjectType)
	b.WriteByte(':')
	for i, s := range op.Steps {
		switch {
		case s.IsList:
			b.WriteString("[" + s.Index + "]")
			continue
		case i > 0:
			b.WriteByte('.')
		}
		if s.Quoted {
			b.WriteString(quoteSTIX(s.Key))
		} else {
			b.WriteString(s.Key)
		}
	}
	return b.String()
}

// Property is the path after "type:" (hashes.'SHA-256', from_ref.value).
func (op ObjectPath) Property() string {
	s := op.String()
	return s[len(op.ObjectType)+1:]
}

// String renders the literal in pattern syntax.
func (l Literal) String() string {
	switch l.Kind {
	case LitString:
		return quoteSTIX(l.Str)
	case LitTimestamp:
		return "t'" + l.Str + "'"
	case LitHex:
		return "h'" + l.Str + "'"
	case LitBinary:
		return "b'" + l.Str + "'"
	}
	return l.Raw
}

func quoteSTIX(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Comparisons lists every comparison of the pattern in source order.
func (p *Pattern) Comparisons() []*Comparison {
	var out []*Comparison
	var walkComp func(CompExpr)
	walkComp = func(c CompExpr) {
		switch c := c.(type) {
		case *CompBool:
			for _, it := range c.Items {
				walkComp(it)
			}
		case *CompGroup:
			walkComp(c.Inner)
		case *Comparison:
			out = append(out, c)
		}
	}
	var walkObs func(ObsExpr)
	walkObs = func(o ObsExpr) {
		switch o := o.(type) {
		case *ObsBool:
			for _, it := range o.Items {
				walkObs(it)
			}
		case *ObsGroup:
			walkObs(o.Inner)
		case *Observation:
			walkComp(o.Comp)
		}
	}
	walkObs(p.Expr)
	return out
}

// Observable is a value an event can be matched against.
type Observable struct {
	Type  Type
	Value string // normalized
}

// Observables extracts what single events can be matched against: the
// equality comparisons (= or IN) on supported object paths, where the
// comparisons and observations are joined by OR only (each yields an
// indicator). What cannot be matched per event (AND, FOLLOWEDBY,
// qualifiers, other operators, unsupported paths, invalid values) comes
// back as errors wrapping ErrUnsupported or ErrInvalid; an OR keeps its
// matchable branches.
func (p *Pattern) Observables() ([]Observable, []error) {
	var obs []Observable
	var errs []error
	var walkObs func(ObsExpr)
	walkObs = func(o ObsExpr) {
		switch o := o.(type) {
		case *ObsBool:
			if o.Op != "OR" {
				errs = append(errs, fmt.Errorf("%w: observations joined by %s need correlation across events", ErrUnsupported, o.Op))
				return
			}
			for _, it := range o.Items {
				walkObs(it)
			}
		case *ObsGroup:
			if len(o.Quals) > 0 {
				errs = append(errs, fmt.Errorf("%w: qualifier %s", ErrUnsupported, o.Quals[0].Kind))
				return
			}
			walkObs(o.Inner)
		case *Observation:
			if len(o.Quals) > 0 {
				errs = append(errs, fmt.Errorf("%w: qualifier %s", ErrUnsupported, o.Quals[0].Kind))
				return
			}
			extractComp(o.Comp, &obs, &errs)
		}
	}
	walkObs(p.Expr)
	return obs, errs
}

func extractComp(c CompExpr, obs *[]Observable, errs *[]error) {
	switch c := c.(type) {
	case *CompGroup:
		extractComp(c.Inner, obs, errs)
	case *CompBool:
		if c.Op == "AND" {
			var b strings.Builder
			c.compString(&b)
			*errs = append(*errs, fmt.Errorf("%w: AND-joined comparisons (%s)", ErrUnsupported, b.String()))
			return
		}
		for _, it := range c.Items {
			extractComp(it, obs, errs)
		}
	case *Comparison:
		var b strings.Builder
		c.compString(&b)
		typ, ok := pathType(c.Path)
		if !ok {
			*errs = append(*errs, fmt.Errorf("%w: object path %s (%s)", ErrUnsupported, c.Path, b.String()))
			return
		}
		var vals []Literal
		switch {
		case c.Negated || c.Op != "=" && c.Op != "IN":
			op := c.Op
			if c.Negated {
				op = "NOT " + op
			}
			*errs = append(*errs, fmt.Errorf("%w: operator %s (%s)", ErrUnsupported, op, b.String()))
			return
		case c.Op == "IN":
			vals = c.Set
		default:
			vals = []Literal{c.Value}
		}
		for _, v := range vals {
			if v.Kind != LitString {
				*errs = append(*errs, fmt.Errorf("%w: %s compared with a %s (%s)", ErrInvalid, c.Path, v.Kind, b.String()))
				continue
			}
			t, n, err := Normalize(typ, v.Str)
			if err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %w", c.Path, err))
				continue
			}
			*obs = append(*obs, Observable{Type: t, Value: n})
		}
	}
}

// pathType maps a STIX object path to the indicator type of its values
// ("" detects: network-traffic references may be IPs or domains).
func pathType(p ObjectPath) (Type, bool) {
	prop := p.Property()
	switch p.ObjectType {
	case "ipv4-addr", "ipv6-addr":
		return TypeCIDR, prop == "value" // single addresses and prefixes
	case "domain-name":
		return TypeDomain, prop == "value"
	case "url":
		return TypeURL, prop == "value"
	case "email-addr":
		return TypeEmail, prop == "value"
	case "email-message":
		switch prop {
		case "from_ref.value", "sender_ref.value", "to_refs[*].value", "cc_refs[*].value", "bcc_refs[*].value":
			return TypeEmail, true
		}
	case "network-traffic":
		switch prop {
		case "dst_ref.value", "src_ref.value":
			return "", true
		}
	case "file", "artifact", "x509-certificate":
		if prop == "name" && p.ObjectType == "file" {
			return TypeFilename, true
		}
		if len(p.Steps) == 2 && p.Steps[0].Key == "hashes" && !p.Steps[1].IsList {
			switch strings.ReplaceAll(strings.ToUpper(p.Steps[1].Key), "-", "") {
			case "MD5":
				return TypeMD5, true
			case "SHA1":
				return TypeSHA1, true
			case "SHA256":
				return TypeSHA256, true
			}
		}
	case "process":
		switch prop {
		case "name", "image_ref.name", "binary_ref.name":
			return TypeFilename, true
		}
	}
	return "", false
}

// ---- lexer and parser ----

const (
	tEOF = iota
	tPunct
	tOp
	tWord // identifier or keyword
	tString
	tNumber
	tTyped // t'…', h'…', b'…'
)

type token struct {
	kind int
	text string // punct/op/word/number as written; string and typed contents decoded
	pre  byte   // t, h or b for tTyped
	pos  int
}

func (t token) desc() string {
	switch t.kind {
	case tEOF:
		return "end of pattern"
	case tString:
		return "string " + quoteSTIX(t.text)
	}
	return strconv.Quote(t.text)
}

type patParser struct {
	src  string
	toks []token
	i    int
}

func (p *patParser) errAt(t token, format string, args ...any) error {
	return &PatternError{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }

func (p *patParser) lex() error {
	s := p.src
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			p.toks = append(p.toks, token{kind: tEOF, pos: i})
			return nil
		}
		start := i
		c := s[i]
		switch {
		case strings.IndexByte("[]():,.*", c) >= 0:
			p.toks = append(p.toks, token{kind: tPunct, text: s[i : i+1], pos: i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			n := 1
			if i+1 < len(s) {
				two := s[i : i+2]
				if two == "==" || two == "!=" || two == "<>" || two == "<=" || two == ">=" {
					n = 2
				}
			}
			if s[i:i+n] == "!" {
				return &PatternError{Pos: i, Msg: "'!' must be followed by '='"}
			}
			p.toks = append(p.toks, token{kind: tOp, text: s[i : i+n], pos: i})
			i += n
		case c == '\'':
			str, n, err := lexString(s, i)
			if err != nil {
				return err
			}
			p.toks = append(p.toks, token{kind: tString, text: str, pos: start})
			i += n
		case (c == 't' || c == 'h' || c == 'b') && i+1 < len(s) && s[i+1] == '\'':
			str, n, err := lexString(s, i+1)
			if err != nil {
				return err
			}
			if err := checkTyped(c, str); err != nil {
				return &PatternError{Pos: i, Msg: err.Error()}
			}
			p.toks = append(p.toks, token{kind: tTyped, text: str, pre: c, pos: start})
			i += 1 + n
		case c == '-' || c == '+' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			num := s[i:j]
			if _, err := strconv.ParseFloat(num, 64); err != nil {
				return &PatternError{Pos: i, Msg: fmt.Sprintf("bad number %q", num)}
			}
			p.toks = append(p.toks, token{kind: tNumber, text: num, pos: start})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			p.toks = append(p.toks, token{kind: tWord, text: s[i:j], pos: start})
			i = j
		default:
			return &PatternError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", c)}
		}
	}
}

// lexString reads '…' at s[i] and returns its decoded contents and length.
func lexString(s string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) && (s[j+1] == '\\' || s[j+1] == '\'') {
				b.WriteByte(s[j+1])
				j++
				continue
			}
			return "", 0, &PatternError{Pos: j, Msg: `only \' and \\ are escapes in a STIX string`}
		case '\'':
			return b.String(), j + 1 - i, nil
		default:
			b.WriteByte(s[j])
		}
	}
	return "", 0, &PatternError{Pos: i, Msg: "unterminated string"}
}

func checkTyped(pre byte, v string) error {
	switch pre {
	case 't':
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Errorf("bad timestamp t'%s' (want RFC 3339)", v)
		}
	case 'h':
		if len(v)%2 != 0 || !isHex(v) {
			return fmt.Errorf("bad hex literal h'%s'", v)
		}
	case 'b':
		for i := 0; i < len(v); i++ {
			c := v[i]
			if !(isIdentStart(c) && c != '_' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return fmt.Errorf("bad base64 literal b'%s'", v)
			}
		}
	}
	return nil
}

func (p *patParser) peek() token { return p.toks[p.i] }
func (p *patParser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *patParser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == w
}

func (p *patParser) isPunct(c string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == c
}

func (p *patParser) expectPunct(c string) error {
	if t := p.next(); t.kind != tPunct || t.text != c {
		return p.errAt(t, "expected %q, found %s", c, t.desc())
	}
	return nil
}

func (p *patParser) expectWord(w string) error {
	if t := p.next(); t.kind != tWord || t.text != w {
		return p.errAt(t, "expected %s, found %s", w, t.desc())
	}
	return nil
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 100

var obsLevels = []string{"FOLLOWEDBY", "OR", "AND"}

// obsExpr parses the observation level lvl (0 FOLLOWEDBY, 1 OR, 2 AND).
func (p *patParser) obsExpr(depth int) (ObsExpr, error) { return p.obsLevel(0, depth) }

func (p *patParser) obsLevel(lvl, depth int) (ObsExpr, error) {
	sub := func() (ObsExpr, error) {
		if lvl+1 < len(obsLevels) {
			return p.obsLevel(lvl+1, depth)
		}
		return p.obsUnit(depth)
	}
	items, err := parseJoined(p, obsLevels[lvl], sub)
	if err != nil || len(items) == 1 {
		return first(items), err
	}
	return &ObsBool{Op: obsLevels[lvl], Items: items}, nil
}

// parseJoined parses sub { op sub }.
func parseJoined[T any](p *patParser, op string, sub func() (T, error)) ([]T, error) {
	it, err := sub()
	if err != nil {
		return nil, err
	}
	items := []T{it}
	for p.isWord(op) {
		p.next()
		if it, err = sub(); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

func first[T any](items []T) T {
	var zero T
	if len(items) == 0 {
		return zero
	}
	return items[0]
}

func (p *patParser) obsUnit(depth int) (ObsExpr, error) {
	if depth > maxDepth {
		return nil, p.errAt(p.peek(), "nested deeper than %d", maxDepth)
	}
	t := p.next()
	var out ObsExpr
	var quals *[]Qualifier
	switch {
	case t.kind == tPunct && t.text == "[":
		c, err := p.compOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct("]"); err != nil {
			return nil, err
		}
		o := &Observation{Comp: c}
		out, quals = o, &o.Quals
	case t.kind == tPunct && t.text == "(":
		inner, err := p.obsExpr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		g := &ObsGroup{Inner: inner}
		out, quals = g, &g.Quals
	default:
		return nil, p.errAt(t, "expected '[' or '(' to start an observation, found %s", t.desc())
	}
	for {
		q, ok, err := p.qualifier()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		*quals = append(*quals, q)
	}
}

func (p *patParser) qualifier() (Qualifier, bool, error) {
	switch {
	case p.isWord("WITHIN"):
		p.next()
		n := p.next()
		if n.kind != tNumber || strings.HasPrefix(n.text, "-") {
			return Qualifier{}, false, p.errAt(n, "WITHIN needs a positive number of seconds, found %s", n.desc())
		}
		if err := p.expectWord("SECONDS"); err != nil {
			return Qualifier{}, false, err
		}
		return Qualifier{Kind: "WITHIN", N: n.text}, true, nil
	case p.isWord("REPEATS"):
		p.next()
		n := p.next()
		if v, err := strconv.Atoi(n.text); n.kind != tNumber || err != nil || v <= 0 {
			return Qualifier{}, false, p.errAt(n, "REPEATS needs a positive integer, found %s", n.desc())
		}
		if err := p.expectWord("TIMES"); err != nil {
			return Qualifier{}, false, err
		}
		return Qualifier{Kind: "REPEATS", N: n.text}, true, nil
	case p.isWord("START"):
		p.next()
		a := p.next()
		if a.kind != tTyped || a.pre != 't' {
			return Qualifier{}, false, p.errAt(a, "START needs a timestamp t'…', found %s", a.desc())
		}
		if err := p.expectWord("STOP"); err != nil {
			return Qualifier{}, false, err
		}
		b := p.next()
		if b.kind != tTyped || b.pre != 't' {
			return Qualifier{}, false, p.errAt(b, "STOP needs a timestamp t'…', found %s", b.desc())
		}
		return Qualifier{Kind: "START", Start: a.text, Stop: b.text}, true, nil
	}
	return Qualifier{}, false, nil
}

func (p *patParser) compOr(depth int) (CompExpr, error) {
	return p.compLevel("OR", depth)
}

func (p *patParser) compLevel(op string, depth int) (CompExpr, error) {
	sub := func() (CompExpr, error) {
		if op == "OR" {
			return p.compLevel("AND", depth)
		}
		return p.compUnit(depth)
	}
	items, err := parseJoined(p, op, sub)
	if err != nil || len(items) == 1 {
		return first(items), err
	}
	return &CompBool{Op: op, Items: items}, nil
}

func (p *patParser) compUnit(depth int) (CompExpr, error) {
	if depth > maxDepth {
		return nil, p.errAt(p.peek(), "nested deeper than %d", maxDepth)
	}
	if p.isPunct("(") {
		p.next()
		inner, err := p.compOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return &CompGroup{Inner: inner}, nil
	}
	if p.isWord("EXISTS") {
		p.next()
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		return &Comparison{Path: path, Op: "EXISTS"}, nil
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	c := &Comparison{Path: path}
	if p.isWord("NOT") {
		p.next()
		c.Negated = true
	}
	t := p.next()
	switch {
	case t.kind == tOp:
		c.Op = map[string]string{"==": "=", "<>": "!="}[t.text]
		if c.Op == "" {
			c.Op = t.text
		}
		c.Value, err = p.literal()
		if err != nil {
			return nil, err
		}
		if c.Op != "=" && c.Op != "!=" && c.Value.Kind == LitBool {
			return nil, p.errAt(t, "%s cannot compare a boolean", c.Op)
		}
	case t.kind == tWord && t.text == "IN":
		c.Op = "IN"
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		for {
			l, err := p.literal()
			if err != nil {
				return nil, err
			}
			c.Set = append(c.Set, l)
			if p.isPunct(",") {
				p.next()
				continue
			}
			break
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
	case t.kind == tWord && (t.text == "LIKE" || t.text == "MATCHES" || t.text == "ISSUBSET" || t.text == "ISSUPERSET"):
		c.Op = t.text
		v := p.next()
		if v.kind != tString {
			return nil, p.errAt(v, "%s needs a string, found %s", t.text, v.desc())
		}
		c.Value = Literal{Kind: LitString, Str: v.text}
	default:
		return nil, p.errAt(t, "expected a comparison operator after %s, found %s", path, t.desc())
	}
	return c, nil
}

func (p *patParser) literal() (Literal, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return Literal{Kind: LitString, Str: t.text}, nil
	case tNumber:
		if strings.Contains(t.text, ".") {
			return Literal{Kind: LitFloat, Raw: t.text}, nil
		}
		return Literal{Kind: LitInt, Raw: t.text}, nil
	case tTyped:
		kind := map[byte]string{'t': LitTimestamp, 'h': LitHex, 'b': LitBinary}[t.pre]
		return Literal{Kind: kind, Str: t.text}, nil
	case tWord:
		if t.text == "true" || t.text == "false" {
			return Literal{Kind: LitBool, Raw: t.text}, nil
		}
	}
	return Literal{}, p.errAt(t, "expected a value, found %s", t.desc())
}

func (p *patParser) path() (ObjectPath, error) {
	t := p.next()
	if t.kind != tWord {
		return ObjectPath{}, p.errAt(t, "expected an object type (e.g. ipv4-addr), found %s", t.desc())
	}
	op := ObjectPath{ObjectType: t.text}
	if err := p.expectPunct(":"); err != nil {
		return ObjectPath{}, err
	}
	key := func() error {
		k := p.next()
		switch k.kind {
		case tWord:
			op.Steps = append(op.Steps, PathStep{Key: k.text})
		case tString:
			op.Steps = append(op.Steps, PathStep{Key: k.text, Quoted: true})
		default:
			return p.errAt(k, "expected a property name, found %s", k.desc())
		}
		return nil
	}
	if err := key(); err != nil {
		return ObjectPath{}, err
	}
	for {
		switch {
		case p.isPunct("."):
			p.next()
			if err := key(); err != nil {
				return ObjectPath{}, err
			}
		case p.isPunct("["):
			p.next()
			t := p.next()
			idx := t.text
			if !(t.kind == tPunct && t.text == "*") {
				if _, err := strconv.Atoi(t.text); t.kind != tNumber || err != nil {
					return ObjectPath{}, p.errAt(t, "expected a list index or '*', found %s", t.desc())
				}
			}
			if err := p.expectPunct("]"); err != nil {
				return ObjectPath{}, err
			}
			op.Steps = append(op.Steps, PathStep{Index: idx, IsList: true})
		default:
			return op, nil
		}
	}
}
