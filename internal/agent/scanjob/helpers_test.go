package scanjob

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// eicar returns the EICAR test file, assembled at run time so that this
// source is not itself a sample.
func eicar() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR` + `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`)
}

// compile builds a scanner from canonical record lines.
func compile(t testing.TB, lines ...string) *pattern.Scanner {
	t.Helper()
	var recs []pattern.Record
	for _, l := range lines {
		r, err := pattern.ParseRecord(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, r)
	}
	set, warns, err := pattern.Compile(recs)
	if err != nil || len(warns) > 0 {
		t.Fatalf("compile: %v %v", err, warns)
	}
	return pattern.NewScanner(set, pattern.Limits{})
}

// eicarRecords detect the EICAR file by hash and by body.
func eicarRecords() []string {
	sum := md5.Sum(eicar())
	return []string{
		"hash E.Hash " + hex.EncodeToString(sum[:]) + ":68",
		"body E.Body 0:*:" + hex.EncodeToString([]byte("EICAR-STANDARD")),
	}
}

func eicarScanner(t testing.TB) *pattern.Scanner { return compile(t, eicarRecords()...) }

// heavyScanner also hashes every object whole with md5, sha1 and sha256
// (size-wildcard signatures that never match): CPU work per byte.
func heavyScanner(t testing.TB) *pattern.Scanner {
	return compile(t, append(eicarRecords(),
		"hash H.MD5 "+strings.Repeat("0", 32)+":*",
		"hash H.SHA1 "+strings.Repeat("0", 40)+":*",
		"hash H.SHA256 "+strings.Repeat("0", 64)+":*",
	)...)
}

func write(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// filler returns n bytes that match nothing and do not look like a
// container.
func filler(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return b
}

// hits records OnDetection calls.
type hits struct {
	mu   sync.Mutex
	dets []pattern.Detection
}

func (h *hits) on(_ context.Context, d pattern.Detection) {
	h.mu.Lock()
	h.dets = append(h.dets, d)
	h.mu.Unlock()
}

// paths returns the detected top-level paths, sorted and unique.
func (h *hits) paths() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, d := range h.dets {
		out = append(out, d.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (h *hits) has(p string) bool { return slices.Contains(h.paths(), p) }

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// realDir resolves t.TempDir (a symbolic link on darwin) so that paths
// compare equal to the ones the Runner reports.
func realDir(t testing.TB) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
