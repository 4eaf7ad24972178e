// Package testutil holds what tests across packages share: finding the
// shared test corpus and handling a missing real dependency the same way
// everywhere (skip with a message, or fail when MAMORI_REQUIRE_ALL=1, as CI
// sets it).
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// RequireAll reports whether a missing dependency must fail the test.
func RequireAll() bool { return os.Getenv("MAMORI_REQUIRE_ALL") == "1" }

// Missing skips the test with the message, or fails it under
// MAMORI_REQUIRE_ALL=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequireAll() {
		t.Fatalf(format+" (MAMORI_REQUIRE_ALL=1)", args...)
	}
	t.Skipf(format+" (set MAMORI_REQUIRE_ALL=1 to fail instead)", args...)
}

// CorpusDir returns ../shared/corpus beside the repository root (the
// directory holding go.mod), found from the test's working directory, or ""
// when it is absent.
func CorpusDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "corpus")
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Corpus returns the path of rel inside the shared corpus, calling Missing
// when it is absent.
func Corpus(t testing.TB, rel string) string {
	t.Helper()
	root := CorpusDir()
	p := filepath.Join(root, rel)
	if root == "" {
		Missing(t, "shared corpus not found beside the repository: skipping %s", rel)
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "corpus %s absent: %v", rel, err)
	}
	return p
}
