package rollout

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/update"
)

// fakeRepo numbers releases and counts nudges; Desired calls made from
// its Publish (as agents do when the push arrives) must see the gate.
type fakeRepo struct {
	rels   map[string][]update.Release
	now    func() time.Time
	nudges int
	during func()
}

func newFakeRepo(now func() time.Time) *fakeRepo {
	return &fakeRepo{rels: map[string][]update.Release{}, now: now}
}

func (f *fakeRepo) Publish(_ context.Context, ch string, _ update.Records, o update.PublishOptions) (update.Release, error) {
	rel := update.Release{Channel: ch, Version: uint64(len(f.rels[ch]) + 1), RollbackOf: o.RollbackTo, PublishedAt: f.now()}
	f.rels[ch] = append(f.rels[ch], rel)
	if f.during != nil {
		f.during()
	}
	return rel, nil
}

func (f *fakeRepo) RefreshTimestamp(context.Context) error { f.nudges++; return nil }

func (f *fakeRepo) Releases(ch string) []update.Release { return slices.Clone(f.rels[ch]) }

func (f *fakeRepo) latest(ch string) uint64 { return uint64(len(f.rels[ch])) }

// env is a state database with a fleet of agents of tenants acme (n) and
// other (m).
type env struct {
	ctx  context.Context
	path string
	db   *state.DB
	fl   *fleet.Fleet
	ids  []string // acme's, then other's
	now  time.Time
	repo *fakeRepo
}

