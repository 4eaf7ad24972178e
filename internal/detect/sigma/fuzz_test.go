package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/testutil"
)

var fuzzEvents = []string{
	"a", "1", "message", "hello world needle", "winlog.channel", "Microsoft-Windows-Sysmon/Operational",
}

// FuzzParse: any input either loads or yields LoadErrors naming the file
// and a sentinel; loading never panics; what loads matches the same way
// with and without the index.
func FuzzParse(f *testing.F) {
	f.Add([]byte(rule("  s:\n    a|contains|all: [x, y]\n  k:\n    - needle\n  condition: s or k")))
	f.Add([]byte(rule("  s:\n    a|re|i: '^x'\n    b|cidr: 10.0.0.0/8\n  condition: not s")))
	f.Add([]byte("title: c\ncorrelation:\n  type: event_count\n---\n" + rule("  s:\n    a: 1\n  condition: 1 of them")))
	if dir := testutil.CorpusDir(); dir != "" {
		for _, p := range []string{
			"sigma/rules/windows/process_creation/proc_creation_win_powershell_base64_encoded_cmd.yml",
			"sigma/rules/web/webserver_generic/web_path_traversal_exploitation_attempt.yml",
			"sigma/rules/network/zeek/zeek_dns_susp_zbit_flag.yml",
		} {
			if b, err := os.ReadFile(filepath.Join(dir, p)); err == nil {
				f.Add(b)
			}
		}
	}
	sentinels := []error{ErrYAML, ErrRule, ErrCondition, ErrModifier, ErrRegexp, ErrUnsupported, ErrDuplicate}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, errs := Parse("fuzz.yml", data, Options{Placeholders: map[string][]string{"p": {"v"}}})
		for _, e := range errs {
			if e == nil || e.Err == nil || !strings.HasPrefix(e.Error(), "fuzz.yml:") {
				t.Fatalf("bad load error %#v", e)
			}
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(e, s) }) {
				t.Fatalf("load error wraps no sentinel: %v", e)
			}
		}
		st := rs.Stats()
		if st.Loaded != len(rs.Rules()) || st.Skipped != len(errs) || st.Correlations != len(rs.Correlations()) {
			t.Fatalf("stats %+v disagree with %d rules, %d errors", st, len(rs.Rules()), len(errs))
		}
		e := ev(fuzzEvents...)
		if got, want := matchedIDs(rs.Match, e), matchedIDs(rs.matchNaive, e); !slices.Equal(got, want) {
			t.Fatalf("indexed %v, naive %v", got, want)
		}
	})
}

// FuzzCondition: a condition either parses or fails with ErrCondition /
// ErrUnsupported; a parsed tree printed and parsed again is the same tree.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{"sel1", "sel1 and not sel2", "(sel1 or sel2) and other", "1 of sel*", "all of them",
		"not (1 of sel* or all of them) and _x", "sel1 | count() > 2", "2 of them", "((sel1))", "sel1 or", "1 of"} {
		f.Add(s)
	}
	names := []string{"sel1", "sel2", "other", "_x"}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCondition(s, names)
		if err != nil {
			if !errors.Is(err, ErrCondition) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%q: error %v wraps no sentinel", s, err)
			}
			return
		}
		if strings.Contains(n.format(names), " of [") {
			return // "N of" with 1 < N < all has no source form to print
		}
		text := n.format(names)
		m, err := parseCondition(text, names)
		if err != nil {
			t.Fatalf("%q printed as %q does not parse: %v", s, text, err)
		}
		if !n.equal(m) {
			t.Fatalf("%q printed as %q parses to another tree", s, text)
		}
	})
}
