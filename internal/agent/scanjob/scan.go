package scanjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// Request is one on-demand or scheduled scan.
type Request struct {
	// Paths are files and directories, scanned recursively. A path named
	// here that is a symbolic link is followed (the caller chose it);
	// links met inside the tree are not.
	Paths []string
	// Exclude adds exclusions for this scan (same forms as Options.Exclude).
	Exclude []string
	// Reason says why the scan runs, for logs and the Summary ("on-demand",
	// "schedule", "watch-overflow").
	Reason string
}

// Summary is the outcome of one Scan.
type Summary struct {
	Reason   string        `json:"reason"`
	Started  time.Time     `json:"started"`     // from Options.Now
	Duration time.Duration `json:"duration_ns"` // wall time, limiter waits included
	Files    int64         `json:"files"`       // regular files scanned (including ones cut short)
	Bytes    int64         `json:"bytes"`       // bytes read from them
	// Skipped counts what was not scanned on purpose: excluded paths (an
	// excluded directory counts once), non-regular files, symbolic links,
	// files over MaxFileSize, files gone or replaced before being opened.
	Skipped    int64               `json:"skipped"`
	Detections int64               `json:"detections"`      // signature detections
	Found      []pattern.Detection `json:"found,omitempty"` // the first MaxFound of them
	// Unscanned counts limit detections (pattern.KindLimit): parts of
	// objects the engine did not scan (nesting depth, size, encryption).
	Unscanned   int64    `json:"unscanned"`
	Errors      int64    `json:"errors"`                 // files and directories that could not be read or scanned
	FirstErrors []string `json:"first_errors,omitempty"` // the first MaxErrorSamples messages
	// CPU is the busy time of the scan workers, as charged to the CPU
	// budget; CPUClock says what it measured: "thread-cpu" (the workers'
	// OS-thread CPU time) or "wall" (their wall time minus limiter waits,
	// an over-estimate, where no thread clock exists).
	CPU      time.Duration `json:"cpu_ns"`
	CPUClock string        `json:"cpu_clock"`
	Partial  bool          `json:"partial"` // cut short: ctx ended before every file was scanned
}

// Caps on what a Summary lists.
const (
	MaxFound        = 100
	MaxErrorSamples = 5
)

// Scan scans req.Paths once, within the Runner's limits, and returns what
// it found. Only one Scan runs at a time per Runner: another returns
// ErrBusy at once. When ctx ends first, the Summary so far is returned
// with Partial set and an error wrapping ctx.Err().
func (r *Runner) Scan(ctx context.Context, req Request) (Summary, error) {
	if len(req.Paths) == 0 {
		return Summary{Reason: req.Reason}, ErrNoPaths
	}
	if r.o.Scanner() == nil {
		return Summary{Reason: req.Reason}, fmt.Errorf("%w: the agent has not loaded a pattern release yet", ErrNoPatterns)
	}
	if !r.running.CompareAndSwap(false, true) {
		return Summary{Reason: req.Reason}, ErrBusy
	}
	defer r.running.Store(false)

	sum := r.run(ctx, req)
	var err error
	if sum.Partial {
		err = fmt.Errorf("scan cut short after %d files: %w", sum.Files, context.Cause(ctx))
	}
	r.count(func(c *Counters) { c.Jobs++ })
	r.log.Info("scan finished", "reason", sum.Reason, "files", sum.Files, "bytes", sum.Bytes,
		"detections", sum.Detections, "unscanned", sum.Unscanned, "errors", sum.Errors, "skipped", sum.Skipped,
		"duration", sum.Duration.Round(time.Millisecond), "cpu", sum.CPU.Round(time.Millisecond), "partial", sum.Partial)
	if r.o.OnSummary != nil {
		r.o.OnSummary(sum, err)
	}
	return sum, err
}

// job collects a Scan's Summary from its walker and workers.
type job struct {
	mu sync.Mutex
	s  Summary
}

func (j *job) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.s.Errors++
	if len(j.s.FirstErrors) < MaxErrorSamples {
		j.s.FirstErrors = append(j.s.FirstErrors, err.Error())
	}
}

