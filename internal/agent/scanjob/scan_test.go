package scanjob

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/pattern"
)

func zipOf(t testing.TB, name string, data []byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestScanTree(t *testing.T) {
	dir := realDir(t)
	outside := realDir(t)
	tree := filepath.Join(dir, "tree")
	bad := write(t, filepath.Join(tree, "a", "eicar.com"), eicar())
	zipped := write(t, filepath.Join(tree, "a", "b", "e.zip"), zipOf(t, "e.com", eicar()))
	write(t, filepath.Join(tree, "a", "clean.txt"), []byte("clean"))
	write(t, filepath.Join(tree, "quarantine", "q.com"), eicar())       // excluded by path
	write(t, filepath.Join(tree, "a", "x.skip"), eicar())               // excluded by name glob
	write(t, filepath.Join(tree, "node_modules", "m", "e.js"), eicar()) // excluded by element
	write(t, filepath.Join(tree, "big.bin"), append(filler(200<<10), eicar()...))
	ext := write(t, filepath.Join(outside, "outside.com"), eicar())
	wantSkipped := int64(4)
	if runtime.GOOS != "windows" {
		if err := os.Symlink(ext, filepath.Join(tree, "link.com")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(tree, "a", "outlink")); err != nil {
			t.Fatal(err)
		}
		wantSkipped += 2
	}

	var h hits
	var summaries int
	r := New(Options{
		Scanner:     func() *pattern.Scanner { return eicarScanner(t) },
		Exclude:     []string{filepath.Join(tree, "quarantine"), "*.skip", "node_modules"},
		MaxFileSize: 100 << 10,
		OnDetection: h.on,
		OnSummary:   func(Summary, error) { summaries++ },
		KnownClean:  func(p string) bool { return p == zipped },
	})
	sum, err := r.Scan(context.Background(), Request{Paths: []string{tree, filepath.Join(tree, "a")}, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.paths(), []string{zipped, bad}; !slices.Equal(got, want) {
		t.Errorf("detected %v, want %v (no exclusion, link or oversized file)", got, want)
	}
	// eicar.com, e.zip, clean.txt; the nested root is not walked twice.
	if sum.Files != 3 || sum.Detections != 4 || len(sum.Found) != 4 || sum.Errors != 0 || sum.Partial {
		t.Errorf("summary %+v", sum)
	}
	if sum.Skipped != wantSkipped {
		t.Errorf("skipped %d, want %d (quarantine dir, *.skip, node_modules dir, big.bin, 2 links)", sum.Skipped, wantSkipped)
	}
	if sum.Bytes != int64(68+len(zipOf(t, "e.com", eicar()))+5) {
		t.Errorf("bytes %d", sum.Bytes)
	}
	if sum.Reason != "test" || sum.CPUClock == "" || summaries != 1 {
		t.Errorf("reason %q clock %q summaries %d", sum.Reason, sum.CPUClock, summaries)
	}
	c := r.Health()
	if c.Scans != 3 || c.Detections != 4 || c.CleanHits != 2 || c.Jobs != 1 || c.ScanErrors != 0 {
		t.Errorf("health %+v", c)
	}
	var fh fleet.Health
	fh.SelfTestFailed = true
	c.ApplyTo(&fh)
	if fh.Scans != 3 || fh.Detections != 4 || fh.CleanHits != 2 || fh.ScanCPUMillis != c.ScanCPUMillis || !fh.SelfTestFailed {
		t.Errorf("fleet health %+v", fh)
	}
}

func TestScanErrors(t *testing.T) {
	dir := realDir(t)
	write(t, filepath.Join(dir, "ok.txt"), []byte("ok"))
	r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }})
	missing := make([]string, 8)
	for i := range missing {
		missing[i] = filepath.Join(dir+"-missing", string(rune('a'+i)))
	}
	sum, err := r.Scan(context.Background(), Request{Paths: append(missing, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 8 || len(sum.FirstErrors) != MaxErrorSamples || sum.Files != 1 {
		t.Errorf("summary %+v", sum)
	}
	if r.Health().ScanErrors != 8 {
		t.Errorf("health %+v", r.Health())
	}

	if _, err := r.Scan(context.Background(), Request{}); !errors.Is(err, ErrNoPaths) {
		t.Errorf("no paths: %v", err)
	}
	none := New(Options{Scanner: func() *pattern.Scanner { return nil }})
	if _, err := none.Scan(context.Background(), Request{Paths: []string{dir}}); !errors.Is(err, ErrNoPatterns) {
		t.Errorf("no patterns: %v", err)
	}
}

// A second scan is refused while one runs; cancelling the first cuts it
// short.
func TestScanBusyAndCancel(t *testing.T) {
	dir := realDir(t)
	for i := range 4 {
		write(t, filepath.Join(dir, string(rune('a'+i))), filler(256<<10))
	}
	r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }, IOBytesPerSec: 256 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		s   Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := r.Scan(ctx, Request{Paths: []string{dir}})
		done <- result{s, err}
	}()
	eventually(t, 10*time.Second, "the first scan to start", r.running.Load)
	if _, err := r.Scan(context.Background(), Request{Paths: []string{dir}}); !errors.Is(err, ErrBusy) {
		t.Errorf("second scan: %v, want ErrBusy", err)
	}
	cancel()
	res := <-done
	if !errors.Is(res.err, context.Canceled) || !res.s.Partial || res.s.Files >= 4 || res.s.Errors != 0 {
		t.Errorf("cancelled scan: %+v %v", res.s, res.err)
	}
	// The Runner is free again.
	if _, err := r.Scan(context.Background(), Request{Paths: []string{filepath.Join(dir, "nothing")}}); err != nil {
		t.Errorf("scan after cancel: %v", err)
	}
}

func TestIOLimit(t *testing.T) {
	const total = 8 << 20
	const rate = 16 << 20
	for _, tc := range []struct {
		name      string
		files     int
		bufferMax int64
	}{
		{"buffered", 4, 0},
		{"streamed", 1, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := realDir(t)
			for i := range tc.files {
				write(t, filepath.Join(dir, string(rune('a'+i))), filler(total/tc.files))
			}
			r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }, IOBytesPerSec: rate, BufferMax: tc.bufferMax, Workers: 2})
			start := time.Now()
			sum, err := r.Scan(context.Background(), Request{Paths: []string{dir}})
			wall := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Bytes != total || sum.Files != int64(tc.files) {
				t.Fatalf("summary %+v", sum)
			}
			// N/R = 0.5 s; the bucket starts empty and bursts at most 64 KiB.
			if wall < 450*time.Millisecond || sum.Duration < 450*time.Millisecond {
				t.Errorf("8 MiB at 16 MiB/s took %s (summary %s), want >= 0.45 s", wall, sum.Duration)
			}
		})
	}
}

