package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/query"
	"github.com/mamori-soc/mamori/internal/store"
)

// SearchOptions configures the search benchmark.
type SearchOptions struct {
	Events int    // events to load
	Dir    string // engine directory (a temp dir when empty; reused when it holds data)
	Runs   int    // timings per query (the median is reported)
	Out    io.Writer
}

// searchQueries are what an analyst types, timed end to end through the
// query translator and the embedded engine.
var searchQueries = []string{
	`user.name:admin42`,
	`source.ip:198.51.100.7`,
	`destination.port:[1 TO 1024] AND event.outcome:failure`,
	`source.ip:198.51.100.0/24`,
	`"invalid user"`,
	`* | stats count() by host.name`,
	`* | stats count() by user.name`,
	`event.outcome:failure | top 10 source.ip`,
}

// Search loads Events synthetic firewall/auth events into an embedded
// engine (straight into the store, the part of ingest this does not
// measure) and times the queries.
func Search(ctx context.Context, o SearchOptions) error {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mamori-bench-search")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	resolve := func(t string) (uint32, error) { return 1, nil }
	s, err := store.OpenEmbedded(dir, resolve, store.EmbeddedOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	to := time.Now().UTC().Add(time.Minute)
	from := to.Add(-24 * time.Hour)
	var have uint64
	_ = s.Query(ctx, []string{"bench"}, from, to, "* | count() as n", func(r store.Row) error {
		v, _ := r.Get("n")
		have, _ = strconv.ParseUint(v, 10, 64)
		return nil
	})
	if have < uint64(o.Events) {
		start := time.Now()
		if err := load(ctx, s, o.Events-int(have), from); err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Fprintf(o.Out, "loaded %d events in %.1fs (%.0f events/s into the engine)\n", o.Events-int(have), el.Seconds(), float64(o.Events-int(have))/el.Seconds())
	}
	for _, q := range searchQueries {
		lq, err := query.Translate(q)
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
		full := lq + " | count() as n"
		if query.HasPipe(lq) {
			full = lq
		}
		var times []float64
		var rows int
		for i := 0; i < max(o.Runs, 1); i++ {
			rows = 0
			start := time.Now()
			err := s.Query(ctx, []string{"bench"}, from, to, full, func(store.Row) error { rows++; return nil })
			if err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			times = append(times, time.Since(start).Seconds()*1000)
		}
		sort.Float64s(times)
		fmt.Fprintf(o.Out, "search events=%d query=%q median_ms=%.1f min_ms=%.1f rows=%d\n", o.Events, q, times[len(times)/2], times[0], rows)
	}
	return nil
}

func load(ctx context.Context, s store.Store, n int, from time.Time) error {
	const batch = 50000
	span := 23 * time.Hour
	for done := 0; done < n; {
		k := min(batch, n-done)
		evs := make([]*event.Event, k)
		for i := range evs {
			j := done + i
			e := &event.Event{ID: fmt.Sprintf("b%015d", j), Tenant: "bench", Source: "syslog-tcp",
				Timestamp: from.Add(time.Duration(int64(span) / int64(n) * int64(j))), Ingested: from}
			e.Original = fmt.Sprintf("<38>1 - fw-%02d sshd %d - - Failed password for invalid user admin%d from 198.51.100.%d port %d ssh2", j%50, j%3000, j%997, j%254+1, 1024+j%60000)
			e.Set(event.FieldDestPort, strconv.Itoa(22+j%3*1000))
			e.Set(event.FieldCategory, "authentication")
			e.Set(event.FieldOutcome, [...]string{"failure", "success"}[j%5/4])
			e.Set(event.FieldHostName, fmt.Sprintf("fw-%02d", j%50))
			e.Set(event.FieldKind, "event")
			e.Set(event.FieldLogSyslogAppName, "sshd")
			e.Set(event.FieldMessage, e.Original[25:])
			e.Set(event.FieldSourceIP, fmt.Sprintf("198.51.100.%d", j%254+1))
			e.Set(event.FieldSourcePort, strconv.Itoa(1024+j%60000))
			e.Set(event.FieldUserName, fmt.Sprintf("admin%d", j%997))
			evs[i] = e
		}
		if err := s.Write(ctx, evs); err != nil {
			return err
		}
		done += k
	}
	return nil
}
