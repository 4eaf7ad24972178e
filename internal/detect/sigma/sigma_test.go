package sigma

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
)

// ev builds an event from name/value pairs (sorted as Event requires).
func ev(kv ...string) *event.Event {
	e := &event.Event{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "Original" {
			e.Original = kv[i+1]
			continue
		}
		e.Set(kv[i], kv[i+1])
	}
	return e
}

// rule wraps a detection body into a product: mamori rule (ECS names pass
// through unchanged, every event is in scope).
func rule(detection string) string {
	return "title: t\nid: 11111111-1111-1111-1111-111111111111\nlogsource:\n  product: mamori\ndetection:\n" + detection
}

func mustParse(t *testing.T, yml string, opts Options) *Ruleset {
	t.Helper()
	rs, errs := Parse("test.yml", []byte(yml), opts)
	if len(errs) > 0 {
		t.Fatalf("parse: %v\n%s", errs[0], yml)
	}
	return rs
}

func matches(rs *Ruleset, e *event.Event) bool {
	n := 0
	rs.Match(e, func(*Rule) { n++ })
	return n > 0
}

func TestModifiersAndValues(t *testing.T) {
	type tc struct {
		name, det string
		yes, no   []*event.Event
	}
	b64 := func(s string) string { return fmt.Sprintf("x %s y", s) }
	cases := []tc{
		{"equal is case-insensitive", "  s:\n    a: Hello\n  condition: s",
			[]*event.Event{ev("a", "hello"), ev("a", "HELLO")}, []*event.Event{ev("a", "hello!"), ev("b", "hello")}},
		{"list is OR", "  s:\n    a: [x, y]\n  condition: s",
			[]*event.Event{ev("a", "x"), ev("a", "Y")}, []*event.Event{ev("a", "z")}},
		{"map is AND", "  s:\n    a: x\n    b: y\n  condition: s",
			[]*event.Event{ev("a", "x", "b", "y")}, []*event.Event{ev("a", "x"), ev("a", "x", "b", "z")}},
		{"list of maps is OR", "  s:\n    - a: x\n    - b: y\n  condition: s",
			[]*event.Event{ev("a", "x"), ev("b", "y")}, []*event.Event{ev("a", "y")}},
		{"contains", "  s:\n    a|contains: MiD\n  condition: s",
			[]*event.Event{ev("a", "xxmidxx"), ev("a", "mid")}, []*event.Event{ev("a", "mi d")}},
		{"startswith", "  s:\n    a|startswith: 'C:\\Win'\n  condition: s",
			[]*event.Event{ev("a", `c:\windows`)}, []*event.Event{ev("a", `d:\c:\win`)}},
		{"endswith", "  s:\n    a|endswith: '\\cmd.exe'\n  condition: s",
			[]*event.Event{ev("a", `C:\x\CMD.EXE`)}, []*event.Event{ev("a", `C:\x\cmd.exe.bak`)}},
		{"contains|all", "  s:\n    a|contains|all: [foo, bar]\n  condition: s",
			[]*event.Event{ev("a", "bar foo")}, []*event.Event{ev("a", "foo")}},
		{"wildcards * and ?", "  s:\n    a: 'a*c?e'\n  condition: s",
			[]*event.Event{ev("a", "abcde"), ev("a", "ac-e"), ev("a", "axxxcyE")}, []*event.Event{ev("a", "ace"), ev("a", "abcdef")}},
		{"? is one character (rune)", "  s:\n    a: 'x?y'\n  condition: s",
			[]*event.Event{ev("a", "xéy")}, []*event.Event{ev("a", "xy"), ev("a", "xaby")}},
		{"escaped wildcard is literal", "  s:\n    a: 'a\\*b'\n  condition: s",
			[]*event.Event{ev("a", "a*b")}, []*event.Event{ev("a", "axb")}},
		{"escaped backslash before wildcard", "  s:\n    a: 'a\\\\*'\n  condition: s",
			[]*event.Event{ev("a", `a\`), ev("a", `a\zzz`)}, []*event.Event{ev("a", "az")}},
		{"plain backslash stays", "  s:\n    a: '\\\\server\\share'\n  condition: s",
			[]*event.Event{ev("a", `\server\share`)}, []*event.Event{ev("a", `\\server\share`)}},
		{"null is absent", "  s:\n    a: null\n  condition: s",
			[]*event.Event{ev("b", "x")}, []*event.Event{ev("a", "x")}},
		{"empty string is absent (empty values are never stored)", "  s:\n    a: ''\n  condition: s",
			[]*event.Event{ev("b", "x")}, []*event.Event{ev("a", "x")}},
		{"number compares as number", "  s:\n    a: 4688\n  condition: s",
			[]*event.Event{ev("a", "4688"), ev("a", "04688")}, []*event.Event{ev("a", "46880")}},
		{"quoted number is a string", "  s:\n    a: '0x10'\n  condition: s",
			[]*event.Event{ev("a", "0X10")}, []*event.Event{ev("a", "16")}},
		{"gt/lte", "  s:\n    a|gt: 10\n    b|lte: 2.5\n  condition: s",
			[]*event.Event{ev("a", "11", "b", "2.5")}, []*event.Event{ev("a", "10", "b", "1"), ev("a", "11", "b", "3"), ev("a", "x", "b", "1")}},
		{"gte/lt", "  s:\n    a|gte: 10\n    a|lt: 12\n  condition: s",
			[]*event.Event{ev("a", "10"), ev("a", "11.9")}, []*event.Event{ev("a", "12"), ev("a", "9")}},
		{"re is case-sensitive and unanchored", "  s:\n    a|re: 'ab+c'\n  condition: s",
			[]*event.Event{ev("a", "xxabbbc")}, []*event.Event{ev("a", "ABC")}},
		{"re|i", "  s:\n    a|re|i: '^ab+c$'\n  condition: s",
			[]*event.Event{ev("a", "ABBC")}, []*event.Event{ev("a", "xabc")}},
		{"re|m", "  s:\n    a|re|m: '^b$'\n  condition: s",
			[]*event.Event{ev("a", "a\nb\nc")}, []*event.Event{ev("a", "ab")}},
		{"re|s", "  s:\n    a|re|s: 'a.b'\n  condition: s",
			[]*event.Event{ev("a", "a\nb")}, []*event.Event{ev("a", "ab")}},
		{"cased", "  s:\n    a|cased|contains: Foo\n  condition: s",
			[]*event.Event{ev("a", "xFooy")}, []*event.Event{ev("a", "xfooy")}},
		{"windash", "  s:\n    a|windash|contains: ' -enc '\n  condition: s",
			[]*event.Event{ev("a", "ps -enc x"), ev("a", "ps /enc x"), ev("a", "ps –enc x"), ev("a", "ps —enc x"), ev("a", "ps ―enc x")},
			[]*event.Event{ev("a", "ps enc x"), ev("a", "ps +enc x")}},
		{"cidr v4", "  s:\n    a|cidr: 10.0.0.0/8\n  condition: s",
			[]*event.Event{ev("a", "10.1.2.3")}, []*event.Event{ev("a", "11.0.0.1"), ev("a", "not-an-ip")}},
		{"cidr v6", "  s:\n    a|cidr: '2001:db8::/32'\n  condition: s",
			[]*event.Event{ev("a", "2001:db8::1")}, []*event.Event{ev("a", "2001:db9::1"), ev("a", "10.0.0.1")}},
		{"base64", "  s:\n    a|base64|contains: 'http://'\n  condition: s",
			[]*event.Event{ev("a", b64("aHR0cDovLw=="))}, []*event.Event{ev("a", "http://")}},
		{"base64offset", "  s:\n    a|base64offset|contains: 'IEX'\n  condition: s",
			// pySigma's three variants: SUVY, lFW, JRV
			[]*event.Event{ev("a", "SUVY"), ev("a", "xxlFWyy"), ev("a", "JRV")},
			[]*event.Event{ev("a", "IEX")}},
		{"wide|base64offset", "  s:\n    a|wide|base64offset|contains: 'ping'\n  condition: s",
			// "ping" in UTF-16LE at offsets 0,1,2 of a base64 text
			[]*event.Event{ev("a", "cABpAG4AZw"), ev("a", "xAAaQBuAGcAx"), ev("a", "wAGkAbgBnA")},
			[]*event.Event{ev("a", "cGluZw")}},
		{"utf16be|base64", "  s:\n    a|utf16be|base64|contains: 'A'\n  condition: s",
			[]*event.Event{ev("a", "AEE=")}, []*event.Event{ev("a", "QQ==")}},
		{"exists", "  s:\n    a|exists: true\n    b|exists: false\n  condition: s",
			[]*event.Event{ev("a", "1")}, []*event.Event{ev("a", "1", "b", "2"), ev("c", "1")}},
		{"fieldref", "  s:\n    a|fieldref: b\n  condition: s",
			[]*event.Event{ev("a", "X", "b", "x")}, []*event.Event{ev("a", "x", "b", "y"), ev("a", "x")}},
		{"fieldref|endswith", "  s:\n    a|fieldref|endswith: b\n  condition: s",
			[]*event.Event{ev("a", `c:\dir\x.exe`, "b", "X.EXE")}, []*event.Event{ev("a", "x.exe.y", "b", "x.exe")}},
		{"expand", "  s:\n    a|expand: '%DC%'\n  condition: s",
			[]*event.Event{ev("a", "dc1"), ev("a", "DC2")}, []*event.Event{ev("a", "dc3")}},
		{"expand unknown placeholder matches nothing", "  s:\n    a|expand: '%Nobody%'\n  condition: s",
			nil, []*event.Event{ev("a", "%Nobody%"), ev("a", "x")}},
		{"keywords over message", "  kw:\n    - 'evil thing'\n    - 'bad*stuff'\n  condition: kw",
			[]*event.Event{ev("message", "an EVIL THING happened"), ev("message", "bad and stuff")}, []*event.Event{ev("message", "good")}},
		{"keywords over Original", "  kw:\n    - needle\n  condition: kw",
			[]*event.Event{ev("message", "x", "Original", "<1>hay NEEDLE hay")}, []*event.Event{ev("message", "x", "Original", "hay")}},
		{"keywords over every value without message", "  kw:\n    - needle\n  condition: kw",
			[]*event.Event{ev("a", "x", "b", "the needle")}, []*event.Event{ev("a", "x", "message", "no", "b", "needle")}},
		{"keyword |re under an empty field", "  kw:\n    '|re': 'n[e]+dle'\n  condition: kw",
			[]*event.Event{ev("message", "needle")}, []*event.Event{ev("message", "nadle")}},
		{"keywords |all", "  kw:\n    '|all': [foo, bar]\n  condition: kw",
			[]*event.Event{ev("message", "foo bar")}, []*event.Event{ev("message", "foo")}},
	}
	opts := Options{Placeholders: map[string][]string{"DC": {"dc1", "dc2"}}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := mustParse(t, rule(c.det), opts)
			for _, e := range c.yes {
				if !matches(rs, e) {
					t.Errorf("should match %v %q", e.Fields, e.Original)
				}
				if got := matchedIDs(rs.matchNaive, e); len(got) != 1 {
					t.Errorf("naive evaluator disagrees on %v", e.Fields)
				}
			}
			for _, e := range c.no {
				if matches(rs, e) {
					t.Errorf("should not match %v %q", e.Fields, e.Original)
				}
			}
		})
	}
}

func TestConditions(t *testing.T) {
	sel := "  sel1:\n    a: 1\n  sel2:\n    b: 1\n  other:\n    c: 1\n  _hidden:\n    d: 1\n"
	e := func(a, b, c, d bool) *event.Event {
		var kv []string
		for i, on := range []bool{a, b, c, d} {
			if on {
				kv = append(kv, string(rune('a'+i)), "1")
			}
		}
		return ev(kv...)
	}
	cases := []struct {
		cond string
		want func(a, b, c, d bool) bool
	}{
		{"sel1", func(a, b, c, d bool) bool { return a }},
		{"sel1 and sel2", func(a, b, c, d bool) bool { return a && b }},
		{"sel1 or sel2", func(a, b, c, d bool) bool { return a || b }},
		{"not sel1", func(a, b, c, d bool) bool { return !a }},
		{"sel1 and not sel2", func(a, b, c, d bool) bool { return a && !b }},
		{"sel1 or sel2 and other", func(a, b, c, d bool) bool { return a || (b && c) }},
		{"(sel1 or sel2) and other", func(a, b, c, d bool) bool { return (a || b) && c }},
		{"not (sel1 or sel2)", func(a, b, c, d bool) bool { return !(a || b) }},
		{"not not sel1", func(a, b, c, d bool) bool { return a }},
		{"1 of sel*", func(a, b, c, d bool) bool { return a || b }},
		{"all of sel*", func(a, b, c, d bool) bool { return a && b }},
		{"1 of them", func(a, b, c, d bool) bool { return a || b || c }},
		{"all of them", func(a, b, c, d bool) bool { return a && b && c }},
		{"any of sel*", func(a, b, c, d bool) bool { return a || b }},
		{"2 of them", func(a, b, c, d bool) bool { return (a && b) || (a && c) || (b && c) }},
		{"1 of sel* and not other", func(a, b, c, d bool) bool { return (a || b) && !c }},
		{"_hidden and SEL1", nil}, // identifiers are case-sensitive: error
		{"sel1 AND sel2 OR NOT other", func(a, b, c, d bool) bool { return (a && b) || !c }},
		{"all of _hidden", func(a, b, c, d bool) bool { return d }},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			rs, errs := Parse("t.yml", []byte(rule(sel+"  condition: "+c.cond)), Options{})
			if c.want == nil {
				if len(errs) == 0 || !errors.Is(errs[0], ErrCondition) {
					t.Fatalf("want ErrCondition, got %v", errs)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatal(errs[0])
			}
			for m := 0; m < 16; m++ {
				a, b, cc, d := m&1 != 0, m&2 != 0, m&4 != 0, m&8 != 0
				if got := matches(rs, e(a, b, cc, d)); got != c.want(a, b, cc, d) {
					t.Errorf("a=%v b=%v c=%v d=%v: got %v", a, b, cc, d, got)
				}
			}
		})
	}
}

func TestConditionList(t *testing.T) {
	rs := mustParse(t, rule("  s1:\n    a: 1\n  s2:\n    b: 1\n  condition:\n    - s1\n    - s2\n"), Options{})
	if !matches(rs, ev("b", "1")) || matches(rs, ev("c", "1")) {
		t.Fatal("a list of conditions is their OR")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, yml string
		want      error
		line      int
	}{
		{"bad yaml", "title: [\n", ErrYAML, 1},
		{"no detection", "title: x\nid: x1\n", ErrRule, 1},
		{"unknown modifier", rule("  s:\n    a|bogus: 1\n  condition: s"), ErrModifier, 7},
		{"unknown identifier", rule("  s:\n    a: 1\n  condition: s and t"), ErrCondition, 8},
		{"lookahead regexp", rule("  s:\n    a|re: 'a(?=b)'\n  condition: s"), ErrRegexp, 7},
		{"backreference", rule("  s:\n    a|re: '(a)\\1'\n  condition: s"), ErrRegexp, 7},
		{"aggregation", rule("  s:\n    a: 1\n  condition: s | count() > 5"), ErrUnsupported, 8},
		{"base64 of wildcard", rule("  s:\n    a|base64: 'a*'\n  condition: s"), ErrModifier, 7},
		{"cidr garbage", rule("  s:\n    a|cidr: 'x/8'\n  condition: s"), ErrModifier, 7},
		{"exists needs bool", rule("  s:\n    a|exists: maybe\n  condition: s"), ErrModifier, 7},
		{"empty condition", rule("  s:\n    a: 1\n  condition: ''"), ErrCondition, 8},
		{"1 of nothing", rule("  s:\n    a: 1\n  condition: 1 of x*"), ErrCondition, 8},
		{"collection", "action: global\ntitle: x\n", ErrUnsupported, 1},
		{"meta filter", "title: f\nlogsource:\n  product: windows\nfilter:\n  rules: [x]\n  s:\n    a: 1\n  condition: not s\n", ErrUnsupported, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, errs := Parse("bad.yml", []byte(c.yml), Options{})
			if len(errs) != 1 {
				t.Fatalf("want 1 error, got %v", errs)
			}
			le := errs[0]
			if !errors.Is(le, c.want) {
				t.Errorf("error %v does not wrap %v", le, c.want)
			}
			if le.Line != c.line {
				t.Errorf("line %d, want %d (%v)", le.Line, c.line, le)
			}
			if !strings.HasPrefix(le.Error(), fmt.Sprintf("bad.yml:%d: rule ", c.line)) {
				t.Errorf("message %q", le.Error())
			}
			if st := rs.Stats(); st.Skipped != 1 || st.Loaded != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestMultiDocumentAndCorrelation(t *testing.T) {
	yml := rule("  s:\n    a: 1\n  condition: s") + "\n---\n" +
		"title: bad\nid: 22222222-2222-2222-2222-222222222222\ndetection:\n  condition: nope\n" +
		"---\n" +
		"title: corr\nname: c1\ncorrelation:\n  type: event_count\n  rules: [x]\n  timespan: 5m\n" +
		"---\n" +
		strings.Replace(rule("  s:\n    b: 1\n  condition: s"), "1111", "3333", 1) +
		"\n---\n" + rule("  s:\n    c: 1\n  condition: s") // duplicate id
	rs, errs := Parse("multi.yml", []byte(yml), Options{})
	if len(errs) != 2 {
		t.Fatalf("errors %v", errs)
	}
	if !errors.Is(errs[0], ErrCondition) || errs[0].Line != 13 || errs[0].RuleID != "22222222-2222-2222-2222-222222222222" {
		t.Errorf("first error %v (line %d)", errs[0], errs[0].Line)
	}
	if !errors.Is(errs[1], ErrDuplicate) {
		t.Errorf("second error %v", errs[1])
	}
	if n := len(rs.Rules()); n != 2 {
		t.Fatalf("%d rules", n)
	}
	corr := rs.Correlations()
	if len(corr) != 1 || corr[0].Index != 2 || !strings.Contains(string(corr[0].Body), "type: event_count") || strings.Contains(string(corr[0].Body), "title: bad") {
		t.Fatalf("correlations %+v", corr)
	}
	if !matches(rs, ev("b", "1")) || matches(rs, ev("c", "1")) {
		t.Error("wrong rules kept")
	}
	if st := rs.Stats(); st.Loaded != 2 || st.Skipped != 2 || st.Correlations != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestRuleMetadata(t *testing.T) {
	yml := `title: T
id: 44444444-4444-4444-4444-444444444444
name: n
status: Test
level: High
description: d
author: me
references: [https://a]
tags: [attack.t1059]
falsepositives: Admins
logsource:
  product: Windows
  category: Process_Creation
detection:
  s:
    Image|endswith: '\x.exe'
  condition: s
`
	rs := mustParse(t, yml, Options{})
	r := rs.Rules()[0]
	want := Rule{ID: "44444444-4444-4444-4444-444444444444", Name: "n", Title: "T", Description: "d", Level: "high", Status: "test",
		Path: "test.yml", Author: "me", Tags: []string{"attack.t1059"}, References: []string{"https://a"}, Falsepositives: []string{"Admins"},
		Logsource: Logsource{Product: "windows", Category: "process_creation"}, Line: 1}
	if fmt.Sprint(*r) != fmt.Sprint(want) {
		t.Errorf("rule\n%+v\nwant\n%+v", *r, want)
	}
}

func TestWarningForUnknownPlaceholder(t *testing.T) {
	rs, errs := Parse("p.yml", []byte(rule("  s:\n    a|expand: '%Workstations%'\n  condition: s")), Options{})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	w := rs.Warnings()
	if len(w) != 1 || w[0].Line != 7 || !strings.Contains(w[0].Msg, "%Workstations%") || rs.Stats().Warnings != 1 {
		t.Fatalf("warnings %v", w)
	}
}

func TestConcurrentMatch(t *testing.T) {
	rs := mustParse(t, rule("  s:\n    a|contains: needle\n  condition: s"), Options{})
	done := make(chan int)
	for g := 0; g < 8; g++ {
		go func(g int) {
			n := 0
			for i := 0; i < 2000; i++ {
				v := fmt.Sprintf("HAY%dNEEDLE%d", g, i)
				if i%2 == 1 {
					v = fmt.Sprintf("hay%d", i)
				}
				if matches(rs, ev("a", v, "b", strings.Repeat("X", i%50))) {
					n++
				}
			}
			done <- n
		}(g)
	}
	for g := 0; g < 8; g++ {
		if n := <-done; n != 1000 {
			t.Errorf("goroutine matched %d of 1000", n)
		}
	}
}

func TestNeedsAreNecessary(t *testing.T) {
	// A rule whose every selection has a literal is indexed; one with only
	// a negation or a regexp is evaluated always.
	rs := mustParse(t, rule("  s:\n    a|contains: abc\n  t:\n    b|re: x\n  condition: s or not t"), Options{})
	if st := rs.Stats(); st.AlwaysEval != 1 {
		t.Errorf("always %d", st.AlwaysEval)
	}
	rs = mustParse(t, rule("  s:\n    a|contains: abc\n  t:\n    b|re: x\n  condition: s and not t"), Options{})
	if st := rs.Stats(); st.AlwaysEval != 0 || st.Patterns != 1 {
		t.Errorf("stats %+v", st)
	}
	if !matches(rs, ev("a", "xABCx")) || matches(rs, ev("a", "abc", "b", "x")) {
		t.Error("indexed rule evaluates wrong")
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pat, v string
		want   bool
	}{
		{"*", "", true}, {"a*", "a", true}, {"*a", "ba", true}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbYcZ", false}, {"*ab*ab", "abab", true}, {"*aab", "aaab", true},
		{"?", "é", true}, {"??", "é", false}, {"a?c*", "abcdef", true}, {"*?", "", false},
		{"a**b", "ab", true}, {`a\*b`, "a*b", true}, {`a\*b`, "axb", false},
	}
	for _, c := range cases {
		if got := globMatch(parseSigmaString(c.pat), c.v); got != c.want {
			t.Errorf("%q ~ %q = %v", c.pat, c.v, got)
		}
	}
}

func TestAutomaton(t *testing.T) {
	pats := []string{"he", "she", "his", "hers", "\\cmd.exe", "s"}
	texts := []string{"ushers", "c:\\windows\\cmd.exe", "", "hishe", "xxxx", "USHERS", "C:\\Windows\\CMD.EXE"}
	// Random patterns and texts over a small alphabet, so that the text
	// walks deep states, fails back and overlaps patterns.
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			const alphabet = "abcAB\\:."
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	var rpats []string
	for range 300 {
		rpats = append(rpats, strings.ToLower(word(1+rng.IntN(8))))
	}
	var rtexts []string
	for range 200 {
		rtexts = append(rtexts, word(rng.IntN(60)))
	}
	for _, tc := range []struct {
		pats, texts []string
	}{{pats, texts}, {rpats, rtexts}} {
		ids := make([]int32, len(tc.pats))
		for i := range ids {
			ids[i] = int32(i)
		}
		// Budget 0: only the root and depth 1 are dense; the default:
		// a complete DFA for these sizes.
		for _, budget := range []int{0, 64, denseBudget} {
			a := buildAutomaton(tc.pats, ids, budget)
			for _, text := range tc.texts {
				got, ok := a.scan(text, nil)
				if !ok {
					t.Fatalf("%q: ASCII text refused", text)
				}
				lower := strings.ToLower(text)
				var want []int32
				for i := 0; i < len(lower); i++ {
					for j, p := range tc.pats {
						if strings.HasSuffix(lower[:i+1], p) {
							want = append(want, ids[j])
						}
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("budget %d, %q: got %v want %v", budget, text, got, want)
				}
				got = a.scanLower(lower, nil)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("budget %d, scanLower %q: got %v want %v", budget, lower, got, want)
				}
			}
		}
	}
}

// TestRegexpFastPaths: the length pre-check and the ".{n,}" length test
// must agree with package regexp.
func TestRegexpFastPaths(t *testing.T) {
	exprs := []string{`.{5,}`, `(?s).{5,}`, `(.{3,})`, `(?i)ab[0-9]{3}`, `a|bcd`, `x*`, `^$`, `\bfoo\b`, `(?i)k{2}`}
	values := []string{"", "abcd", "abcde", "ab\ncde", "abc\ndefgh", "a\nb\nc\nd\ne", "Ab123", "AB12",
		"ééééé", "é\né\né", "\xff\xfe\xfd\xfc\xfb", "KK", "\u212a\u212a", "foo", "bcd", "xxx"}
	for _, expr := range exprs {
		re := regexp.MustCompile(expr)
		m := newReMatcher(expr, re)
		for _, v := range values {
			if got, want := m.match(nil, val{raw: v}), re.MatchString(v); got != want {
				t.Errorf("%s on %q: %v, regexp says %v (minLen %d, runLen %d)", expr, v, got, want, m.minLen, m.runLen)
			}
		}
	}
}

// TestAutomatonShortText: text shorter than every pattern is skipped, but
// not non-ASCII text, whose lower-case form can be longer ("Ⱥ" is 2 bytes,
// its lower case 3) and must reach scanLower.
func TestAutomatonShortText(t *testing.T) {
	a := newAutomaton([]string{"abc", strings.ToLower("Ⱥ")}, []int32{0, 1})
	for _, tc := range []struct {
		text string
		want []int32
	}{
		{"ab", nil}, {"", nil}, {"ABC", []int32{0}}, {"xabcx", []int32{0}}, {"Ⱥ", []int32{1}}, {"xȺ", []int32{1}},
	} {
		got, ok := a.scan(tc.text, nil)
		if !ok {
			got = a.scanLower(strings.ToLower(tc.text), nil)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.text, got, tc.want)
		}
	}
}
