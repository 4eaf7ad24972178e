package intel

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	_ "modernc.org/sqlite"
)

// genIndicators makes n distinct, already normalized indicators with the
// type mix of real feeds (mostly IPs, domains, URLs and hashes).
func genIndicators(n int) []*Indicator {
	out := make([]*Indicator, 0, n)
	for i := range n {
		var typ Type
		var v string
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i)*2654435761) // spread over the space
		switch i % 20 {
		case 0, 1, 2, 3, 4, 5:
			typ, v = TypeIPv4, netip.AddrFrom4(b).String()
		case 6:
			typ, v = TypeIPv6, fmt.Sprintf("2001:db8:%x::%x", i>>16, i&0xffff)
		case 7:
			if i%140 == 7 {
				b[0] = 240 | b[0]&0x0f // reserved space: the benchmark's miss must stay a miss
				typ, v = TypeCIDR, netip.PrefixFrom(netip.AddrFrom4(b), 16+i%9).Masked().String()
			} else {
				typ, v = TypeMD5, fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15)
			}
		case 8, 9, 10, 11, 12, 13:
			typ, v = TypeDomain, fmt.Sprintf("host%d.bad-%d.example", i, i%997)
		case 14, 15:
			typ, v = TypeURL, fmt.Sprintf("http://dl%d.example.net/p/%d.exe", i%5000, i)
		case 16, 17:
			typ, v = TypeSHA256, fmt.Sprintf("%064x", uint64(i)*0x9e3779b97f4a7c15)
		case 18:
			typ, v = TypeSHA1, fmt.Sprintf("%040x", uint64(i)*0x9e3779b97f4a7c15)
		case 19:
			if i%40 == 19 {
				typ, v = TypeEmail, fmt.Sprintf("user%d@phish%d.example", i, i%100)
			} else {
				typ, v = TypeFilename, fmt.Sprintf("payload%d.exe", i)
			}
		}
		out = append(out, &Indicator{Type: typ, Value: v, Sources: []SourceRef{{Source: "bench", Confidence: 70, TLP: TLPGreen}}})
	}
	return out
}

var benchMatcher = sync.OnceValue(func() *Matcher {
	m := NewMatcher(nil)
	m.Replace(genIndicators(1_000_000))
	return m
})

// benchEvent is a typical firewall/proxy event: ~25 fields, 6 observables.
func benchEvent(hit bool) *event.Event {
	e := ev("acme",
		"@metadata.x", "1", "event.kind", "event", "event.category", "web", "event.type", "access",
		"event.module", "squid", "event.dataset", "squid.access", "observer.vendor", "Squid", "observer.product", "Squid",
		"observer.type", "proxy", "http.request.method", "GET", "http.response.status_code", "200",
		"http.response.bytes", "5123", "user.name", "alice", "user_agent.original", "Mozilla/5.0 (Windows NT 10.0)",
		"source.port", "51514", "destination.port", "443", "network.transport", "tcp", "host.name", "proxy-01",
		"source.ip", "10.1.2.3", "destination.ip", "93.184.216.34",
		"url.domain", "www.benign-site.example.com", "url.original", "https://www.benign-site.example.com/index.html?q=1",
		"dns.question.name", "cdn.assets.benign.example", "file.hash.sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	if hit {
		e.Set("dns.question.name", "x.host8.bad-8.example")
	}
	return e
}

// BenchmarkMatch: ns per event and allocations with 1,000,000 indicators.
func BenchmarkMatch(b *testing.B) {
	m := benchMatcher()
	for _, hit := range []bool{false, true} {
		b.Run(fmt.Sprintf("hit=%v", hit), func(b *testing.B) {
			e := benchEvent(hit)
			n := 0
			fn := func(Hit) { n++ }
			b.ReportAllocs()
			for b.Loop() {
				m.Match(e, fn)
			}
			if hit && n == 0 || !hit && n != 0 {
				b.Fatalf("hit=%v but %d hits", hit, n)
			}
		})
	}
}

// BenchmarkMatchParallel: the same miss from every core (lock-free reads).
func BenchmarkMatchParallel(b *testing.B) {
	m := benchMatcher()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := benchEvent(false)
		for pb.Next() {
			m.Match(e, func(Hit) {})
		}
	})
}

// BenchmarkMatcherMemory reports the heap held by a matcher loaded with
// 1,000,000 indicators, per indicator (the indicators included).
func BenchmarkMatcherMemory(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMatcher(nil)
		m.Replace(genIndicators(1_000_000))
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(m.Len()), "bytes/indicator")
		runtime.KeepAlive(m)
	}
}

// BenchmarkStoreAdd: one Add of 1,000,000 indicators into a fresh SQLite
// file (validation, merge, one transaction, matcher update).
func BenchmarkStoreAdd(b *testing.B) {
	src := genIndicators(1_000_000)
	inds := make([]Indicator, len(src))
	for i, p := range src {
		inds[i] = *p
	}
	for b.Loop() {
		b.StopTimer()
		db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "intel.db"))
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		s, err := Open(context.Background(), db)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := s.Add(context.Background(), inds)
		if err != nil || res.New != len(inds) {
			b.Fatalf("Add: %+v %v", res, err)
		}
		b.StopTimer()
		start := time.Now() // reopening loads everything back (server start-up)
		s2, err := Open(context.Background(), db)
		if err != nil || s2.Len() != len(inds) {
			b.Fatalf("reopen: %v", err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "reopen-s")
		_ = db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(inds)), "indicators/op")
}

// BenchmarkGC: the cost of one full garbage collection while a matcher
// holds 1,000,000 indicators (ns/op is per runtime.GC, which marks the
// whole live heap), with the live heap size and object count.
func BenchmarkGC(b *testing.B) {
	m := benchMatcher()
	runtime.GC()
	for b.Loop() {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(ms.HeapObjects), "heap-objects")
	runtime.KeepAlive(m)
}
