package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"

	"github.com/mamori-soc/mamori/internal/event"
)

// Defaults of EmbeddedOptions.
const (
	// DefaultRetention is the embedded engine's global retention: it also
	// bounds how old an accepted event may be (Windows EVTX from years ago).
	// Per-tenant retention is DeleteBefore's job.
	DefaultRetention = 20 * 365 * 24 * time.Hour
	// DefaultFutureRetention is how far in the future an event may be.
	DefaultFutureRetention = 2 * 24 * time.Hour
	// DefaultFlushInterval is how often the engine itself saves in-memory data to disk.
	DefaultFlushInterval = time.Second
	// DefaultMinFreeDiskSpace is the free space below which Write fails with ErrReadOnly.
	DefaultMinFreeDiskSpace = 64 << 20
)

// EmbeddedOptions configures the embedded engine. The zero value is usable.
type EmbeddedOptions struct {
	// Retention is the global retention (default DefaultRetention, at least a day).
	// Older events are refused at write time (they are stored with _time = ingest time and
	// their timestamp kept in mamori.timestamp_original) and older per-day partitions are dropped.
	Retention time.Duration
	// FutureRetention is the accepted clock skew into the future (default DefaultFutureRetention).
	FutureRetention time.Duration
	// FlushInterval is the engine's own in-memory→disk interval (default DefaultFlushInterval).
	// It bounds the data lost on a crash when NoSync is set.
	FlushInterval time.Duration
	// NoSync makes Write return as soon as the rows are searchable, without forcing them to
	// disk; they reach the disk within FlushInterval. Much cheaper; see docs/STORE.md.
	NoSync bool
	// MaxDiskSpaceUsageBytes, when > 0, drops the oldest per-day partitions beyond that size.
	MaxDiskSpaceUsageBytes int64
	// MinFreeDiskSpaceBytes is the free space below which Write fails with ErrReadOnly
	// (default DefaultMinFreeDiskSpace; negative disables the check).
	MinFreeDiskSpaceBytes int64
	// Logger receives the engine's log lines (INFO as Debug). Default slog.Default().
	// The engine's logger is process-wide: the last Logger given wins.
	Logger *slog.Logger
}

func (o *EmbeddedOptions) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < 24*time.Hour {
		o.Retention = 24 * time.Hour
	}
	if o.FutureRetention <= 0 {
		o.FutureRetention = DefaultFutureRetention
	}
	if o.FutureRetention < 24*time.Hour {
		o.FutureRetention = 24 * time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushInterval < time.Second {
		o.FlushInterval = time.Second
	}
	if o.MinFreeDiskSpaceBytes == 0 {
		o.MinFreeDiskSpaceBytes = DefaultMinFreeDiskSpace
	}
}

// Limits of lib/logstorage (consts.go): rows beyond them are dropped by the engine.
// A block (rows of one stream) holds at most 2000 distinct field names, so a single
// row is held to 1000 (the HTTP server's default per line) to leave room for its
// neighbours.
var embeddedLimits = rowLimits{maxFields: 1000, maxNameLen: 128, maxRowLen: 2 * 1024 * 1024}

// Embedded is the embedded engine. It implements Store.
type Embedded struct {
	dir     string
	resolve TenantResolver
	opts    EmbeddedOptions
	st      *logstorage.Storage
	cut     cutoffs

	closeMu sync.RWMutex
	closed  bool

	// addMu is held shared while rows are added and exclusively while they
	// are forced to disk, so that a flush sees a quiescent engine.
	addMu sync.RWMutex

	// group commit
	cmu         sync.Mutex
	cond        *sync.Cond
	seq         uint64 // writes registered
	flushedSeq  uint64 // writes made durable
	failedSeq   uint64 // writes whose flush failed
	flushErr    error
	flushing    bool
	pendingDays map[string]struct{}

	flushes       atomic.Uint64
	flushNanos    atomic.Uint64
	flushAttempts atomic.Uint64
}

