package rollout

import (
	"fmt"

	"github.com/mamori-soc/mamori/internal/fleet"
)

// Gates bound the health a rolling release must keep on each agent that
// made it active, judged against that agent's own health before (agents
// differ too much for fleet-wide thresholds). A zero threshold turns its
// gate off.
type Gates struct {
	// CleanHits: breach when detections on known-clean files rose by at
	// least this many (1: any false positive).
	CleanHits int64
	// EngineRestarts: breach at this many engine restarts (a crash loop).
	EngineRestarts int64
	// ScanErrorRate: breach when the share of scans that failed rose by
	// more than this (0.05: five percentage points) over the baseline's.
	ScanErrorRate float64
	// CPUFactor: breach when the mean CPU time per scan since activation
	// exceeds this multiple of the baseline's mean, and CPUFloorMillis.
	CPUFactor      float64
	CPUFloorMillis float64
	// MinScans: fewer scans since activation are too few to judge rates
	// and means by.
	MinScans int64
	// SelfTest: breach when the agent reports its self-test failing with
	// the release active.
	SelfTest bool
}

// DefaultGates are the gates used when Options.Gates is nil.
func DefaultGates() Gates {
	return Gates{CleanHits: 1, EngineRestarts: 3, ScanErrorRate: 0.05, CPUFactor: 3, CPUFloorMillis: 20, MinScans: 20, SelfTest: true}
}

// Breach is a health gate an agent broke.
type Breach struct {
	Metric string // clean_hits, engine_restarts, scan_error_rate, scan_cpu_ms, self_test_failed
	Before string // the baseline value
	After  string // the value since activation
}

func (b Breach) String() string {
	return fmt.Sprintf("%s %s → %s", b.Metric, b.Before, b.After)
}

// Judge compares an agent's health since it activated a release (after)
// with its health at activation (before) and returns the first gate
// broken. Counters are cumulative; one that went down means the agent
// restarted, and everything it counted since is then taken as the delta.
// refusedSince: the agent refused a release after the activation, which
// explains a failed self-test already (judged as that release's refusal).
func (g Gates) Judge(before, after fleet.Health, refusedSince bool) (Breach, bool) {
	from := before
	if after.Scans < before.Scans || after.ScanErrors < before.ScanErrors || after.EngineRestarts < before.EngineRestarts ||
		after.Detections < before.Detections || after.CleanHits < before.CleanHits {
		// Restarted: the baseline's rates and means still hold; the
		// deltas count from zero.
		from = fleet.Health{}
	}
	return g.judge(before, from, after, refusedSince)
}

// judge: base gives the baseline's rates and means, from the counters the
// deltas start at.
func (g Gates) judge(base, from, after fleet.Health, refusedSince bool) (Breach, bool) {
	if g.SelfTest && after.SelfTestFailed && !refusedSince {
		return Breach{Metric: "self_test_failed", Before: fmt.Sprint(base.SelfTestFailed), After: "true"}, true
	}
	if d := after.CleanHits - from.CleanHits; g.CleanHits > 0 && d >= g.CleanHits {
		return Breach{Metric: "clean_hits", Before: fmt.Sprint(base.CleanHits), After: fmt.Sprintf("%d (+%d)", after.CleanHits, d)}, true
	}
	if d := after.EngineRestarts - from.EngineRestarts; g.EngineRestarts > 0 && d >= g.EngineRestarts {
		return Breach{Metric: "engine_restarts", Before: fmt.Sprint(base.EngineRestarts), After: fmt.Sprintf("%d (+%d)", after.EngineRestarts, d)}, true
	}
	scans := after.Scans - from.Scans
	if scans <= 0 || scans < g.MinScans {
		return Breach{}, false
	}
	if g.ScanErrorRate > 0 {
		var was float64
		if base.Scans > 0 {
			was = float64(base.ScanErrors) / float64(base.Scans)
		}
		now := float64(after.ScanErrors-from.ScanErrors) / float64(scans)
		if now-was > g.ScanErrorRate {
			return Breach{Metric: "scan_error_rate", Before: pct(was), After: fmt.Sprintf("%s (%d of %d scans)", pct(now), after.ScanErrors-from.ScanErrors, scans)}, true
		}
	}
	// The CPU gate needs a baseline: an agent that had scanned nothing
	// before the release has none.
	if g.CPUFactor > 0 && base.Scans > 0 && base.ScanCPUMillis > 0 {
		// Means over cumulative scans: the mean since activation is the
		// CPU time added divided by the scans added.
		mean := (after.ScanCPUMillis*float64(after.Scans) - from.ScanCPUMillis*float64(from.Scans)) / float64(scans)
		if mean > g.CPUFactor*base.ScanCPUMillis && mean >= g.CPUFloorMillis {
			return Breach{Metric: "scan_cpu_ms", Before: fmt.Sprintf("%.1f ms/scan", base.ScanCPUMillis), After: fmt.Sprintf("%.1f ms/scan (%.1f×, %d scans)", mean, mean/base.ScanCPUMillis, scans)}, true
		}
	}
	return Breach{}, false
}

func pct(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) }
