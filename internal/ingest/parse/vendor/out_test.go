package vendor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
)

// TestCommitMerge parses into events that already hold fields (before,
// between, after and equal to the parser's names) and compares with what
// event.Set would have produced.
func TestCommitMerge(t *testing.T) {
	pre := [][]event.Field{
		nil,
		{{Name: "aaa", Value: "1"}},
		{{Name: "zzz", Value: "1"}},
		{{Name: "event.action", Value: "old"}, {Name: "log.syslog.appname", Value: "x"}},
		{{Name: "@timestamp", Value: "t"}, {Name: "event.category", Value: "old"}, {Name: "host.name", Value: "keep"}, {Name: "source.ip", Value: "old"}, {Name: "zzz", Value: "z"}},
	}
	for _, cs := range allCases {
		for _, c := range cs {
			if c.format == "" {
				continue
			}
			var fresh event.Event
			Parse(c.app, c.msg, &fresh)
			for pi, p := range pre {
				e := event.Event{Fields: slices.Clone(p)}
				if _, ok := Parse(c.app, c.msg, &e); !ok {
					t.Fatalf("%s: no match with pre-set fields", c.name)
				}
				// Expected: pre fields, then every fresh field Set on top
				// (host.name from a file prefix only when not already set).
				want := event.Event{Fields: slices.Clone(p)}
				_, hadHost := want.Get(event.FieldHostName)
				for _, f := range fresh.Fields {
					if f.Name == event.FieldHostName && hadHost {
						continue
					}
					want.Set(f.Name, f.Value)
				}
				if !slices.Equal(e.Fields, want.Fields) {
					t.Fatalf("%s/pre%d:\n got %v\nwant %v", c.name, pi, e.Fields, want.Fields)
				}
			}
		}
	}
}

// TestOutRandom drives out with random names and compares with event.Set.
func TestOutRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		var o out
		var want event.Event
		var e event.Event
		for k := r.IntN(4); k > 0; k-- {
			n := rankNames[r.IntN(len(rankNames))]
			e.Set(n, "pre")
			want.Set(n, "pre")
		}
		for k := r.IntN(60); k > 0; k-- {
			f := registry[r.IntN(len(registry))]
			v := fmt.Sprint(r.IntN(3))
			if r.IntN(10) == 0 {
				v = ""
			}
			o.set(f, v)
			want.Set(f.name, v)
		}
		o.commit(&e)
		if !slices.Equal(e.Fields, want.Fields) {
			t.Fatalf("iter %d:\n got %v\nwant %v", iter, e.Fields, want.Fields)
		}
	}
}
