package scanjob

import (
	"path/filepath"
	"runtime"
	"strings"
)

// excluder decides which paths are never scanned or watched.
type excluder struct {
	paths []string // absolute: the path and everything below it
	globs []string // absolute globs, matched against the path and its ancestors
	names []string // globs matched against each path element
}

// newExcluder compiles exclusion entries (see Options.Exclude) and returns
// the malformed ones, which are ignored.
func newExcluder(entries []string) (excluder, []string) {
	var e excluder
	var bad []string
	for _, s := range entries {
		if s == "" {
			continue
		}
		glob := strings.ContainsAny(s, "*?[")
		hasSep := strings.Contains(s, "/") || (runtime.GOOS == "windows" && strings.Contains(s, `\`))
		if !hasSep {
			if _, err := filepath.Match(s, ""); err != nil {
				bad = append(bad, s)
				continue
			}
			e.names = append(e.names, fold(s))
			continue
		}
		abs, err := filepath.Abs(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		abs = fold(abs)
		if !glob {
			e.paths = append(e.paths, abs)
			continue
		}
		if _, err := filepath.Match(abs, ""); err != nil {
			bad = append(bad, s)
			continue
		}
		e.globs = append(e.globs, abs)
	}
	return e, bad
}

func (e excluder) empty() bool { return len(e.paths)+len(e.globs)+len(e.names) == 0 }

// excluded reports whether the absolute, clean path p or any of its
// ancestors is excluded.
func (e excluder) excluded(p string) bool {
	if e.empty() {
		return false
	}
	q := fold(p)
	for {
		if e.matchOne(q) {
			return true
		}
		parent := filepath.Dir(q)
		if parent == q {
			return false
		}
		q = parent
	}
}

// excludedSelf checks p alone, for walks that skipped excluded directories
// already.
func (e excluder) excludedSelf(p string) bool {
	return !e.empty() && e.matchOne(fold(p))
}

func (e excluder) matchOne(q string) bool {
	for _, x := range e.paths {
		if q == x {
			return true
		}
	}
	for _, g := range e.globs {
		if ok, _ := filepath.Match(g, q); ok {
			return true
		}
	}
	if len(e.names) > 0 {
		base := filepath.Base(q)
		for _, n := range e.names {
			if ok, _ := filepath.Match(n, base); ok {
				return true
			}
		}
	}
	return false
}

// fold makes paths comparable on the systems whose file systems usually
// ignore case.
func fold(p string) string {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return strings.ToLower(p)
	}
	return p
}

// DefaultExcludes returns pseudo file systems that must not be read as
// files (/proc/kcore is a "regular" file as large as the address space);
// the agent adds its own and the quarantine directory.
func DefaultExcludes() []string {
	switch runtime.GOOS {
	case "linux":
		return []string{"/proc", "/sys", "/dev"}
	case "darwin":
		return []string{"/dev"}
	}
	return nil
}
