package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/pattern/yara"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// walkFiles (used when YARA rules are loaded) must see what
// pattern.Scanner.Walk sees.
func TestWalkFilesMatchesScannerWalk(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	set, _, err := pattern.Load(filepath.Join(root, "sigs"))
	if err != nil {
		t.Fatal(err)
	}
	sc := pattern.NewScanner(set, pattern.Limits{})
	collect := func(walk func(fn func(pattern.FileResult) error) error) []string {
		var got []string
		if err := walk(func(r pattern.FileResult) error {
			for _, d := range r.Detections {
				got = append(got, d.String())
			}
			if r.Err != nil {
				got = append(got, r.Path+": "+r.Err.Error())
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	samples := filepath.Join(root, "samples")
	want := collect(func(fn func(pattern.FileResult) error) error { return sc.Walk(context.Background(), samples, 3, fn) })
	got := collect(func(fn func(pattern.FileResult) error) error {
		return pattern.WalkFiles(context.Background(), samples, 3, func(ctx context.Context, p string) pattern.FileResult {
			dets, err := sc.ScanFile(ctx, p)
			return pattern.FileResult{Path: p, Detections: dets, Err: err}
		}, fn)
	})
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("walkFiles found\n%s\nScanner.Walk found\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A callback error stops the walk and is returned.
	stop := errors.New("stop")
	if err := pattern.WalkFiles(context.Background(), samples, 2, func(ctx context.Context, p string) pattern.FileResult {
		return pattern.FileResult{Path: p}
	}, func(pattern.FileResult) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("walk error %v, want the callback's", err)
	}
}

// Without the yara tag, .yar files are reported as needing the engine and
// the rest of the patterns are used.
func TestScanWithoutYARAEngine(t *testing.T) {
	if yara.Built {
		t.Skip("built with the yara tag")
	}
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
