package correlate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Sentinel errors; every error from Parse and New wraps one of them.
var (
	ErrSyntax         = errors.New("invalid YAML")
	ErrNotCorrelation = errors.New("not a correlation rule")
	ErrMissing        = errors.New("required field missing")
	ErrInvalid        = errors.New("invalid value")
	ErrUnsupported    = errors.New("not supported")
	ErrUnknownRule    = errors.New("unknown rule reference")
	ErrCycle          = errors.New("correlation cycle")
	ErrDuplicate      = errors.New("duplicate rule id or name")
)

// Type is the correlation type (the correlation.type attribute).
type Type string

// The correlation types Mamori evaluates.
const (
	EventCount      Type = "event_count"
	ValueCount      Type = "value_count"
	Temporal        Type = "temporal"
	TemporalOrdered Type = "temporal_ordered"
	ValueSum        Type = "value_sum"
	ValueAvg        Type = "value_avg"
)

// aggregates reports whether the type aggregates condition.field.
func (t Type) aggregates() bool { return t == ValueCount || t == ValueSum || t == ValueAvg }

func (t Type) temporal() bool { return t == Temporal || t == TemporalOrdered }

// Rule is one parsed correlation rule.
type Rule struct {
	ID, Name, Title, Description, Level, Status, Path string
	Tags                                              []string

	Type Type
	// Rules are the referenced rules by id or name: base Sigma rules or other
	// correlations (chaining).
	Rules []string
	// GroupBy names the fields (or aliases) whose values separate groups.
	// Empty means one group per tenant.
	GroupBy   []string
	Timespan  time.Duration
	Condition Condition
	// Aliases maps an alias used in GroupBy (or Condition.Field) to the real
	// field per referenced rule: alias → rule name or id → field.
	Aliases map[string]map[string]string
	// Generate: the referenced rules also alert on their own. The Sigma
	// default is false: a base rule used by a correlation is only a building
	// block (see Engine.SuppressBase).
	Generate bool
}

// String names the rule for messages: its id, else its name, else its title.
func (r *Rule) String() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.Name != "":
		return r.Name
	}
	return strconv.Quote(r.Title)
}

// ParseError locates what is wrong in a correlation document.
type ParseError struct {
	Path  string
	Line  int    // 1-based; 0 when unknown
	Field string // dotted path of the attribute, e.g. "correlation.timespan"
	Err   error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads one YAML document holding a correlation rule.
func Parse(path string, body []byte) (*Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Path: path, Err: fmt.Errorf("%w: empty document", ErrNotCorrelation)}
		}
		return nil, &ParseError{Path: path, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		line := next.Line
		if err != nil {
			line = 0
		}
		return nil, &ParseError{Path: path, Line: line, Err: fmt.Errorf("%w: more than one YAML document (use ParseAll)", ErrInvalid)}
	}
	return parseDoc(path, &doc)
}

// ParseAll reads a multi-document YAML file and parses every document that
// has a correlation attribute; detection documents are skipped (they belong
// to the sigma package). Line numbers in errors refer to the whole file.
func ParseAll(path string, body []byte) ([]*Rule, []error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var rules []*Rule
	var errs []error
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return rules, errs
		}
		if err != nil {
			// The decoder cannot resynchronise after a syntax error.
			return rules, append(errs, &ParseError{Path: path, Err: fmt.Errorf("%w: %v", ErrSyntax, err)})
		}
		if m := docMapping(&doc); m == nil || lookup(m, "correlation") == nil {
			continue
		}
		r, err := parseDoc(path, &doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
}

func docMapping(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	return doc
}

// lookup returns the value node of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// parser carries the path so every error can name file, line and field.
type parser struct{ path string }

