package correlate

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchMatches builds n matches of rule over `groups` distinct users and
// source addresses, one millisecond apart, with 100 distinct ports.
func benchMatches(rule string, n, groups int) []Match {
	out := make([]Match, n)
	for i := range out {
		fields := map[string]string{
			"user.name":        "user" + strconv.Itoa(i%groups),
			"source.ip":        "10.0." + strconv.Itoa(i%groups/256) + "." + strconv.Itoa(i%groups%256),
			"destination.port": strconv.Itoa(i % 100),
			"host.name":        "h" + strconv.Itoa(i%groups),
		}
		out[i] = Match{Tenant: "acme", RuleID: rule, RuleName: rule, Time: t0.Add(time.Duration(i) * time.Millisecond),
			EventID: "ev" + strconv.Itoa(i), Value: func(f string) (string, bool) { v, ok := fields[f]; return v, ok }}
	}
	return out
}

func builtinEngine(b *testing.B) *Engine {
	rules, err := BuiltinRules()
	if err != nil {
		b.Fatal(err)
	}
	e, errs := New(rules, Options{})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return e
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "matches/s")
}

// BenchmarkObserve measures Observe per match on one goroutine.
func BenchmarkObserve(b *testing.B) {
	const n = 1 << 16
	cases := []struct {
		name   string
		engine func(b *testing.B) *Engine
		rule   string
		groups int
	}{
		// Feeds both brute-force correlations (by user and by source).
		{"event_count_builtin_1k_groups", builtinEngine, "f7afb341-4ae3-4545-8b3d-1c5b85e50ecc", 1000},
		{"value_count_builtin_100_groups", builtinEngine, "270df909-94fe-4e02-affd-2e7518b5b206", 100},
		{"temporal_3_rules_1k_groups", func(b *testing.B) *Engine {
			return mustEngine(b, Options{}, corr("t", "    type: temporal\n    rules: [a, b, c]\n    group-by: [host.name]\n    timespan: 5m\n"))
		}, "a", 1000},
		{"bounded_lt_1k_groups", func(b *testing.B) *Engine {
			return mustEngine(b, Options{}, corr("q", "    type: event_count\n    rules: [a]\n    group-by: [host.name]\n    timespan: 10s\n    condition: {lt: 5}\n"))
		}, "a", 1000},
		{"unreferenced_rule", builtinEngine, "some-other-rule", 1},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e := tc.engine(b)
			ms := benchMatches(tc.rule, n, tc.groups)
			if tc.name == "temporal_3_rules_1k_groups" {
				for i := range ms {
					ms[i].RuleID = string(rune('a' + i%3))
					ms[i].RuleName = ms[i].RuleID
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				m := ms[i%n]
				// Keep time moving forward across passes over ms.
				m.Time = m.Time.Add(time.Duration(i/n) * n * time.Millisecond)
				e.Observe(m)
			}
			reportRate(b, start)
		})
	}
}

// BenchmarkObserveParallel measures Observe from all cores at once on the
// builtin brute-force rules.
func BenchmarkObserveParallel(b *testing.B) {
	e := builtinEngine(b)
	const n = 1 << 16
	ms := benchMatches("f7afb341-4ae3-4545-8b3d-1c5b85e50ecc", n, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			m := ms[i%n]
			m.Time = m.Time.Add(time.Duration(i/n) * n * time.Millisecond)
			e.Observe(m)
		}
	})
	reportRate(b, start)
}

// BenchmarkGroupMemory reports the heap held per group: 10,000 groups of
// event_count with one match each, and of value_count with 10 matches
// (10 distinct values) each.
func BenchmarkGroupMemory(b *testing.B) {
	for _, tc := range []struct {
		name    string
		rule    string
		perGrp  int
		matches func(g, j int) Match
	}{
		{"event_count_1_match", corr("c", "    type: event_count\n    rules: [a]\n    group-by: [source.ip]\n    timespan: 1h\n    condition: {gte: 1000}\n"), 1, nil},
		{"value_count_10_values", corr("v", "    type: value_count\n    rules: [a]\n    group-by: [source.ip]\n    timespan: 1h\n    condition: {field: destination.port, gte: 1000}\n"), 10, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const groups = 10_000
			var perGroup float64
			for range b.N {
				var ms []Match
				for g := range groups {
					ip := fmt.Sprintf("10.%d.%d.%d", g>>16, g>>8&255, g&255)
					for j := range tc.perGrp {
						port := strconv.Itoa(1000 + j)
						ms = append(ms, Match{Tenant: "acme", RuleID: "a", Time: t0.Add(time.Duration(g*tc.perGrp+j) * time.Microsecond),
							EventID: fmt.Sprintf("01JDQ5Z9X8Y7W6V5U4T3S2R%05d", g*tc.perGrp+j),
							Value: func(f string) (string, bool) {
								if f == "source.ip" {
									return ip, true
								}
								return port, true
							}})
					}
				}
				e := mustEngine(b, Options{MaxGroups: groups}, tc.rule)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for _, m := range ms {
					e.Observe(m)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if e.Stats().Groups != groups {
					b.Fatalf("groups %d", e.Stats().Groups)
				}
				perGroup = float64(after.HeapAlloc-before.HeapAlloc) / groups
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perGroup, "B/group")
		})
	}
}