func newEnv(t *testing.T, acme, other int) *env {
	t.Helper()
	e := &env{ctx: context.Background(), path: filepath.Join(t.TempDir(), "s.db"), now: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
	e.repo = newFakeRepo(func() time.Time { return e.now })
	e.open(t)
	for i := range acme + other {
		tenant := "acme"
		if i >= acme {
			tenant = "other"
		}
		a, _, err := e.fl.Enroll(e.ctx, tenant, fleet.Info{})
		if err != nil {
			t.Fatal(err)
		}
		e.ids = append(e.ids, a.ID)
	}
	return e
}

// open (re)opens the database and the fleet, as a restarted server does.
func (e *env) open(t *testing.T) {
	t.Helper()
	db, err := state.Open(e.ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fl, err := fleet.Open(e.ctx, db.SQL(), fleet.Options{Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.db, e.fl = db, fl
}

func (e *env) controller(t *testing.T, o Options) *Controller {
	t.Helper()
	o.Now = func() time.Time { return e.now }
	if o.Stages == nil {
		o.Stages, o.Soak = []int{5, 50, 100}, time.Minute
	}
	c, err := Open(e.ctx, e.db.SQL(), e.fl, e.repo, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRingsAdvanceHaltAndFastLane(t *testing.T) {
	e := newEnv(t, 20, 0)
	ctx, fl, ids, repo := e.ctx, e.fl, e.ids, e.repo
	c := e.controller(t, Options{})
	allowed := func(ch string, v uint64) (n int) {
		for _, id := range ids {
			if want, gated := c.Desired(id)[ch]; !gated || want == v {
				n++
			}
		}
		return n
	}
	report := func(ch string, v uint64, status string, n int) {
		k := 0
		for _, id := range ids {
			if want, gated := c.Desired(id)[ch]; (!gated || want == v) && k < n {
				_ = fl.Report(id, fleet.Install{Channel: ch, Version: v, Status: status, At: e.now})
				k++
			}
		}
	}

	// Agents that ask while the release is being published (its timestamp
	// is already pushed) wait for its rollout: they see the gate.
	asked := make(chan int, 1)
	repo.during = func() { go func() { asked <- allowed("main", 1) }() }
	_, ro, err := c.Publish(ctx, "main", nil, update.PublishOptions{}, false)
	repo.during = nil
	if got := <-asked; got != 1 {
		t.Errorf("an agent asking during the publish: %d allowed, want the canary only", got)
	}
	if err != nil || ro.Percent != 5 || ro.State != StateRolling {
		t.Fatalf("start: %+v %v", ro, err)
	}
	if got := allowed("main", 1); got != 1 { // ceil(5 % of 20)
		t.Fatalf("canary ring holds %d agents, want 1", got)
	}
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.Percent != 5 {
		t.Fatal("advanced before the soak")
	}
	e.now = e.now.Add(2 * time.Minute)
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.Percent != 5 {
		t.Fatal("advanced while the canary had not reported")
	}
	report("main", 1, fleet.StatusActive, 1)
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.Percent != 50 || allowed("main", 1) != 10 || repo.nudges != 1 {
		t.Fatalf("stage 2: %+v allowed %d nudges %d", r, allowed("main", 1), repo.nudges)
	}
	report("main", 1, fleet.StatusActive, 10)
	e.now = e.now.Add(2 * time.Minute)
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.State != StateRolling || r.Percent != 100 || allowed("main", 1) != 20 {
		t.Fatalf("last stage: %+v", r)
	}
	// A last soak at 100 %: the gates watch the whole fleet once more.
	report("main", 1, fleet.StatusActive, 20)
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.State != StateRolling {
		t.Fatalf("done before the last soak: %+v", r)
	}
	e.now = e.now.Add(2 * time.Minute)
	c.Tick(ctx)
	if r, _ := c.Get("main", 1); r.State != StateDone || allowed("main", 1) != 20 {
		t.Fatalf("done: %+v", r)
	}

	// Version 2 is refused by its canary: halt, roll back to 1's content
	// as version 3, which goes to everyone at once.
	_, _, _ = c.Publish(ctx, "main", nil, update.PublishOptions{}, false)
	if d := c.Desired(ids[0])["main"]; d != 1 && d != 2 {
		t.Fatalf("desired %d", d)
	}
	report("main", 2, fleet.StatusFailed, 1)
	c.Tick(ctx)
	r2, _ := c.Get("main", 2)
	r3, _ := c.Get("main", 3)
	if r2.State != StateHalted || r2.RolledBackTo != 3 || r3.State != StateDone || !r3.FastLane || repo.latest("main") != 3 {
		t.Fatalf("halt: %+v / %+v", r2, r3)
	}
	if allowed("main", 3) != 20 {
		t.Error("rollback not to everyone")
	}

	// Exact-hash bandage: fast lane.
	_, rb, _ := c.Publish(ctx, "bandage", nil, update.PublishOptions{}, true)
	if rb.State != StateDone || allowed("bandage", 1) != 20 {
		t.Errorf("fast lane: %+v", rb)
	}
}

// TestRingsPerTenant: with PerTenant each tenant has its own canary, and
// a stage's percentage counts within each tenant.
func TestRingsPerTenant(t *testing.T) {
	for _, tc := range []struct {
		perTenant         bool
		acme, other, both int // agents allowed at the first stage (5 %)
	}{
		{perTenant: false, both: 2},          // ceil(5 % of 30) over the fleet: whoever ranks first
		{perTenant: true, acme: 1, other: 1}, // ceil(5 % of 20) and ceil(5 % of 10)
	} {
		e := newEnv(t, 20, 10)
		c := e.controller(t, Options{PerTenant: tc.perTenant})
		if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for i, id := range e.ids {
			if want, gated := c.Desired(id)["main"]; !gated || want == 1 {
				tenant := "acme"
				if i >= 20 {
					tenant = "other"
				}
				counts[tenant]++
			}
		}
		if tc.perTenant {
			if counts["acme"] != tc.acme || counts["other"] != tc.other {
				t.Errorf("per tenant: %v", counts)
			}
		} else if counts["acme"]+counts["other"] != tc.both {
			t.Errorf("global: %v", counts)
		}
	}
}

// TestGated: agents may skip asking only while no rollout is under way and
// no tenant has a policy.
func TestGated(t *testing.T) {
	e := newEnv(t, 20, 0)
	c := e.controller(t, Options{})
	if c.Gated() {
		t.Fatal("gated with nothing published")
	}
	if _, _, err := c.Publish(e.ctx, "bandage", nil, update.PublishOptions{}, true); err != nil {
		t.Fatal(err)
	}
	if c.Gated() {
		t.Error("a fast-lane release gates")
	}
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	if !c.Gated() {
		t.Error("a rolling release does not gate")
	}
}

// TestRefusalInTheLastSoak: a release that reached every agent is still
// watched for one soak; a refusal then halts it and rolls everyone back.
func TestRefusalInTheLastSoak(t *testing.T) {
	e := newEnv(t, 4, 0)
	c := e.controller(t, Options{Stages: []int{100}, Soak: time.Minute})
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range e.ids {
		_ = e.fl.Report(id, fleet.Install{Channel: "main", Version: 1, Status: fleet.StatusActive, At: e.now})
	}
	e.now = e.now.Add(2 * time.Minute)
	c.Tick(e.ctx)
	if r, _ := c.Get("main", 1); r.State != StateDone {
		t.Fatalf("v1: %+v", r)
	}
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range e.ids[1:] {
		_ = e.fl.Report(id, fleet.Install{Channel: "main", Version: 2, Status: fleet.StatusActive, At: e.now})
	}
	e.now = e.now.Add(30 * time.Second)
	_ = e.fl.Report(e.ids[0], fleet.Install{Channel: "main", Version: 2, Status: fleet.StatusFailed, At: e.now})
	c.Tick(e.ctx)
	r2, _ := c.Get("main", 2)
	if r2.State != StateHalted || r2.RolledBackTo != 3 || e.repo.latest("main") != 3 {
		t.Fatalf("a refusal at 100 %% did not halt and roll back: %+v", r2)
	}
}

// TestSupersededInTheLastSoak: a release replaced while it soaks at 100 %
// had reached everyone: it is the base a halted successor rolls back to.
func TestSupersededInTheLastSoak(t *testing.T) {
	e := newEnv(t, 4, 0)
	c := e.controller(t, Options{Stages: []int{100}, Soak: time.Minute})
	if _, _, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	_, r2, err := c.Publish(e.ctx, "main", nil, update.PublishOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if r1, _ := c.Get("main", 1); r1.State != StateDone || r2.Base != 1 {
		t.Fatalf("v1 %+v, v2 base %d", r1, r2.Base)
	}
}