func (p parser) errf(n *yaml.Node, field string, sentinel error, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ParseError{Path: p.path, Line: line, Field: field,
		Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

var (
	validLevels = map[string]bool{"informational": true, "low": true, "medium": true, "high": true, "critical": true}
	validStatus = map[string]bool{"stable": true, "test": true, "experimental": true, "deprecated": true, "unsupported": true}
)

func parseDoc(path string, doc *yaml.Node) (*Rule, error) {
	p := parser{path: path}
	m := docMapping(doc)
	if m == nil {
		return nil, p.errf(doc, "", ErrNotCorrelation, "document is not a mapping")
	}
	if err := p.noDuplicateKeys(m, ""); err != nil {
		return nil, err
	}
	r := &Rule{Path: path}
	var corr *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i].Value, m.Content[i+1]
		var err error
		switch k {
		case "title":
			r.Title, err = p.str(v, k)
		case "id":
			r.ID, err = p.str(v, k)
		case "name":
			r.Name, err = p.str(v, k)
		case "description":
			r.Description, err = p.str(v, k)
		case "level":
			r.Level, err = p.enum(v, k, validLevels)
		case "status":
			r.Status, err = p.enum(v, k, validStatus)
		case "tags":
			r.Tags, err = p.strList(v, k)
		case "generate":
			r.Generate, err = p.boolean(v, k)
		case "correlation":
			corr = v
		case "detection", "logsource":
			err = p.errf(m.Content[i], k, ErrInvalid, "a correlation rule has no %s (put the detection in its own YAML document)", k)
		}
		// Other attributes (author, date, references, falsepositives,
		// taxonomy, custom ones) are metadata the engine does not need.
		if err != nil {
			return nil, err
		}
	}
	if corr == nil {
		return nil, p.errf(m, "correlation", ErrNotCorrelation, "no correlation attribute")
	}
	if r.Title == "" {
		return nil, p.errf(m, "title", ErrMissing, "a correlation rule needs a title")
	}
	if err := p.correlation(corr, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (p parser) noDuplicateKeys(m *yaml.Node, prefix string) error {
	seen := make(map[string]bool, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if seen[k.Value] {
			return p.errf(k, prefix+k.Value, ErrInvalid, "attribute given twice")
		}
		seen[k.Value] = true
	}
	return nil
}

func (p parser) correlation(n *yaml.Node, r *Rule) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "correlation", ErrInvalid, "must be a mapping")
	}
	if err := p.noDuplicateKeys(n, "correlation."); err != nil {
		return err
	}
	var cond, typ, rules, span *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "correlation." + k.Value
		var err error
		switch k.Value {
		case "type":
			typ = v
		case "rules":
			rules = v
			r.Rules, err = p.strList(v, field)
		case "group-by":
			r.GroupBy, err = p.strList(v, field)
		case "timespan":
			span = v
			r.Timespan, err = p.timespan(v, field)
		case "condition":
			cond = v
		case "aliases":
			r.Aliases, err = p.aliases(v, field)
		case "generate":
			// Some writers put generate inside the correlation section.
			r.Generate, err = p.boolean(v, field)
		default:
			// Inside the correlation section a typo (groupby, time_span)
			// would silently change the meaning: refuse it.
			err = p.errf(k, field, ErrInvalid, "unknown attribute (expected type, rules, group-by, timespan, condition, aliases, generate)")
		}
		if err != nil {
			return err
		}
	}
	if typ == nil {
		return p.errf(n, "correlation.type", ErrMissing, "expected one of event_count, value_count, temporal, temporal_ordered, value_sum, value_avg")
	}
	t, err := p.str(typ, "correlation.type")
	if err != nil {
		return err
	}
	switch Type(t) {
	case EventCount, ValueCount, Temporal, TemporalOrdered, ValueSum, ValueAvg:
		r.Type = Type(t)
	case "value_percentile", "value_median", "value_max", "value_min":
		return p.errf(typ, "correlation.type", ErrUnsupported, "%s correlations are not evaluated by Mamori", t)
	default:
		return p.errf(typ, "correlation.type", ErrInvalid, "%q: expected one of event_count, value_count, temporal, temporal_ordered, value_sum, value_avg", t)
	}
	if rules == nil || len(r.Rules) == 0 {
		return p.errf(orNode(rules, n), "correlation.rules", ErrMissing, "at least one referenced rule is needed")
	}
	if err := p.unique(rules, "correlation.rules", r.Rules); err != nil {
		return err
	}
	if span == nil {
		return p.errf(n, "correlation.timespan", ErrMissing, "e.g. 5m")
	}
	if err := p.unique(lookup(n, "group-by"), "correlation.group-by", r.GroupBy); err != nil {
		return err
	}
	c, err := p.condition(cond, n, r)
	if err != nil {
		return err
	}
	r.Condition = c
	return nil
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func (p parser) unique(n *yaml.Node, field string, list []string) error {
	seen := make(map[string]bool, len(list))
	for i, s := range list {
		if s == "" {
			return p.errf(n, fmt.Sprintf("%s[%d]", field, i), ErrInvalid, "empty string")
		}
		if seen[s] {
			return p.errf(n, fmt.Sprintf("%s[%d]", field, i), ErrInvalid, "%q listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

func (p parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, field, ErrInvalid, "must be a string")
	}
	return n.Value, nil
}

func (p parser) enum(n *yaml.Node, field string, allowed map[string]bool) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	if !allowed[s] {
		return "", p.errf(n, field, ErrInvalid, "%q is not one of %s", s, strings.Join(sortedKeys(allowed), ", "))
	}
	return s, nil
}

func (p parser) boolean(n *yaml.Node, field string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, p.errf(n, field, ErrInvalid, "must be true or false")
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
}

// strList accepts a list of strings or a single string.
func (p parser) strList(n *yaml.Node, field string) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, c := range n.Content {
			s, err := p.str(c, fmt.Sprintf("%s[%d]", field, i))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, p.errf(n, field, ErrInvalid, "must be a list of strings")
}

func (p parser) timespan(n *yaml.Node, field string) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := ParseTimespan(s)
	if err != nil {
		return 0, p.errf(n, field, ErrInvalid, "%v", err)
	}
	return d, nil
}

