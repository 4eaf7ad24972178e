package persist

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Consumer is the bus consumer's durable name.
const Consumer = "events-store"

// Metrics of the persister.
type Metrics struct {
	Stored     *prometheus.CounterVec // tenant
	Duplicates prometheus.Counter
	WriteTime  prometheus.Histogram
	SyncTime   prometheus.Histogram
	Failures   prometheus.Counter
	// NoTenantLabel collapses the tenant label to "_all" (many tenants).
	NoTenantLabel bool
}

// NewMetrics creates and registers the metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_store_events_total", Help: "Events written to the events store, by tenant.",
		}, []string{"tenant"}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_store_duplicates_skipped_total", Help: "Events of replayed bus batches found already stored and skipped.",
		}),
		WriteTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mamori_store_write_seconds", Help: "Time to add one consumer batch to the events store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		SyncTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mamori_store_sync_seconds", Help: "Time to make appended events durable (one group flush).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_store_write_failures_total", Help: "Failed store writes or flushes (the batches are redelivered).",
		}),
	}
	reg.MustRegister(m.Stored, m.Duplicates, m.WriteTime, m.SyncTime, m.Failures)
	return m
}

// Persister moves events from the bus to the store.
type Persister struct {
	Bus     *bus.Bus
	Store   store.Store
	Logger  *slog.Logger
	Metrics *Metrics
	// SyncEvery is how often appended events are made durable and their
	// batches acknowledged, for stores that implement store.Appender.
	SyncEvery time.Duration
	// Workers fetch and write concurrently.
	Workers int

	mu       sync.Mutex
	unsynced []bus.Delivery
	nEvents  int
	full     *sync.Cond
}

// maxUnsynced bounds events appended but not yet durable: workers wait
// for the next flush beyond it.
const maxUnsynced = 1000000

func (p *Persister) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// Run consumes until ctx ends. With an Appender store, batches are
// appended as they arrive and acknowledged after the next group flush;
// otherwise each handler call writes durably and acknowledges.
func (p *Persister) Run(ctx context.Context) error {
	if p.Workers <= 0 {
		p.Workers = 4
	}
	if p.SyncEvery <= 0 {
		p.SyncEvery = 2 * time.Second
	}
	app, group := p.Store.(store.Appender)
	opts := p.consumeOptions()
	if !group {
		return p.Bus.Consume(ctx, Consumer, opts, func(ctx context.Context, ds []bus.Delivery) error {
			evs, err := p.fresh(ctx, ds)
			if err != nil || len(evs) == 0 {
				return err
			}
			return p.timedWrite(evs, func() error { return p.Store.Write(ctx, evs) })
		})
	}
	p.full = sync.NewCond(&p.mu)
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.syncLoop(syncCtx, app)
	}()
	err := p.Bus.Consume(ctx, Consumer, opts, func(ctx context.Context, ds []bus.Delivery) error {
		p.mu.Lock()
		for p.nEvents >= maxUnsynced && ctx.Err() == nil {
			p.full.Wait()
		}
		p.mu.Unlock()
		evs, err := p.fresh(ctx, ds)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			if err := p.timedWrite(evs, func() error { return app.Append(ctx, evs) }); err != nil {
				return err
			}
		}
		p.mu.Lock()
		for _, d := range ds {
			d.Events = nil // only the ack handle waits for the flush
			p.unsynced = append(p.unsynced, d)
		}
		p.nEvents += len(evs)
		p.mu.Unlock()
		return nil
	})
	// A last flush acknowledges what was appended before the stop.
	stopSync()
	wg.Wait()
	p.syncOnce(context.Background(), app)
	return err
}

// Ensure creates the bus consumer, so that batches published from now on
// are kept for it (the stream has interest retention).
func (p *Persister) Ensure(ctx context.Context) error {
	return p.Bus.EnsureConsumer(ctx, Consumer, p.consumeOptions())
}

func (p *Persister) consumeOptions() bus.ConsumeOptions {
	if p.Workers <= 0 {
		p.Workers = 4
	}
	// Small fetches keep the decoded events in flight (and the heap) small;
	// the engine's flush, not the append, is what needs amortizing.
	o := bus.ConsumeOptions{MaxMessages: 8, MaxWait: 50 * time.Millisecond, Workers: p.Workers, AckWait: 30 * time.Second, View: true}
	if _, group := p.Store.(store.Appender); group {
		o.ManualAck = true
		o.MaxAckPending = 4096
	}
	return o
}