func (j *job) skip() {
	j.mu.Lock()
	j.s.Skipped++
	j.mu.Unlock()
}

// walked is a regular file found by the walker, with its Lstat info to
// check that the file opened is still the one listed.
type walked struct {
	path string
	info fs.FileInfo
}

func (r *Runner) run(ctx context.Context, req Request) Summary {
	start := time.Now()
	j := &job{s: Summary{Reason: req.Reason, Started: r.o.Now(), CPUClock: clockName()}}
	excl := r.excl
	if len(req.Exclude) > 0 {
		excl, _ = newExcluder(append(slices.Clone(r.o.Exclude), req.Exclude...))
	}
	files := make(chan walked, r.o.Workers*4)
	go func() {
		defer close(files)
		for _, root := range j.roots(req.Paths) {
			if ctx.Err() != nil {
				return
			}
			r.walk(ctx, j, excl, root, files)
		}
	}()
	var wg sync.WaitGroup
	for range r.o.Workers {
		wg.Go(func() {
			runtime.LockOSThread() // the thread CPU clock must follow this goroutine
			defer runtime.UnlockOSThread()
			m := newMeter()
			for w := range files {
				if ctx.Err() != nil {
					continue // drain: the walker stops on its own
				}
				res := r.scanFile(ctx, m, w.path, w.info)
				found, limits := r.note(ctx, res)
				j.add(ctx, res, found, limits)
			}
		})
	}
	wg.Wait()
	j.s.Duration = time.Since(start)
	j.s.Partial = ctx.Err() != nil
	return j.s
}