// MaxTimespan bounds a correlation window: state lives as long as its
// window, and event times plus the span must not overflow.
const MaxTimespan = 366 * 24 * time.Hour

// ParseTimespan reads a Sigma timespan: a positive number followed by s, m,
// h, d or w (lower case), e.g. "90m", at most MaxTimespan.
func ParseTimespan(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%q: expected a number and a unit (s, m, h, d, w), e.g. 5m", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, fmt.Errorf("%q: unit must be one of s, m, h, d, w", s)
	}
	digits := s[:len(s)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q: expected a whole number before the unit", s)
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q: must be positive", s)
	}
	if d := time.Duration(n) * unit; d <= MaxTimespan {
		return d, nil
	}
	return 0, fmt.Errorf("%q: longer than the maximum 366d", s)
}

func (p parser) aliases(n *yaml.Node, field string) (map[string]map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, field, ErrInvalid, "must map alias → rule name → field")
	}
	if err := p.noDuplicateKeys(n, field+"."); err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		alias, v := n.Content[i].Value, n.Content[i+1]
		af := field + "." + alias
		if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
			return nil, p.errf(v, af, ErrInvalid, "must map rule name → field name")
		}
		if err := p.noDuplicateKeys(v, af+"."); err != nil {
			return nil, err
		}
		m := make(map[string]string, len(v.Content)/2)
		for j := 0; j+1 < len(v.Content); j += 2 {
			f, err := p.str(v.Content[j+1], af+"."+v.Content[j].Value)
			if err != nil {
				return nil, err
			}
			if f == "" {
				return nil, p.errf(v.Content[j+1], af+"."+v.Content[j].Value, ErrInvalid, "empty field name")
			}
			m[v.Content[j].Value] = f
		}
		out[alias] = m
	}
	return out, nil
}

// condition parses correlation.condition; parent locates a missing one.
func (p parser) condition(n, parent *yaml.Node, r *Rule) (Condition, error) {
	const field = "correlation.condition"
	var c Condition
	if n == nil {
		if r.Type.temporal() {
			return c, nil // all referenced rules
		}
		return c, p.errf(parent, field, ErrMissing, "%s needs a condition such as gte: 10", r.Type)
	}
	if n.Kind == yaml.ScalarNode && r.Type.temporal() {
		expr, err := parseExpr(n.Value, r.Rules)
		if err != nil {
			return c, p.errf(n, field, ErrInvalid, "%v", err)
		}
		if r.Type == TemporalOrdered && !expr.conjunctionOfAll(len(r.Rules)) {
			return c, p.errf(n, field, ErrUnsupported, "temporal_ordered only takes the conjunction of all its rules")
		}
		c.Expr, c.expr = n.Value, expr
		return c, nil
	}
	if n.Kind != yaml.MappingNode {
		return c, p.errf(n, field, ErrInvalid, "must be a mapping such as {gte: 10}")
	}
	if err := p.noDuplicateKeys(n, field+"."); err != nil {
		return c, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kf := field + "." + k.Value
		switch op := Op(k.Value); op {
		case GT, GTE, LT, LTE, EQ:
			x, err := p.number(v, kf, r.Type == ValueSum || r.Type == ValueAvg)
			if err != nil {
				return c, err
			}
			c.Predicates = append(c.Predicates, Predicate{Op: op, Value: x})
		case "field":
			if !r.Type.aggregates() {
				return c, p.errf(k, kf, ErrInvalid, "only value_count, value_sum and value_avg take a field")
			}
			s, err := p.str(v, kf)
			if err != nil {
				return c, err
			}
			c.Field = s
		default:
			return c, p.errf(k, kf, ErrInvalid, "unknown operator (expected gt, gte, lt, lte, eq, field)")
		}
	}
	if len(c.Predicates) == 0 {
		return c, p.errf(n, field, ErrMissing, "no comparison (gt, gte, lt, lte, eq)")
	}
	if r.Type.aggregates() && c.Field == "" {
		return c, p.errf(n, field+".field", ErrMissing, "%s counts or sums the values of a field", r.Type)
	}
	if r.Type == TemporalOrdered {
		return c, p.errf(n, field, ErrUnsupported, "temporal_ordered requires all its rules in order; a count condition is not supported")
	}
	if !c.satisfiable() {
		return c, p.errf(n, field, ErrInvalid, "the comparisons can never all hold")
	}
	return c, nil
}

func (p parser) number(n *yaml.Node, field string, fractional bool) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, p.errf(n, field, ErrInvalid, "must be a number")
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if n.Tag == "!!int" {
		var i int64
		i, err = strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		x = float64(i)
	}
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, p.errf(n, field, ErrInvalid, "%q is not a finite number", n.Value)
	}
	if !fractional && (x != math.Trunc(x) || x < 0) {
		return 0, p.errf(n, field, ErrInvalid, "a count must be a whole number ≥ 0, not %s", n.Value)
	}
	return x, nil
}
