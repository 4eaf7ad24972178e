package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/detect"
	"github.com/mamori-soc/mamori/internal/detect/anomaly"
	"github.com/mamori-soc/mamori/internal/intel"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// detection is the running detection engine and what it owns.
type detection struct {
	engine  *detect.Engine
	alerts  *alert.Store
	intel   *intel.Store
	anomaly *anomaly.Detector
	db      *sql.DB
	log     *slog.Logger
	stop    context.CancelFunc
	wg      sync.WaitGroup
	closed  sync.Once
}

// policy turns the config's per-tenant overrides into a rule policy.
func policy(c config.DetectConfig) detect.Policy {
	if len(c.DisabledRules) == 0 && len(c.Tenants) == 0 {
		return nil
	}
	return func(tenant, ruleID string, builtin bool) bool {
		if slices.Contains(c.DisabledRules, ruleID) {
			return false
		}
		tc, ok := c.Tenants[tenant]
		if !ok {
			return true
		}
		if builtin && tc.Builtin != nil && !*tc.Builtin {
			return false
		}
		return !slices.Contains(tc.DisabledRules, ruleID)
	}
}

// openDetection prepares alerts and rules and creates the bus consumer
// (before any listener opens, as with the persister).
func openDetection(ctx context.Context, cfg config.Config, st *state.DB, b *bus.Bus, events store.Store, reg prometheus.Registerer, log *slog.Logger) (*detection, error) {
	if !cfg.Detect.Enabled {
		return nil, nil
	}
	dlog := log.With("component", "detect")
	alerts, err := alert.Open(ctx, st.SQL(), alert.Options{Window: cfg.Detect.DedupWindow.D(), Logger: dlog})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mamori_alerts_stream_dropped_total",
		Help: "Alerts not delivered to a live stream subscriber that did not keep up."}, func() float64 { return float64(alerts.Dropped()) }))
	d := &detection{alerts: alerts, db: st.SQL(), log: dlog}
	d.engine = detect.New(b, alerts, detect.Options{
		RuleSources: cfg.Detect.Rules, Builtin: cfg.Detect.Builtin, Placeholders: cfg.Detect.Placeholders,
		Policy: policy(cfg.Detect), Workers: cfg.Detect.Workers, Logger: dlog, Metrics: detect.NewMetrics(reg),
	})
	if _, err := d.engine.Load(); err != nil && !errors.Is(err, detect.ErrNoRules) {
		return nil, err
	}
	if err := d.ensureStateTable(ctx); err != nil {
		return nil, fmt.Errorf("detect state: %w", err)
	}
	if b, err := d.loadState(ctx, correlationKey); err != nil {
		dlog.Warn("correlation windows not restored", "err", err)
	} else if b != nil {
		if n, err := d.engine.RestoreCorrelations(b); err != nil {
			dlog.Warn("correlation windows not restored", "err", err)
		} else if n > 0 {
			dlog.Info("correlation windows restored", "groups", n)
		}
	}
	if cfg.Detect.Anomaly {
		streams := anomaly.DefaultStreams()
		if len(cfg.Detect.AnomalyStreams) > 0 {
			streams = streams[:0]
			for _, c := range cfg.Detect.AnomalyStreams {
				streams = append(streams, anomaly.Stream{Name: c.Name, Match: c.Match, By: c.By, K: c.K, Z: c.Z, For: c.For, MinCount: c.MinCount, Severity: c.Severity})
			}
		}
		an, err := anomaly.New(anomaly.Config{Streams: streams, Logger: dlog})
		if err != nil {
			return nil, fmt.Errorf("anomaly: %w", err)
		}
		if err := d.restoreBaselines(ctx, an); err != nil {
			dlog.Warn("baselines not restored; they learn again", "err", err)
		}
		d.anomaly = an
		d.engine.SetAnomaly(an)
	}
	start := time.Now()
	d.intel, err = intel.Open(ctx, st.SQL(), intel.WithLogger(dlog))
	if err != nil {
		return nil, err
	}
	dlog.Info("indicators loaded", "indicators", d.intel.Len(), "took", time.Since(start).Round(time.Millisecond))
	// The Go memory limit keeps the process under its budget; indicators are
	// resident by design, so the budget grows with them instead of the
	// collector running flat out to defend a limit the live heap exceeds.
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		setLimit := func() {
			debug.SetMemoryLimit(int64(cfg.MemoryLimit) + int64(d.intel.Len())*bytesPerIndicator)
		}
		setLimit()
		d.intel.OnAdded(func([]*intel.Indicator) { setLimit() })
	}
	ro := detect.RetroOptions{Events: events, Window: cfg.Detect.RetroHunt.D(), Tenants: func() []string {
		var names []string
		for _, t := range st.Tenants() {
			names = append(names, t.Name)
		}
		return names
	}}
	if cfg.Detect.RetroHunt <= 0 {
		ro.Events = nil // retro-hunts off
	}
	d.engine.SetIntel(d.intel, ro)
	if err := d.engine.Ensure(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Keys of the detect_state table.
const (
	baselineKey    = "anomaly.baselines"
	correlationKey = "correlate.windows"
)

// bytesPerIndicator is the resident cost of one indicator (the matcher's
// arena and hash table; internal/intel measures ~130 B) with headroom.
const bytesPerIndicator = 300

func (d *detection) ensureStateTable(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS detect_state (name TEXT PRIMARY KEY, body BLOB NOT NULL, updated INTEGER NOT NULL)`)
	return err
}

// loadState returns a saved blob, nil when there is none.
func (d *detection) loadState(ctx context.Context, name string) ([]byte, error) {
	var body []byte
	err := d.db.QueryRowContext(ctx, `SELECT body FROM detect_state WHERE name = ?`, name).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return body, err
}

func (d *detection) restoreBaselines(ctx context.Context, an *anomaly.Detector) error {
	b, err := d.loadState(ctx, baselineKey)
	if err != nil || b == nil {
		return err
	}
	return an.Restore(b)
}

func (d *detection) saveState(ctx context.Context, name string, snapshot func() ([]byte, error)) {
	b, err := snapshot()
	if err == nil && b != nil {
		_, err = d.db.ExecContext(ctx, `INSERT INTO detect_state (name, body, updated) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated = excluded.updated`, name, b, time.Now().UnixNano())
	}
	if err != nil {
		d.log.Warn("saving detection state failed", "state", name, "err", err)
	}
}

// saveBaselines saves the baselines and the open correlation windows.
func (d *detection) saveBaselines(ctx context.Context) {
	if d.anomaly != nil {
		d.saveState(ctx, baselineKey, d.anomaly.Snapshot)
	}
	d.saveState(ctx, correlationKey, d.engine.SnapshotCorrelations)
}

// start runs the consumer, the clock (correlation windows, baseline
// minutes, baseline snapshots) and SIGHUP rule reloads.
func (d *detection) start(ctx context.Context) {
	ctx, d.stop = context.WithCancel(context.WithoutCancel(ctx))
	d.wg.Add(3)
	go func() {
		defer d.wg.Done()
		if err := d.engine.Run(ctx); err != nil {
			d.log.Error("detection consumer stopped", "err", err)
		}
	}()
	go func() {
		defer d.wg.Done()
		d.engine.RunRetro(ctx)
	}()
	go func() {
		defer d.wg.Done()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		lastSave := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if _, err := d.engine.Load(); err != nil && !errors.Is(err, detect.ErrNoRules) {
					d.log.Error("rule reload failed; the previous rules stay", "err", err)
				}
			case now := <-tick.C:
				d.engine.Tick(now)
				if err := d.engine.Advance(ctx, now); err != nil {
					d.log.Error("baseline alerts", "err", err)
				}
				if now.Sub(lastSave) >= 5*time.Minute {
					d.saveBaselines(ctx)
					if res, err := d.intel.Expire(ctx, now); err != nil {
						d.log.Warn("expiring indicators failed", "err", err)
					} else if res.Purged > 0 {
						d.log.Info("expired indicators purged", "indicators", res.Purged)
					}
					lastSave = now
				}
			}
		}
	}()
}

// close stops the engine after the bus drained and saves the baselines.
func (d *detection) close() {
	d.closed.Do(func() {
		if d.stop != nil {
			d.stop()
		}
		d.wg.Wait()
		if err := d.alerts.Commit(context.Background()); err != nil {
			d.log.Error("final alert commit", "err", err)
		}
		d.saveBaselines(context.Background())
	})
}
