package persist

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
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
	Failures   prometheus.Counter
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
			Name: "mamori_store_write_seconds", Help: "Time to write one consumer batch durably to the events store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_store_write_failures_total", Help: "Failed store writes (the batches are redelivered).",
		}),
	}
	reg.MustRegister(m.Stored, m.Duplicates, m.WriteTime, m.Failures)
	return m
}

// Persister moves events from the bus to the store.
type Persister struct {
	Bus     *bus.Bus
	Store   store.Store
	Logger  *slog.Logger
	Metrics *Metrics
}

// Run consumes until ctx ends.
func (p *Persister) Run(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return p.Bus.Consume(ctx, Consumer, bus.ConsumeOptions{MaxMessages: 32, MaxWait: 50 * time.Millisecond, Workers: 4, AckWait: 15 * time.Second}, func(ctx context.Context, ds []bus.Delivery) error {
		var evs []*event.Event
		for _, d := range ds {
			if !d.Redelivered {
				evs = append(evs, d.Events...)
				continue
			}
			fresh, err := p.withoutStored(ctx, d.Events)
			if err != nil {
				return err
			}
			if p.Metrics != nil {
				p.Metrics.Duplicates.Add(float64(len(d.Events) - len(fresh)))
			}
			if n := len(d.Events) - len(fresh); n > 0 {
				log.Info("skipped events of a replayed batch already stored", "component", "persist", "count", n)
			}
			evs = append(evs, fresh...)
		}
		if len(evs) == 0 {
			return nil
		}
		start := time.Now()
		if err := p.Store.Write(ctx, evs); err != nil {
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
				p.Metrics.Stored.WithLabelValues(t).Add(float64(n))
			}
		}
		return nil
	})
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
// queries by id within the events' time span, in chunks.
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
		from := part[0].Timestamp
		to := part[len(part)-1].Timestamp.Add(time.Nanosecond)
		err := s.Query(ctx, []string{tenant}, from, to, q.String(), func(r store.Row) error {
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
