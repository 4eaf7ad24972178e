package correlate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// step is one input: a match of base rule `rule` at t0+at with fields kv
// ("k=v k2=v2"), or a Tick at t0+at when rule is "tick". fires lists the
// firings expected from this step, in the form describe produces.
type step struct {
	rule   string
	at     time.Duration
	kv     string
	tenant string
	fires  []string
}

func match(s step, id string) Match {
	fields := map[string]string{}
	for _, p := range strings.Fields(s.kv) {
		k, v, _ := strings.Cut(p, "=")
		fields[k] = v
	}
	tenant := s.tenant
	if tenant == "" {
		tenant = "t1"
	}
	return Match{Tenant: tenant, RuleID: "id-" + s.rule, RuleName: s.rule, Time: t0.Add(s.at), EventID: id,
		Value: func(f string) (string, bool) { v, ok := fields[f]; return v, ok }}
}

// describe renders a firing compactly: "name k=v n=3 v=2 agg=5 @tenant".
func describe(f Firing) string {
	var b strings.Builder
	b.WriteString(f.Rule.Name)
	keys := make([]string, 0, len(f.Group))
	for k := range f.Group {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, f.Group[k])
	}
	fmt.Fprintf(&b, " n=%d", f.Count)
	if f.Values != 0 {
		fmt.Fprintf(&b, " v=%d", f.Values)
	}
	if f.Aggregate != 0 {
		fmt.Fprintf(&b, " agg=%g", f.Aggregate)
	}
	if f.Tenant != "t1" {
		fmt.Fprintf(&b, " @%s", f.Tenant)
	}
	return b.String()
}

func mustParse(t testing.TB, yml string) *Rule {
	t.Helper()
	r, err := Parse("test.yml", []byte(yml))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, yml)
	}
	return r
}

func mustEngine(t testing.TB, opts Options, ymls ...string) *Engine {
	t.Helper()
	var rules []*Rule
	for _, y := range ymls {
		rules = append(rules, mustParse(t, y))
	}
	e, errs := New(rules, opts)
	if len(errs) > 0 {
		t.Fatalf("New: %v", errs)
	}
	return e
}

// run feeds the steps and checks each step's firings.
func run(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		var got []Firing
		if s.rule == "tick" {
			got = e.Tick(t0.Add(s.at))
		} else {
			got = e.Observe(match(s, fmt.Sprintf("e%d", i)))
		}
		var desc []string
		for _, f := range got {
			desc = append(desc, describe(f))
			if f.First.After(f.Last) || f.Count <= 0 {
				t.Errorf("step %d: inconsistent firing %+v", i, f)
			}
		}
		if !slices.Equal(desc, s.fires) {
			t.Errorf("step %d (%s at %v %s): fired %q, want %q", i, s.rule, s.at, s.kv, desc, s.fires)
		}
	}
}

func corr(name, body string) string {
	return "title: " + name + "\nname: " + name + "\nid: id-" + name + "\ncorrelation:\n" + body
}

const (
	countGTE3 = `    type: event_count
    rules: [fail]
    group-by: [user.name]
    timespan: 1m
    condition: {gte: 3}
`
	sec = time.Second
)