func (p *Persister) syncLoop(ctx context.Context, app store.Appender) {
	t := time.NewTicker(p.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.syncOnce(ctx, app)
		}
	}
}

// syncOnce flushes and then acknowledges every batch appended before it.
func (p *Persister) syncOnce(ctx context.Context, app store.Appender) {
	p.mu.Lock()
	ds := p.unsynced
	p.unsynced = nil
	n := p.nEvents
	p.nEvents = 0
	p.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	start := time.Now()
	err := app.Sync(ctx)
	if p.Metrics != nil {
		p.Metrics.SyncTime.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		if p.Metrics != nil {
			p.Metrics.Failures.Inc()
		}
		p.log().Error("store flush failed; batches will be redelivered", "err", err, "events", n)
		for _, d := range ds {
			_ = d.Nak(time.Second)
		}
	} else {
		for _, d := range ds {
			// A lost ack only causes a redelivery, which fresh() deduplicates.
			_ = d.Ack()
		}
	}
	p.mu.Lock()
	p.full.Broadcast()
	p.mu.Unlock()
}

func (p *Persister) timedWrite(evs []*event.Event, write func() error) error {
	start := time.Now()
	if err := write(); err != nil {
		if p.Metrics != nil {
			p.Metrics.Failures.Inc()
		}
		return fmt.Errorf("store write: %w", err)
	}
	if p.Metrics != nil {
		p.Metrics.WriteTime.Observe(time.Since(start).Seconds())
		counts := map[string]int{}
		for _, e := range evs {
			counts[e.Tenant]++
		}
		for t, n := range counts {
			if p.Metrics.NoTenantLabel {
				t = "_all"
			}
			p.Metrics.Stored.WithLabelValues(t).Add(float64(n))
		}
	}
	return nil
}

// fresh returns the events of ds to write: all of a first delivery, and
// for a redelivered batch only those the store does not hold yet.
func (p *Persister) fresh(ctx context.Context, ds []bus.Delivery) ([]*event.Event, error) {
	var evs []*event.Event
	for _, d := range ds {
		if !d.Redelivered {
			evs = append(evs, d.Events...)
			continue
		}
		fresh, err := p.withoutStored(ctx, d.Events)
		if err != nil {
			return nil, err
		}
		if n := len(d.Events) - len(fresh); n > 0 {
			if p.Metrics != nil {
				p.Metrics.Duplicates.Add(float64(n))
			}
			p.log().Info("skipped events of a replayed batch already stored", "count", n)
		}
		evs = append(evs, fresh...)
	}
	return evs, nil
}

// withoutStored returns the events whose ids the store does not hold yet.
func (p *Persister) withoutStored(ctx context.Context, evs []*event.Event) ([]*event.Event, error) {
	byTenant := map[string][]*event.Event{}
	for _, e := range evs {
		byTenant[e.Tenant] = append(byTenant[e.Tenant], e)
	}
	var out []*event.Event
	for tenant, group := range byTenant {
		stored, err := StoredIDs(ctx, p.Store, tenant, group)
		if err != nil {
			return nil, err
		}
		for _, e := range group {
			if _, ok := stored[e.ID]; !ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// StoredIDs returns which of the events' ids are already in the store. It
// queries by id within the events' time span (and their ingest time, where
// the store files events with unusable timestamps), in chunks.
func StoredIDs(ctx context.Context, s store.Store, tenant string, evs []*event.Event) (map[string]struct{}, error) {
	stored := map[string]struct{}{}
	sorted := append([]*event.Event(nil), evs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Timestamp.Before(sorted[j].Timestamp) })
	const chunk = 500
	for i := 0; i < len(sorted); i += chunk {
		part := sorted[i:min(i+chunk, len(sorted))]
		var q strings.Builder
		q.WriteString(`"event.id":in(`)
		for j, e := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteString(strconv.Quote(e.ID))
		}
		q.WriteString(`) | fields "event.id"`)
		// Open range: an event may be filed at its ingest time when its own
		// timestamp is outside what the engine accepts.
		err := s.Query(ctx, []string{tenant}, time.Time{}, time.Time{}, q.String(), func(r store.Row) error {
			if id, ok := r.Get("event.id"); ok {
				stored[id] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("look up stored ids: %w", err)
		}
	}
	return stored, nil
}
