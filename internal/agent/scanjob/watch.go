package scanjob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// busyRetry is how long a rescan after an overflow waits when another
// scan is running, before trying again.
const busyRetry = 5 * time.Second

// Watch scans files under roots as they change, until ctx ends; it then
// returns nil. Directories are watched recursively, new subdirectories
// included (their files present before the watch was added are scanned
// too). A file is scanned once it has been quiet for Options.WatchQuiet,
// or Options.WatchMaxDelay after its first change if it keeps changing.
// Symbolic links are not followed; excluded paths are neither watched nor
// scanned. When the OS reports lost events, the roots are rescanned with
// Scan (reason "watch-overflow"; retried while another scan runs). Watch
// fails with ErrWatch when the OS watcher cannot start or no root can be
// watched.
func (r *Runner) Watch(ctx context.Context, roots []string) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWatch, err)
	}
	w := &watcher{r: r, fw: fw, dirs: map[string]bool{}, pending: map[string]*change{},
		queue: make(chan string, r.o.Workers*4), rescan: make(chan struct{}, 1), retry: busyRetry}
	var errs []error
	for _, root := range roots {
		abs, err := filepath.Abs(root)
		if err == nil {
			abs, err = filepath.EvalSymlinks(abs) // a root named by the caller is followed
		}
		var fi fs.FileInfo
		if err == nil {
			fi, err = os.Stat(abs)
		}
		switch {
		case err != nil:
		case !fi.IsDir():
			err = fmt.Errorf("%s: not a directory", abs)
		case r.excl.excluded(abs):
			err = fmt.Errorf("%s: excluded from scanning", abs)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.roots = append(w.roots, abs)
		w.addTree(abs, false)
	}
	for _, err := range errs {
		r.count(func(c *Counters) { c.WatchErrors++ })
		r.log.Warn("cannot watch a directory for changes", "err", err)
	}
	if len(w.dirs) == 0 {
		fw.Close()
		return fmt.Errorf("%w: no directory could be watched: %w", ErrWatch, errors.Join(errs...))
	}
	r.log.Info("watching for file changes", "roots", w.roots, "directories", len(w.dirs))
	return w.run(ctx)
}

// change is a file that changed and waits to be quiet.
type change struct{ first, last time.Time }

type watcher struct {
	r     *Runner
	fw    *fsnotify.Watcher
	roots []string
	retry time.Duration

	// Owned by the event loop.
	dirs    map[string]bool
	pending map[string]*change

	queue  chan string   // quiet files to scan; only the loop sends
	rescan chan struct{} // coalesced rescan requests
}

func (w *watcher) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range w.r.o.Workers {
		wg.Go(func() { w.work(ctx) })
	}
	wg.Go(func() { w.rescans(ctx) })
	tick := time.NewTicker(max(w.r.o.WatchQuiet/4, 10*time.Millisecond))
	defer tick.Stop()
	events, errs := w.fw.Events, w.fw.Errors
	for {
		select {
		case <-ctx.Done():
			w.fw.Close()
			close(w.queue)
			wg.Wait()
			w.r.count(func(c *Counters) { c.WatchedDirs -= int64(len(w.dirs)) })
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil // closed only by Close; never spin on it
				continue
			}
			w.event(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.error(err)
		case now := <-tick.C:
			w.flush(now)
		}
	}
}

func (w *watcher) event(ev fsnotify.Event) {
	p := filepath.Clean(ev.Name)
	// Watched directories passed the exclusions already; only the name
	// itself can be excluded.
	if w.r.excl.excludedSelf(p) {
		return
	}
	switch {
	case ev.Has(fsnotify.Create):
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.IsDir():
			w.addTree(p, true)
		case fi.Mode().IsRegular():
			w.changed(p)
		}
	case ev.Has(fsnotify.Write):
		w.changed(p)
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		delete(w.pending, p)
		if w.dirs[p] {
			w.forget(p)
		}
	}
}

