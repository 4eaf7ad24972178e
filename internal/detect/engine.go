package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/detect/anomaly"
	"github.com/mamori-soc/mamori/internal/detect/correlate"
	"github.com/mamori-soc/mamori/internal/detect/sigma"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/intel"
)

// Consumer is the bus consumer's durable name.
const Consumer = "detect"

// ErrNoRules is returned by Load when no rule source is configured.
var ErrNoRules = errors.New("no rules configured")

// Policy decides whether a rule runs for a tenant (per-tenant enablement).
type Policy func(tenant, ruleID string, builtin bool) bool

// Options configures an Engine.
type Options struct {
	// RuleSources are Sigma rule directories or files.
	RuleSources []string
	// Builtin loads Mamori's own threshold and correlation rules.
	Builtin bool
	// Placeholders fill Sigma's expand modifier (%Name% → values).
	Placeholders map[string][]string
	// Policy, when set, enables rules per tenant.
	Policy  Policy
	Workers int
	Logger  *slog.Logger
	Metrics *Metrics
}

// Ruleset is one compiled generation of rules.
type Ruleset struct {
	Sigma    *sigma.Ruleset
	Corr     *correlate.Engine
	builtin  map[string]bool // rule ids and names from the builtin set
	Loaded   time.Time
	Problems []string // rules skipped, with file and reason
}

// Engine evaluates the event stream.
type Engine struct {
	bus    *bus.Bus
	alerts *alert.Store
	opts   Options
	rules  atomic.Pointer[Ruleset]
	loadMu sync.Mutex

	intel   *intel.Store
	anomaly *anomaly.Detector
	retro   *retroHunter
}

// New returns an engine; Load compiles its rules.
func New(b *bus.Bus, alerts *alert.Store, opts Options) *Engine {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{bus: b, alerts: alerts, opts: opts}
}

// SetAnomaly sets the baseline detector (nil: none). Its signals become
// alerts when Advance is called.
func (e *Engine) SetAnomaly(a *anomaly.Detector) { e.anomaly = a }

// Advance closes the baselines' minutes up to now and records the surges
// found (one alert per episode, updated while it lasts).
func (e *Engine) Advance(ctx context.Context, now time.Time) error {
	if e.anomaly == nil {
		return nil
	}
	sigs := e.anomaly.Advance(now)
	for _, sg := range sigs {
		if sg.Phase == anomaly.PhaseEnd {
			continue // the alert keeps the episode's last minute as last_seen
		}
		e.record(anomalyFinding(sg), nil)
	}
	if len(sigs) == 0 {
		return nil
	}
	return e.alerts.Commit(ctx)
}

func anomalyFinding(sg anomaly.Signal) alert.Finding {
	details := map[string]string{
		"stream": sg.Stream, "phase": string(sg.Phase), "minute": sg.Minute.UTC().Format(time.RFC3339),
		"observed": fmt.Sprintf("%.0f", sg.Observed), "expected": fmt.Sprintf("%.1f", sg.Expected),
		"ratio": fmt.Sprintf("%.1f", sg.Ratio), "threshold": fmt.Sprintf("%.1f", sg.Threshold),
		"episode": sg.ID,
	}
	group := make([]string, 0, len(sg.Group))
	for k, v := range sg.Group {
		details["group."+k] = v
		group = append(group, k+"="+v)
	}
	slices.Sort(group)
	ents := groupEntities(sg.Group, nil)
	title := "Volume surge: " + sg.Stream
	if len(group) > 0 {
		title += " (" + strings.Join(group, ", ") + ")"
	}
	return alert.Finding{
		Tenant: sg.Tenant, Kind: alert.KindAnomaly,
		Rule:     alert.RuleRef{ID: "anomaly:" + sg.Stream, Title: title},
		Severity: sg.Severity, Entity: "episode=" + sg.ID, Entities: ents, Count: max(int64(sg.Observed), 1),
		FirstSeen: sg.Start, LastSeen: sg.Minute, Details: details,
	}
}

// Rules returns the current rule generation (nil before the first Load).
func (e *Engine) Rules() *Ruleset { return e.rules.Load() }

// BuiltinPrefix names the files of Mamori's own rules in reports.
const BuiltinPrefix = "builtin:"