var (
	_ Store    = (*Embedded)(nil)
	_ Appender = (*Embedded)(nil)
)

// OpenEmbedded opens (creating if needed) the embedded engine in dir.
// Only one process may open a dir at a time (the engine takes a lock file).
func OpenEmbedded(dir string, resolve TenantResolver, opts EmbeddedOptions) (Store, error) {
	return openEmbedded(dir, resolve, opts)
}

func openEmbedded(dir string, resolve TenantResolver, opts EmbeddedOptions) (s *Embedded, err error) {
	if dir == "" {
		return nil, fmt.Errorf("store: embedded engine needs a directory")
	}
	if resolve == nil {
		return nil, fmt.Errorf("store: embedded engine needs a TenantResolver")
	}
	opts.setDefaults()
	initEngine(opts.Logger)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	cfg := &logstorage.StorageConfig{
		Retention:              opts.Retention,
		MaxBackfillAge:         opts.Retention,
		FutureRetention:        opts.FutureRetention,
		FlushInterval:          opts.FlushInterval,
		MaxDiskSpaceUsageBytes: opts.MaxDiskSpaceUsageBytes,
		MinFreeDiskSpaceBytes:  opts.MinFreeDiskSpaceBytes,
		// The store's flushes create and delete partition snapshots at once; this
		// only collects the ones a crash left behind.
		SnapshotsMaxAge: time.Hour,
	}
	if opts.MinFreeDiskSpaceBytes < 0 {
		cfg.MinFreeDiskSpaceBytes = 0
	}
	s = &Embedded{
		dir:         dir,
		resolve:     resolve,
		opts:        opts,
		pendingDays: make(map[string]struct{}),
	}
	s.cond = sync.NewCond(&s.cmu)
	if err := engineCall(func() { s.st = logstorage.MustOpenStorage(dir, cfg) }); err != nil {
		return nil, fmt.Errorf("store: open embedded engine at %s: %w", dir, err)
	}
	return s, nil
}

// engineCall runs f, turning an engine panic (lib/logger.Panicf) into an error.
func engineCall(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrEngine, r)
		}
	}()
	f()
	return nil
}

// Write implements Store.Write.
func (s *Embedded) Write(ctx context.Context, events []*event.Event) error {
	days, err := s.add(ctx, events)
	if err != nil || len(days) == 0 {
		return err
	}
	return s.commit(days)
}

// Append implements Appender: the rows are added (searchable within the
// engine's flush interval) but durable only after a later Sync.
func (s *Embedded) Append(ctx context.Context, events []*event.Event) error {
	days, err := s.add(ctx, events)
	if err != nil {
		return err
	}
	s.cmu.Lock()
	for d := range days {
		s.pendingDays[d] = struct{}{}
	}
	s.cmu.Unlock()
	return nil
}

// Sync implements Appender: every row appended before the call is durable
// when it returns.
func (s *Embedded) Sync(ctx context.Context) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.commit(nil)
}

