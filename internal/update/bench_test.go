package update

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The 500,000-record set: ~45 MB of signature-like lines, built once.
var big = sync.OnceValue(func() Records {
	r, err := Canonical(genRecords(500_000, 500_000))
	if err != nil {
		panic(err)
	}
	return r
})

// BenchmarkDeltaSize: a 500k-record set changed by +3,000/−300 records;
// the delta blob against the full compressed set (goal ≤ 1%).
func BenchmarkDeltaSize(b *testing.B) {
	base := big()
	next := mutateSet(1, base, 300, 3000)
	full := EncodeFull("main", 2, next)
	removed, added := DiffRecords(base, next)
	d := &Delta{Channel: "main", From: 1, To: 2, FromRecords: len(base), ToRecords: len(next),
		FromSHA256: ContentHash(base), ToSHA256: ContentHash(next), Removed: removed, Added: added}
	var blob []byte
	b.ResetTimer()
	for b.Loop() {
		blob = EncodeDelta(d)
	}
	b.StopTimer()
	b.ReportMetric(float64(next.Size()), "raw_bytes")
	b.ReportMetric(float64(len(full)), "full_bytes")
	b.ReportMetric(float64(len(blob)), "delta_bytes")
	b.ReportMetric(100*float64(len(blob))/float64(len(full)), "delta_%_of_full")
	if got, err := d.Apply(base); err != nil || ContentHash(got) != ContentHash(next) {
		b.Fatalf("delta does not apply: %v", err)
	}
}

// memFetcher serves fixed bytes (a copy of the repository's files), so a
// benchmark measures verification, not disk or HTTP.
type memFetcher struct {
	mu    sync.Mutex
	inner Fetcher
	cache map[string][]byte
}

func (m *memFetcher) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.cache[path]
	m.mu.Unlock()
	if !ok {
		var err error
		if b, err = m.inner.Get(ctx, path, max); err != nil {
			return nil, err
		}
		if path != "metadata/timestamp.json" {
			m.mu.Lock()
			m.cache[path] = b
			m.mu.Unlock()
		}
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}

// bandageEnv: a repository with main (5,000 records) and a history of
// small bandages, an up-to-date client, then a new 1-record bandage.
func bandageEnv(b *testing.B) (*env, *Client, *Installed) {
	e := newEnv(b)
	e.publish("main", genRecords(7, 5000))
	e.publish("cleanup", genRecords(8, 50))
	for i := range 5 {
		e.publish(BandageChannel, genRecords(uint64(100+i), 1+i%3))
	}
	c := e.client(newFetcher(e.repo))
	for _, ch := range []string{"main", "cleanup"} {
		if _, err := c.Update(bg, nil, ch, nil); err != nil {
			b.Fatal(err)
		}
	}
	in, err := c.Update(bg, nil, BandageChannel, nil)
	if err != nil {
		b.Fatal(err)
	}
	e.publish(BandageChannel, genRecords(999, 1))
	return e, c, in
}

// BenchmarkBandageWire: bytes an up-to-date agent downloads for a 1-record
// bandage release: timestamp + snapshot + bandage.json + blob (goal ≤ 2 KB).
func BenchmarkBandageWire(b *testing.B) {
	e, c, in := bandageEnv(b)
	f := newFetcher(e.repo)
	c.f = f
	var total int64
	sizes := map[string]int{}
	for b.Loop() {
		cl := c.clone()
		f.reset()
		f.mu.Lock()
		f.mutate = func(path string, data []byte) []byte { sizes[path] = len(data); return data }
		f.mu.Unlock()
		if _, err := cl.Update(bg, nil, BandageChannel, in); err != nil {
			b.Fatal(err)
		}
		total, _ = f.reset()
	}
	b.ReportMetric(float64(total), "wire_bytes")
	keys := make([]string, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k[strings.LastIndex(k, "/")+1:], sizes[k]))
	}
	b.Logf("1-record bandage on the wire: %d bytes (%s); root probe: one 404", total, strings.Join(parts, " "))
}

func (c *Client) clone() *Client { return c.Fork(nil) }

