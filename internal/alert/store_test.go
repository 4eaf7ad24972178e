package alert

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/state"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openStore(t *testing.T, path string, c *clock) (*Store, *state.DB) {
	t.Helper()
	db, err := state.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), db.SQL(), Options{Window: time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func finding(tenant, rule, host string, at time.Time, fields map[string]string) Finding {
	return Finding{
		Tenant: tenant, Kind: KindSigma, Rule: RuleRef{ID: rule, Title: "rule " + rule}, Severity: "high",
		Tags: []string{"attack.t1110"}, Entity: "host=" + host,
		Entities: map[string][]string{EntityHost: {host}}, EventIDs: []string{at.String()},
		FirstSeen: at, LastSeen: at,
		Field: func(n string) (string, bool) { v, ok := fields[n]; return v, ok },
	}
}

func TestDedupWindowAndCount(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), c)
	defer db.Close()
	t0 := c.t
	a1, isNew := s.Record(finding("acme", "r1", "ws1", t0, nil))
	if !isNew || a1.Count != 1 {
		t.Fatalf("first finding: new=%v count=%d", isNew, a1.Count)
	}
	for i := 1; i <= 4; i++ {
		a, isNew := s.Record(finding("acme", "r1", "ws1", t0.Add(time.Duration(i)*time.Minute), nil))
		if isNew || a.ID != a1.ID || a.Count != int64(i+1) {
			t.Fatalf("repeat %d: new=%v id=%s count=%d", i, isNew, a.ID, a.Count)
		}
	}
	// Another entity, another tenant, another rule: separate alerts.
	for _, f := range []Finding{finding("acme", "r1", "ws2", t0, nil), finding("globex", "r1", "ws1", t0, nil), finding("acme", "r2", "ws1", t0, nil)} {
		if a, isNew := s.Record(f); !isNew || a.ID == a1.ID {
			t.Fatalf("%s/%s/%s merged into the first alert", f.Tenant, f.Rule.ID, f.Entity)
		}
	}
	// Beyond the window: a new alert.
	if a, isNew := s.Record(finding("acme", "r1", "ws1", t0.Add(4*time.Minute+61*time.Minute), nil)); !isNew || a.ID == a1.ID {
		t.Fatalf("finding beyond the window merged (new=%v)", isNew)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, []string{"acme"}, a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 5 || got.LastSeen != t0.Add(4*time.Minute) || got.FirstSeen != t0 || len(got.EventIDs) != 5 {
		t.Fatalf("stored alert: count=%d first=%v last=%v ids=%d", got.Count, got.FirstSeen, got.LastSeen, len(got.EventIDs))
	}
	if _, err := s.Get(ctx, []string{"globex"}, a1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant's alert: %v", err)
	}
	all, err := s.List(ctx, Filter{Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("acme has %d alerts, want 4", len(all))
	}
	byRule, _ := s.List(ctx, Filter{Tenants: []string{"acme"}, RuleID: "r2"})
	if len(byRule) != 1 {
		t.Fatalf("rule filter: %d alerts", len(byRule))
	}
	if _, err := s.List(ctx, Filter{Severity: []string{"severe"}}); !errors.Is(err, ErrBadFilter) {
		t.Fatalf("bad severity: %v", err)
	}
	hi, _ := s.List(ctx, Filter{MinSeverity: "critical"})
	if len(hi) != 0 {
		t.Fatalf("min severity critical: %d alerts", len(hi))
	}
}

func TestDedupSurvivesRestartAndCloseStartsNew(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s, db := openStore(t, path, c)
	a, _ := s.Record(finding("acme", "r1", "ws1", c.t, nil))
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c.t = c.t.Add(5 * time.Minute)
	s, db = openStore(t, path, c)
	defer db.Close()
	b, isNew := s.Record(finding("acme", "r1", "ws1", c.t, nil))
	if isNew || b.ID != a.ID || b.Count != 2 {
		t.Fatalf("after restart: new=%v id=%s (want %s) count=%d", isNew, b.ID, a.ID, b.Count)
	}
	if _, err := s.SetStatus(ctx, []string{"acme"}, a.ID, StatusClosed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetStatus(ctx, []string{"acme"}, a.ID, "resolved"); !errors.Is(err, ErrBadStatus) {
		t.Fatalf("bad status: %v", err)
	}
	n, isNew := s.Record(finding("acme", "r1", "ws1", c.t.Add(time.Minute), nil))
	if !isNew || n.ID == a.ID {
		t.Fatal("a finding after the alert was closed merged into it")
	}
}

func TestExceptions(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), c)
	defer db.Close()
	for _, bad := range []Exception{{}, {Field: "user.name"}, {RuleID: "r", Field: "source.ip", Op: OpCIDR, Values: []string{"nonsense"}}, {RuleID: "r", Field: "x", Op: "like", Values: []string{"a"}}} {
		if _, err := s.AddException(ctx, bad); !errors.Is(err, ErrBadRule) {
			t.Fatalf("exception %+v: %v", bad, err)
		}
	}
	mustAdd := func(x Exception) Exception {
		x, err := s.AddException(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	scanner := mustAdd(Exception{Tenant: "acme", RuleID: "r1", Field: "source.ip", Op: OpCIDR, Values: []string{"10.9.0.0/16"}, Comment: "vuln scanner"})
	mustAdd(Exception{RuleID: "r2", Field: "user.name", Values: []string{"SVC_Backup"}})
	mustAdd(Exception{Tenant: "acme", RuleID: "r3", Expires: c.t.Add(time.Minute)})
	cases := []struct {
		name       string
		f          Finding
		suppressed bool
	}{
		{"cidr match", finding("acme", "r1", "a", c.t, map[string]string{"source.ip": "10.9.3.4"}), true},
		{"cidr other net", finding("acme", "r1", "b", c.t, map[string]string{"source.ip": "10.8.3.4"}), false},
		{"cidr other tenant", finding("globex", "r1", "c", c.t, map[string]string{"source.ip": "10.9.3.4"}), false},
		{"global, case-insensitive", finding("globex", "r2", "d", c.t, map[string]string{"user.name": "svc_backup"}), true},
		{"field absent", finding("globex", "r2", "e", c.t, nil), false},
		{"whole rule for a tenant", finding("acme", "r3", "f", c.t, nil), true},
	}
	for _, tc := range cases {
		a, _ := s.Record(tc.f)
		if got := a.Status == StatusSuppressed; got != tc.suppressed {
			t.Errorf("%s: suppressed=%v, want %v", tc.name, got, tc.suppressed)
		}
	}
	c.t = c.t.Add(2 * time.Minute)
	if a, _ := s.Record(finding("acme", "r3", "g", c.t, nil)); a.Status == StatusSuppressed {
		t.Error("expired exception still suppresses")
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	visible, _ := s.List(ctx, Filter{})
	suppressed, _ := s.List(ctx, Filter{Status: []string{StatusSuppressed}})
	if len(visible) != 4 || len(suppressed) != 3 {
		t.Fatalf("listed %d visible, %d suppressed; want 4 and 3", len(visible), len(suppressed))
	}
	if got := len(s.Exceptions([]string{"globex"})); got != 1 {
		t.Fatalf("globex sees %d exceptions, want the global one", got)
	}
	if err := s.DeleteException(ctx, []string{"globex"}, scanner.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting another tenant's exception: %v", err)
	}
	if err := s.DeleteException(ctx, []string{"acme"}, scanner.ID); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Record(finding("acme", "r1", "a2", c.t, map[string]string{"source.ip": "10.9.3.4"})); a.Status == StatusSuppressed {
		t.Error("deleted exception still suppresses")
	}
}

func TestSubscribe(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), c)
	defer db.Close()
	acme, stop := s.Subscribe([]string{"acme"})
	defer stop()
	all, stopAll := s.Subscribe(nil)
	defer stopAll()
	s.Record(finding("acme", "r1", "a", c.t, nil))
	s.Record(finding("globex", "r1", "a", c.t, nil))
	select {
	case <-acme:
		t.Fatal("delivered before commit")
	default:
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if a := <-acme; a.Tenant != "acme" {
		t.Fatalf("acme subscriber got %s", a.Tenant)
	}
	select {
	case a := <-acme:
		t.Fatalf("acme subscriber got a second alert of %s", a.Tenant)
	default:
	}
	if n := len(all); n != 2 {
		t.Fatalf("all-tenants subscriber has %d alerts, want 2", n)
	}
}

// TestReplayDoesNotCount: the same event evaluated twice (a redelivered bus
// batch) does not grow the alert's count.
func TestReplayDoesNotCount(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s, db := openStore(t, filepath.Join(t.TempDir(), "s.db"), c)
	defer db.Close()
	f := finding("acme", "r1", "ws1", c.t, nil)
	s.Record(f)
	if a, _ := s.Record(f); a.Count != 1 {
		t.Fatalf("replayed finding counted: count %d", a.Count)
	}
	g := finding("acme", "r1", "ws1", c.t.Add(time.Second), nil)
	if a, _ := s.Record(g); a.Count != 2 {
		t.Fatalf("new event not counted: count %d", a.Count)
	}
}
