package detect

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/intel"
	"github.com/mamori-soc/mamori/internal/store"
)

// RetroOptions configures retro-hunts.
type RetroOptions struct {
	// Events is the events store hunted in.
	Events store.Store
	// Tenants lists every tenant (an indicator for all tenants is hunted in each).
	Tenants func() []string
	// Window is how far back a hunt looks (default 30 days).
	Window time.Duration
	// MaxHits bounds the events one indicator's hunt turns into findings per tenant.
	MaxHits int
}

// SetIntel makes the engine match every event against the indicator store
// and, when ro.Events is set, hunt newly added indicators in the stored
// events of the last ro.Window.
func (e *Engine) SetIntel(st *intel.Store, ro RetroOptions) {
	e.intel = st
	if ro.Events == nil {
		return
	}
	if ro.Window <= 0 {
		ro.Window = 30 * 24 * time.Hour
	}
	if ro.MaxHits <= 0 {
		ro.MaxHits = 10000
	}
	e.retro = &retroHunter{e: e, o: ro, queue: make(chan []*intel.Indicator, 64)}
	st.OnAdded(e.retro.enqueue)
}

// RunRetro works through the retro-hunt queue until ctx ends.
func (e *Engine) RunRetro(ctx context.Context) {
	if e.retro != nil {
		e.retro.run(ctx)
	}
}

// severityOf derives an alert severity from an indicator's confidence.
func severityOf(confidence int) string {
	switch {
	case confidence >= 80:
		return "high"
	case confidence >= 50:
		return "medium"
	default:
		return "low"
	}
}

// indicatorFinding describes a hit on ind; the caller fills in the tenant,
// entities, events and times.
func indicatorFinding(ind *intel.Indicator, field string, now time.Time) alert.Finding {
	conf := ind.Confidence(now)
	details := map[string]string{
		"indicator": ind.Value, "indicator.type": string(ind.Type), "field": field,
		"sources": strings.Join(ind.SourceNames(), ", "), "confidence": fmt.Sprint(conf),
	}
	if tlp := ind.TLP(now); tlp != "" {
		details["tlp"] = tlp
	}
	var tags []string
	for _, s := range ind.Sources {
		tags = append(tags, s.Tags...)
	}
	return alert.Finding{
		Kind: alert.KindIndicator, Rule: alert.RuleRef{ID: ind.Key().String(), Title: "Indicator " + string(ind.Type) + " " + ind.Value},
		Severity: severityOf(conf), Tags: tags, Details: details,
	}
}

// retroHunter runs hunts one batch of indicators at a time, so that a big
// feed import does not flood the events store with queries.
type retroHunter struct {
	e     *Engine
	o     RetroOptions
	queue chan []*intel.Indicator
	mu    sync.Mutex
	lost  int
}

// enqueue is the intel store's OnAdded callback: it must not block.
func (h *retroHunter) enqueue(added []*intel.Indicator) {
	select {
	case h.queue <- added:
	default:
		h.mu.Lock()
		h.lost += len(added)
		h.mu.Unlock()
		h.e.opts.Logger.Warn("retro-hunt queue full; indicators not hunted", "indicators", len(added))
	}
}

func (h *retroHunter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case inds := <-h.queue:
			for _, ind := range inds {
				if ctx.Err() != nil {
					return
				}
				if err := h.hunt(ctx, ind); err != nil && ctx.Err() == nil {
					h.e.opts.Logger.Warn("retro-hunt failed", "indicator", ind.Key().String(), "err", err)
				}
			}
		}
	}
}

// hunt searches the stored events of every tenant the indicator applies to
// and records each hit as a finding marked retro.
func (h *retroHunter) hunt(ctx context.Context, ind *intel.Indicator) error {
	q, err := intel.RetroQuery(ind)
	if err != nil {
		return err
	}
	tenants := h.o.Tenants()
	if ind.Tenant != "" {
		tenants = []string{ind.Tenant}
	}
	now := time.Now()
	from := now.Add(-h.o.Window)
	for _, tenant := range tenants {
		found := 0
		err := h.o.Events.Query(ctx, []string{tenant}, from, now, q+" | limit "+fmt.Sprint(h.o.MaxHits), func(r store.Row) error {
			f := indicatorFinding(ind, retroField(r, ind.Value), now)
			en := map[string][]string{}
			for _, ef := range entityFields {
				for _, name := range ef.fields {
					if v, ok := r.Get(name); ok && v != "" && v != "-" {
						en[ef.kind] = appendNew(en[ef.kind], v)
					}
				}
			}
			ts := now
			if v, ok := r.Get("_time"); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					ts = t
				}
			}
			f.Tenant, f.Retro, f.Entity, f.Entities = tenant, true, "retro,"+dedupEntity(en), en
			if id, ok := r.Get("event.id"); ok {
				f.EventIDs = []string{id}
			}
			f.FirstSeen, f.LastSeen = ts, ts
			f.Field = r.Get
			h.e.record(f, nil)
			found++
			return nil
		})
		if err != nil {
			return fmt.Errorf("tenant %s: %w", tenant, err)
		}
		if found > 0 {
			h.e.opts.Logger.Info("retro-hunt found events", "indicator", ind.Key().String(), "tenant", tenant, "events", found)
		}
	}
	if m := h.e.opts.Metrics; m != nil {
		m.RetroHunts.Inc()
	}
	return h.e.alerts.Commit(ctx)
}

// retroField names the first field of r holding the indicator's value.
func retroField(r store.Row, value string) string {
	for _, f := range r {
		if strings.EqualFold(f.Value, value) || strings.Contains(strings.ToLower(f.Value), value) {
			if f.Name != "_msg" && f.Name != "event.original" {
				return f.Name
			}
		}
	}
	return ""
}