func TestEventCount(t *testing.T) {
	rule := corr("bf", countGTE3)
	tests := []struct {
		name  string
		rules []string
		steps []step
	}{
		{"fires on the third match", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 10 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 20 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=3"}},
		}},
		{"two are not enough", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 10 * sec, kv: "user.name=alice"},
			{rule: "tick", at: 10 * time.Minute},
		}},
		{"groups are separate", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 1 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 3 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 4 * sec, kv: "user.name=carol"},
			{rule: "fail", at: 5 * sec, kv: "user.name=bob", fires: []string{"bf user.name=bob n=3"}},
		}},
		{"tenants are separate", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice", tenant: "a"},
			{rule: "fail", at: 1 * sec, kv: "user.name=alice", tenant: "b"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice", tenant: "a"},
			{rule: "fail", at: 3 * sec, kv: "user.name=alice", tenant: "b"},
			{rule: "fail", at: 4 * sec, kv: "user.name=alice", tenant: "b", fires: []string{"bf user.name=alice n=3 @b"}},
		}},
		{"spread wider than the timespan", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 40 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 61 * sec, kv: "user.name=alice"}, // the first left the window
			{rule: "fail", at: 90 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=3"}},
		}},
		{"window edge is exclusive", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 30 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 60 * sec, kv: "user.name=alice"}, // (0s, 60s] excludes 0s
		}},
		{"once per window, then again", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 1 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=3"}},
			{rule: "fail", at: 3 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 4 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 5 * sec, kv: "user.name=alice"}, // blocked until 62s
			{rule: "fail", at: 50 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 62 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=5"}},
		}},
		{"out of order within the window", []string{rule}, []step{
			{rule: "fail", at: 30 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 10 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 20 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=3"}},
		}},
		{"too late is dropped", []string{rule}, []step{
			{rule: "fail", at: 2 * time.Minute, kv: "user.name=alice"},
			{rule: "fail", at: 2*time.Minute + sec, kv: "user.name=alice"},
			{rule: "fail", at: 30 * sec, kv: "user.name=alice"}, // before watermark-1m
			{rule: "fail", at: 60 * sec, kv: "user.name=alice"}, // exactly at the edge: late
		}},
		{"a late match of another group is dropped too", []string{rule}, []step{
			{rule: "fail", at: 5 * time.Minute, kv: "user.name=alice"},
			{rule: "fail", at: 0, kv: "user.name=bob"},
			{rule: "fail", at: 1 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 2 * sec, kv: "user.name=bob"},
		}},
		{"missing group-by field is ignored", []string{rule}, []step{
			{rule: "fail", at: 0, kv: "source.ip=1.2.3.4"},
			{rule: "fail", at: 1 * sec, kv: "source.ip=1.2.3.4"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 3 * sec, kv: "source.ip=1.2.3.4"},
		}},
		{"other rules are not counted", []string{rule}, []step{
			{rule: "success", at: 0, kv: "user.name=alice"},
			{rule: "success", at: 1 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice"},
		}},
		{"two group-by fields", []string{corr("pair", `    type: event_count
    rules: [fail]
    group-by: [user.name, source.ip]
    timespan: 1m
    condition: {gte: 2}
`)}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice source.ip=1.1.1.1"},
			{rule: "fail", at: 1 * sec, kv: "user.name=alice source.ip=2.2.2.2"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice source.ip=2.2.2.2", fires: []string{"pair source.ip=2.2.2.2 user.name=alice n=2"}},
		}},
		{"several referenced rules are counted together", []string{corr("mix", `    type: event_count
    rules: [fail, id-lock]
    group-by: [user.name]
    timespan: 1m
    condition: {gte: 3}
`)}, []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "lock", at: 1 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 2 * sec, kv: "user.name=alice", fires: []string{"mix user.name=alice n=3"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run(t, mustEngine(t, Options{}, tc.rules...), tc.steps)
		})
	}
}

// Without group-by, all of a tenant's matches form one group.
func TestEventCountNoGroupBy(t *testing.T) {
	e := mustEngine(t, Options{}, corr("any", `    type: event_count
    rules: [fail]
    timespan: 1m
    condition: {gt: 2}
`))
	run(t, e, []step{
		{rule: "fail", at: 0, kv: "user.name=alice"},
		{rule: "fail", at: 1 * sec, kv: "user.name=bob"},
		{rule: "fail", at: 2 * sec, fires: []string{"any n=3"}},
	})
}

