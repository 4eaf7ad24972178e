package scanjob

import (
	"context"
	"io"
	"sync"
	"time"
)

const (
	// readChunk is the largest single read from a file: the I/O budget is
	// charged, and the CPU budget checked, at least this often.
	readChunk = 64 << 10
	// budgetWindow is how much unused budget may be saved up while idle:
	// after a pause, scanning may burst for up to this long at full
	// speed. Short, so that the caps hold over any interval longer than
	// about this window.
	budgetWindow = 50 * time.Millisecond
)

// bucket is a token bucket shared by the scan workers. Tokens accrue at
// rate per second up to burst; take charges after the fact and may go
// into debt, so any charge size works (a 64 KiB read, 30 ms of CPU). It
// starts empty: from its creation, what was charged never exceeds
// rate × elapsed time once the waits take returns have been served.
type bucket struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	level float64
	last  time.Time
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, last: time.Now()}
}

// take charges n tokens and returns how long the caller must wait for the
// bucket to be out of debt. Debt is shared: a second caller waits for the
// first one's debt as well, which is what keeps the total within rate.
func (b *bucket) take(n float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeAt(time.Now(), n)
}

func (b *bucket) takeAt(now time.Time, n float64) time.Duration {
	if dt := now.Sub(b.last); dt > 0 {
		b.level = min(b.burst, b.level+dt.Seconds()*b.rate)
		b.last = now
	}
	b.level -= n
	if b.level >= 0 {
		return 0
	}
	return time.Duration(-b.level / b.rate * float64(time.Second))
}

// meter measures the busy time of one scan worker. With a thread CPU
// clock (linux, darwin; the worker's goroutine is locked to its OS
// thread) it is CPU time; otherwise it is wall time with the limiter's
// own waits left out, which over-counts (disk waits, preemption) and so
// throttles more, never less.
type meter struct {
	thread bool
	epoch  time.Time
	last   time.Duration
}

// newMeter must be called on the goroutine that will use the meter, after
// runtime.LockOSThread.
func newMeter() *meter {
	_, ok := threadCPU()
	m := &meter{thread: ok, epoch: time.Now()}
	m.mark()
	return m
}

func (m *meter) now() time.Duration {
	if m.thread {
		if d, ok := threadCPU(); ok {
			return d
		}
	}
	return time.Since(m.epoch)
}

// mark starts a new measurement, dropping what happened since the last.
func (m *meter) mark() { m.last = m.now() }

// lap returns the busy time since the last mark or lap.
func (m *meter) lap() time.Duration {
	n := m.now()
	d := n - m.last
	m.last = n
	return max(d, 0)
}

// pace charges n bytes read and the busy time since the last call to the
// budgets, waits as long as they require, and returns the busy time.
func (r *Runner) pace(ctx context.Context, m *meter, n int64) (time.Duration, error) {
	busy := m.lap()
	var wait time.Duration
	if r.io != nil && n > 0 {
		wait = r.io.take(float64(n))
	}
	if r.cpu != nil && busy > 0 {
		wait = max(wait, r.cpu.take(float64(busy)))
	}
	var err error
	if wait > 0 {
		err = sleep(ctx, wait)
		m.mark() // the wait is not busy time
	}
	return busy, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacedReader reads a file in chunks of at most readChunk, pacing each.
type pacedReader struct {
	ctx   context.Context
	r     *Runner
	src   io.Reader
	m     *meter
	bytes int64
	busy  time.Duration
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > readChunk {
		b = b[:readChunk]
	}
	n, err := p.src.Read(b)
	p.bytes += int64(n)
	busy, perr := p.r.pace(p.ctx, p.m, int64(n))
	p.busy += busy
	if perr != nil && err == nil {
		err = perr
	}
	return n, err
}

// finish charges the busy time since the last read (the scan of the last
// chunk, or of a whole buffered file).
func (p *pacedReader) finish() error {
	busy, err := p.r.pace(p.ctx, p.m, 0)
	p.busy += busy
	return err
}
