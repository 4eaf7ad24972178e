package sigma

import (
	"strings"
	"unicode/utf8"
)

// A Sigma string is a sequence of literal runs and the wildcards * and ?.
// Literal bytes may be arbitrary after |wide or |base64 transformations.
type tok struct {
	lit  string
	wild byte // 0 for a literal run, '*' or '?'
}

type sstr []tok

// parseSigmaString reads the wildcards * and ? and the escapes the Sigma
// specification defines: a backslash escapes *, ? and itself; before any
// other character it is a literal backslash (so C:\Windows needs no
// escaping).
func parseSigmaString(s string) sstr {
	var out sstr
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, tok{lit: b.String()})
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '*' || c == '?':
			flush()
			if c == '*' && len(out) > 0 && out[len(out)-1].wild == '*' {
				continue // ** is *
			}
			out = append(out, tok{wild: c})
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

func literal(s string) sstr {
	if s == "" {
		return nil
	}
	return sstr{{lit: s}}
}

func (s sstr) hasWild() bool {
	for _, t := range s {
		if t.wild != 0 {
			return true
		}
	}
	return false
}

// plain is the text of a wildcard-free string.
func (s sstr) plain() string {
	var b strings.Builder
	for _, t := range s {
		b.WriteString(t.lit)
	}
	return b.String()
}

func (s sstr) startStar() sstr {
	if len(s) > 0 && s[0].wild == '*' {
		return s
	}
	return append(sstr{{wild: '*'}}, s...)
}

func (s sstr) endStar() sstr {
	if len(s) > 0 && s[len(s)-1].wild == '*' {
		return s
	}
	return append(append(sstr(nil), s...), tok{wild: '*'})
}

func (s sstr) lower() sstr {
	out := make(sstr, len(s))
	for i, t := range s {
		out[i] = tok{lit: strings.ToLower(t.lit), wild: t.wild}
	}
	return out
}

// longestLiteral is the longest literal run: a string that must occur in
// any value the pattern matches.
func (s sstr) longestLiteral() string {
	best := ""
	for _, t := range s {
		if t.wild == 0 && len(t.lit) > len(best) {
			best = t.lit
		}
	}
	return best
}

// String renders the pattern back with escapes (for messages and tests).
func (s sstr) String() string {
	var b strings.Builder
	for _, t := range s {
		if t.wild != 0 {
			b.WriteByte(t.wild)
			continue
		}
		for i := 0; i < len(t.lit); i++ {
			if c := t.lit[i]; c == '*' || c == '?' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(t.lit[i])
		}
	}
	return b.String()
}

// globMatch reports whether v matches the pattern: * any run (also empty),
// ? exactly one character (rune), literals byte for byte. Greedy with one
// backtrack point per star, which is exact for this pattern language.
func globMatch(p sstr, v string) bool {
	pi, vi := 0, 0
	starP, starV := -1, 0
	for {
		if pi < len(p) {
			t := p[pi]
			switch t.wild {
			case '*':
				if pi+1 == len(p) {
					return true // a trailing star takes the rest
				}
				starP, starV = pi, vi
				pi++
				// Jump straight to the next occurrence of the following literal.
				if pi < len(p) && p[pi].wild == 0 {
					j := strings.Index(v[vi:], p[pi].lit)
					if j < 0 {
						return false
					}
					starV = vi + j
					vi = starV
				}
				continue
			case '?':
				if vi < len(v) {
					_, n := utf8.DecodeRuneInString(v[vi:])
					vi += n
					pi++
					continue
				}
			default:
				if strings.HasPrefix(v[vi:], t.lit) {
					vi += len(t.lit)
					pi++
					continue
				}
			}
		} else if vi == len(v) {
			return true
		}
		// Mismatch: let the last star swallow one more character.
		if starP < 0 || starV >= len(v) {
			return false
		}
		_, n := utf8.DecodeRuneInString(v[starV:])
		starV += n
		vi = starV
		pi = starP + 1
	}
}
