package pattern

import (
	"strconv"
	"strings"
)

// This file holds the syntax of ClamAV hex signatures (the body of .ndb
// lines and .ldb subsignatures): parsing into tokens and formatting tokens
// back into canonical text. What the tokens mean at scan time is decided in
// compile.go.

type tokKind uint8

const (
	tkByte  tokKind = iota // exact byte b
	tkAny                  // ??
	tkHiNib                // x?: high nibble fixed, b holds it (b&0xf0)
	tkLoNib                // ?x: low nibble fixed, b holds it (b&0x0f)
	tkGap                  // {min-max}; max < 0 means unbounded ({n-})
	tkStar                 // *
	tkAlt                  // (a|b|c) or !(a|b|c)
)

type tok struct {
	kind     tokKind
	b        byte
	neg      bool
	min, max int
	alts     [][]tok // tkAlt: each alternative is bytes, ?? and nibbles only
}

// maxGap bounds the numbers inside {n-m}; larger values are rejected before
// anything is allocated for them.
const maxGap = 1 << 30

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// parseHexSig parses a ClamAV hex signature.
func parseHexSig(s string) ([]tok, error) {
	if s == "" {
		return nil, syntaxf("empty hex signature")
	}
	var out []tok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '*':
			out = append(out, tok{kind: tkStar})
			i++
		case c == '{' || c == '[':
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			end := strings.IndexByte(s[i:], closer)
			if end < 0 {
				return nil, syntaxf("unterminated %q at column %d", c, i+1)
			}
			min, max, err := parseRange(s[i+1 : i+end])
			if err != nil {
				return nil, err
			}
			if c == '[' && (max < 0 || s[i+1] == '-') {
				return nil, syntaxf("[n-m] needs both bounds at column %d", i+1)
			}
			out = append(out, tok{kind: tkGap, min: min, max: max})
			i += end + 1
		case c == '!' || c == '(':
			neg := c == '!'
			if neg {
				i++
				if i >= len(s) || s[i] != '(' {
					return nil, syntaxf("'!' must be followed by '(' at column %d", i)
				}
			}
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				return nil, syntaxf("unterminated '(' at column %d", i+1)
			}
			body := s[i+1 : i+end]
			switch body {
			case "B", "L", "W":
				return nil, unsupportedf("boundary marker (%s)", body)
			}
			t, err := parseAlt(body, neg)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			i += end + 1
		default:
			t, err := parsePair(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			i += 2
		}
	}
	return out, nil
}

func parsePair(s string, i int) (tok, error) {
	if i+1 >= len(s) {
		return tok{}, syntaxf("odd number of hex digits at column %d", i+1)
	}
	a, b := s[i], s[i+1]
	okA, okB := isHex(a) || a == '?', isHex(b) || b == '?'
	if !okA || !okB {
		bad := i
		if okA {
			bad = i + 1
		}
		return tok{}, syntaxf("unexpected %q at column %d", s[bad], bad+1)
	}
	switch {
	case a == '?' && b == '?':
		return tok{kind: tkAny}, nil
	case a == '?':
		return tok{kind: tkLoNib, b: hexVal(b)}, nil
	case b == '?':
		return tok{kind: tkHiNib, b: hexVal(a) << 4}, nil
	default:
		return tok{kind: tkByte, b: hexVal(a)<<4 | hexVal(b)}, nil
	}
}

func parseNum(s string) (int, error) {
	if s == "" {
		return 0, syntaxf("missing number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, syntaxf("bad number %q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil || n > maxGap {
		return 0, syntaxf("number %q out of range", s)
	}
	return int(n), nil
}

// parseRange parses the inside of {..}: "n", "n-m", "-m", "n-".
func parseRange(s string) (min, max int, err error) {
	lo, hi, dash := strings.Cut(s, "-")
	if !dash {
		n, err := parseNum(s)
		return n, n, err
	}
	if lo == "" && hi == "" {
		return 0, 0, syntaxf("empty range {-}")
	}
	if lo != "" {
		if min, err = parseNum(lo); err != nil {
			return 0, 0, err
		}
	}
	if hi == "" {
		return min, -1, nil
	}
	if max, err = parseNum(hi); err != nil {
		return 0, 0, err
	}
	if max < min {
		return 0, 0, syntaxf("range {%s} has max < min", s)
	}
	return min, max, nil
}

func parseAlt(body string, neg bool) (tok, error) {
	if strings.ContainsAny(body, "(!") {
		return tok{}, syntaxf("nested alternatives")
	}
	if strings.ContainsAny(body, "*{}[]") {
		return tok{}, unsupportedf("gaps inside alternatives")
	}
	parts := strings.Split(body, "|")
	t := tok{kind: tkAlt, neg: neg}
	for _, p := range parts {
		if p == "" {
			return tok{}, syntaxf("empty alternative in (%s)", body)
		}
		var seq []tok
		for i := 0; i < len(p); i += 2 {
			e, err := parsePair(p, i)
			if err != nil {
				return tok{}, err
			}
			seq = append(seq, e)
		}
		t.alts = append(t.alts, seq)
	}
	if neg {
		for _, a := range t.alts {
			if len(a) != len(t.alts[0]) {
				return tok{}, syntaxf("negated alternatives must all have the same length")
			}
		}
	}
	return t, nil
}

const hexDigits = "0123456789abcdef"

func appendTok(sb *strings.Builder, t tok) {
	switch t.kind {
	case tkByte:
		sb.WriteByte(hexDigits[t.b>>4])
		sb.WriteByte(hexDigits[t.b&15])
	case tkAny:
		sb.WriteString("??")
	case tkHiNib:
		sb.WriteByte(hexDigits[t.b>>4])
		sb.WriteByte('?')
	case tkLoNib:
		sb.WriteByte('?')
		sb.WriteByte(hexDigits[t.b&15])
	case tkStar:
		sb.WriteByte('*')
	case tkGap:
		sb.WriteByte('{')
		switch {
		case t.max < 0:
			sb.WriteString(strconv.Itoa(t.min))
			sb.WriteByte('-')
		case t.min == t.max:
			sb.WriteString(strconv.Itoa(t.min))
		default:
			if t.min > 0 {
				sb.WriteString(strconv.Itoa(t.min))
			}
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(t.max))
		}
		sb.WriteByte('}')
	case tkAlt:
		if t.neg {
			sb.WriteByte('!')
		}
		sb.WriteByte('(')
		for i, a := range t.alts {
			if i > 0 {
				sb.WriteByte('|')
			}
			for _, e := range a {
				appendTok(sb, e)
			}
		}
		sb.WriteByte(')')
	}
}

// formatHexSig is the canonical text of toks: lower-case hex, {n} for
// fixed gaps, {-m} for 0..m, [n-m] rewritten as {n-m}.
func formatHexSig(toks []tok) string {
	var sb strings.Builder
	for _, t := range toks {
		appendTok(&sb, t)
	}
	return sb.String()
}
