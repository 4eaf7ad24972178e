package scanjob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/mamori-soc/mamori/internal/pattern"
)

// startWatch runs Watch on roots until the test ends and waits until
// wantDirs directories are watched.
func startWatch(t *testing.T, r *Runner, roots []string, wantDirs int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, roots) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
		if n := r.Health().WatchedDirs; n != 0 {
			t.Errorf("%d directories still counted as watched after Watch returned", n)
		}
	})
	eventually(t, 10*time.Second, "the watches", func() bool { return r.Health().WatchedDirs >= wantDirs })
}

func TestWatch(t *testing.T) {
	dir := realDir(t)
	excluded := filepath.Join(dir, "quarantine")
	if err := os.Mkdir(excluded, 0o755); err != nil {
		t.Fatal(err)
	}
	var h hits
	r := New(Options{
		Scanner:     func() *pattern.Scanner { return eicarScanner(t) },
		Exclude:     []string{excluded, "*.part"},
		OnDetection: h.on,
	})
	startWatch(t, r, []string{dir}, 1) // the excluded directory is not watched
	if n := r.Health().WatchedDirs; n != 1 {
		t.Fatalf("%d directories watched, want 1", n)
	}

	// Excluded places first: had they been scanned, it would be before
	// the files below.
	write(t, filepath.Join(excluded, "q.com"), eicar())
	write(t, filepath.Join(dir, "download.part"), eicar())

	// A subdirectory made after the watch started, and a file in it.
	sub := filepath.Join(dir, "new", "deeper")
	bad := write(t, filepath.Join(sub, "eicar.com"), eicar())
	clean := write(t, filepath.Join(dir, "new", "clean.txt"), []byte("nothing to see"))
	eventually(t, 10*time.Second, "the detection in the new subdirectory", func() bool { return h.has(bad) })
	eventually(t, 10*time.Second, "the clean file's scan", func() bool { return r.Health().Scans >= 2 })
	time.Sleep(3 * r.o.WatchQuiet) // let any wrongly queued file be scanned
	if got := h.paths(); len(got) != 1 {
		t.Errorf("detections on %v, want only %s (%s is clean)", got, bad, clean)
	}
	c := r.Health()
	if c.Scans != 2 || c.Detections != 2 || c.WatchedDirs != 3 {
		t.Errorf("health %+v: want 2 scans (excluded paths untouched), 2 detections, 3 watched dirs", c)
	}
}

func TestWatchMaxDelay(t *testing.T) {
	dir := realDir(t)
	r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }, WatchMaxDelay: 500 * time.Millisecond})
	startWatch(t, r, []string{dir}, 1)
	f, err := os.Create(filepath.Join(dir, "growing.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Writes every 20 ms never leave the file quiet for 200 ms: only the
	// maximum delay gets it scanned while the writer still runs.
	deadline := time.Now().Add(10 * time.Second)
	for r.Health().Scans == 0 && time.Now().Before(deadline) {
		f.WriteString("line\n")
		time.Sleep(20 * time.Millisecond)
	}
	if r.Health().Scans == 0 {
		t.Error("a file written continuously was not scanned within 10 s")
	}
}

// An event overflow triggers a rescan of the roots, which finds a file
// no event announced.
func TestWatchOverflowRescan(t *testing.T) {
	dir := realDir(t)
	old := write(t, filepath.Join(dir, "a", "old.com"), eicar()) // before the watch: no event
	var h hits
	var sums []Summary
	r := New(Options{
		Scanner:     func() *pattern.Scanner { return eicarScanner(t) },
		OnDetection: h.on,
		OnSummary:   func(s Summary, _ error) { sums = append(sums, s) },
	})
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{r: r, fw: fw, roots: []string{dir}, dirs: map[string]bool{}, pending: map[string]*change{},
		queue: make(chan string, 4), rescan: make(chan struct{}, 1), retry: 20 * time.Millisecond}
	w.addTree(dir, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	defer stop()

	// Hold the Runner busy so the rescan must retry.
	hold(t, r)
	fw.Errors <- fsnotify.ErrEventOverflow
	eventually(t, 10*time.Second, "the overflow to be counted", func() bool { return r.Health().Rescans == 1 })
	time.Sleep(100 * time.Millisecond)
	if h.has(old) {
		t.Fatal("rescan ran while another scan was running")
	}
	r.running.Store(false)
	eventually(t, 10*time.Second, "the rescan's detection", func() bool { return h.has(old) })
	stop()
	c := r.Health()
	if c.Overflows != 1 || c.Rescans != 1 || c.Jobs != 1 || sums[0].Reason != "watch-overflow" {
		t.Errorf("health %+v, summaries %+v", c, sums)
	}
}

func TestWatchErrors(t *testing.T) {
	dir := realDir(t)
	file := write(t, filepath.Join(dir, "f"), []byte("x"))
	r := New(Options{Exclude: []string{filepath.Join(dir, "ex")}})
	os.Mkdir(filepath.Join(dir, "ex"), 0o755)
	for _, roots := range [][]string{nil, {file}, {filepath.Join(dir, "missing")}, {filepath.Join(dir, "ex")}} {
		if err := r.Watch(context.Background(), roots); !errors.Is(err, ErrWatch) {
			t.Errorf("Watch(%v) = %v, want ErrWatch", roots, err)
		}
	}
}

func TestSchedule(t *testing.T) {
	dir := realDir(t)
	write(t, filepath.Join(dir, "f"), filler(64<<10))
	r := New(Options{Scanner: func() *pattern.Scanner { return eicarScanner(t) }})
	if err := r.Schedule(context.Background(), 0, Request{Paths: []string{dir}}); !errors.Is(err, ErrInterval) {
		t.Errorf("zero interval: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Schedule(ctx, 50*time.Millisecond, Request{Paths: []string{dir}}) }()
	eventually(t, 10*time.Second, "two scheduled scans", func() bool { return r.Health().Jobs >= 2 })

	// While a scan is running, ticks are skipped.
	hold(t, r)
	eventually(t, 10*time.Second, "a skipped tick", func() bool { return r.Health().BusySkips >= 1 })
	r.running.Store(false)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Schedule returned %v after ctx ended", err)
	}
	if c := r.Health(); c.Scans < 2 || c.Scans != c.Jobs {
		t.Errorf("health %+v: one file per scheduled scan", c)
	}
}

// hold marks r busy the way a running Scan does, once no scan runs.
func hold(t *testing.T, r *Runner) {
	eventually(t, 10*time.Second, "the Runner to be idle", func() bool { return r.running.CompareAndSwap(false, true) })
}