func TestBoundedConditions(t *testing.T) {
	tests := []struct {
		name  string
		cond  string
		steps []step
	}{
		{"lt fires when the window closes by Tick", "{lt: 3}", []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 10 * sec, kv: "user.name=alice"},
			{rule: "tick", at: 59 * sec},
			{rule: "tick", at: 60 * sec, fires: []string{"b user.name=alice n=2"}},
			{rule: "tick", at: 10 * time.Minute},
		}},
		{"lt does not fire with enough events", "{lt: 3}", []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 10 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 20 * sec, kv: "user.name=alice"},
			{rule: "tick", at: 2 * time.Minute},
		}},
		{"a later match closes other groups' windows", "{lte: 1}", []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 30 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 61 * sec, kv: "user.name=carol", fires: []string{"b user.name=alice n=1"}},
			{rule: "fail", at: 95 * sec, kv: "user.name=carol", fires: []string{"b user.name=bob n=1"}},
			{rule: "tick", at: 3 * time.Minute},
		}},
		{"windows are anchored at the first match", "{eq: 2}", []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 50 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 70 * sec, kv: "user.name=alice", fires: []string{"b user.name=alice n=2"}},
			{rule: "fail", at: 80 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 90 * sec, kv: "user.name=alice"},
			{rule: "tick", at: 130 * sec}, // second window held 3
		}},
		{"range gt/lte", "{gt: 1, lte: 3}", []step{
			{rule: "fail", at: 0, kv: "user.name=alice"},
			{rule: "fail", at: 1 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 2 * sec, kv: "user.name=bob"},
			{rule: "fail", at: 3 * sec, kv: "user.name=carol"},
			{rule: "fail", at: 4 * sec, kv: "user.name=carol"},
			{rule: "fail", at: 5 * sec, kv: "user.name=carol"},
			{rule: "fail", at: 6 * sec, kv: "user.name=carol"},
			{rule: "tick", at: 2 * time.Minute, fires: []string{"b user.name=bob n=2"}},
		}},
		{"late match before the window start is dropped", "{lt: 2}", []step{
			{rule: "fail", at: 30 * sec, kv: "user.name=alice"},
			{rule: "fail", at: 20 * sec, kv: "user.name=alice"},
			{rule: "tick", at: 2 * time.Minute, fires: []string{"b user.name=alice n=1"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, Options{}, corr("b", `    type: event_count
    rules: [fail]
    group-by: [user.name]
    timespan: 1m
    condition: `+tc.cond+"\n"))
			run(t, e, tc.steps)
		})
	}
}

