//go:build !yara || !cgo

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// Without the yara tag, .yar files are reported as needing the engine and
// the rest of the patterns are used.
func TestScanWithoutYARAEngine(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	var stdout, stderr bytes.Buffer
	err := runScan(context.Background(), &stdout, &stderr, []string{filepath.Join(root, "samples", "eicar.com")},
		[]string{filepath.Join(root, "sigs")}, 1, pattern.Limits{}, false)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFound {
		t.Fatalf("exit %v, want found", err)
	}
	if !strings.Contains(stderr.String(), "eicar.yar") || !strings.Contains(stderr.String(), "yara tag") {
		t.Fatalf("no warning about the .yar file:\n%s", stderr.String())
	}
	if strings.Contains(stdout.String(), `"kind":"yara"`) || strings.Contains(stdout.String(), "yara_rules") {
		t.Fatalf("YARA results without the engine:\n%s", stdout.String())
	}
	// YARA rules alone are no usable patterns.
	yarOnly := t.TempDir()
	b, err := os.ReadFile(filepath.Join(root, "sigs", "eicar.yar"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(yarOnly, "eicar.yar"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	err = runScan(context.Background(), &stdout, &stderr, []string{root}, []string{yarOnly}, 1, pattern.Limits{}, true)
	if !errors.As(err, &ee) || ee.code != exitUsage {
		t.Fatalf("YARA-only patterns without the engine: %v, want a usage error", err)
	}
}