func (w *watcher) error(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.r.count(func(c *Counters) { c.Overflows++ })
		w.r.log.Warn("file change events were lost (OS event queue overflow); rescanning the watched directories", "err", err)
		select {
		case w.rescan <- struct{}{}:
		default: // one is pending already
		}
		return
	}
	w.r.count(func(c *Counters) { c.WatchErrors++ })
	w.r.log.Warn("file change watcher", "err", err)
}

// addTree watches dir and the directories below it; with enqueue, the
// files already in them are scanned too (they may have been written
// before the watch was in place).
func (w *watcher) addTree(dir string, enqueue bool) {
	var failed int
	var first error
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != dir && w.r.excl.excludedSelf(p) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if w.dirs[p] {
				return nil
			}
			if err := w.fw.Add(p); err != nil {
				failed++
				first = cmpOr(first, err)
				return fs.SkipDir
			}
			w.dirs[p] = true
			w.r.count(func(c *Counters) { c.WatchedDirs++ })
			return nil
		}
		if enqueue && d.Type().IsRegular() {
			w.changed(p)
		}
		return nil
	})
	if failed > 0 {
		w.r.count(func(c *Counters) { c.WatchErrors += int64(failed) })
		hint := ""
		if errors.Is(first, syscall.ENOSPC) && runtime.GOOS == "linux" {
			hint = " (out of inotify watches: raise fs.inotify.max_user_watches or exclude large trees)"
		}
		w.r.log.Warn("directories not watched for changes"+hint, "under", dir, "count", failed, "err", first)
	}
}

// forget drops the watches of dir and below (removed or renamed away; a
// rename within the watched tree comes back as a Create).
func (w *watcher) forget(dir string) {
	for d := range w.dirs {
		if within(d, dir) {
			_ = w.fw.Remove(d) // often gone with the directory already
			delete(w.dirs, d)
			w.r.count(func(c *Counters) { c.WatchedDirs-- })
		}
	}
	for p := range w.pending {
		if within(p, dir) {
			delete(w.pending, p)
		}
	}
}

// changed notes a write to p; it is scanned once quiet.
func (w *watcher) changed(p string) {
	now := time.Now()
	if c, ok := w.pending[p]; ok {
		c.last = now
		return
	}
	if len(w.pending) >= w.r.o.WatchQueue {
		var n int64
		w.r.count(func(c *Counters) { c.WatchDrops++; n = c.WatchDrops })
		if n&(n-1) == 0 { // 1, 2, 4, 8…: visible without flooding the log
			w.r.log.Warn("changed files dropped unscanned: the watch queue is full", "path", p, "dropped", n)
		}
		return
	}
	w.pending[p] = &change{first: now, last: now}
}

// flush hands the files that are quiet (or have waited long enough) to
// the workers; what does not fit waits for the next tick.
func (w *watcher) flush(now time.Time) {
	for p, c := range w.pending {
		if now.Sub(c.last) < w.r.o.WatchQuiet && now.Sub(c.first) < w.r.o.WatchMaxDelay {
			continue
		}
		select {
		case w.queue <- p:
			delete(w.pending, p)
		default:
			return
		}
	}
}

func (w *watcher) work(ctx context.Context) {
	runtime.LockOSThread() // the thread CPU clock must follow this goroutine
	defer runtime.UnlockOSThread()
	m := newMeter()
	for p := range w.queue {
		if ctx.Err() != nil {
			continue
		}
		if w.r.o.Scanner() == nil {
			w.r.log.Debug("changed file not scanned: no pattern set active yet", "path", p)
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // gone, or replaced by a link or device
		}
		w.r.note(ctx, w.r.scanFile(ctx, m, p, fi))
	}
}

func (w *watcher) rescans(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.rescan:
		}
		w.r.count(func(c *Counters) { c.Rescans++ })
		for {
			_, err := w.r.Scan(ctx, Request{Paths: w.roots, Reason: "watch-overflow"})
			if !errors.Is(err, ErrBusy) {
				break
			}
			if sleep(ctx, w.retry) != nil {
				return
			}
		}
	}
}
