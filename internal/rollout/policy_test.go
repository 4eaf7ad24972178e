package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

// publish publishes at the env's clock: fast (everyone at once), or into
// the rings; rollbackTo > 0 publishes that version's content.
func (e *env) publish(t *testing.T, c *Controller, ch string, fast bool, rollbackTo uint64) uint64 {
	t.Helper()
	rel, _, err := c.Publish(e.ctx, ch, nil, update.PublishOptions{RollbackTo: rollbackTo}, fast)
	if err != nil {
		t.Fatal(err)
	}
	return rel.Version
}

func (e *env) active(t *testing.T, id, ch string, v uint64) {
	t.Helper()
	if err := e.fl.Report(id, fleet.Install{Channel: ch, Version: v, Status: fleet.StatusActive}); err != nil {
		t.Fatal(err)
	}
}

func TestSetPolicyRefuses(t *testing.T) {
	e := newEnv(t, 1, 0)
	c := e.controller(t, Options{})
	e.publish(t, c, "main", true, 0) // 1
	e.publish(t, c, "main", true, 0) // 2
	e.publish(t, c, "main", true, 1) // 3: rolls 2 back
	for _, tc := range []struct {
		p    Policy
		want error
	}{
		{Policy{Mode: "follow"}, ErrInvalidPolicy},
		{Policy{Mode: PolicyPin}, ErrInvalidPolicy},
		{Policy{Mode: PolicyPin, Version: 9}, ErrUnknownVersion},
		{Policy{Mode: PolicyPin, Version: 2}, ErrRolledBack},
		{Policy{Mode: PolicyDelay, Delay: 10 * time.Second}, ErrInvalidPolicy},
		{Policy{Mode: PolicyDelay, Delay: 31 * 24 * time.Hour}, ErrInvalidPolicy},
		{Policy{Mode: PolicyPin, Version: 1}, nil},
		{Policy{Mode: PolicyDelay, Delay: 6 * time.Hour}, nil},
		{Policy{Mode: PolicyLatest}, nil},
	} {
		if _, err := c.SetPolicy(e.ctx, "acme", "main", tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.p, err, tc.want)
		}
	}
}

// TestPolicies walks the decisions a policy makes with the rings, step by
// step: each step acts, then checks what acme's agents (with the policy)
// and other's (without) may have.
func TestPolicies(t *testing.T) {
	e := newEnv(t, 3, 1)
	c := e.controller(t, Options{})
	x, y, o := e.ids[0], e.ids[1], e.ids[3] // acme, acme, other
	set := func(p Policy) {
		t.Helper()
		if _, err := c.SetPolicy(e.ctx, "acme", "main", p); err != nil {
			t.Fatal(err)
		}
	}
	want := func(step string, id string, v uint64, gated bool) {
		t.Helper()
		got, ok := c.Desired(id)["main"]
		if ok != gated || got != v {
			t.Errorf("%s: %s desired %d (gated %v), want %d (gated %v)", step, id, got, ok, v, gated)
		}
	}
	t0 := e.now
	e.now = t0.Add(-24 * time.Hour)
	e.publish(t, c, "main", true, 0) // 1 a day before t0
	e.now = t0.Add(time.Hour)
	e.publish(t, c, "main", true, 0) // 2 at t0+1h
	want("latest", x, 0, false)

	set(Policy{Mode: PolicyPin, Version: 1})
	want("pin 1", x, 1, true)
	want("pin 1, other tenant", o, 0, false)
	if st := c.Policy("acme", "main"); st.Mode != PolicyPin || st.Target != 1 || st.Note != "" {
		t.Errorf("pin status %+v", st)
	}

	// Delay 6h: 2 is an hour old, so 1; x already had 2 and keeps it.
	e.active(t, x, "main", 2)
	set(Policy{Mode: PolicyDelay, Delay: 6 * time.Hour})
	want("delay, fresh agent", y, 1, true)
	want("delay, agent that had 2", x, 2, true)
	st := c.Policy("acme", "main")
	if st.Target != 1 || st.Next != 2 || !st.NextAt.Equal(t0.Add(7*time.Hour)) || st.Delay != "6h" {
		t.Errorf("delay status %+v", st)
	}
	// Six hours after 2 was published the agents are nudged and take it.
	e.now = t0.Add(7*time.Hour - time.Second)
	c.Tick(e.ctx)
	nudges := e.repo.nudges
	e.now = t0.Add(7 * time.Hour)
	c.Tick(e.ctx)
	if e.repo.nudges != nudges+1 {
		t.Error("agents not nudged when the delay ran out")
	}
	want("delay ran out", y, 2, true)

	// 3 (new, rings) at t0+8h: acme's delay holds it back even from a
	// canary; a rollback to 1 at t0+9h carries content 33 hours old, so
	// it is taken at once, by an agent that had 2 as well.
	e.now = t0.Add(8 * time.Hour)
	e.publish(t, c, "main", true, 0) // 3
	want("delay, 3 too young", y, 2, true)
	e.now = t0.Add(9 * time.Hour)
	e.publish(t, c, "main", true, 1) // 4: rolls 2 and 3 back
	want("delay, rollback", x, 4, true)
	want("delay, rollback", y, 4, true)
	want("rollback, other tenant", o, 0, false)

	// A pin to a version later rolled back holds, and says so.
	set(Policy{Mode: PolicyPin, Version: 1})
	e.now = t0.Add(10 * time.Hour)
	e.publish(t, c, "main", true, 0) // 5
	set(Policy{Mode: PolicyPin, Version: 5})
	e.publish(t, c, "main", true, 4) // 6: rolls 5 back
	want("pin to a rolled-back version", x, 5, true)
	if st := c.Policy("acme", "main"); st.RolledBackBy != 6 || !strings.Contains(st.Note, "pin --latest") {
		t.Errorf("pin status after rollback %+v", st)
	}
	if ps := c.Policies("main"); len(ps) != 1 || ps[0].Tenant != "acme" {
		t.Errorf("policies %+v", ps)
	}

	// Policies survive a restart.
	if err := e.fl.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	e.open(t)
	c = e.controller(t, Options{})
	want("pin after a restart", x, 5, true)
	set(Policy{Mode: PolicyLatest})
	want("latest again", x, 0, false)
	if ps := c.Policies("main"); len(ps) != 0 {
		t.Errorf("policies after latest %+v", ps)
	}
}

