package fleet

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/state"
)

func openFleet(t *testing.T, path string, now func() time.Time) (*Fleet, *state.DB) {
	t.Helper()
	db, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(context.Background(), db.SQL(), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return f, db
}

func TestProtectionAndPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	pub := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := pub
	f, db := openFleet(t, path, func() time.Time { return clock })
	var acme []Agent
	for range 4 {
		a, secret, err := f.Enroll(ctx, "acme", Info{Hostname: "pc", OS: "linux"})
		if err != nil {
			t.Fatal(err)
		}
		if id, ten, ok := f.Authenticate(secret); !ok || id != a.ID || ten != "acme" {
			t.Fatalf("authenticate: %v %v %v", id, ten, ok)
		}
		if a.Ring < 0 || a.Ring > 99 || a.Ring != ringOf(a.ID) {
			t.Fatalf("ring %d", a.Ring)
		}
		acme = append(acme, a)
	}
	other, otherSecret, _ := f.Enroll(ctx, "other", Info{Hostname: "srv"})
	if _, _, ok := f.Authenticate(otherSecret + "x"); ok {
		t.Fatal("a wrong credential authenticated")
	}
	// Three of acme's four agents protect themselves 0.2, 0.5 and 1.5 s
	// after publication; the other tenant's agent after 0.1 s.
	for i, d := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond} {
		if err := f.Report(acme[i].ID, Install{Channel: "bandage", Version: 7, Status: StatusActive, At: pub.Add(d)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.Report(other.ID, Install{Channel: "bandage", Version: 7, Status: StatusActive, At: pub.Add(100 * time.Millisecond)})
	// A duplicate report does not count twice.
	_ = f.Report(acme[0].ID, Install{Channel: "bandage", Version: 7, Status: StatusActive, At: pub.Add(time.Second)})

	check := func(f *Fleet) {
		t.Helper()
		p := f.Protection("acme", "bandage", 7, pub)
		if p.Agents != 4 || p.Active != 3 {
			t.Fatalf("protection %+v", p)
		}
		if p.P50 == nil || *p.P50 != 0.5 {
			t.Errorf("p50 %v", p.P50)
		}
		if p.P99 != nil || p.All != nil {
			t.Errorf("p99/all reached with 3 of 4 agents: %v %v", p.P99, p.All)
		}
		all := f.Protection("", "bandage", 7, pub)
		if all.Agents != 5 || all.Active != 4 || all.P50 == nil || *all.P50 != 0.5 {
			t.Errorf("all tenants %+v", all)
		}
		if got, ok := f.Get(acme[1].ID); !ok || got.Active["bandage"].Version != 7 {
			t.Errorf("agent %+v", got)
		}
	}
	check(f)
	_ = f.Report(acme[3].ID, Install{Channel: "bandage", Version: 7, Status: StatusActive, At: pub.Add(2 * time.Second)})
	if p := f.Protection("acme", "bandage", 7, pub); p.All == nil || *p.All != 2 || *p.P99 != 2 {
		t.Errorf("all agents: %+v", p)
	}
	if err := f.Heartbeat(acme[2].ID, Info{Hostname: "pc2", Version: "1.1"}, Health{Scans: 10, ScanErrors: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	f2, db2 := openFleet(t, path, func() time.Time { return clock })
	defer db2.Close()
	if p := f2.Protection("acme", "bandage", 7, pub); p.Active != 4 || *p.All != 2 {
		t.Errorf("after reopen: %+v", p)
	}
	if a, _ := f2.Get(acme[2].ID); a.Info.Hostname != "pc2" || a.Health.ScanErrors != 1 || a.Active["bandage"].Version != 7 {
		t.Errorf("after reopen: %+v", a)
	}
	if len(f2.List("acme")) != 4 || len(f2.List("")) != 5 {
		t.Error("list after reopen")
	}
	if id, _, ok := f2.Authenticate(otherSecret); !ok || id != other.ID {
		t.Error("credential lost across reopen")
	}
	if err := f2.Remove(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := f2.Authenticate(otherSecret); ok {
		t.Error("a removed agent still authenticates")
	}
}

func TestReportErrors(t *testing.T) {
	f, db := openFleet(t, filepath.Join(t.TempDir(), "s.db"), nil)
	defer db.Close()
	a, _, _ := f.Enroll(context.Background(), "acme", Info{})
	for _, tc := range []struct {
		id   string
		in   Install
		want error
	}{
		{a.ID, Install{Channel: "main", Version: 1, Status: "weird"}, ErrInvalid},
		{a.ID, Install{Channel: "", Version: 1, Status: StatusActive}, ErrInvalid},
		{a.ID, Install{Channel: "main", Version: 0, Status: StatusActive}, ErrInvalid},
		{"agt_nobody", Install{Channel: "main", Version: 1, Status: StatusActive}, ErrNotFound},
	} {
		if err := f.Report(tc.id, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.in, err, tc.want)
		}
	}
	// A rolled-back release is no longer the agent's active one.
	_ = f.Report(a.ID, Install{Channel: "main", Version: 3, Status: StatusActive})
	_ = f.Report(a.ID, Install{Channel: "main", Version: 3, Status: StatusRolledBack})
	if got, _ := f.Get(a.ID); len(got.Active) != 0 {
		t.Errorf("active after rollback: %+v", got.Active)
	}
}

// TestActivationBaselines: the health an agent reported before activating
// a release is kept as its baseline (a repeated report keeps the first),
// survives a reopen, and only agents with the release active are listed.
func TestActivationBaselines(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	f, db := openFleet(t, path, now)
	a, _, _ := f.Enroll(ctx, "acme", Info{})
	b, _, _ := f.Enroll(ctx, "acme", Info{})
	before := Health{Scans: 10, ScanCPUMillis: 2}
	_ = f.Heartbeat(a.ID, Info{}, before)
	clock = clock.Add(time.Second)
	_ = f.Report(a.ID, Install{Channel: "main", Version: 2, Status: StatusActive})
	at := clock
	clock = clock.Add(time.Second)
	after := Health{Scans: 30, ScanCPUMillis: 3, CleanHits: 1}
	_ = f.Heartbeat(a.ID, Info{}, after)
	_ = f.Report(a.ID, Install{Channel: "main", Version: 2, Status: StatusActive}) // repeated: keeps the baseline
	_ = f.Report(b.ID, Install{Channel: "main", Version: 2, Status: StatusFailed})
	check := func(f *Fleet, afterAt time.Time) {
		t.Helper()
		acts := f.Activations("main", 2)
		if len(acts) != 1 {
			t.Fatalf("activations %+v", acts)
		}
		x := acts[0]
		if x.Agent != a.ID || x.Tenant != "acme" || x.Before != before || x.After != after || !x.At.Equal(at) || !x.AfterAt.Equal(afterAt) {
			t.Errorf("activation %+v", x)
		}
		if got := f.Reached("main", 2); len(got) != 2 {
			t.Errorf("reached %v", got)
		}
		if len(f.Activations("main", 1)) != 0 || len(f.Activations("bandage", 2)) != 0 {
			t.Error("activations of another release")
		}
	}
	check(f, clock)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f2, db2 := openFleet(t, path, now)
	defer db2.Close()
	check(f2, time.Time{}) // nothing heard since the restart
	// A new release made active takes a new baseline.
	clock = clock.Add(time.Second)
	_ = f2.Report(a.ID, Install{Channel: "main", Version: 3, Status: StatusActive})
	if acts := f2.Activations("main", 3); len(acts) != 1 || acts[0].Before != after || !acts[0].At.Equal(clock) {
		t.Errorf("new baseline %+v", acts)
	}
	if err := f2.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if acts := f2.Activations("main", 3); len(acts) != 0 {
		t.Errorf("removed agent listed %+v", acts)
	}
}
