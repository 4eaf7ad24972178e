package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"

	"github.com/mamori-soc/mamori/internal/event"
)

// buildQuery parses logsql and confines it to the scope's time range and
// cut-offs. The range is added twice: as VictoriaLogs' global time filter
// (what the HTTP API does with start/end; it prunes partitions) and as an
// extra filter, which `options(ignore_global_time_filter=true)` cannot turn
// off. Both reach subqueries (union, join, in(...)). Tenants are not part of
// the query: they are the engine's AccountIDs.
func buildQuery(logsql string, sc *queryScope, now time.Time) (*logstorage.Query, error) {
	if strings.TrimSpace(logsql) == "" {
		logsql = "*"
	}
	q, err := logstorage.ParseQueryAtTimestamp(logsql, sc.queryTimestamp(now))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	if !sc.empty && (sc.minNs != math.MinInt64 || sc.maxNs != math.MaxInt64) {
		q.AddTimeFilter(sc.minNs, sc.maxNs)
	}
	for _, fs := range []string{sc.timeFilter(), sc.extra} {
		if fs == "" {
			continue
		}
		f, err := logstorage.ParseFilter(fs)
		if err != nil {
			return nil, fmt.Errorf("store: BUG: cannot parse scope filter %q: %w", fs, err)
		}
		q.AddExtraFilters(f)
	}
	return q, nil
}

// rowWriter turns the engine's data blocks into Rows for the caller's fn,
// one row at a time, the way VictoriaLogs' /select/logsql/query prints them:
// columns sorted by name unless the query fixes their order, empty values
// and empty rows left out.
type rowWriter struct {
	mu       sync.Mutex
	fn       func(Row) error
	cancel   context.CancelFunc
	sortCols bool
	err      error
}

func newRowWriter(q *logstorage.Query, fn func(Row) error, cancel context.CancelFunc) *rowWriter {
	return &rowWriter{fn: fn, cancel: cancel, sortCols: !q.IsFixedOutputFieldsOrder()}
}

// writeBlock is a logstorage.WriteDataBlockFunc; the engine calls it from
// several workers at once.
func (w *rowWriter) writeBlock(_ uint, db *logstorage.DataBlock) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	cols := db.GetColumns(w.sortCols)
	n := db.RowsCount()
	for i := 0; i < n; i++ {
		if err := w.emit(cols, i); err != nil {
			w.err = err
			w.cancel()
			return
		}
	}
}

// emit copies row i (the block's memory is reused after writeBlock returns)
// into one string and calls fn.
func (w *rowWriter) emit(cols []logstorage.BlockColumn, i int) error {
	size, cnt := 0, 0
	for c := range cols {
		if v := cols[c].Values[i]; v != "" {
			size += len(cols[c].Name) + len(v)
			cnt++
		}
	}
	if cnt == 0 {
		return nil
	}
	var sb strings.Builder
	sb.Grow(size)
	for c := range cols {
		if v := cols[c].Values[i]; v != "" {
			sb.WriteString(cols[c].Name)
			sb.WriteString(v)
		}
	}
	s := sb.String()
	row := make(Row, 0, cnt)
	off := 0
	for c := range cols {
		v := cols[c].Values[i]
		if v == "" {
			continue
		}
		nl := len(cols[c].Name)
		row = append(row, event.Field{Name: s[off : off+nl], Value: s[off+nl : off+nl+len(v)]})
		off += nl + len(v)
	}
	return w.fn(row)
}

// result combines the callback's error, the engine's and the context's.
func (w *rowWriter) result(ctx context.Context, engineErr error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if engineErr != nil {
		if ctx.Err() != nil && errors.Is(engineErr, context.Canceled) || errors.Is(engineErr, context.DeadlineExceeded) {
			return fmt.Errorf("store: query: %w", engineErr)
		}
		return fmt.Errorf("%w: query: %w", ErrEngine, engineErr)
	}
	return ctx.Err()
}
