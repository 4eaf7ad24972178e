package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
	"github.com/mamori-soc/mamori/internal/store/vltest"
)

var benchActions = []string{"accept", "deny", "close", "timeout"}
var benchProducts = []string{"FortiGate", "Windows", "Linux", "Palo Alto", "Cisco ASA"}

// benchEvents makes n events with 15 fields each, spread over the last hour.
func benchEvents(gen *event.IDGen, start, n int, now time.Time) []*event.Event {
	evts := make([]*event.Event, n)
	for i := range evts {
		k := start + i
		e := &event.Event{
			ID:        gen.Next(),
			Tenant:    []string{"acme", "globex"}[k%2],
			Timestamp: now.Add(-time.Duration(k%3_600_000) * time.Millisecond),
			Ingested:  now,
			Source:    "syslog-tcp",
		}
		act := benchActions[k%len(benchActions)]
		user := "user" + strconv.Itoa(k%50)
		host := "host-" + strconv.Itoa(k%100)
		src := fmt.Sprintf("10.%d.%d.%d", k%4, k/256%256, k%256)
		e.Original = fmt.Sprintf(`<134>1 2026-01-01T00:00:00Z %s fw 1234 - - action=%s user=%s srcip=%s dstip=8.8.8.8 dstport=%d proto=tcp policy=%d msg="connection %d"`, host, act, user, src, 1024+k%1000, k%20, k)
		e.Set(event.FieldAction, act)
		e.Set(event.FieldCategory, "network")
		e.Set(event.FieldEventCode, strconv.Itoa(k%30))
		e.Set(event.FieldOutcome, []string{"success", "failure"}[k%2])
		e.Set(event.FieldDestIP, "8.8.8."+strconv.Itoa(k%8))
		e.Set(event.FieldDestPort, strconv.Itoa(1024+k%1000))
		e.Set(event.FieldHostName, host)
		e.Set(event.FieldNetworkTransport, "tcp")
		e.Set(event.FieldObserverProduct, benchProducts[k%len(benchProducts)])
		e.Set(event.FieldObserverVendor, "vendor")
		e.Set(event.FieldProcessName, "proc"+strconv.Itoa(k%40))
		e.Set(event.FieldRuleID, strconv.Itoa(k%20))
		e.Set(event.FieldSourceIP, src)
		e.Set(event.FieldSourcePort, strconv.Itoa(30000+k%30000))
		e.Set(event.FieldUserName, user)
		evts[i] = e
	}
	return evts
}

func BenchmarkEmbeddedWrite(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"sync", false}, {"nosync", true}} {
		for _, batch := range []int{1_000, 10_000} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, batch), func(b *testing.B) {
				s := openTestEmbedded(b, b.TempDir(), EmbeddedOptions{NoSync: mode.noSync, Logger: slog.New(slog.DiscardHandler)})
				defer s.Close()
				gen := event.NewIDGen()
				now := time.Now()
				// Pre-build a few batches: the benchmark measures the store, not the generator.
				batches := make([][]*event.Event, 8)
				for i := range batches {
					batches[i] = benchEvents(gen, i*batch, batch, now)
				}
				ctx := context.Background()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start)
				b.StopTimer()
				flushes, ft, rounds := s.FlushStats()
				b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
				if flushes > 0 {
					b.ReportMetric(float64(ft.Microseconds())/float64(flushes)/1000, "ms/flush")
					if !mode.noSync {
						b.ReportMetric(float64(rounds)/float64(flushes), "rounds/flush")
					}
				}
			})
		}
	}
}

