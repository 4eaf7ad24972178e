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

// ScanThreshold is the number of new indicators from which a retro-hunt
// reads the stored events of the window once and runs the live matcher
// over them, instead of querying the store per batch of indicators: past
// a few hundred indicators one pass is much cheaper.
const ScanThreshold = 1000

func (h *retroHunter) run(ctx context.Context) {
	for {
		var inds []*intel.Indicator
		select {
		case <-ctx.Done():
			return
		case inds = <-h.queue:
		}
		// A feed import arrives as a run of Adds: gather them while they
		// keep coming (up to a minute) so that it is hunted as one.
		deadline := time.After(time.Minute)
	gather:
		for {
			select {
			case more := <-h.queue:
				inds = append(inds, more...)
			case <-time.After(time.Second):
				break gather
			case <-deadline:
				break gather
			case <-ctx.Done():
				return
			}
		}
		if len(inds) >= ScanThreshold {
			start := time.Now()
			if err := h.scan(ctx, inds); err != nil && ctx.Err() == nil {
				h.e.opts.Logger.Warn("retro-hunt scan failed", "indicators", len(inds), "err", err)
			}
			h.e.opts.Logger.Info("retro-hunt scan done", "indicators", len(inds), "took", time.Since(start).Round(time.Millisecond))
			h.pending.Add(-int64(len(inds)))
			h.gauge()
			continue
		}
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

// byTenant spreads indicators over the tenants they apply to.
func (h *retroHunter) byTenant(inds []*intel.Indicator) map[string][]*intel.Indicator {
	out := map[string][]*intel.Indicator{}
	all := h.o.Tenants()
	for _, ind := range inds {
		if ind.Tenant != "" {
			out[ind.Tenant] = append(out[ind.Tenant], ind)
			continue
		}
		for _, t := range all {
			out[t] = append(out[t], ind)
		}
	}
	return out
}

// hunt searches the stored events of every tenant the indicators apply to
// with one query and attributes what it finds.
func (h *retroHunter) hunt(ctx context.Context, inds []*intel.Indicator) error {
	var parts []string
	var usable []*intel.Indicator
	for _, ind := range inds {
		q, err := intel.RetroQuery(ind)
		if err != nil {
			h.e.opts.Logger.Warn("no retro-hunt query", "indicator", ind.Key().String(), "err", err)
			continue
		}
		parts = append(parts, "("+q+")")
		usable = append(usable, ind)
	}
	if len(parts) == 0 {
		return nil
	}
	return h.search(ctx, usable, strings.Join(parts, " OR ")+" | limit "+fmt.Sprint(h.o.MaxHits))
}

// scan reads every stored event of the window once per tenant and lets
// the matcher find the indicators in them.
func (h *retroHunter) scan(ctx context.Context, inds []*intel.Indicator) error {
	return h.search(ctx, inds, "*")
}

// search runs q over the window for each tenant, attributes each event
// found to the indicators it mentions (the live matcher's rules, so a retro
// alert means what a live one means) and records the findings marked retro.
func (h *retroHunter) search(ctx context.Context, inds []*intel.Indicator, q string) error {
	now := time.Now()
	from := now.Add(-h.o.Window)
	for tenant, list := range h.byTenant(inds) {
		m := intel.NewMatcher(nil)
		m.Replace(list)
		found := 0
		err := h.o.Events.Query(ctx, []string{tenant}, from, now, q, func(r store.Row) error {
			if found >= h.o.MaxHits {
				return nil
			}
			ev := store.RowToEvent(r)
			ev.Tenant = tenant
			var en map[string][]string
			m.Match(ev, func(hit intel.Hit) {
				if en == nil {
					en = entities(ev)
				}
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
