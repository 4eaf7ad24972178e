package scanjob

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/pattern"
)

// Sentinel errors.
var (
	// ErrNoPatterns: no pattern set is active yet, so nothing can be
	// scanned; the agent syncs one from the server first.
	ErrNoPatterns = errors.New("scanjob: no active pattern set")
	// ErrBusy: an on-demand or scheduled scan is already running on this
	// Runner. Scans are refused, not queued: a caller learns at once that
	// its request did not start, and a schedule skips the tick.
	ErrBusy = errors.New("scanjob: a scan is already running")
	// ErrNoPaths: a Request named no path.
	ErrNoPaths = errors.New("scanjob: no paths to scan")
	// ErrInterval: a schedule interval that is not positive.
	ErrInterval = errors.New("scanjob: schedule interval must be positive")
	// ErrWatch: watching for file changes could not start.
	ErrWatch = errors.New("scanjob: cannot watch for file changes")
)

// Defaults for zero Options fields.
const (
	DefaultBufferMax  = 16 << 20
	DefaultQuiet      = 200 * time.Millisecond
	DefaultMaxDelay   = 5 * time.Second
	DefaultQueueLimit = 4096
)

// Options configure a Runner. Zero values take the documented defaults.
type Options struct {
	// Scanner returns the agent's active scanner; nil before a set is
	// active (scans then fail with ErrNoPatterns). It is called once per
	// file, so a set that becomes active mid-scan is used for the rest.
	Scanner func() *pattern.Scanner
	// CPU is the fraction of one core the scan workers may use together
	// (0.25 = a quarter core; > 1 allows several cores with several
	// workers); 0 = unlimited. See the package doc for what is measured.
	CPU float64
	// IOBytesPerSec caps how fast the scan workers together read files;
	// 0 = unlimited.
	IOBytesPerSec int64
	// Workers scanning files in parallel (default 1), for Scan and Watch
	// each.
	Workers int
	// MaxFileSize skips larger files (counted as skipped); 0 = no limit.
	MaxFileSize int64
	// BufferMax: files up to this size are read into memory and scanned
	// with full fidelity; larger ones are streamed (see the package doc).
	// Default 16 MiB; memory is up to Workers × BufferMax per scan kind.
	BufferMax int64
	// Exclude lists paths never scanned or watched: absolute paths
	// (excluding everything below them), globs on whole paths when they
	// contain a separator ("/home/*/.cache"), or globs on single path
	// elements otherwise ("*.iso", ".git"). Typically the agent's own
	// directory and the quarantine directory.
	Exclude []string
	// OnDetection is called for every signature detection (not for limit
	// detections, which are counted in Summary.Unscanned). Calls are
	// serialised; a slow callback slows scanning down.
	OnDetection func(ctx context.Context, d pattern.Detection)
	// OnSummary is called after every Scan that started, including
	// scheduled scans and the rescans Watch runs after an overflow.
	OnSummary func(s Summary, err error)
	// KnownClean reports files that must never be detected (the agent's
	// own binary, system binaries). Detections on them are still reported
	// to OnDetection but also counted as CleanHits: false positives.
	KnownClean func(path string) bool
	// Watch tuning: a changed file is scanned once it has been quiet for
	// WatchQuiet (default 200 ms), or WatchMaxDelay (default 5 s) after
	// its first change if it keeps changing. At most WatchQueue (default
	// 4096) changed files wait; further changes are dropped and counted.
	WatchQuiet    time.Duration
	WatchMaxDelay time.Duration
	WatchQueue    int
	Logger        *slog.Logger
	// Now stamps Summary.Started (default time.Now). Durations and the
	// limits always use the monotonic clock.
	Now func() time.Time
}

// Runner runs the agent's scans: on demand (Scan), on a schedule
// (Schedule) and on file change (Watch), sharing one CPU and one I/O
// budget.
type Runner struct {
	o    Options
	log  *slog.Logger
	excl excluder
	io   *bucket // nil: unlimited
	cpu  *bucket // nil: unlimited; tokens are nanoseconds of CPU
	bufs sync.Pool

	running atomic.Bool // an on-demand or scheduled scan runs
	cbMu    sync.Mutex  // serialises OnDetection

	mu       sync.Mutex
	c        Counters
	cpuTotal time.Duration // over c.Scans, for the mean
}

// New returns a Runner.
func New(o Options) *Runner {
	if o.Scanner == nil {
		o.Scanner = func() *pattern.Scanner { return nil }
	}
	o.Workers = max(o.Workers, 1)
	if o.BufferMax <= 0 {
		o.BufferMax = DefaultBufferMax
	}
	if o.WatchQuiet <= 0 {
		o.WatchQuiet = DefaultQuiet
	}
	if o.WatchMaxDelay <= 0 {
		o.WatchMaxDelay = DefaultMaxDelay
	}
	if o.WatchQueue <= 0 {
		o.WatchQueue = DefaultQueueLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Runner{o: o, log: o.Logger.With("component", "scanjob")}
	var bad []string
	r.excl, bad = newExcluder(o.Exclude)
	for _, b := range bad {
		r.log.Warn("exclusion pattern is malformed and ignored; fix the agent's scan exclusions", "pattern", b)
	}
	if o.IOBytesPerSec > 0 {
		rate := float64(o.IOBytesPerSec)
		r.io = newBucket(rate, min(float64(readChunk), rate*budgetWindow.Seconds()))
	}
	if o.CPU > 0 {
		rate := o.CPU * float64(time.Second) // CPU-ns per wall second
		r.cpu = newBucket(rate, rate*budgetWindow.Seconds())
	}
	return r
}

// Counters are cumulative health figures since New; they feed the agent's
// heartbeat (see ApplyTo).
type Counters struct {
	Scans         int64   // file scans, by any of Scan, Schedule, Watch
	ScanErrors    int64   // file scans that failed, unreadable directories
	Detections    int64   // signature detections (CleanHits included)
	CleanHits     int64   // detections on KnownClean files: false positives
	ScanCPUMillis float64 // mean CPU ms per file scan
	Unscanned     int64   // limit detections: parts of objects not scanned
	Jobs          int64   // Scan calls that ran (on demand, scheduled, rescans)
	BusySkips     int64   // schedule ticks skipped because a scan ran
	WatchedDirs   int64   // directories watched now
	WatchDrops    int64   // changed files dropped: the watch queue was full
	Overflows     int64   // event overflows reported by the OS (each → a rescan)
	Rescans       int64   // rescans of the watched roots started after overflows
	WatchErrors   int64   // directories that could not be watched, watcher errors
}

// Health returns the counters so far.
func (r *Runner) Health() Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.c
	if c.Scans > 0 {
		c.ScanCPUMillis = float64(r.cpuTotal) / float64(time.Millisecond) / float64(c.Scans)
	}
	return c
}

// ApplyTo copies the figures fleet.Health carries into h, leaving its
// other fields (engine restarts, self-test) to the agent.
func (c Counters) ApplyTo(h *fleet.Health) {
	h.Scans = c.Scans
	h.ScanErrors = c.ScanErrors
	h.ScanCPUMillis = c.ScanCPUMillis
	h.Detections = c.Detections
	h.CleanHits = c.CleanHits
}

func (r *Runner) count(f func(c *Counters)) {
	r.mu.Lock()
	f(&r.c)
	r.mu.Unlock()
}