// BenchmarkEmbeddedWriteParallel: 4 writers with 10k batches share flushes (group commit).
func BenchmarkEmbeddedWriteParallel(b *testing.B) {
	const batch, writers = 10_000, 4
	s := openTestEmbedded(b, b.TempDir(), EmbeddedOptions{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	gen := event.NewIDGen()
	now := time.Now()
	batches := make([][]*event.Event, writers)
	for i := range batches {
		batches[i] = benchEvents(gen, i*batch, batch, now)
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < b.N; i += writers {
				if err := s.Write(ctx, batches[w]); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	flushes, ft, rounds := s.FlushStats()
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
	if flushes > 0 {
		b.ReportMetric(float64(ft.Microseconds())/float64(flushes)/1000, "ms/flush")
		b.ReportMetric(float64(b.N)/float64(flushes), "writes/flush")
		b.ReportMetric(float64(rounds)/float64(flushes), "rounds/flush")
	}
}

var (
	benchQueryOnce  sync.Once
	benchQueryStore *Embedded
	benchQueryDir   string
)

// benchQueryData loads 1M rows (500k per tenant) once per test binary.
func benchQueryData(b *testing.B) *Embedded {
	benchQueryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mamori-store-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchQueryDir = dir
		// NoSync: loading speed is not what this benchmark measures.
		s, err := openEmbedded(dir, testResolver, EmbeddedOptions{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		gen := event.NewIDGen()
		now := time.Now()
		start := time.Now()
		for i := 0; i < 100; i++ {
			if err := s.Write(context.Background(), benchEvents(gen, i*10_000, 10_000, now)); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("loaded 1M rows in %s", time.Since(start))
		benchQueryStore = s
	})
	if benchQueryStore == nil {
		b.Skip("no data")
	}
	return benchQueryStore
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchQueryStore != nil {
		_ = benchQueryStore.Close()
		_ = os.RemoveAll(benchQueryDir)
	}
	os.Exit(code)
}

func BenchmarkEmbeddedQuery(b *testing.B) {
	s := benchQueryData(b)
	for _, bc := range []struct {
		name, q string
		tenants []string
		rows    int
	}{
		{"field=value/count", "user.name:=user8 | count()", []string{"acme"}, 1},
		{"field=value/rows", "user.name:=user8 host.name:=host-8", []string{"acme"}, 10_000},
		{"field=value/count/1h-range", "user.name:=user8 | count()", []string{"acme"}, 1},
		{"freetext/count", `"connection 4242"` + " | count()", []string{"acme", "globex"}, 1},
		{"stats_by_field", "* | stats by (event.action) count()", []string{"acme"}, 2},
		{"stats_by_field/2tenants", "* | stats by (event.action) count()", []string{"acme", "globex"}, 4},
		{"stats_by_2fields", "* | stats by (observer.product, event.outcome) count()", []string{"acme"}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			rows := 0
			for i := 0; i < b.N; i++ {
				rows = 0
				from := noTime
				if strings.HasSuffix(bc.name, "1h-range") {
					from = time.Now().Add(-time.Hour)
				}
				err := s.Query(ctx, bc.tenants, from, noTime, bc.q, func(Row) error { rows++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			if bc.rows > 0 && rows != bc.rows {
				b.Fatalf("%d rows, want %d", rows, bc.rows)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkVictoriaLogsWrite: the HTTP engine against a local single-node server
// (insert + force_flush per Write), 10k-event batches.
func BenchmarkVictoriaLogsWrite(b *testing.B) {
	n := vltest.StartSingle(b)
	for _, c := range []string{CompressionGzip, CompressionZstd, CompressionNone} {
		for _, sync := range []bool{false, true} {
			name := c
			if sync {
				name += "/sync-to-disk"
			}
			b.Run(name, func(b *testing.B) {
				s, err := openHTTP(n.URL, testResolver, HTTPOptions{Compression: c, SyncToDisk: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				const batch = 10_000
				gen := event.NewIDGen()
				now := time.Now()
				batches := make([][]*event.Event, 4)
				for i := range batches {
					batches[i] = benchEvents(gen, i*batch, batch, now)
				}
				ctx := context.Background()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := s.Write(ctx, batches[i%len(batches)]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkEmbeddedAppendSSHD is the events store alone under the shape of
// `mamori bench ingest`: the same sshd lines, parsed by the real parser
// beforehand, appended in bus-sized batches by two writers while a third
// goroutine makes them durable every 2 s (the persister's default). Its
// events/s is the ceiling of the end-to-end rate on the same machine.
func BenchmarkEmbeddedAppendSSHD(b *testing.B) {
	const batch, writers, pool = 300, 2, 100_000
	p := parse.New()
	now := time.Now()
	gen := event.NewIDGen()
	evs := make([]*event.Event, pool)
	for i := range evs {
		msg := fmt.Sprintf("<38>1 %s fw-%02d.example.net sshd %d - [meta seq=\"%d\" run=\"bench\"] Failed password for invalid user admin%d from 198.51.100.%d port %d ssh2",
			now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), i%50, 1000+i%300, i, i%97, i%254+1, 1024+i%60000)
		e := &event.Event{ID: gen.Next(), Tenant: "acme", Source: "syslog-tcp", Ingested: now}
		p.Parse([]byte(msg), e)
		evs[i] = e
	}
	s := openTestEmbedded(b, b.TempDir(), EmbeddedOptions{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	ctx := context.Background()
	stop := make(chan struct{})
	var syncWG sync.WaitGroup
	syncWG.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := s.Sync(ctx); err != nil {
					b.Error(err)
				}
			}
		}
	})
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < b.N; i += writers {
				off := i * batch % pool
				if err := s.Append(ctx, evs[off:min(off+batch, pool)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	syncWG.Wait()
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "events/s")
	b.ReportMetric(float64(len(evs[0].Fields)), "fields/event")
}