// Load compiles the configured rules and swaps them in. A rule that does
// not compile is reported in Problems and skipped; the previous rules
// stay until the new set is ready.
func (e *Engine) Load() (*Ruleset, error) {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	start := time.Now()
	var embedded []sigma.Embedded
	if e.opts.Builtin {
		embedded = append(embedded, sigma.Embedded{FS: correlate.Builtin(), Prefix: BuiltinPrefix})
	}
	if len(e.opts.RuleSources) == 0 && len(embedded) == 0 {
		rs := &Ruleset{Loaded: time.Now()}
		e.rules.Store(rs)
		return rs, ErrNoRules
	}
	all, errs := sigma.LoadWith(e.opts.RuleSources, embedded, sigma.Options{Placeholders: e.opts.Placeholders, Logger: e.opts.Logger})
	rs := &Ruleset{Sigma: all, builtin: map[string]bool{}, Loaded: time.Now()}
	for _, le := range errs {
		rs.Problems = append(rs.Problems, le.Error())
	}
	known := map[string]bool{}
	for _, r := range all.Rules() {
		known[r.ID] = true
		if r.Name != "" {
			known[r.Name] = true
		}
		if strings.HasPrefix(r.Path, BuiltinPrefix) {
			rs.builtin[r.ID] = true
		}
	}
	var corrRules []*correlate.Rule
	for _, doc := range all.Correlations() {
		r, err := correlate.Parse(doc.Path, doc.Body)
		if err != nil {
			rs.Problems = append(rs.Problems, err.Error())
			continue
		}
		if strings.HasPrefix(doc.Path, BuiltinPrefix) {
			rs.builtin[r.ID] = true
		}
		corrRules = append(corrRules, r)
	}
	corr, cerrs := correlate.New(corrRules, correlate.Options{Logger: e.opts.Logger, KnownRule: func(ref string) bool { return known[ref] }})
	for _, err := range cerrs {
		rs.Problems = append(rs.Problems, err.Error())
	}
	rs.Corr = corr
	// Windows open under the previous rules carry over (a rule whose
	// definition changed starts afresh).
	if prev := e.rules.Load(); prev != nil && prev.Corr != nil {
		if snap, err := prev.Corr.Snapshot(); err == nil {
			_, _ = corr.Restore(snap)
		}
	}
	e.rules.Store(rs)
	st := all.Stats()
	e.opts.Logger.Info("rules loaded", "rules", st.Loaded, "active", st.Active, "dormant", st.Dormant,
		"correlations", len(corr.Rules()), "skipped", len(rs.Problems), "took", time.Since(start).Round(time.Millisecond))
	if m := e.opts.Metrics; m != nil {
		m.RulesLoaded.Set(float64(st.Loaded + len(corr.Rules())))
		m.RulesSkipped.Set(float64(len(rs.Problems)))
	}
	return rs, nil
}

// Ensure creates the bus consumer, so that batches published from now on
// are kept for detection (the stream has interest retention).
func (e *Engine) Ensure(ctx context.Context) error {
	return e.bus.EnsureConsumer(ctx, Consumer, e.consumeOptions())
}

func (e *Engine) consumeOptions() bus.ConsumeOptions {
	return bus.ConsumeOptions{MaxMessages: 8, MaxWait: 50 * time.Millisecond, Workers: e.opts.Workers, AckWait: 30 * time.Second, View: true}
}

// Run consumes the event stream until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	return e.bus.Consume(ctx, Consumer, e.consumeOptions(), func(ctx context.Context, ds []bus.Delivery) error {
		start := time.Now()
		n := 0
		for _, d := range ds {
			for _, ev := range d.Events {
				e.Evaluate(ev)
				n++
			}
		}
		// Everything found in these batches is durable before they are acknowledged.
		if err := e.alerts.Commit(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("detect: commit alerts: %w", err)
		}
		if m := e.opts.Metrics; m != nil {
			m.Events.Add(float64(n))
			m.BatchTime.Observe(time.Since(start).Seconds())
			now := time.Now()
			for _, d := range ds {
				if len(d.Events) > 0 {
					// The batch's oldest ingest time: how far detection lags.
					m.Lag.Observe(now.Sub(d.Events[0].Ingested).Seconds())
				}
			}
		}
		return nil
	})
}

// Evaluate runs every detector on one event and records the findings
// (durable after the next alert commit).
func (e *Engine) Evaluate(ev *event.Event) {
	rs := e.rules.Load()
	var ents map[string][]string
	getEnts := func() map[string][]string {
		if ents == nil {
			ents = entities(ev)
		}
		return ents
	}
	if rs != nil && rs.Sigma != nil {
		rs.Sigma.Match(ev, func(r *sigma.Rule) {
			if !e.enabled(rs, ev.Tenant, r.ID) {
				return
			}
			if rs.Corr != nil && (rs.Corr.Referenced(r.ID) || r.Name != "" && rs.Corr.Referenced(r.Name)) {
				e.correlate(rs, ev, r, getEnts)
			}
			if rs.Corr != nil && (rs.Corr.SuppressBase(r.ID) || r.Name != "" && rs.Corr.SuppressBase(r.Name)) {
				return
			}
			en := getEnts()
			e.record(alert.Finding{
				Tenant: ev.Tenant, Kind: alert.KindSigma,
				Rule:     alert.RuleRef{ID: r.ID, Title: r.Title, Path: r.Path},
				Severity: r.Level, Tags: r.Tags, Entity: dedupEntity(en), Entities: en,
				EventIDs: []string{strings.Clone(ev.ID)}, FirstSeen: ev.Timestamp, LastSeen: ev.Timestamp,
				Field: fieldLookup(ev),
			}, ev)
		})
	}
	if e.intel != nil {
		e.intel.Match(ev, func(h intel.Hit) {
			en := getEnts()
			f := indicatorFinding(h.Indicator, h.Field, time.Now())
			f.Tenant, f.Entity, f.Entities = ev.Tenant, dedupEntity(en), en
			f.EventIDs = []string{strings.Clone(ev.ID)}
			f.FirstSeen, f.LastSeen, f.Field = ev.Timestamp, ev.Timestamp, fieldLookup(ev)
			e.record(f, ev)
		})
	}
	if e.anomaly != nil {
		e.anomaly.Observe(ev.Tenant, ev)
	}
}

