package sigma

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

type cop uint8

const (
	cSearch cop = iota
	cAnd
	cOr
	cNot
	cAtLeast // "N of" with N > 1
)

// cnode is a compiled condition: and/or/not over search identifiers.
type cnode struct {
	op     cop
	kids   []*cnode
	search int // index into the rule's searches, for cSearch
	n      int // for cAtLeast
}

func (n *cnode) eval(c *evalCtx, ss []search) bool {
	switch n.op {
	case cSearch:
		return ss[n.search].eval(c)
	case cAnd:
		for _, k := range n.kids {
			if !k.eval(c, ss) {
				return false
			}
		}
		return true
	case cOr:
		for _, k := range n.kids {
			if k.eval(c, ss) {
				return true
			}
		}
		return false
	case cNot:
		return !n.kids[0].eval(c, ss)
	default:
		hit := 0
		for i, k := range n.kids {
			if k.eval(c, ss) {
				hit++
				if hit >= n.n {
					return true
				}
			}
			if hit+len(n.kids)-i-1 < n.n {
				return false
			}
		}
		return false
	}
}

// format renders the tree fully parenthesised with the identifiers' names;
// parseCondition reads it back to the same tree (fuzz round trip).
func (n *cnode) format(names []string) string {
	switch n.op {
	case cSearch:
		return names[n.search]
	case cNot:
		return "not " + n.kids[0].format(names)
	case cAtLeast:
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = k.format(names)
		}
		return fmt.Sprintf("(%d of [%s])", n.n, strings.Join(parts, ", "))
	}
	sep := " and "
	if n.op == cOr {
		sep = " or "
	}
	parts := make([]string, len(n.kids))
	for i, k := range n.kids {
		parts[i] = k.format(names)
	}
	return "(" + strings.Join(parts, sep) + ")"
}

// equal compares two trees structurally.
func (n *cnode) equal(o *cnode) bool {
	if n.op != o.op || n.search != o.search || n.n != o.n || len(n.kids) != len(o.kids) {
		return false
	}
	for i := range n.kids {
		if !n.kids[i].equal(o.kids[i]) {
			return false
		}
	}
	return true
}

type condParser struct {
	toks  []string
	pos   int
	names []string
	index map[string]int
}

func tokenizeCondition(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '|':
			toks = append(toks, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()|", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// parseCondition parses a Sigma condition over the given search
// identifiers. Precedence: not > and > or; "1 of x*", "all of x*", "any of",
// "them" (identifiers starting with _ excluded, as the spec says).
func parseCondition(s string, names []string) (*cnode, error) {
	p := &condParser{toks: tokenizeCondition(s), names: names, index: make(map[string]int, len(names))}
	for i, n := range names {
		p.index[n] = i
	}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("%w: empty condition", ErrCondition)
	}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		if p.toks[p.pos] == "|" {
			return nil, fmt.Errorf("%w: aggregation after | (deprecated Sigma 1 syntax; use a correlation rule)", ErrUnsupported)
		}
		return nil, fmt.Errorf("%w: unexpected %q at token %d", ErrCondition, p.toks[p.pos], p.pos+1)
	}
	return n, nil
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) parseOr() (*cnode, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	kids := []*cnode{first}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		k, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &cnode{op: cOr, kids: kids}, nil
}

func (p *condParser) parseAnd() (*cnode, error) {
	first, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	kids := []*cnode{first}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		k, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &cnode{op: cAnd, kids: kids}, nil
}

func (p *condParser) parseNot() (*cnode, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		k, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &cnode{op: cNot, kids: []*cnode{k}}, nil
	}
	return p.parsePrimary()
}

func isKeyword(t string) bool {
	switch strings.ToLower(t) {
	case "and", "or", "not", "of", "them":
		return true
	}
	return t == "(" || t == ")" || t == "|"
}

func (p *condParser) parsePrimary() (*cnode, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("%w: unexpected end", ErrCondition)
	case t == "(":
		p.pos++
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("%w: missing )", ErrCondition)
		}
		p.pos++
		return n, nil
	case t == "|":
		return nil, fmt.Errorf("%w: aggregation after | (deprecated Sigma 1 syntax; use a correlation rule)", ErrUnsupported)
	case isKeyword(t):
		return nil, fmt.Errorf("%w: unexpected %q", ErrCondition, t)
	}
	if p.pos+1 < len(p.toks) && strings.EqualFold(p.toks[p.pos+1], "of") {
		return p.parseQuantifier()
	}
	p.pos++
	i, ok := p.index[t]
	if !ok {
		return nil, fmt.Errorf("%w: unknown search identifier %q", ErrCondition, t)
	}
	return &cnode{op: cSearch, search: i}, nil
}

func (p *condParser) parseQuantifier() (*cnode, error) {
	q := strings.ToLower(p.toks[p.pos])
	p.pos += 2 // quantifier and "of"
	target := p.peek()
	if target == "" || (isKeyword(target) && !strings.EqualFold(target, "them")) {
		return nil, fmt.Errorf("%w: %s of: missing identifier pattern", ErrCondition, q)
	}
	p.pos++
	var kids []*cnode
	for i, n := range p.names {
		var hit bool
		if strings.EqualFold(target, "them") {
			hit = !strings.HasPrefix(n, "_")
		} else {
			ok, err := path.Match(target, n)
			if err != nil {
				return nil, fmt.Errorf("%w: bad pattern %q", ErrCondition, target)
			}
			hit = ok
		}
		if hit {
			kids = append(kids, &cnode{op: cSearch, search: i})
		}
	}
	if len(kids) == 0 {
		return nil, fmt.Errorf("%w: %s of %s matches no search identifier", ErrCondition, q, target)
	}
	var need int
	switch q {
	case "all":
		need = len(kids)
	case "any":
		need = 1
	default:
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: bad quantifier %q", ErrCondition, q)
		}
		need = n
	}
	switch {
	case len(kids) == 1 && need == 1:
		return kids[0], nil
	case need > len(kids):
		return nil, fmt.Errorf("%w: %d of %s but only %d identifiers match", ErrCondition, need, target, len(kids))
	case need == len(kids):
		return &cnode{op: cAnd, kids: kids}, nil
	case need == 1:
		return &cnode{op: cOr, kids: kids}, nil
	}
	return &cnode{op: cAtLeast, kids: kids, n: need}, nil
}
