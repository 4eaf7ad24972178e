package store

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

func sortFieldsSlow(fs []event.Field) {
	slices.SortStableFunc(fs, func(a, b event.Field) int { return strings.Compare(a.Name, b.Name) })
}

// nsRange converts [from, to) into the inclusive nanosecond range the
// engine uses; zero times are open ends.
func nsRange(from, to time.Time) (minNs, maxNs int64) {
	minNs, maxNs = math.MinInt64, math.MaxInt64
	if !from.IsZero() {
		minNs = clampUnixNano(from)
	}
	if !to.IsZero() {
		maxNs = clampUnixNano(to) - 1
	}
	return minNs, maxNs
}

// formatNs formats nanoseconds as LogsQL accepts them in _time filters.
func formatNs(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

// cutoffs records per-tenant retention cut-offs (DeleteBefore) and turns
// them into query restrictions.
type cutoffs struct {
	mu sync.RWMutex
	m  map[string]int64 // tenant name -> unix ns; rows with _time < it are expired
}

// raise records t as tenant's cut-off when it is later than the current one.
func (c *cutoffs) raise(tenant string, t time.Time) {
	ns := clampUnixNano(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	if ns > c.m[tenant] {
		c.m[tenant] = ns
	}
}

func (c *cutoffs) get(tenant string) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ns, ok := c.m[tenant]
	return ns, ok
}

// queryScope is what confines a query: the tenants, the time range and the
// retention cut-offs.
type queryScope struct {
	tenants      []string
	ids          []uint32
	minNs, maxNs int64 // inclusive
	// extra is a LogsQL filter for the cut-offs of a multi-tenant query ("" when none).
	extra string
	// empty is set when the range is empty (a cut-off after to): the query runs all the same,
	// so that stats pipes still answer (count() = 0), but matches no row.
	empty bool
}

// newScope builds the scope of a query. For a single tenant the cut-off
// simply raises the lower bound; for several tenants it becomes a filter
// excluding each tenant's expired rows, keyed by the tenant stream field.
func newScope(c *cutoffs, tenants []string, ids []uint32, from, to time.Time) queryScope {
	sc := queryScope{tenants: tenants, ids: ids}
	sc.minNs, sc.maxNs = nsRange(from, to)
	if len(tenants) == 1 {
		if ns, ok := c.get(tenants[0]); ok && ns > sc.minNs {
			sc.minNs = ns
		}
	} else {
		var parts []string
		for _, t := range tenants {
			ns, ok := c.get(t)
			if !ok || ns <= sc.minNs {
				continue
			}
			parts = append(parts, "-(_stream:{"+FieldTenant+"="+strconv.Quote(t)+"} _time:<"+formatNs(ns)+")")
		}
		sc.extra = strings.Join(parts, " ")
	}
	sc.empty = sc.minNs > sc.maxNs
	return sc
}

// timeFilter is the LogsQL filter for the scope's time range ("" when unbounded).
func (sc *queryScope) timeFilter() string {
	switch {
	case sc.minNs == math.MinInt64 && sc.maxNs == math.MaxInt64:
		return ""
	case sc.minNs == math.MinInt64:
		return "_time:<=" + formatNs(sc.maxNs)
	case sc.maxNs == math.MaxInt64:
		return "_time:>=" + formatNs(sc.minNs)
	}
	return "_time:[" + formatNs(sc.minNs) + "," + formatNs(sc.maxNs) + "]"
}

// queryTimestamp is the time relative filters (_time:5m) are evaluated at:
// the end of the range when it is set (VictoriaLogs' own convention), else now.
func (sc *queryScope) queryTimestamp(now time.Time) int64 {
	if sc.maxNs != math.MaxInt64 {
		return sc.maxNs
	}
	return now.UnixNano()
}

// dayOf returns the VictoriaLogs partition name (YYYYMMDD, UTC) of ns.
func dayOf(ns int64) string {
	return time.Unix(0, ns).UTC().Format("20060102")
}
