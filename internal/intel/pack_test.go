package intel

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// TestPackRoundTrip: what the matcher stores decodes to the same
// indicator, and the record's expiry agrees with Indicator.Active.
func TestPackRoundTrip(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	inds := []*Indicator{
		mk(t, TypeIPv4, "192.0.2.1"),
		mk(t, TypeIPv6, "2001:db8::1"),
		mk(t, TypeCIDR, "2001:db8::/32"),
		mk(t, TypeURL, "https://a.example/p?q=1"),
		mk(t, TypeFilename, "x.exe"),
		{Type: TypeDomain, Value: "evil.example", Tenant: "acme", Sources: []SourceRef{
			{Source: "a", Confidence: 100, TLP: TLPAmberStrict, FirstSeen: t0.Add(-time.Hour).In(tokyo), LastSeen: t0.Add(123 * time.Nanosecond),
				Expires: t0.Add(time.Hour), Ref: "indicator--1", Description: "désc\x00ription", Tags: []string{"emotet", "", "c2"}},
			{Source: "b", Confidence: 0, Expires: t0.Add(2*time.Hour + 5)},
		}},
		{Type: TypeEmail, Value: "a@b.example", Sources: []SourceRef{{Source: "a", Expires: t0}, {Source: "never"}}},
		{Type: TypeSHA1, Value: "3395856ce81f2b7382dee72602f798b642f14140"}, // no source: never active
	}
	x := &index{tenants: []string{"", "acme"}}
	for _, ind := range inds {
		tenant := uint32(0)
		if ind.Tenant == "acme" {
			tenant = 1
		}
		if _, ok := x.appendRec(ind, tenant); !ok {
			t.Fatalf("%s not encoded", ind.Key())
		}
	}
	for id, want := range inds {
		got := x.decode(uint32(id))
		if got.Key() != want.Key() || !equalIndicator(got, want) || len(got.Sources) != len(want.Sources) {
			t.Errorf("decoded %+v, want %+v", got, want)
		}
		for i := range want.Sources {
			if !slices.Equal(got.Sources[i].Tags, want.Sources[i].Tags) {
				t.Errorf("%s tags %q, want %q", want.Key(), got.Sources[i].Tags, want.Sources[i].Tags)
			}
		}
		for _, at := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(time.Hour), t0.Add(2*time.Hour + 4), t0.Add(2*time.Hour + 5), t0.Add(1000 * time.Hour)} {
			if r := &x.recs[id]; r.active(at.Unix(), int32(at.Nanosecond())) != want.Active(at) {
				t.Errorf("%s at %v: record active %v, indicator %v", want.Key(), at, !want.Active(at), want.Active(at))
			}
		}
	}
	if k := x.keyFor(5); k != inds[5].Key() {
		t.Errorf("keyFor = %v, want %v", k, inds[5].Key())
	}
}

// TestMatcherUpdateEquivalent drives a matcher through random small and
// large updates (delta and fold paths, tenants, http and https of one URL,
// CIDRs, removals of present and absent keys) and checks after every step
// that it answers exactly as a matcher loaded from scratch with the same
// indicators.
func TestMatcherUpdateEquivalent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	clock := func() time.Time { return t0 }
	tenants := []string{"", "acme", "globex"}
	gen := func() *Indicator {
		i := rng.IntN(300)
		var ind *Indicator
		switch rng.IntN(5) {
		case 0:
			ind = mk(t, TypeIPv4, fmt.Sprintf("192.0.2.%d", i%256))
		case 1:
			ind = mk(t, TypeCIDR, fmt.Sprintf("10.%d.0.0/%d", i%8, 16+i%3))
		case 2:
			ind = mk(t, TypeDomain, fmt.Sprintf("d%d.example", i%50))
		case 3:
			ind = mk(t, TypeURL, fmt.Sprintf("%s://u%d.example/p", []string{"http", "https"}[i%2], i%20))
		default:
			ind = mk(t, TypeMD5, fmt.Sprintf("%032x", i))
		}
		ind.Tenant = tenants[rng.IntN(len(tenants))]
		ind.Sources[0].Confidence = rng.IntN(101)
		if rng.IntN(4) == 0 {
			ind.Sources[0].Expires = t0.Add(time.Duration(rng.IntN(3)-1) * time.Hour)
		}
		return ind
	}
	var probes []*Indicator
	for range 400 {
		probes = append(probes, gen())
	}
	state := map[Key]*Indicator{}
	m := NewMatcher(clock)
	for step := range 60 {
		n := 1 + rng.IntN(8)
		if step%10 == 9 {
			n = 1500 // past the fold threshold
		}
		var up []*Indicator
		var rm []Key
		for range n {
			if rng.IntN(3) == 0 {
				k := gen().Key()
				rm = append(rm, k)
				continue
			}
			up = append(up, gen())
		}
		m.Update(up, rm)
		for _, k := range rm {
			delete(state, k)
		}
		for _, ind := range up {
			state[ind.Key()] = ind
		}
		fresh := NewMatcher(clock)
		fresh.Replace(slices.Collect(func(yield func(*Indicator) bool) {
			for _, ind := range state {
				if !yield(ind) {
					return
				}
			}
		}))
		if m.Len() != len(state) || fresh.Len() != len(state) {
			t.Fatalf("step %d: Len %d, fresh %d, want %d", step, m.Len(), fresh.Len(), len(state))
		}
		var keys []string
		x := m.snap.Load()
		x.each(func(id uint32) bool { keys = append(keys, x.keyFor(id).String()); return true })
		if len(keys) != len(state) {
			t.Fatalf("step %d: each visits %d indicators, want %d", step, len(keys), len(state))
		}
		for _, p := range probes {
			e := ev(tenants[rng.IntN(len(tenants))])
			switch p.Type {
			case TypeIPv4:
				e.Set("source.ip", p.Value)
			case TypeCIDR:
				e.Set("source.ip", p.Value[:len(p.Value)-4]+"7")
			case TypeDomain:
				e.Set("dns.question.name", "x."+p.Value)
			case TypeURL:
				e.Set("url.original", p.Value)
			default:
				e.Set("file.hash.md5", p.Value)
			}
			if got, want := hitsWithConfidence(m, e), hitsWithConfidence(fresh, e); !slices.Equal(got, want) {
				t.Fatalf("step %d, event %v: hits\n got  %q\n want %q", step, e.Fields, got, want)
			}
		}
	}
}

// hitsWithConfidence is hits with each indicator's confidence.
func hitsWithConfidence(m *Matcher, e *event.Event) []string {
	var out []string
	m.Match(e, func(h Hit) {
		out = append(out, fmt.Sprintf("%s=%s->%s@%d", h.Field, h.Value, h.Indicator.Key(), h.Indicator.Confidence(t0)))
	})
	sort.Strings(out)
	return out
}
