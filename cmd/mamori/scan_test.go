package main

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// pattern.WalkFiles (used when YARA rules are loaded) must see what
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