// BenchmarkClientBandageUpdate: CPU and allocations of one verify+apply of
// a small bandage by an up-to-date agent that got the timestamp pushed
// (event stream), files served from memory.
func BenchmarkClientBandageUpdate(b *testing.B) {
	for _, every := range []time.Duration{0, time.Hour} {
		name := "root-probe-every-update"
		if every > 0 {
			name = "root-probe-hourly"
		}
		b.Run(name, func(b *testing.B) {
			e, c, in := bandageEnv(b)
			c.f = &memFetcher{inner: LocalFetcher(Handler(e.repo)), cache: map[string][]byte{}}
			c.every = every
			ts := e.repo.Timestamp()
			if _, err := c.clone().Update(bg, ts, BandageChannel, in); err != nil { // warm the cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				out, err := c.clone().Update(bg, ts, BandageChannel, in)
				if err != nil || out == in {
					b.Fatalf("update: %v", err)
				}
			}
		})
	}
}

// BenchmarkClientMemory: heap retained per up-to-date client following
// main (5,000 records; the installed content is not counted: agents keep it
// however they like) and bandage. "independent": each client built from
// the root bytes; "forked": clients forked from one, then each updated
// through a new bandage release on its own.
func BenchmarkClientMemory(b *testing.B) {
	e, c0, _ := bandageEnv(b)
	mf := &memFetcher{inner: LocalFetcher(Handler(e.repo)), cache: map[string][]byte{}}
	root := c0.TrustedRoot()
	const n = 1000
	measure := func(b *testing.B, mk func() *Client) {
		for b.Loop() {
			clients := make([]*Client, n)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := range clients {
				clients[i] = mk()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap_bytes/client")
			runtime.KeepAlive(clients)
		}
	}
	b.Run("independent", func(b *testing.B) {
		measure(b, func() *Client {
			c, err := NewClient(root, mf, ClientOptions{Now: e.clock.Now, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			for _, ch := range []string{"main", BandageChannel} {
				if _, err := c.Update(bg, nil, ch, nil); err != nil {
					b.Fatal(err)
				}
			}
			return c
		})
	})
	b.Run("forked", func(b *testing.B) {
		proto, err := NewClient(root, mf, ClientOptions{Now: e.clock.Now, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		var have *Installed
		for _, ch := range []string{"main", BandageChannel} {
			if have, err = proto.Update(bg, nil, ch, nil); err != nil {
				b.Fatal(err)
			}
		}
		e.publish(BandageChannel, genRecords(4242, 1))
		ts := e.repo.Timestamp()
		measure(b, func() *Client {
			c := proto.Fork(nil)
			if _, err := c.Update(bg, ts, BandageChannel, have); err != nil {
				b.Fatal(err)
			}
			return c
		})
	})
}

// BenchmarkPublish500k: publishing the 500k set into an empty channel
// (full blob only), and a +3,000/−300 change on top of it (full blob,
// deltas from every earlier version, metadata).
func BenchmarkPublish500k(b *testing.B) {
	base := big()
	b.Run("initial", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			e := newEnv(b)
			b.StartTimer()
			if _, err := e.repo.Publish(bg, "main", base, PublishOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("incremental", func(b *testing.B) {
		e := newEnv(b)
		e.publish("main", base)
		cur := base
		var rel Release
		seed := uint64(0)
		for b.Loop() {
			b.StopTimer()
			seed++
			cur = mutateSet(seed, cur, 300, 3000)
			b.StartTimer()
			var err error
			if rel, err = e.repo.Publish(bg, "main", cur, PublishOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rel.Deltas)), "deltas")
	})
	// The steady state: 30 earlier versions, so the publish builds all 30
	// deltas (composed from the step deltas). Setup publishes 31 versions.
	b.Run("incremental-30-deltas", func(b *testing.B) {
		e := newEnv(b)
		cur := base
		e.publish("main", cur)
		for i := range MaxDeltaChain {
			cur = mutateSet(uint64(1000+i), cur, 300, 3000)
			e.publish("main", cur)
		}
		var rel Release
		seed := uint64(0)
		for b.Loop() {
			b.StopTimer()
			seed++
			cur = mutateSet(seed, cur, 300, 3000)
			b.StartTimer()
			var err error
			if rel, err = e.repo.Publish(bg, "main", cur, PublishOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		listed := 0
		for _, d := range rel.Deltas {
			if d.Listed {
				listed++
			}
		}
		b.ReportMetric(float64(len(rel.Deltas)), "deltas")
		b.ReportMetric(float64(listed), "listed")
		b.ReportMetric(float64(rel.Deltas[len(rel.Deltas)-1].Length), "oldest_delta_bytes")
	})
}
