package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

func TestGatesJudge(t *testing.T) {
	base := fleet.Health{Scans: 100, ScanErrors: 1, ScanCPUMillis: 10, Detections: 4, CleanHits: 2, EngineRestarts: 1}
	with := func(f func(h *fleet.Health)) fleet.Health {
		h := base
		f(&h)
		return h
	}
	tests := []struct {
		name    string
		gates   Gates
		before  fleet.Health
		after   fleet.Health
		refused bool
		metric  string // "" no breach
	}{
		{name: "unchanged", before: base, after: base},
		{name: "healthy growth", before: base, after: with(func(h *fleet.Health) {
			h.Scans, h.ScanErrors, h.Detections, h.EngineRestarts, h.ScanCPUMillis = 300, 4, 40, 2, 11
		})},
		{name: "detections rise, clean files stay clean", before: base, after: with(func(h *fleet.Health) { h.Detections = 90 })},
		{name: "one false positive", before: base, after: with(func(h *fleet.Health) { h.CleanHits = 3 }), metric: "clean_hits"},
		{name: "false positives below a raised bound", gates: Gates{CleanHits: 5}, before: base, after: with(func(h *fleet.Health) { h.CleanHits = 6 })},
		{name: "two restarts", before: base, after: with(func(h *fleet.Health) { h.EngineRestarts = 3 })},
		{name: "three restarts: crash loop", before: base, after: with(func(h *fleet.Health) { h.EngineRestarts = 4 }), metric: "engine_restarts"},
		{name: "error rate 1 % to 10 %", before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanErrors = 200, 11 }), metric: "scan_error_rate"},
		{name: "error rate 1 % to 5 %: within 5 points", before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanErrors = 200, 5 })},
		{name: "every scan failing, but too few scans", before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanErrors = 105, 6 })},
		// 100 scans at 10 ms, then 100 more: the cumulative mean 25 ms
		// means 40 ms per scan since activation.
		{name: "cpu 4x", before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanCPUMillis = 200, 25 }), metric: "scan_cpu_ms"},
		{name: "cpu 2.5x", before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanCPUMillis = 200, 17.5 })},
		{name: "cpu 5x of a tiny baseline, under the floor", before: with(func(h *fleet.Health) { h.ScanCPUMillis = 0.1 }),
			after: with(func(h *fleet.Health) { h.Scans, h.ScanCPUMillis = 200, 0.3 })},
		{name: "cpu without a baseline", before: fleet.Health{}, after: fleet.Health{Scans: 100, ScanCPUMillis: 500}},
		{name: "cpu gate off", gates: Gates{CleanHits: 1}, before: base, after: with(func(h *fleet.Health) { h.Scans, h.ScanCPUMillis = 200, 25 })},
		{name: "self-test failing", before: base, after: with(func(h *fleet.Health) { h.SelfTestFailed = true }), metric: "self_test_failed"},
		{name: "self-test failing explained by a refusal", before: base, after: with(func(h *fleet.Health) { h.SelfTestFailed = true }), refused: true},
		{name: "agent restarted: counters from zero, healthy", before: base, after: fleet.Health{Scans: 50, ScanErrors: 0, ScanCPUMillis: 12, EngineRestarts: 1}},
		{name: "agent restarted: a false positive since", before: base, after: fleet.Health{Scans: 50, CleanHits: 1, ScanCPUMillis: 10}, metric: "clean_hits"},
		{name: "agent restarted: cpu since restart 5x", before: base, after: fleet.Health{Scans: 50, ScanCPUMillis: 50}, metric: "scan_cpu_ms"},
		{name: "all gates off", gates: Gates{}, before: base, after: with(func(h *fleet.Health) {
			h.CleanHits, h.EngineRestarts, h.SelfTestFailed, h.Scans, h.ScanErrors = 50, 50, true, 1000, 900
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.gates
			if g == (Gates{}) && !strings.HasPrefix(tt.name, "all gates off") {
				g = DefaultGates()
			}
			b, breach := g.Judge(tt.before, tt.after, tt.refused)
			if got := map[bool]string{true: b.Metric}[breach]; got != tt.metric {
				t.Fatalf("breach %v %q (%s), want %q", breach, b.Metric, b, tt.metric)
			}
			if breach && (b.Before == "" || b.After == "") {
				t.Errorf("breach without values: %+v", b)
			}
		})
	}
}

// TestGateHaltsRollout: a canary that starts flagging a known-clean file
// after activating a release halts the rollout and rolls it back; the
// reason names the agent, the metric and the values.
func TestGateHaltsRollout(t *testing.T) {
	e := newEnv(t, 20, 0)
	c := e.controller(t, Options{})
	for _, id := range e.ids {
		if err := e.fl.Heartbeat(id, fleet.Info{}, fleet.Health{Scans: 100, ScanCPUMillis: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, true); err != nil { // 1: good, everywhere
		t.Fatal(err)
	}
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	var canary, other string
	for _, id := range e.ids {
		if c.Desired(id)["main"] == 2 {
			canary = id
		} else if other == "" {
			other = id
		}
	}
	if canary == "" {
		t.Fatal("no canary")
	}
	_ = e.fl.Report(canary, fleet.Install{Channel: "main", Version: 2, Status: fleet.StatusActive})
	// An agent without the release flags clean files: not the release's doing.
	e.now = e.now.Add(time.Second)
	_ = e.fl.Heartbeat(other, fleet.Info{}, fleet.Health{Scans: 150, ScanCPUMillis: 5, CleanHits: 4})
	c.Tick(e.ctx)
	if r, _ := c.Get("main", 2); r.State != StateRolling {
		t.Fatalf("halted by an agent without the release: %+v", r)
	}
	_ = e.fl.Heartbeat(canary, fleet.Info{}, fleet.Health{Scans: 150, ScanCPUMillis: 5, CleanHits: 1})
	c.Tick(e.ctx)
	r, _ := c.Get("main", 2)
	if r.State != StateHalted || r.RolledBackTo != 3 {
		t.Fatalf("not halted: %+v", r)
	}
	for _, want := range []string{canary, "clean_hits", "0 → 1"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("reason %q does not name %q", r.Reason, want)
		}
	}
	if rb, _ := c.Get("main", 3); rb.State != StateDone || e.repo.rels["main"][2].RollbackOf != 1 {
		t.Errorf("rollback: %+v", rb)
	}
}
