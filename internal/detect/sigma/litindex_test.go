package sigma

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
)

// TestLitIndex: each shape of the index (q-gram filter, Wu–Manber,
// automaton) finds exactly what a naive search finds, with texts over an alphabet whose
// punctuation collides under the gram fold ('@' and '`', '[' and '{').
func TestLitIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcABC@`[{\\. "
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		n, minL int
		shape   func(*litIndex) bool
	}{
		{"gram set and automaton", gramMinPatterns + 200, 1, func(x *litIndex) bool { return x.g != nil && x.ac != nil }},
		{"wu-manber", 40, wmMinLen, func(x *litIndex) bool { return x.wm != nil }},
		{"wu-manber, long window", 20, 9, func(x *litIndex) bool { return x.wm != nil && x.wm.m >= 9 }},
		{"automaton", 40, 1, func(x *litIndex) bool { return x.ac != nil && x.g == nil && x.wm == nil }},
	} {
		var pats []string
		seen := map[string]bool{}
		for len(pats) < tc.n {
			p := strings.ToLower(word(tc.minL + rng.IntN(10)))
			if !seen[p] {
				seen[p] = true
				pats = append(pats, p)
			}
		}
		ids := make([]int32, len(pats))
		for i := range ids {
			ids[i] = int32(i)
		}
		x := newLitIndex(pats, ids)
		if !tc.shape(x) {
			t.Fatalf("%s: wrong shape %+v", tc.name, x)
		}
		for range 500 {
			text := word(rng.IntN(80))
			if rng.IntN(4) == 0 { // plant a literal
				p := pats[rng.IntN(len(pats))]
				k := rng.IntN(len(text) + 1)
				text = text[:k] + strings.ToUpper(p) + text[k:]
			}
			got, ok := x.scan(text, nil)
			if !ok {
				t.Fatalf("%s, %q: ASCII text refused", tc.name, text)
			}
			lower := strings.ToLower(text)
			var want []int32
			for i := 0; i < len(lower); i++ {
				for j, p := range pats {
					if strings.HasSuffix(lower[:i+1], p) {
						want = append(want, ids[j])
					}
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, %q: got %v want %v", tc.name, text, got, want)
			}
			got = x.scanLower(lower, nil)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, scanLower %q: got %v want %v", tc.name, lower, got, want)
			}
		}
		// Non-ASCII text goes to scanLower, where "Ⱥ" lowers to a longer "ⱥ".
		if _, ok := x.scan("abcdȺ", nil); ok {
			t.Errorf("%s: non-ASCII text accepted by the ASCII scan", tc.name)
		}
	}
}

// TestReNeeds: the literal sets derived from regexps, and that one of them
// occurs in every match.
func TestReNeeds(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ "']{1}`, []string{". ", ".\"", ".'"}},
		{`(?i)invoke-(web|rest)request`, []string{"invoke-restrequest", "invoke-webrequest"}},
		{`(?i)(iex|invoke-expression)\s*\(`, []string{"iex", "invoke-expression"}},
		{`net\s+user\s+`, []string{"user"}},
		{`\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}`, nil},
		{`^[a-z]+$`, nil},
		{`ab?c`, []string{"abc", "ac"}},
		{`x*yz`, []string{"yz"}},
		{`(a|b)(c|d)`, []string{"ac", "ad", "bc", "bd"}},
		{`a|.`, nil},
	} {
		p, err := syntax.Parse(tc.expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := reNeeds(p); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.expr, got, tc.want)
		}
	}
	// Necessity on random texts.
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "abcdXY. \"'\\-(e"
	exprs := []string{`a(b|c)d`, `(?i)x.?y`, `\\[a-z]{1,3}\.[ "']`, `(ab|cd)+e`, `a[bc]{2,}d`, `(?i)(ab|x)(c|d)?e`}
	for _, expr := range exprs {
		re := regexp.MustCompile(expr)
		p, _ := syntax.Parse(expr, syntax.Perl)
		needs := reNeeds(p)
		if needs == nil {
			continue
		}
		for range 3000 {
			b := make([]byte, rng.IntN(12))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			s := string(b)
			if !re.MatchString(s) {
				continue
			}
			found := false
			for _, n := range needs {
				found = found || strings.Contains(strings.ToLower(s), n)
			}
			if !found {
				t.Errorf("%s matches %q, which holds none of %q", expr, s, needs)
			}
		}
	}
}
