package correlate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// naiveGroup is the documented sliding-window policy written the obvious
// way: keep every match, recount the window on every arrival.
type naiveGroup struct {
	times  []int64
	vals   []string
	floor  int64
	newest int64
	block  int64
}

// TestSlidingWindowMatchesNaiveModel compares the engine's incremental
// bookkeeping (sorted insert, pruning, distinct counts, expiry) with the
// naive model over random in-order streams, for event_count and
// value_count.
func TestSlidingWindowMatchesNaiveModel(t *testing.T) {
	const span = 10 * time.Second
	for _, typ := range []Type{EventCount, ValueCount} {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("%s/seed%d", typ, seed), func(t *testing.T) {
				rnd := rand.New(rand.NewPCG(seed, 7))
				threshold := float64(2 + rnd.IntN(5))
				r := &Rule{Name: "m", Title: "m", Type: typ, Rules: []string{"a"}, GroupBy: []string{"g"}, Timespan: span,
					Condition: Condition{Predicates: []Predicate{{GTE, threshold}}}}
				if typ == ValueCount {
					r.Condition.Field = "v"
				}
				e, errs := New([]*Rule{r}, Options{})
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				model := map[string]*naiveGroup{}
				now := t0
				firings := 0
				for i := range 400 {
					step := time.Duration(rnd.IntN(1200)) * time.Millisecond // equal times happen too
					if rnd.IntN(50) == 0 {
						step = 30 * time.Second // every window passes: groups expire
					}
					now = now.Add(step)
					g, v := fmt.Sprint("g", rnd.IntN(4)), fmt.Sprint("v", rnd.IntN(6))
					got := e.Observe(Match{Tenant: "t", RuleID: "a", Time: now, EventID: fmt.Sprint(i),
						Value: func(f string) (string, bool) {
							if f == "g" {
								return g, true
							}
							return v, true
						}})
					var gotDesc []string
					for _, f := range got {
						gotDesc = append(gotDesc, fmt.Sprintf("%s n=%d v=%d", f.Group["g"], f.Count, f.Values))
					}

					ng := model[g]
					if ng == nil {
						ng = &naiveGroup{floor: math.MinInt64, newest: math.MinInt64, block: math.MinInt64}
						model[g] = ng
					}
					var want []string
					ts := now.UnixNano()
					if ts > ng.floor {
						ng.times, ng.vals = append(ng.times, ts), append(ng.vals, v)
						ng.newest = max(ng.newest, ts)
						n, distinct := 0, map[string]bool{}
						for j, tj := range ng.times {
							if tj > ng.newest-int64(span) {
								n++
								distinct[ng.vals[j]] = true
							}
						}
						x := float64(n)
						if typ == ValueCount {
							x = float64(len(distinct))
						}
						if ng.newest >= ng.block && x >= threshold {
							vals := 0
							if typ == ValueCount {
								vals = len(distinct)
							}
							want = append(want, fmt.Sprintf("%s n=%d v=%d", g, n, vals))
							ng.floor, ng.block = ng.newest, ng.newest+int64(span)
							ng.times, ng.vals = nil, nil
						}
					}
					firings += len(want)
					if !slices.Equal(gotDesc, want) {
						t.Fatalf("match %d (%s %s at %v): engine fired %q, model %q", i, g, v, now.Sub(t0), gotDesc, want)
					}
				}
				if firings == 0 || e.Stats().Expired == 0 {
					t.Fatalf("the stream exercised too little: %d firings, %+v", firings, e.Stats())
				}
			})
		}
	}
}
