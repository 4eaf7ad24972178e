package pattern

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

func TestWalk(t *testing.T) {
	set := eicarSet(t)
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a/eicar.com", []byte(eicar))
	write("a/b/clean.txt", []byte("clean"))
	write("a/b/c/e.zip", zipOf(t, member{"e.com", []byte(eicar)}))
	for i := range 50 {
		write(filepath.Join("many", string(rune('a'+i%26))+string(rune('a'+i/26))), []byte("filler"))
	}
	if runtime.GOOS != "windows" {
		os.Symlink(filepath.Join(dir, "a", "eicar.com"), filepath.Join(dir, "link.com"))
		os.Symlink(dir, filepath.Join(dir, "a", "loop"))
	}

	sc := NewScanner(set, Limits{})
	var files, hits []string
	err := sc.Walk(context.Background(), dir, 3, func(r FileResult) error {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Path, r.Err)
		}
		rel, _ := filepath.Rel(dir, r.Path)
		files = append(files, rel)
		for _, d := range r.Detections {
			hits = append(hits, filepath.ToSlash(rel)+"!"+d.Container+":"+d.Signature)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(hits)
	want := []string{"a/b/c/e.zip!e.com:E.Body", "a/b/c/e.zip!e.com:E.Hash", "a/eicar.com!:E.Body", "a/eicar.com!:E.Hash"}
	if !slices.Equal(hits, want) {
		t.Errorf("hits %v, want %v", hits, want)
	}
	if len(files) != 53 {
		t.Errorf("%d files scanned, want 53 (symlinks are not followed)", len(files))
	}

	// A callback error stops the walk and is returned.
	stop := errors.New("stop")
	n := 0
	err = sc.Walk(context.Background(), dir, 2, func(FileResult) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d calls", err, n)
	}

	// A missing root is reported through the callback.
	var rerr error
	err = sc.Walk(context.Background(), filepath.Join(dir, "nope"), 1, func(r FileResult) error {
		rerr = r.Err
		return nil
	})
	if err != nil || !errors.Is(rerr, os.ErrNotExist) {
		t.Errorf("missing root: %v / %v", err, rerr)
	}

	// Cancellation ends the walk with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sc.Walk(ctx, dir, 2, func(FileResult) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: %v", err)
	}
}

func TestScanFileErrors(t *testing.T) {
	sc := NewScanner(eicarSet(t), Limits{})
	if _, err := sc.ScanFile(context.Background(), filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := sc.ScanFile(context.Background(), t.TempDir()); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v", err)
	}
}
