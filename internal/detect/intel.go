package detect

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
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
	e.retro = &retroHunter{e: e, o: ro, queue: make(chan []*intel.Indicator, 4096)}
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

// retroHunter runs hunts in the background, a batch of indicators per
// query, paced so that a large feed import does not starve ingest.
type retroHunter struct {
	e       *Engine
	o       RetroOptions
	queue   chan []*intel.Indicator
	pending atomic.Int64 // indicators queued, not hunted yet
}

// enqueue is the intel store's OnAdded callback: it must not block.
func (h *retroHunter) enqueue(added []*intel.Indicator) {
	select {
	case h.queue <- added:
		h.pending.Add(int64(len(added)))
		h.gauge()
	default:
		h.e.opts.Logger.Warn("retro-hunt queue full; indicators not hunted", "indicators", len(added))
	}
}

func (h *retroHunter) gauge() {
	if m := h.e.opts.Metrics; m != nil {
		m.RetroPending.Set(float64(h.pending.Load()))
	}
}

// retroBatch is how many indicators one hunt query covers: exact-value
// filters are cheap to combine, regexp filters (domains, URLs, file
// names) cost the engine a compile each.
func retroBatch(t intel.Type) int {
	switch t {
	case intel.TypeDomain, intel.TypeURL, intel.TypeFilename:
		return 25
	}
	return 200
}

func (h *retroHunter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case inds := <-h.queue:
			byType := map[intel.Type][]*intel.Indicator{}
			for _, ind := range inds {
				byType[ind.Type] = append(byType[ind.Type], ind)
			}
			for typ, list := range byType {
				n := retroBatch(typ)
				for i := 0; i < len(list); i += n {
					if ctx.Err() != nil {
						return
					}
					part := list[i:min(i+n, len(list))]
					start := time.Now()
					if err := h.hunt(ctx, part); err != nil && ctx.Err() == nil {
						h.e.opts.Logger.Warn("retro-hunt failed", "indicators", len(part), "first", part[0].Key().String(), "err", err)
					}
					h.pending.Add(-int64(len(part)))
					h.gauge()
					// Pace: at most half of one core for hunting.
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Since(start)):
					}
				}
			}
		}
	}
}

// hunt searches the stored events of every tenant the indicators apply to
// with one query, attributes each event found to the indicators it
// mentions (the live matcher's rules, so a retro alert means what a live
// one means), and records the findings marked retro.
func (h *retroHunter) hunt(ctx context.Context, inds []*intel.Indicator) error {
	var parts []string
	byTenant := map[string][]*intel.Indicator{}
	all := h.o.Tenants()
	for _, ind := range inds {
		q, err := intel.RetroQuery(ind)
		if err != nil {
			h.e.opts.Logger.Warn("no retro-hunt query", "indicator", ind.Key().String(), "err", err)
			continue
		}
		parts = append(parts, "("+q+")")
		if ind.Tenant != "" {
			byTenant[ind.Tenant] = append(byTenant[ind.Tenant], ind)
			continue
		}
		for _, t := range all {
			byTenant[t] = append(byTenant[t], ind)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	q := strings.Join(parts, " OR ")
	now := time.Now()
	from := now.Add(-h.o.Window)
	for tenant, list := range byTenant {
		m := intel.NewMatcher(nil)
		m.Replace(list)
		found := 0
		err := h.o.Events.Query(ctx, []string{tenant}, from, now, q+" | limit "+fmt.Sprint(h.o.MaxHits), func(r store.Row) error {
			ev := store.RowToEvent(r)
			ev.Tenant = tenant
			en := entities(ev)
			m.Match(ev, func(hit intel.Hit) {
				f := indicatorFinding(hit.Indicator, hit.Field, now)
				f.Tenant, f.Retro, f.Entity, f.Entities = tenant, true, "retro,"+dedupEntity(en), en
				if ev.ID != "" {
					f.EventIDs = []string{ev.ID}
				}
				f.FirstSeen, f.LastSeen, f.Field = ev.Timestamp, ev.Timestamp, fieldLookup(ev)
				h.e.record(f, nil)
				found++
			})
			return nil
		})
		if err != nil {
			return fmt.Errorf("tenant %s: %w", tenant, err)
		}
		if found > 0 {
			h.e.opts.Logger.Info("retro-hunt found events", "indicators", len(list), "tenant", tenant, "hits", found)
		}
	}
	if m := h.e.opts.Metrics; m != nil {
		m.RetroHunts.Add(float64(len(inds)))
	}
	return h.e.alerts.Commit(ctx)
}
