package correlate

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Op is a comparison of the correlation condition.
type Op string

// The comparisons of the Sigma correlation condition.
const (
	GT  Op = "gt"
	GTE Op = "gte"
	LT  Op = "lt"
	LTE Op = "lte"
	EQ  Op = "eq"
)

// Predicate is one comparison: the aggregate <Op> Value.
type Predicate struct {
	Op    Op
	Value float64
}

func (p Predicate) holds(x float64) bool {
	switch p.Op {
	case GT:
		return x > p.Value
	case GTE:
		return x >= p.Value
	case LT:
		return x < p.Value
	case LTE:
		return x <= p.Value
	case EQ:
		return x == p.Value
	}
	return false
}

// Condition is the correlation.condition attribute.
type Condition struct {
	// Field is the field value_count counts distinct values of, and
	// value_sum/value_avg add up.
	Field string
	// Predicates must all hold (a range is gt + lte, as the spec says).
	// For temporal rules they compare the number of distinct referenced
	// rules seen in the window.
	Predicates []Predicate
	// Expr is a temporal rule's boolean expression over referenced rule
	// names (specification v2.1), e.g. "a and b and not c".
	Expr string
	expr *exprNode
}

// Holds reports whether the aggregate x satisfies every predicate.
func (c *Condition) Holds(x float64) bool {
	for _, p := range c.Predicates {
		if !p.holds(x) {
			return false
		}
	}
	return true
}

// Bounded reports whether the condition can be broken by more events
// (lt, lte, eq, or "not" in an expression): such a condition is only
// decided when its window closes.
func (c *Condition) Bounded() bool {
	if c.expr != nil {
		return c.expr.hasNot()
	}
	for _, p := range c.Predicates {
		if p.Op == LT || p.Op == LTE || p.Op == EQ {
			return true
		}
	}
	return false
}

func (c *Condition) satisfiable() bool {
	lo, hi := math.Inf(-1), math.Inf(1)
	loIncl, hiIncl := false, false
	for _, p := range c.Predicates {
		switch p.Op {
		case GT:
			if p.Value >= lo {
				lo, loIncl = p.Value, false
			}
		case GTE:
			if p.Value > lo {
				lo, loIncl = p.Value, true
			}
		case LT:
			if p.Value <= hi {
				hi, hiIncl = p.Value, false
			}
		case LTE:
			if p.Value < hi {
				hi, hiIncl = p.Value, true
			}
		case EQ:
			if !c.Holds(p.Value) {
				return false
			}
		}
	}
	return lo < hi || (lo == hi && loIncl && hiIncl)
}

// validate checks a Condition built in code rather than by Parse.
func (c *Condition) validate(r *Rule) error {
	if r.Type.temporal() {
		if c.Expr != "" && c.expr == nil {
			e, err := parseExpr(c.Expr, r.Rules)
			if err != nil {
				return fmt.Errorf("%w: condition: %v", ErrInvalid, err)
			}
			c.expr = e
		}
		if r.Type == TemporalOrdered && (len(c.Predicates) > 0 || (c.expr != nil && !c.expr.conjunctionOfAll(len(r.Rules)))) {
			return fmt.Errorf("%w: temporal_ordered takes no condition other than all its rules", ErrUnsupported)
		}
	} else if len(c.Predicates) == 0 {
		return fmt.Errorf("%w: condition has no comparison", ErrMissing)
	}
	if r.Type.aggregates() && c.Field == "" {
		return fmt.Errorf("%w: condition.field", ErrMissing)
	}
	for _, p := range c.Predicates {
		switch p.Op {
		case GT, GTE, LT, LTE, EQ:
		default:
			return fmt.Errorf("%w: operator %q", ErrInvalid, p.Op)
		}
	}
	if !c.satisfiable() {
		return fmt.Errorf("%w: the comparisons can never all hold", ErrInvalid)
	}
	return nil
}

// exprNode is a parsed temporal condition: a leaf names a referenced rule by
// its index in Rule.Rules.
type exprNode struct {
	op   byte // 'r' rule, '&', '|', '!'
	rule int
	kids []*exprNode
}

func (n *exprNode) eval(present []bool) bool {
	switch n.op {
	case 'r':
		return present[n.rule]
	case '!':
		return !n.kids[0].eval(present)
	case '&':
		for _, k := range n.kids {
			if !k.eval(present) {
				return false
			}
		}
		return true
	default:
		for _, k := range n.kids {
			if k.eval(present) {
				return true
			}
		}
		return false
	}
}

func (n *exprNode) hasNot() bool {
	if n.op == '!' {
		return true
	}
	return slices.ContainsFunc(n.kids, (*exprNode).hasNot)
}

// conjunctionOfAll reports whether n is "r0 and r1 and … and rN-1".
func (n *exprNode) conjunctionOfAll(count int) bool {
	seen := make([]bool, count)
	var walk func(*exprNode) bool
	walk = func(n *exprNode) bool {
		switch n.op {
		case 'r':
			seen[n.rule] = true
			return true
		case '&':
			for _, k := range n.kids {
				if !walk(k) {
					return false
				}
			}
			return true
		}
		return false
	}
	return walk(n) && !slices.Contains(seen, false)
}

// parseExpr parses "a and (b or not c)": and binds tighter than or,
// keywords are case-insensitive, names must be among rules.
func parseExpr(s string, rules []string) (*exprNode, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	ep := &exprParser{toks: toks, rules: rules}
	n, err := ep.or()
	if err != nil {
		return nil, err
	}
	if ep.pos < len(toks) {
		return nil, fmt.Errorf("unexpected %q in %q", toks[ep.pos], s)
	}
	return n, nil
}

const maxExprDepth = 64

type exprParser struct {
	toks  []string
	pos   int
	depth int
	rules []string
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) or() (*exprNode, error) {
	return p.chain("or", '|', p.and)
}

func (p *exprParser) and() (*exprNode, error) {
	return p.chain("and", '&', p.not)
}

func (p *exprParser) chain(word string, op byte, next func() (*exprNode, error)) (*exprNode, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	kids := []*exprNode{first}
	for strings.EqualFold(p.peek(), word) {
		p.pos++
		k, err := next()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &exprNode{op: op, kids: kids}, nil
}

func (p *exprParser) not() (*exprNode, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return nil, fmt.Errorf("expression nested deeper than %d", maxExprDepth)
	}
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("expression ends early")
	case strings.EqualFold(t, "not"):
		p.pos++
		k, err := p.not()
		if err != nil {
			return nil, err
		}
		return &exprNode{op: '!', kids: []*exprNode{k}}, nil
	case t == "(":
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return n, nil
	case t == ")" || strings.EqualFold(t, "and") || strings.EqualFold(t, "or"):
		return nil, fmt.Errorf("unexpected %q", t)
	}
	p.pos++
	i := slices.Index(p.rules, t)
	if i < 0 {
		return nil, fmt.Errorf("%q is not one of the correlation's rules", t)
	}
	return &exprNode{op: 'r', rule: i}, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty expression")
	}
	return toks, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