func (e *Engine) correlate(rs *Ruleset, ev *event.Event, r *sigma.Rule, getEnts func() map[string][]string) {
	m := correlate.Match{
		Tenant: ev.Tenant, RuleID: r.ID, RuleName: r.Name, Time: ev.Timestamp, EventID: ev.ID,
		Value: func(field string) (string, bool) { return rs.Sigma.Lookup(ev, r, field) },
	}
	if fs := rs.Corr.Observe(m); len(fs) > 0 {
		e.recordFirings(rs, fs, ev, getEnts())
	}
}

// recordFirings turns correlation firings into alerts. ev is the event
// that closed them (nil for firings from a clock tick).
func (e *Engine) recordFirings(rs *Ruleset, fs []correlate.Firing, ev *event.Event, en map[string][]string) {
	for _, f := range fs {
		if f.Suppressed || !e.enabled(rs, f.Tenant, f.Rule.ID) {
			continue // a building block of a chained correlation
		}
		group := make([]string, 0, len(f.Group))
		details := map[string]string{"count": fmt.Sprint(f.Count)}
		for k, v := range f.Group {
			group = append(group, k+"="+v)
			details["group."+k] = strings.Clone(v)
		}
		slices.Sort(group)
		if f.Values > 0 {
			details["distinct_values"] = fmt.Sprint(f.Values)
		}
		if f.Rule.Type == correlate.ValueSum || f.Rule.Type == correlate.ValueAvg {
			details["aggregate"] = fmt.Sprint(f.Aggregate)
		}
		fd := alert.Finding{
			Tenant: f.Tenant, Kind: alert.KindCorrelation,
			Rule:     alert.RuleRef{ID: f.Rule.ID, Title: f.Rule.Title, Path: f.Rule.Path},
			Severity: f.Rule.Level, Tags: f.Rule.Tags, Entity: strings.Join(group, ","),
			Entities: groupEntities(f.Group, en), EventIDs: cloneAll(f.EventIDs), Count: int64(f.Count),
			FirstSeen: f.First, LastSeen: f.Last, Details: details,
		}
		if ev != nil {
			fd.Field = fieldLookup(ev)
		}
		e.record(fd, ev)
	}
}

// SnapshotCorrelations encodes the open correlation windows (to survive a
// restart); nil when no correlation runs.
func (e *Engine) SnapshotCorrelations() ([]byte, error) {
	rs := e.rules.Load()
	if rs == nil || rs.Corr == nil {
		return nil, nil
	}
	return rs.Corr.Snapshot()
}

// RestoreCorrelations loads windows saved by SnapshotCorrelations into the
// current rules and returns how many groups it restored.
func (e *Engine) RestoreCorrelations(b []byte) (int, error) {
	rs := e.rules.Load()
	if rs == nil || rs.Corr == nil {
		return 0, nil
	}
	return rs.Corr.Restore(b)
}

// Tick lets correlations with upper bounds ("fewer than N in T") judge the
// windows that closed by now; the server calls it periodically.
func (e *Engine) Tick(now time.Time) {
	rs := e.rules.Load()
	if rs == nil || rs.Corr == nil {
		return
	}
	if fs := rs.Corr.Tick(now); len(fs) > 0 {
		e.recordFirings(rs, fs, nil, nil)
		if err := e.alerts.Commit(context.Background()); err != nil {
			e.opts.Logger.Error("commit alerts of closed correlation windows", "err", err)
		}
	}
}

func (e *Engine) enabled(rs *Ruleset, tenant, ruleID string) bool {
	if e.opts.Policy == nil {
		return true
	}
	return e.opts.Policy(tenant, ruleID, rs.builtin[ruleID])
}

func (e *Engine) record(f alert.Finding, ev *event.Event) {
	a, isNew := e.alerts.Record(f)
	if m := e.opts.Metrics; m != nil {
		m.Findings.WithLabelValues(f.Kind).Inc()
		if isNew {
			m.Alerts.WithLabelValues(f.Kind, a.Severity).Inc()
		}
		if ev != nil && !ev.Ingested.IsZero() {
			m.Latency.Observe(time.Since(ev.Ingested).Seconds())
		}
	}
}

func cloneAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}