func TestCPULimit(t *testing.T) {
	const cpu = 0.2
	for _, tc := range []struct {
		name      string
		files     int
		bufferMax int64
	}{
		{"buffered", 24, 0},
		{"streamed", 1, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := realDir(t)
			for i := range tc.files {
				write(t, filepath.Join(dir, string(rune('a'+i))), filler((24<<20)/tc.files))
			}
			sc := heavyScanner(t)
			r := New(Options{Scanner: func() *pattern.Scanner { return sc }, CPU: cpu, BufferMax: tc.bufferMax})
			start := time.Now()
			sum, err := r.Scan(context.Background(), Request{Paths: []string{dir}})
			wall := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if sum.CPU < 20*time.Millisecond {
				t.Fatalf("measured busy time %s (%s): too little to judge the limit", sum.CPU, sum.CPUClock)
			}
			floor := time.Duration(float64(sum.CPU) / cpu * 0.8)
			t.Logf("busy %s (%s), wall %s, floor %s", sum.CPU, sum.CPUClock, wall, floor)
			if wall < floor {
				t.Errorf("busy %s at CPU %.1f took %s, want >= %s", sum.CPU, cpu, wall, floor)
			}
			if got := r.Health().ScanCPUMillis; got <= 0 {
				t.Errorf("mean CPU per scan %v", got)
			}
		})
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Now()
	b := &bucket{rate: 100, burst: 10, last: t0}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		ms   int
		n    float64
		wait time.Duration
	}{
		{0, 50, 500 * time.Millisecond}, // starts empty: pay for all of it
		{0, 10, 600 * time.Millisecond}, // queued behind the first debt
		{600, 5, 50 * time.Millisecond}, // debt repaid exactly, nothing saved
		{5000, 10, 0},                   // idle: saved up to the burst only
		{5000, 10, 100 * time.Millisecond},
	}
	for i, s := range steps {
		if got := b.takeAt(at(s.ms), s.n); got.Round(time.Millisecond) != s.wait {
			t.Errorf("step %d: wait %s, want %s", i, got, s.wait)
		}
	}
}

func TestExcluder(t *testing.T) {
	root := filepath.FromSlash("/data")
	if runtime.GOOS == "windows" {
		root = `C:\data`
	}
	j := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
	e, bad := newExcluder([]string{j("agent"), j("home", "*", ".cache"), "*.iso", ".git", "[", ""})
	if !slices.Equal(bad, []string{"["}) {
		t.Errorf("bad patterns %q", bad)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{j("agent"), true},
		{j("agent", "quarantine", "x"), true},
		{j("agentx", "y"), false},
		{j("home", "kim", ".cache", "f"), true},
		{j("home", "kim", "cache", "f"), false},
		{j("dl", "disk.iso"), true},
		{j("dl", "disk.iso.txt"), false},
		{j("src", ".git", "objects", "aa"), true},
		{j("src", "x.git"), false},
	} {
		if got := e.excluded(tc.path); got != tc.want {
			t.Errorf("excluded(%s) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// Where no thread clock exists the meter counts wall time minus the
// limiter's waits; the CPU budget holds on that measure too.
func TestPaceWallMeter(t *testing.T) {
	r := New(Options{CPU: 0.5})
	m := &meter{epoch: time.Now()}
	m.mark()
	start := time.Now()
	var busy time.Duration
	for range 4 {
		for spin := time.Now(); time.Since(spin) < 10*time.Millisecond; {
		}
		b, err := r.pace(context.Background(), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		busy += b
	}
	wall := time.Since(start)
	if busy < 40*time.Millisecond {
		t.Errorf("busy %s, want >= 40 ms of spinning", busy)
	}
	if busy > wall/2+budgetWindow {
		t.Errorf("busy %s counted the waits too (wall %s)", busy, wall)
	}
	if floor := time.Duration(float64(busy) / 0.5 * 0.8); wall < floor {
		t.Errorf("busy %s at CPU 0.5 took %s, want >= %s", busy, wall, floor)
	}
}