// add adds rows to the engine and returns the day partitions written.
func (s *Embedded) add(ctx context.Context, events []*event.Event) (map[string]struct{}, error) {
	if len(events) == 0 {
		return nil, nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.opts.MinFreeDiskSpaceBytes > 0 && s.st.IsReadOnly() {
		return nil, ErrReadOnly
	}
	// Resolve every tenant first: a bad tenant fails the batch before anything is written.
	tc := tenantCache{resolve: s.resolve}
	for _, e := range events {
		if e == nil {
			continue
		}
		if _, err := tc.get(e.Tenant); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	w := timeWindow{
		min: now.Add(-s.opts.Retention + time.Hour).UnixNano(),
		max: now.Add(s.opts.FutureRetention - time.Hour).UnixNano(),
	}
	days := make(map[string]struct{}, 2)
	err := engineCall(func() {
		lr := logstorage.GetLogRows(nil, nil, nil, nil, "")
		defer logstorage.PutLogRows(lr)
		var fields []event.Field
		var lsFields []logstorage.Field
		lastDay := int64(-1 << 62)
		s.addMu.RLock()
		defer s.addMu.RUnlock()
		for _, e := range events {
			if e == nil {
				continue
			}
			id := tc.m[e.Tenant]
			ts, orig := rowTime(e, w, now)
			var nStream int
			fields, nStream = rowFields(fields[:0], e, orig, &embeddedLimits)
			lsFields = lsFields[:0]
			for _, f := range fields {
				lsFields = append(lsFields, logstorage.Field{Name: f.Name, Value: f.Value})
			}
			lr.MustAdd(logstorage.TenantID{AccountID: id}, ts, lsFields, nStream)
			if d := ts / int64(24*time.Hour); d != lastDay {
				lastDay = d
				days[dayOf(ts)] = struct{}{}
			}
			if lr.NeedFlush() {
				s.st.MustAddRows(lr)
				lr.ResetKeepSettings()
			}
		}
		s.st.MustAddRows(lr)
	})
	if err != nil {
		return nil, fmt.Errorf("store: add rows: %w", err)
	}
	return days, nil
}

// commit waits until the rows added before the call are durable (or
// searchable with NoSync). Concurrent callers share flushes: whoever finds
// no flush running flushes everything registered so far.
func (s *Embedded) commit(days map[string]struct{}) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.seq++
	my := s.seq
	for d := range days {
		s.pendingDays[d] = struct{}{}
	}
	for s.flushedSeq < my && s.failedSeq < my {
		if s.flushing {
			s.cond.Wait()
			continue
		}
		s.flushing = true
		target := s.seq
		pd := s.pendingDays
		s.pendingDays = make(map[string]struct{})
		s.cmu.Unlock()
		start := time.Now()
		err := s.flush(pd)
		s.flushNanos.Add(uint64(time.Since(start)))
		s.flushes.Add(1)
		s.cmu.Lock()
		s.flushing = false
		if err != nil {
			s.failedSeq = target
			s.flushErr = err
			// The days stay pending for the next flush.
			for d := range pd {
				s.pendingDays[d] = struct{}{}
			}
		} else {
			s.flushedSeq = target
		}
		s.cond.Broadcast()
	}
	if s.flushedSeq >= my {
		return nil
	}
	return s.flushErr
}

// flush makes everything added so far searchable and (unless NoSync) durable.
//
// lib/logstorage has no "sync" call: rows go from a per-partition buffer to
// in-memory parts (DebugFlush, which makes them searchable) and to files
// every FlushInterval. Creating a partition snapshot writes the
// partition's in-memory parts to fsynced files first, so the store snapshots
// the partitions written since the last flush and deletes the snapshots at
// once. Parts taking part in a background in-memory merge at that moment are
// skipped by the snapshot, so the flush repeats until the engine reports no
// in-memory rows left; writers are held off (addMu) meanwhile.
func (s *Embedded) flush(days map[string]struct{}) error {
	if s.opts.NoSync {
		return engineCall(s.st.DebugFlush)
	}
	s.addMu.Lock()
	defer s.addMu.Unlock()
	names := make([]string, 0, len(days))
	for d := range days {
		names = append(names, d)
	}
	slices.Sort(names)
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		var before, after logstorage.StorageStats
		err := engineCall(func() {
			// Buffered rows -> in-memory parts (searchable).
			s.st.DebugFlush()
			// New in-memory parts start in-memory merges at once; a snapshot skips the
			// parts being merged, so let those merges finish first. Nothing new arrives
			// meanwhile (addMu), so they do finish.
			for {
				before.Reset()
				s.st.UpdateStats(&before)
				if before.ActiveInmemoryMerges == 0 && before.IndexdbActiveInmemoryMerges == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Microsecond)
			}
			// In-memory parts -> fsynced file parts.
			for _, d := range names {
				for _, p := range s.st.PartitionSnapshotMustCreate(d) {
					if err := s.st.PartitionSnapshotDelete(p); err != nil {
						s.logger().Warn("store: cannot delete flush snapshot", "path", p, "err", err)
					}
				}
			}
			s.st.UpdateStats(&after)
		})
		if err != nil {
			return fmt.Errorf("store: flush: %w", err)
		}
		if after.PendingRows == 0 && after.InmemoryRowsCount == 0 && after.IndexdbPendingItems == 0 &&
			after.IndexdbInmemoryMergesCount == before.IndexdbInmemoryMergesCount {
			s.flushAttempts.Add(uint64(attempt + 1))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: flush: %d rows still in memory after %d attempts", ErrEngine, after.InmemoryRowsCount, attempt+1)
		}
		if attempt >= 2 {
			// In-memory rows outside the days written (a delete task's output): flush every partition.
			names = []string{""}
		}
		// Parts held by the engine's own in-memory -> file flush: give it a moment.
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

// Query implements Store.Query.
func (s *Embedded) Query(ctx context.Context, tenants []string, from, to time.Time, logsql string, fn func(Row) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	names, ids, err := validateTenants(s.resolve, tenants)
	if err != nil {
		return err
	}
	sc := newScope(&s.cut, names, ids, from, to)
	q, err := buildQuery(logsql, &sc, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rw := newRowWriter(q, fn, cancel)
	var qs logstorage.QueryStats
	qctx := logstorage.NewQueryContext(ctx, &qs, tenantIDs(ids), q, false, nil)
	var qerr error
	if err := engineCall(func() { qerr = s.st.RunQuery(qctx, rw.writeBlock) }); err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	return rw.result(ctx, qerr)
}

// DeleteBefore implements Store.DeleteBefore with a VictoriaLogs delete task
// (rows are rewritten without the deleted ones) and waits for it to finish.
// The cut-off applies to the queries of this Store at once.
func (s *Embedded) DeleteBefore(ctx context.Context, tenant string, t time.Time) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	id, err := resolveTenant(s.resolve, tenant)
	if err != nil {
		return err
	}
	s.cut.raise(tenant, t)
	f, err := logstorage.ParseFilter(deleteFilter(t))
	if err != nil {
		return fmt.Errorf("store: delete filter: %w", err)
	}
	now := time.Now().UnixNano()
	taskID := fmt.Sprintf("mamori-%d-%d", id, now)
	if err := s.st.DeleteRunTask(ctx, taskID, now, []logstorage.TenantID{{AccountID: id}}, f); err != nil {
		return fmt.Errorf("%w: start delete task: %w", ErrEngine, err)
	}
	for {
		tasks, err := s.st.DeleteActiveTasks(ctx)
		if err != nil {
			return fmt.Errorf("%w: list delete tasks: %w", ErrEngine, err)
		}
		if !slices.ContainsFunc(tasks, func(dt *logstorage.DeleteTask) bool { return dt.TaskID == taskID }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for delete task %s (it goes on in the background): %w", taskID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deleteFilter(t time.Time) string {
	return "_time:<" + formatNs(clampUnixNano(t))
}

// Close implements Store.Close: it waits for running calls and saves all data to disk.
func (s *Embedded) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := engineCall(s.st.MustClose); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func (s *Embedded) logger() *slog.Logger {
	if s.opts.Logger != nil {
		return s.opts.Logger
	}
	return slog.Default()
}

// FlushStats returns the number of flushes done by Write, their total duration and
// the number of snapshot rounds they took (more rounds than flushes means
// background merges got in the way).
func (s *Embedded) FlushStats() (flushes uint64, total time.Duration, rounds uint64) {
	return s.flushes.Load(), time.Duration(s.flushNanos.Load()), s.flushAttempts.Load()
}

func tenantIDs(ids []uint32) []logstorage.TenantID {
	out := make([]logstorage.TenantID, len(ids))
	for i, id := range ids {
		out[i] = logstorage.TenantID{AccountID: id}
	}
	return out
}