func (j *job) add(ctx context.Context, res fileResult, found []pattern.Detection, limits int) {
	if res.skipped {
		j.skip()
		return
	}
	if res.err != nil && !(ctx.Err() != nil && errors.Is(res.err, ctx.Err())) {
		j.fail(res.err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if res.scanned {
		j.s.Files++
	}
	j.s.Bytes += res.bytes
	j.s.CPU += res.cpu
	j.s.Detections += int64(len(found))
	j.s.Unscanned += int64(limits)
	for _, d := range found {
		if len(j.s.Found) < MaxFound {
			j.s.Found = append(j.s.Found, d)
		}
	}
}

// roots makes the requested paths absolute, resolves the ones that are
// symbolic links, and drops paths inside others so nothing is scanned
// twice.
func (j *job) roots(paths []string) []string {
	var out []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			j.fail(fmt.Errorf("%s: %w", p, err))
			continue
		}
		if fi, err := os.Lstat(abs); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if abs, err = filepath.EvalSymlinks(abs); err != nil {
				j.fail(fmt.Errorf("%s: %w", p, err))
				continue
			}
		}
		out = append(out, abs)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && within(p, kept[len(kept)-1]) {
			continue // sorted: an ancestor comes right before its descendants' run
		}
		kept = append(kept, p)
	}
	return kept
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// walk lists the regular files under root into out. Symbolic links are
// not followed (WalkDir does not), excluded directories are not entered.
func (r *Runner) walk(ctx context.Context, j *job, excl excluder, root string, out chan<- walked) {
	if excl.excluded(root) {
		j.skip()
		return
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) || p == root {
				j.fail(err) // fs.PathError messages name the path
				r.count(func(c *Counters) { c.ScanErrors++ })
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if p != root && excl.excludedSelf(p) {
			j.skip()
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			j.skip()
			return nil
		}
		info, err := d.Info()
		if err != nil {
			j.skip() // gone since listed
			return nil
		}
		select {
		case out <- walked{p, info}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// fileResult is the outcome of scanning one file.
type fileResult struct {
	path    string
	scanned bool // the scanner ran (possibly cut short)
	skipped bool // not a file to scan: see Summary.Skipped
	bytes   int64
	cpu     time.Duration
	dets    []pattern.Detection
	err     error
}

// scanFile scans one file within the limits. seen, when not nil, is the
// Lstat info the file was listed with: a different file found at path by
// the time it is opened (a link or device swapped in) is skipped.
func (r *Runner) scanFile(ctx context.Context, m *meter, path string, seen fs.FileInfo) fileResult {
	res := fileResult{path: path}
	sc := r.o.Scanner()
	if sc == nil {
		res.err = fmt.Errorf("%s: %w", path, ErrNoPatterns)
		return res
	}
	m.mark()
	f, err := openFile(path)
	if errors.Is(err, fs.ErrNotExist) || swapped(err) {
		res.skipped = true // removed or replaced by a link since listed
		return res
	}
	if err != nil {
		res.err = err
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		res.err = err
		return res
	}
	if !st.Mode().IsRegular() || (seen != nil && !os.SameFile(seen, st)) ||
		(r.o.MaxFileSize > 0 && st.Size() > r.o.MaxFileSize) {
		res.skipped = true
		return res
	}

	pr := &pacedReader{ctx: ctx, r: r, src: f, m: m}
	if size := st.Size(); size <= r.o.BufferMax {
		// Read it whole (paced), then scan it with its size known and
		// random access: the engine's full fidelity.
		bp := r.buffer(size + 1)
		buf := (*bp)[:size+1]
		n, rerr := io.ReadFull(pr, buf)
		switch {
		case rerr == nil: // it grew since Stat: scan what is there, streamed
			res.dets, err = sc.ScanReader(ctx, path, io.MultiReader(bytes.NewReader(buf[:n]), pr))
		case errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF):
			res.dets, err = sc.ScanBytes(ctx, path, buf[:n])
		case ctx.Err() != nil:
			err = rerr
		default:
			err = fmt.Errorf("read %s: %w", path, rerr)
		}
		r.bufs.Put(bp)
	} else {
		res.dets, err = sc.ScanReader(ctx, path, pr)
	}
	ferr := pr.finish()
	res.scanned, res.bytes, res.cpu = true, pr.bytes, pr.busy
	res.err = cmpOr(err, ferr)
	return res
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// buffer returns a pooled buffer of at least n bytes.
func (r *Runner) buffer(n int64) *[]byte {
	if bp, ok := r.bufs.Get().(*[]byte); ok && int64(cap(*bp)) >= n {
		return bp
	}
	b := make([]byte, max(n, min(1<<20, r.o.BufferMax+1)))
	return &b
}

// note records a file scan in the health counters and reports its
// signature detections; it returns them and the number of limit
// detections.
func (r *Runner) note(ctx context.Context, res fileResult) (found []pattern.Detection, limits int) {
	for _, d := range res.dets {
		if d.Kind == pattern.KindLimit {
			limits++
		} else {
			found = append(found, d)
		}
	}
	clean := len(found) > 0 && r.o.KnownClean != nil && r.o.KnownClean(res.path)
	failed := res.err != nil && !(ctx.Err() != nil && errors.Is(res.err, ctx.Err()))
	r.mu.Lock()
	if res.scanned {
		r.c.Scans++
		r.cpuTotal += res.cpu
	}
	if failed {
		r.c.ScanErrors++
	}
	r.c.Detections += int64(len(found))
	r.c.Unscanned += int64(limits)
	if clean {
		r.c.CleanHits += int64(len(found))
	}
	r.mu.Unlock()
	if failed {
		r.log.Debug("file not scanned", "path", res.path, "err", res.err)
	}
	for _, d := range found {
		if clean {
			r.log.Error("detection on a known-clean file: probable false positive", "path", d.Location(), "signature", d.Signature)
		} else {
			r.log.Warn("detection", "path", d.Location(), "signature", d.Signature)
		}
		if r.o.OnDetection != nil {
			r.cbMu.Lock()
			r.o.OnDetection(ctx, d)
			r.cbMu.Unlock()
		}
	}
	return found, limits
}

// clockName names what the meters of this process measure.
func clockName() string {
	if _, ok := threadCPU(); ok {
		return "thread-cpu"
	}
	return "wall"
}
