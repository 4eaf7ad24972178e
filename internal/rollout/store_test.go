package rollout

import (
	"context"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

// TestResumeAfterRestart: controller A publishes, advances a stage and
// halts another channel's rollout, and is dropped with its database;
// controller B, opened on the same file, reports the same stages and
// Desired answers the same, the soak clock keeps running from where it
// was, and the halted rollout stays halted.
func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t, 20, 0)
	a := e.controller(t, Options{})
	if _, _, err := a.Publish(e.ctx, "main", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(e.ctx, "cleanup", nil, update.PublishOptions{}, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range e.ids {
		if a.Desired(id)["main"] == 1 {
			_ = e.fl.Report(id, fleet.Install{Channel: "main", Version: 1, Status: fleet.StatusActive})
		}
		if a.Desired(id)["cleanup"] == 1 {
			_ = e.fl.Report(id, fleet.Install{Channel: "cleanup", Version: 1, Status: fleet.StatusFailed})
		}
	}
	e.now = e.now.Add(2 * time.Minute)
	a.Tick(e.ctx)
	main, _ := a.Get("main", 1)
	cleanup, _ := a.Get("cleanup", 1)
	if main.Percent != 50 || main.State != StateRolling || cleanup.State != StateHalted {
		t.Fatalf("before the restart: %+v %+v", main, cleanup)
	}
	e.now = e.now.Add(30 * time.Second) // half a soak into the 50 % stage
	want := map[string]map[string]uint64{}
	for _, id := range e.ids {
		want[id] = a.Desired(id)
	}
	if err := e.fl.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}

	e.open(t)
	b := e.controller(t, Options{})
	for _, w := range []Rollout{main, cleanup} {
		got, ok := b.Get(w.Channel, w.Version)
		w.admitted, got.admitted = nil, nil
		if !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("after the restart %+v, want %+v", got, w)
		}
	}
	for _, id := range e.ids {
		if got := b.Desired(id); !maps.Equal(got, want[id]) {
			t.Errorf("desired %s after the restart: %v, want %v", id, got, want[id])
		}
	}
	b.Tick(e.ctx) // 30 s into a 1 min soak: hold
	if r, _ := b.Get("main", 1); r.Percent != 50 {
		t.Fatalf("soak clock restarted or skipped: %+v", r)
	}
	for _, id := range e.ids {
		if b.Desired(id)["main"] == 1 {
			_ = e.fl.Report(id, fleet.Install{Channel: "main", Version: 1, Status: fleet.StatusActive})
		}
	}
	e.now = e.now.Add(30 * time.Second)
	b.Tick(e.ctx)
	if r, _ := b.Get("main", 1); r.Percent != 100 || r.State != StateRolling {
		t.Fatalf("did not advance one soak after the stage began: %+v", r)
	}
	for _, id := range e.ids {
		_ = e.fl.Report(id, fleet.Install{Channel: "main", Version: 1, Status: fleet.StatusActive})
	}
	e.now = e.now.Add(time.Minute)
	b.Tick(e.ctx)
	if r, _ := b.Get("main", 1); r.State != StateDone {
		t.Fatalf("not done after the last soak: %+v", r)
	}
	if r, _ := b.Get("cleanup", 1); r.State != StateHalted {
		t.Errorf("halted rollout resumed: %+v", r)
	}

	// Re-publishing content identical to a release that predates the kept
	// state does not start rings for it.
	e.repo.rels["bandage"] = []update.Release{{Channel: "bandage", Version: 1, PublishedAt: e.now}}
	same := &sameRepo{e.repo}
	c, err := Open(e.ctx, e.db.SQL(), e.fl, same, Options{Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ro, _ := c.Publish(e.ctx, "bandage", nil, update.PublishOptions{}, false); ro.State != StateDone {
		t.Errorf("old release gated anew: %+v", ro)
	}
	if _, gated := c.Desired(e.ids[0])["bandage"]; gated {
		t.Error("old release gated anew")
	}
}

// sameRepo returns the latest release for any publish, as the repository
// does for identical content.
type sameRepo struct{ *fakeRepo }

func (s *sameRepo) Publish(_ context.Context, ch string, _ update.Records, _ update.PublishOptions) (update.Release, error) {
	rels := s.rels[ch]
	return rels[len(rels)-1], nil
}
