package sigma

import (
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mamori-soc/mamori/internal/testutil"
)

// activeDirs are the SigmaHQ rule folders Mamori loads by default
// (deprecated/ and unsupported/ are not).
var activeDirs = []string{"rules", "rules-emerging-threats", "rules-threat-hunting", "rules-dfir", "rules-compliance", "rules-placeholder"}

var corpus struct {
	once sync.Once
	rs   *Ruleset
	errs []*LoadError
	root string
}

// loadCorpus compiles the active SigmaHQ corpus once per test binary.
func loadCorpus(t testing.TB) (*Ruleset, []*LoadError, string) {
	t.Helper()
	root := testutil.Corpus(t, "sigma")
	corpus.once.Do(func() {
		var paths []string
		for _, d := range activeDirs {
			paths = append(paths, filepath.Join(root, d))
		}
		corpus.root = root
		corpus.rs, corpus.errs = Load(paths, Options{})
	})
	return corpus.rs, corpus.errs, corpus.root
}

func TestCorpusLoads(t *testing.T) {
	rs, errs, _ := loadCorpus(t)
	st := rs.Stats()
	t.Logf("files %d, loaded %d (active %d, dormant %d), skipped %d, correlations %d, warnings %d, buckets %d, patterns %d, always-evaluated %d, index %d KiB",
		st.Files, st.Loaded, st.Active, st.Dormant, st.Skipped, st.Correlations, st.Warnings, st.Buckets, st.Patterns, st.AlwaysEval, st.IndexBytes>>10)
	reasons := map[string]int{}
	for _, e := range errs {
		t.Logf("skipped: %v", e)
		if e.Path == "" || e.Err == nil {
			t.Errorf("load error without path or reason: %#v", e)
		}
		var kind string
		for _, s := range []error{ErrYAML, ErrRule, ErrCondition, ErrModifier, ErrRegexp, ErrUnsupported, ErrDuplicate, ErrRead} {
			if errors.Is(e, s) {
				kind = s.Error()
			}
		}
		if kind == "" {
			t.Errorf("load error wraps no sentinel: %v", e)
		}
		reasons[kind]++
	}
	t.Logf("skip reasons: %v", reasons)
	if st.Files < 3000 {
		t.Fatalf("only %d rule files read from the corpus", st.Files)
	}
	if st.Loaded+st.Skipped != st.Files {
		t.Errorf("loaded %d + skipped %d != %d single-rule files", st.Loaded, st.Skipped, st.Files)
	}
	// Every skip must be a regexp RE2 cannot run: everything else in the
	// corpus is supported.
	for _, e := range errs {
		if !errors.Is(e, ErrRegexp) {
			t.Errorf("unexpected skip: %v", e)
		}
	}
	var dormant []string
	for k, n := range st.DormantByLogsource {
		dormant = append(dormant, k+"="+itoa(n))
	}
	sort.Strings(dormant)
	t.Logf("dormant by logsource: %s", strings.Join(dormant, " "))
	for _, w := range rs.Warnings() {
		t.Logf("warning: %s", w)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