// TestPolicyWithRings: a policy never takes a release past the rings, a
// delay gives way when the release an agent holds is halted, and a pin
// keeps a halted release only where it already went.
func TestPolicyWithRings(t *testing.T) {
	e := newEnv(t, 20, 0)
	c := e.controller(t, Options{})
	e.publish(t, c, "main", true, 0) // 1
	e.now = e.now.Add(time.Minute)
	e.publish(t, c, "main", false, 0) // 2: rings
	var canary string
	var others []string
	for _, id := range e.ids {
		if c.Desired(id)["main"] == 2 {
			canary = id
		} else {
			others = append(others, id)
		}
	}
	if canary == "" {
		t.Fatal("no canary")
	}
	// A pin to 2 while it rolls: the canary has it, the others keep 1.
	if _, err := c.SetPolicy(e.ctx, "acme", "main", Policy{Mode: PolicyPin, Version: 2}); err != nil {
		t.Fatal(err)
	}
	if d := c.Desired(canary)["main"]; d != 2 {
		t.Errorf("pinned canary: %d", d)
	}
	if d := c.Desired(others[0])["main"]; d != 1 {
		t.Errorf("pin took 2 past the rings: %d", d)
	}
	e.active(t, canary, "main", 2)

	// Halted (the canary crash-loops): the pin keeps 2 on the canary only.
	e.now = e.now.Add(time.Second)
	_ = e.fl.Heartbeat(canary, fleet.Info{}, fleet.Health{EngineRestarts: 5})
	c.Tick(e.ctx)
	if r, _ := c.Get("main", 2); r.State != StateHalted || r.RolledBackTo != 3 || !strings.Contains(r.Reason, "engine_restarts") {
		t.Fatalf("halt %+v", r)
	}
	if d := c.Desired(canary)["main"]; d != 2 {
		t.Errorf("pin on the canary after the halt: %d", d)
	}
	if d := c.Desired(others[0])["main"]; d != 1 {
		t.Errorf("pin spread a halted release: %d", d)
	}
	if st := c.Policy("acme", "main"); st.RolledBackBy != 3 {
		t.Errorf("status %+v", st)
	}

	// A delay never keeps it: the canary (which holds 2) moves to the
	// rollback at once though its content (1) is younger than the delay;
	// the others keep what they have.
	if _, err := c.SetPolicy(e.ctx, "acme", "main", Policy{Mode: PolicyDelay, Delay: 6 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if d := c.Desired(canary)["main"]; d != 3 {
		t.Errorf("delay kept the halted release: %d", d)
	}
	e.active(t, others[0], "main", 1)
	if d := c.Desired(others[0])["main"]; d != 1 {
		t.Errorf("delay moved an agent: %d", d)
	}
}