func TestValueAggregates(t *testing.T) {
	scan3 := corr("scan", `    type: value_count
    rules: [deny]
    group-by: [source.ip]
    timespan: 1m
    condition: {field: destination.port, gte: 3}
`)
	tests := []struct {
		name  string
		rule  string
		steps []step
	}{
		{"value_count counts distinct values", scan3, []step{
			{rule: "deny", at: 0, kv: "source.ip=10.0.0.1 destination.port=22"},
			{rule: "deny", at: 1 * sec, kv: "source.ip=10.0.0.1 destination.port=22"},
			{rule: "deny", at: 2 * sec, kv: "source.ip=10.0.0.2 destination.port=23"},
			{rule: "deny", at: 3 * sec, kv: "source.ip=10.0.0.1 destination.port=80"},
			{rule: "deny", at: 4 * sec, kv: "source.ip=10.0.0.1"}, // no port: ignored
			{rule: "deny", at: 5 * sec, kv: "source.ip=10.0.0.1 destination.port=80"},
			{rule: "deny", at: 6 * sec, kv: "source.ip=10.0.0.1 destination.port=443", fires: []string{"scan source.ip=10.0.0.1 n=5 v=3"}},
		}},
		{"value_count forgets values that left the window", scan3, []step{
			{rule: "deny", at: 0, kv: "source.ip=10.0.0.1 destination.port=22"},
			{rule: "deny", at: 30 * sec, kv: "source.ip=10.0.0.1 destination.port=23"},
			{rule: "deny", at: 61 * sec, kv: "source.ip=10.0.0.1 destination.port=24"},
			{rule: "deny", at: 62 * sec, kv: "source.ip=10.0.0.1 destination.port=23"},
			{rule: "deny", at: 63 * sec, kv: "source.ip=10.0.0.1 destination.port=22", fires: []string{"scan source.ip=10.0.0.1 n=4 v=3"}},
		}},
		{"value_count bounded", corr("few", `    type: value_count
    rules: [login]
    group-by: [user.name]
    timespan: 1m
    condition: {field: source.ip, lt: 2}
`), []step{
			{rule: "login", at: 0, kv: "user.name=alice source.ip=1.1.1.1"},
			{rule: "login", at: 1 * sec, kv: "user.name=alice source.ip=1.1.1.1"},
			{rule: "login", at: 2 * sec, kv: "user.name=bob source.ip=1.1.1.1"},
			{rule: "login", at: 3 * sec, kv: "user.name=bob source.ip=2.2.2.2"},
			{rule: "tick", at: 5 * time.Minute, fires: []string{"few user.name=alice n=2 v=1"}},
		}},
		{"value_sum adds numbers, skips the rest", corr("fan", `    type: value_sum
    rules: [queued]
    group-by: [email.from.address]
    timespan: 10m
    condition: {field: postfix.nrcpt, gte: 50}
`), []step{
			{rule: "queued", at: 0, kv: "email.from.address=a@x postfix.nrcpt=20"},
			{rule: "queued", at: 1 * sec, kv: "email.from.address=b@x postfix.nrcpt=45"},
			{rule: "queued", at: 2 * sec, kv: "email.from.address=a@x postfix.nrcpt=lots"},
			{rule: "queued", at: 3 * sec, kv: "email.from.address=a@x postfix.nrcpt=29"},
			{rule: "queued", at: 4 * sec, kv: "email.from.address=a@x postfix.nrcpt=1", fires: []string{"fan email.from.address=a@x n=3 agg=50"}},
		}},
		{"value_avg", corr("avg", `    type: value_avg
    rules: [xfer]
    group-by: [source.ip]
    timespan: 1h
    condition: {field: destination.bytes, gt: 1000.5}
`), []step{
			{rule: "xfer", at: 0, kv: "source.ip=1.1.1.1 destination.bytes=1000"},
			{rule: "xfer", at: 1 * sec, kv: "source.ip=1.1.1.1 destination.bytes=1001"},
			{rule: "xfer", at: 2 * sec, kv: "source.ip=1.1.1.1 destination.bytes=1003", fires: []string{"avg source.ip=1.1.1.1 n=3 agg=1001.3333333333334"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run(t, mustEngine(t, Options{}, tc.rule), tc.steps)
		})
	}
}

func TestTemporal(t *testing.T) {
	abc := func(typ, cond string) string {
		s := "    type: " + typ + "\n    rules: [a, b, c]\n    group-by: [host.name]\n    timespan: 5m\n"
		if cond != "" {
			s += "    condition: " + cond + "\n"
		}
		return corr("tmp", s)
	}
	tests := []struct {
		name  string
		rule  string
		steps []step
	}{
		{"all three in any order", abc("temporal", ""), []step{
			{rule: "c", at: 0, kv: "host.name=h1"},
			{rule: "a", at: 1 * time.Minute, kv: "host.name=h1"},
			{rule: "a", at: 2 * time.Minute, kv: "host.name=h2"},
			{rule: "b", at: 3 * time.Minute, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=3"}},
		}},
		{"one missing", abc("temporal", ""), []step{
			{rule: "a", at: 0, kv: "host.name=h1"},
			{rule: "a", at: 1 * sec, kv: "host.name=h1"},
			{rule: "b", at: 2 * sec, kv: "host.name=h1"},
			{rule: "c", at: 3 * sec, kv: "host.name=h2"},
			{rule: "tick", at: time.Hour},
		}},
		{"not within the timespan", abc("temporal", ""), []step{
			{rule: "a", at: 0, kv: "host.name=h1"},
			{rule: "b", at: 2 * time.Minute, kv: "host.name=h1"},
			{rule: "c", at: 5 * time.Minute, kv: "host.name=h1"}, // a left the window
			{rule: "a", at: 6 * time.Minute, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=3"}},
		}},
		{"count condition", abc("temporal", "{gte: 2}"), []step{
			{rule: "a", at: 0, kv: "host.name=h1"},
			{rule: "a", at: 1 * sec, kv: "host.name=h1"},
			{rule: "c", at: 2 * sec, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=2"}},
		}},
		{"expression with or", abc("temporal", "a and (b or c)"), []step{
			{rule: "b", at: 0, kv: "host.name=h1"},
			{rule: "c", at: 1 * sec, kv: "host.name=h1"},
			{rule: "a", at: 2 * sec, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=3"}},
		}},
		{"expression with not is decided at close", abc("temporal", "a and not b"), []step{
			{rule: "a", at: 0, kv: "host.name=h1"},
			{rule: "a", at: 1 * sec, kv: "host.name=h2"},
			{rule: "b", at: 2 * sec, kv: "host.name=h2"},
			{rule: "c", at: 3 * sec, kv: "host.name=h3"},
			{rule: "tick", at: 10 * time.Minute, fires: []string{"tmp host.name=h1 n=1 v=1"}},
		}},
		{"ordered", abc("temporal_ordered", ""), []step{
			{rule: "a", at: 0, kv: "host.name=h1"},
			{rule: "c", at: 1 * sec, kv: "host.name=h1"}, // c before b: not yet
			{rule: "b", at: 2 * sec, kv: "host.name=h1"},
			{rule: "c", at: 3 * sec, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=4 v=3"}},
		}},
		{"ordered: wrong order never fires", abc("temporal_ordered", ""), []step{
			{rule: "c", at: 0, kv: "host.name=h1"},
			{rule: "b", at: 1 * sec, kv: "host.name=h1"},
			{rule: "a", at: 2 * sec, kv: "host.name=h1"},
			{rule: "tick", at: time.Hour},
		}},
		{"ordered: out-of-order arrival is ordered by event time", abc("temporal_ordered", "a and b and c"), []step{
			{rule: "c", at: 3 * sec, kv: "host.name=h1"},
			{rule: "a", at: 1 * sec, kv: "host.name=h1"},
			{rule: "b", at: 2 * sec, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=3"}},
		}},
		{"ordered: equal times count as ordered", abc("temporal_ordered", ""), []step{
			{rule: "c", at: 0, kv: "host.name=h1"},
			{rule: "b", at: 0, kv: "host.name=h1"},
			{rule: "a", at: 0, kv: "host.name=h1", fires: []string{"tmp host.name=h1 n=3 v=3"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run(t, mustEngine(t, Options{}, tc.rule), tc.steps)
		})
	}
}

// TestAliases follows the specification's example: the same address is
// destination.ip in one rule's events and source.ip in the other's.
func TestAliases(t *testing.T) {
	e := mustEngine(t, Options{}, corr("pivot", `    type: temporal
    rules: [internal_error, new_network_connection]
    group-by: [internal_ip, remote_ip]
    timespan: 10s
    aliases:
        internal_ip:
            internal_error: destination.ip
            new_network_connection: source.ip
        remote_ip:
            internal_error: source.ip
            new_network_connection: destination.ip
`))
	run(t, e, []step{
		{rule: "internal_error", at: 0, kv: "destination.ip=10.0.0.5 source.ip=203.0.113.7"},
		{rule: "new_network_connection", at: 1 * sec, kv: "source.ip=203.0.113.7 destination.ip=10.0.0.5"}, // reversed: no
		{rule: "new_network_connection", at: 2 * sec, kv: "source.ip=10.0.0.5 destination.ip=203.0.113.7",
			fires: []string{"pivot internal_ip=10.0.0.5 remote_ip=203.0.113.7 n=2 v=2"}},
	})
}

// TestChaining is the specification's "failed logins followed by a
// successful login": an event_count correlation feeds a temporal_ordered one.
func TestChaining(t *testing.T) {
	e := mustEngine(t, Options{},
		corr("correlation_failed_then_success", `    type: temporal_ordered
    rules: [multiple_failed_login, successful_login]
    group-by: [User]
    timespan: 10m
`),
		corr("multiple_failed_login", `    type: event_count
    rules: [failed_login]
    group-by: [User]
    timespan: 10m
    condition: {gte: 3}
`))
	var all []Firing
	feed := func(rule string, at time.Duration, user, id string) []Firing {
		fs := e.Observe(match(step{rule: rule, at: at, kv: "User=" + user}, id))
		all = append(all, fs...)
		return fs
	}
	feed("successful_login", 0, "alice", "s0") // success before the failures: not in order
	feed("failed_login", 1*time.Minute, "alice", "f1")
	feed("failed_login", 2*time.Minute, "alice", "f2")
	feed("failed_login", 2*time.Minute, "bob", "fb")
	fs := feed("failed_login", 3*time.Minute, "alice", "f3")
	if len(fs) != 1 || fs[0].Rule.Name != "multiple_failed_login" || !fs[0].Suppressed {
		t.Fatalf("after 3 failures: %+v, want one suppressed multiple_failed_login firing", fs)
	}
	fs = feed("successful_login", 4*time.Minute, "bob", "sb")
	if len(fs) != 0 {
		t.Fatalf("bob had one failure: %v", fs)
	}
	fs = feed("successful_login", 5*time.Minute, "alice", "s1")
	if len(fs) != 1 {
		t.Fatalf("success after failures: %d firings, want 1", len(fs))
	}
	f := fs[0]
	// The window holds the early success too: Count and EventIDs cover the
	// window, not only the ordered chain.
	if got := describe(f); got != "correlation_failed_then_success User=alice n=3 v=2" {
		t.Errorf("outer firing %q", got)
	}
	if f.Suppressed {
		t.Error("the outermost correlation is not a building block")
	}
	if want := []string{"s0", "f1", "f2", "f3", "s1"}; !slices.Equal(f.EventIDs, want) {
		t.Errorf("EventIDs %q, want %q (the inner firing's events in place of its match)", f.EventIDs, want)
	}
	if !f.First.Equal(t0) || !f.Last.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("First/Last %v/%v", f.First, f.Last)
	}
	if !e.SuppressBase("failed_login") || !e.SuppressBase("successful_login") || !e.SuppressBase("multiple_failed_login") {
		t.Error("generate is false: referenced rules are building blocks")
	}
	if e.SuppressBase("correlation_failed_then_success") || e.SuppressBase("unrelated") {
		t.Error("unreferenced rules are not suppressed")
	}
	if !e.Referenced("failed_login") || !e.Referenced("successful_login") || e.Referenced("unrelated") {
		t.Error("Referenced")
	}
	if e.Referenced("multiple_failed_login") {
		t.Error("a correlation is fed by its own firings, not by Observe")
	}
}

// A chained firing arriving from Tick (a bounded inner rule) reaches the
// outer rule too.
func TestChainingFromTick(t *testing.T) {
	e := mustEngine(t, Options{},
		corr("quiet", `    type: event_count
    rules: [beacon]
    group-by: [host.name]
    timespan: 1m
    condition: {lt: 2}
`),
		corr("quiet_twice", `    type: event_count
    rules: [quiet]
    group-by: [host.name]
    timespan: 1h
    condition: {gte: 2}
`))
	run(t, e, []step{
		{rule: "beacon", at: 0, kv: "host.name=h1"},
		{rule: "tick", at: 2 * time.Minute, fires: []string{"quiet host.name=h1 n=1"}},
		{rule: "beacon", at: 3 * time.Minute, kv: "host.name=h1"},
		{rule: "tick", at: 5 * time.Minute, fires: []string{"quiet host.name=h1 n=1", "quiet_twice host.name=h1 n=2"}},
	})
}

func TestGenerateKeepsBaseRules(t *testing.T) {
	e := mustEngine(t, Options{}, corr("c1", `    type: event_count
    rules: [a, b]
    timespan: 1m
    condition: {gte: 2}
`), "generate: true\n"+corr("c2", `    type: event_count
    rules: [b]
    timespan: 1m
    condition: {gte: 2}
`))
	if !e.SuppressBase("a") || e.SuppressBase("b") {
		t.Errorf("a suppressed=%v (want true), b suppressed=%v (want false: c2 generates it)", e.SuppressBase("a"), e.SuppressBase("b"))
	}
}

func TestMatchByIDOrName(t *testing.T) {
	e := mustEngine(t, Options{}, corr("c", `    type: event_count
    rules: [id-x, y]
    timespan: 1m
    condition: {gte: 2}
`))
	// x is referenced by id, y by name; a match carries both.
	if f := e.Observe(match(step{rule: "x", at: 0}, "1")); len(f) != 0 {
		t.Fatal(f)
	}
	if f := e.Observe(match(step{rule: "y", at: sec}, "2")); len(f) != 1 {
		t.Fatalf("got %d firings, want 1", len(f))
	}
	// A rule listed by id and by name is still counted once per match.
	e = mustEngine(t, Options{}, corr("c", `    type: event_count
    rules: [id-x, x]
    timespan: 1m
    condition: {gte: 2}
`))
	if f := e.Observe(match(step{rule: "x", at: 0}, "1")); len(f) != 0 {
		t.Fatalf("one match counted twice: %v", f)
	}
}

func TestEvictionAndBounds(t *testing.T) {
	e := mustEngine(t, Options{MaxGroups: 2}, corr("bf", countGTE3))
	run(t, e, []step{
		{rule: "fail", at: 0, kv: "user.name=alice"},
		{rule: "fail", at: 1 * sec, kv: "user.name=alice"},
		{rule: "fail", at: 2 * sec, kv: "user.name=bob"},
		{rule: "fail", at: 3 * sec, kv: "user.name=carol"}, // evicts alice, the least recently updated
		{rule: "fail", at: 4 * sec, kv: "user.name=alice"}, // evicts bob; alice starts over
		{rule: "fail", at: 5 * sec, kv: "user.name=alice"},
		{rule: "fail", at: 6 * sec, kv: "user.name=alice", fires: []string{"bf user.name=alice n=3"}},
	})
	st := e.Stats()
	if st.Evicted != 2 || st.Groups != 2 || st.Fired != 1 || st.Observed != 7 {
		t.Errorf("stats %+v, want 2 evicted, 2 groups, 1 fired, 7 observed", st)
	}
	// Expiry: an hour later every old group is gone.
	e.Tick(t0.Add(time.Hour))
	if st := e.Stats(); st.Groups != 0 || st.Expired != 2 {
		t.Errorf("after Tick: %+v, want 0 groups, 2 expired", st)
	}

	// The per-group cap forgets the oldest matches but keeps the count and
	// the sum exact; EventIDs are capped.
	e = mustEngine(t, Options{MaxEventsPerGroup: 5, MaxEventIDs: 3}, corr("many", `    type: value_sum
    rules: [fail]
    timespan: 1h
    condition: {field: n, gte: 100}
`))
	var fired []Firing
	for i := range 100 {
		fired = append(fired, e.Observe(match(step{rule: "fail", at: time.Duration(i) * sec, kv: "n=1"}, fmt.Sprint(i)))...)
	}
	if len(fired) != 1 || describe(fired[0]) != "many n=100 agg=100" {
		t.Fatalf("fired %v, want one firing counting 100", fired)
	}
	if want := []string{"95", "96", "97"}; !slices.Equal(fired[0].EventIDs, want) {
		t.Errorf("EventIDs %q, want the oldest remembered %q", fired[0].EventIDs, want)
	}
	// A threshold above the cap raises the cap: the first events are kept.
	e = mustEngine(t, Options{MaxEventsPerGroup: 5, MaxEventIDs: 3}, corr("many", `    type: event_count
    rules: [fail]
    timespan: 1h
    condition: {gte: 100}
`))
	fired = nil
	for i := range 100 {
		fired = append(fired, e.Observe(match(step{rule: "fail", at: time.Duration(i) * sec}, fmt.Sprint(i)))...)
	}
	if len(fired) != 1 || fired[0].Count != 100 || !slices.Equal(fired[0].EventIDs, []string{"0", "1", "2"}) {
		t.Fatalf("fired %+v, want one firing counting 100 from event 0", fired)
	}
}

func TestNewRejects(t *testing.T) {
	rule := func(name string, refs ...string) *Rule {
		return &Rule{Name: name, ID: "id-" + name, Title: name, Path: name + ".yml", Type: EventCount, Rules: refs,
			Timespan: time.Minute, Condition: Condition{Predicates: []Predicate{{GTE, 2}}}}
	}
	known := func(s string) bool { return s == "base" }
	bad := rule("bad", "base")
	bad.Condition.Predicates = []Predicate{{GT, 5}, {LT, 3}}
	dup := rule("ok", "base")
	dup.ID = "id-other"
	noSpan := rule("nospan", "base")
	noSpan.Timespan = 0
	noField := rule("nofield", "base")
	noField.Type = ValueCount
	emptyRef := rule("emptyref", "base", "")
	rules := []*Rule{
		rule("ok", "base"),
		dup,
		rule("unknown", "nope"),
		rule("cyc1", "cyc2"),
		rule("cyc2", "cyc1", "base"),
		rule("self", "self"),
		rule("downstream", "cyc1"),
		bad,
		rule("uses_bad", "bad"),
		noSpan,
		noField,
		emptyRef,
		rule("twice", "base", "base"),
		rule("chained_ok", "ok", "base"),
		nil,
	}
	e, errs := New(rules, Options{KnownRule: known})
	wantErr := map[string]error{
		"ok.yml": ErrDuplicate, "unknown.yml": ErrUnknownRule, "cyc1.yml": ErrCycle, "cyc2.yml": ErrCycle,
		"self.yml": ErrCycle, "downstream.yml": ErrUnknownRule, "bad.yml": ErrInvalid, "uses_bad.yml": ErrUnknownRule,
		"nospan.yml": ErrInvalid, "nofield.yml": ErrMissing, "emptyref.yml": ErrInvalid, "twice.yml": ErrInvalid,
	}
	got := map[string]error{}
	for _, err := range errs {
		path, _, _ := strings.Cut(err.Error(), ":")
		got[path] = err
	}
	for path, want := range wantErr {
		if err := got[path]; !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", path, err, want)
		}
	}
	if len(errs) != len(wantErr) {
		t.Errorf("%d errors, want %d: %v", len(errs), len(wantErr), errs)
	}
	var names []string
	for _, r := range e.Rules() {
		names = append(names, r.Name)
	}
	if want := []string{"ok", "chained_ok"}; !slices.Equal(names, want) {
		t.Errorf("accepted %q, want %q", names, want)
	}
	if !strings.Contains(got["unknown.yml"].Error(), `"nope"`) || !strings.Contains(got["unknown.yml"].Error(), "id-unknown") {
		t.Errorf("error should name the rule and the reference: %v", got["unknown.yml"])
	}
}

// TestConcurrentObserve runs Observe from several goroutines (for -race)
// and checks that no match is lost: each group fires exactly once.
func TestConcurrentObserve(t *testing.T) {
	e := mustEngine(t, Options{}, corr("bf", `    type: event_count
    rules: [fail]
    group-by: [user.name]
    timespan: 1h
    condition: {gte: 400}
`))
	const workers, users, per = 4, 8, 100
	var mu sync.Mutex
	var fired []string
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				for u := range users {
					m := match(step{rule: "fail", at: time.Duration(i) * time.Millisecond, kv: fmt.Sprintf("user.name=u%d", u)}, fmt.Sprint(w, i))
					for _, f := range e.Observe(m) {
						mu.Lock()
						fired = append(fired, describe(f))
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(fired)
	var want []string
	for u := range users {
		want = append(want, fmt.Sprintf("bf user.name=u%d n=400", u))
	}
	if !slices.Equal(fired, want) {
		t.Errorf("fired %q, want %q", fired, want)
	}
}

func TestRetainedStringsAreCopied(t *testing.T) {
	e := mustEngine(t, Options{}, corr("scan", `    type: value_count
    rules: [deny]
    group-by: [source.ip]
    timespan: 1m
    condition: {field: destination.port, gte: 2}
`))
	// A reused buffer, as events decoded from the bus share memory.
	buf := []byte("10.0.0.1 22 ev-1")
	observe := func(at time.Duration) []Firing {
		s := unsafe.String(&buf[0], len(buf))
		ip, port, id := s[:8], s[9:11], s[12:]
		return e.Observe(Match{Tenant: "t", RuleID: "deny", Time: t0.Add(at), EventID: id,
			Value: func(f string) (string, bool) {
				switch f {
				case "source.ip":
					return ip, true
				case "destination.port":
					return port, true
				}
				return "", false
			}})
	}
	observe(0)
	copy(buf, "10.0.0.1 23 ev-2")
	fs := observe(sec)
	if len(fs) != 1 || fs[0].Values != 2 || fs[0].Group["source.ip"] != "10.0.0.1" || !slices.Equal(fs[0].EventIDs, []string{"ev-1", "ev-2"}) {
		t.Fatalf("got %+v", fs)
	}
}
