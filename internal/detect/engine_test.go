package detect

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
	"github.com/mamori-soc/mamori/internal/intel"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/store"
)

const ruleYAML = `title: Test Mimikatz Command Line
id: 11111111-2222-3333-4444-555555555555
status: test
level: high
tags: [attack.credential-access, attack.t1003.001]
logsource: {category: process_creation, product: windows}
detection:
  selection:
    CommandLine|contains: 'sekurlsa::logonpasswords'
  condition: selection
`

// sysmon1 builds a parsed Sysmon process-creation event.
func sysmon1(t testing.TB, tenant, host, cmdline string) *event.Event {
	t.Helper()
	js := fmt.Sprintf(`{"@timestamp":"2026-11-25T10:00:00Z","winlog.channel":"Microsoft-Windows-Sysmon/Operational","winlog.event_id":1,`+
		`"winlog.computer_name":%q,"host.name":%q,"winlog.event_data.Image":"C:\\Tools\\m.exe","winlog.event_data.CommandLine":%q}`, host, host, cmdline)
	e := &event.Event{Tenant: tenant, Ingested: time.Now()}
	parse.New().Parse([]byte(js), e)
	return e
}

type fixture struct {
	bus    *bus.Bus
	db     *state.DB
	alerts *alert.Store
	ids    *event.IDGen
	rules  string
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: filepath.Join(dir, "bus"), MaxBytes: 1 << 30, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	db, err := state.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	as, err := alert.Open(context.Background(), db.SQL(), alert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "mimi.yml"), []byte(ruleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fixture{bus: b, db: db, alerts: as, ids: event.NewIDGen(), rules: rules}
}

func (f *fixture) publish(t *testing.T, evs ...*event.Event) {
	t.Helper()
	for _, e := range evs {
		e.ID = f.ids.Next()
	}
	if err := f.bus.Publish(context.Background(), event.AppendBatch(nil, evs), evs[0].ID); err != nil {
		t.Fatal(err)
	}
}

// run starts an engine until stop is called.
func (f *fixture) run(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.Run(ctx); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

func (f *fixture) count(t *testing.T, tenant, rule string) int64 {
	t.Helper()
	as, err := f.alerts.List(context.Background(), alert.Filter{Tenants: []string{tenant}, RuleID: rule})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, a := range as {
		n += a.Count
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEngineSigmaAndResume: Sigma matches become deduplicated alerts; an
// engine started again on the same durable consumer evaluates only what
// it had not acknowledged — nothing twice, nothing skipped.
func TestEngineSigmaAndResume(t *testing.T) {
	f := newFixture(t)
	const rule = "11111111-2222-3333-4444-555555555555"
	newEngine := func() *Engine {
		e := New(f.bus, f.alerts, Options{RuleSources: []string{f.rules}})
		if _, err := e.Load(); err != nil {
			t.Fatal(err)
		}
		if err := e.Ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1 := newEngine()
	if st := e1.Rules().Sigma.Stats(); st.Loaded != 1 {
		t.Fatalf("loaded %d rules", st.Loaded)
	}
	f.publish(t,
		sysmon1(t, "acme", "ws-1", `m.exe "sekurlsa::logonpasswords" exit`),
		sysmon1(t, "acme", "ws-1", `m.exe "SEKURLSA::LogonPasswords"`),
		sysmon1(t, "acme", "ws-2", `m.exe sekurlsa::logonpasswords`),
		sysmon1(t, "acme", "ws-3", `notepad.exe readme.txt`),
		sysmon1(t, "globex", "ws-1", `m.exe sekurlsa::logonpasswords`))
	stop := f.run(t, e1)
	waitFor(t, "first alerts", func() bool { return f.count(t, "acme", rule) == 3 && f.count(t, "globex", rule) == 1 })
	stop()
	as, _ := f.alerts.List(context.Background(), alert.Filter{Tenants: []string{"acme"}, RuleID: rule})
	if len(as) != 2 {
		t.Fatalf("acme: %d alerts, want 2 (one per host)", len(as))
	}
	for _, a := range as {
		if a.Severity != "high" || a.Kind != alert.KindSigma || len(a.Tags) != 2 || a.Rule.Title != "Test Mimikatz Command Line" {
			t.Fatalf("alert: %+v", a)
		}
		if a.Entities[alert.EntityHost][0] == "ws-1" && (a.Count != 2 || len(a.EventIDs) != 2) {
			t.Fatalf("ws-1 alert: count %d, %d event ids", a.Count, len(a.EventIDs))
		}
	}
	// While no engine runs, more events arrive; a new engine picks up there.
	f.publish(t, sysmon1(t, "acme", "ws-1", `m.exe sekurlsa::logonpasswords`))
	stop = f.run(t, newEngine())
	defer stop()
	waitFor(t, "the event published while stopped", func() bool { return f.count(t, "acme", rule) == 4 })
	time.Sleep(300 * time.Millisecond)
	if n := f.count(t, "acme", rule); n != 4 {
		t.Fatalf("acme count %d after restart, want 4 (no batch evaluated twice)", n)
	}
}

// TestEngineIndicatorsAndPolicy: IOC hits become indicator alerts with the
// indicator's sources; a policy can switch a rule off for one tenant.
func TestEngineIndicatorsAndPolicy(t *testing.T) {
	f := newFixture(t)
	ist, err := intel.Open(context.Background(), f.db.SQL(), intel.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ind, err := intel.ParseManual("ip", "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	ind.Sources = []intel.SourceRef{{Source: "NTT-CERT", Confidence: 85}}
	if _, err := ist.Add(context.Background(), []intel.Indicator{ind}); err != nil {
		t.Fatal(err)
	}
	const rule = "11111111-2222-3333-4444-555555555555"
	e := New(f.bus, f.alerts, Options{RuleSources: []string{f.rules}, Policy: func(tenant, id string, builtin bool) bool {
		return !(tenant == "globex" && id == rule)
	}})
	if _, err := e.Load(); err != nil {
		t.Fatal(err)
	}
	e.SetIntel(ist, RetroOptions{})
	for _, tenant := range []string{"acme", "globex"} {
		ev := &event.Event{ID: "x", Tenant: tenant, Timestamp: time.Now(), Ingested: time.Now()}
		ev.Set(event.FieldDestIP, "203.0.113.9")
		ev.Set(event.FieldHostName, "fw-1")
		e.Evaluate(ev)
		e.Evaluate(sysmon1(t, tenant, "ws-1", "m.exe sekurlsa::logonpasswords"))
	}
	if err := f.alerts.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tenant, rule string
		want         int64
	}{{"acme", "ipv4:203.0.113.9", 1}, {"globex", "ipv4:203.0.113.9", 1}, {"acme", rule, 1}, {"globex", rule, 0}} {
		if n := f.count(t, tc.tenant, tc.rule); n != tc.want {
			t.Errorf("%s %s: count %d, want %d", tc.tenant, tc.rule, n, tc.want)
		}
	}
	as, _ := f.alerts.List(context.Background(), alert.Filter{Tenants: []string{"acme"}, Kind: alert.KindIndicator})
	if len(as) != 1 || as[0].Severity != "high" || as[0].Details["sources"] != "NTT-CERT" || as[0].Details["field"] != event.FieldDestIP {
		t.Fatalf("indicator alert: %+v", as)
	}
}

// TestRetroHunt: indicators added after the events were stored find them —
// a few by targeted queries, a bulk import by one scan of the window — and
// the alerts are marked retro.
func TestRetroHunt(t *testing.T) {
	f := newFixture(t)
	events, err := store.OpenEmbedded(t.TempDir(), func(string) (uint32, error) { return 7, nil },
		store.EmbeddedOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	now := time.Now()
	mk := func(id, field, value string) *event.Event {
		e := &event.Event{ID: id, Tenant: "acme", Timestamp: now.Add(-time.Hour), Ingested: now, Original: "x"}
		e.Set(field, value)
		e.Set(event.FieldHostName, "h-"+id)
		return e
	}
	if err := events.Write(context.Background(), []*event.Event{
		mk("e1", event.FieldDestIP, "203.0.113.9"),
		mk("e2", "dns.question.name", "cdn.evil.example"),
		mk("e3", event.FieldDestIP, "198.51.100.77"),
		mk("e4", event.FieldDestIP, "192.0.2.1"),
	}); err != nil {
		t.Fatal(err)
	}
	ist, err := intel.Open(context.Background(), f.db.SQL(), intel.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	e := New(f.bus, f.alerts, Options{})
	e.SetIntel(ist, RetroOptions{Events: events, Tenants: func() []string { return []string{"acme"} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.RunRetro(ctx)
	add := func(inds ...intel.Indicator) {
		t.Helper()
		for i := range inds {
			inds[i].Sources = []intel.SourceRef{{Source: "test", Confidence: 70}}
		}
		if _, err := ist.Add(context.Background(), inds); err != nil {
			t.Fatal(err)
		}
	}
	ind := func(typ, v string) intel.Indicator {
		x, err := intel.ParseManual(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	retro := func(rule string) []*alert.Alert {
		as, err := f.alerts.List(context.Background(), alert.Filter{Tenants: []string{"acme"}, RuleID: rule})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	// Targeted: two indicators.
	add(ind("ip", "203.0.113.9"), ind("domain", "evil.example"))
	waitFor(t, "targeted retro-hunt", func() bool { return len(retro("ipv4:203.0.113.9")) == 1 && len(retro("domain:evil.example")) == 1 })
	// Bulk: more than ScanThreshold indicators, one of which was seen.
	var bulk []intel.Indicator
	for i := 0; i < ScanThreshold+200; i++ {
		bulk = append(bulk, ind("ip", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)))
	}
	bulk = append(bulk, ind("ip", "198.51.100.77"))
	add(bulk...)
	waitFor(t, "bulk retro-hunt", func() bool { return len(retro("ipv4:198.51.100.77")) == 1 })
	for _, rule := range []string{"ipv4:203.0.113.9", "domain:evil.example", "ipv4:198.51.100.77"} {
		a := retro(rule)[0]
		if !a.Retro || a.Count != 1 || len(a.EventIDs) != 1 {
			t.Errorf("%s: %+v", rule, a)
		}
	}
	if as, _ := f.alerts.List(context.Background(), alert.Filter{Tenants: []string{"acme"}}); len(as) != 3 {
		t.Errorf("%d alerts, want 3 (no alert for indicators never seen)", len(as))
	}
}
