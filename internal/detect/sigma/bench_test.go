package sigma

import (
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// BenchmarkCompileCorpus compiles the 3,780 active SigmaHQ rules per
// iteration and reports the heap the compiled set holds.
//
//	go test ./internal/detect/sigma/ -run '^$' -bench CompileCorpus -benchtime 5x
func BenchmarkCompileCorpus(b *testing.B) {
	root := testutil.Corpus(b, "sigma")
	var paths []string
	for _, d := range activeDirs {
		paths = append(paths, filepath.Join(root, d))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rs, _ := Load(paths, Options{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	runtime.KeepAlive(rs)
	b.ResetTimer()
	for b.Loop() {
		rs, _ = Load(paths, Options{})
	}
	// Reported after the loop: ResetTimer deletes earlier metrics.
	b.ReportMetric(heap, "MiB-heap")
	b.ReportMetric(float64(rs.Stats().IndexBytes)/(1<<20), "MiB-index")
	if rs.Stats().Loaded < 3000 {
		b.Fatalf("loaded %d", rs.Stats().Loaded)
	}
}

// benchStream is the mixed stream: every Windows record of the regression
// and attack EVTX files, and the syslog/JSON lines of testdata/stream.log
// repeated until they are a third of the stream.
func benchStream(b *testing.B) []*event.Event { return benchStreamT(b) }

func benchStreamT(b testing.TB) []*event.Event {
	win, lines := mixedStream(b)
	all := append([]*event.Event(nil), win...)
	for n := 0; n < len(win)/2; n += len(lines) {
		all = append(all, lines...)
	}
	// Interleave so that consecutive events differ in source, like a bus batch.
	out := make([]*event.Event, 0, len(all))
	stride := 7
	for s := 0; s < stride; s++ {
		for i := s; i < len(all); i += stride {
			out = append(out, all[i])
		}
	}
	return out
}

// BenchmarkMatchMixed: one event per iteration on one goroutine, all
// active rules loaded. "indexed" is Match; "naive" checks every loaded rule
// one by one (logsource test, then the full condition).
//
//	go test ./internal/detect/sigma/ -run '^$' -bench MatchMixed -benchtime 200000x -cpu 1
func BenchmarkMatchMixed(b *testing.B) {
	rs, _, _ := loadCorpus(b)
	evs := benchStream(b)
	for _, mode := range []struct {
		name string
		fn   func(*event.Event, func(*Rule))
	}{{"indexed", rs.Match}, {"naive", rs.matchNaive}} {
		b.Run(mode.name, func(b *testing.B) {
			benchMatch(b, mode.fn, evs)
		})
	}
}

// benchMatch matches one event per iteration, cycling through evs, and
// reports events per second of wall time and of process CPU time.
func benchMatch(b *testing.B, match func(*event.Event, func(*Rule)), evs []*event.Event) {
	hits := 0
	fn := func(*Rule) { hits++ }
	b.ReportAllocs()
	// Collect the garbage of loading the corpus now, not during the loop.
	runtime.GC()
	cpu0 := cpuTime()
	start := time.Now()
	i := 0
	for b.Loop() {
		match(evs[i], fn)
		i++
		if i == len(evs) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	// CPU time of the process: on a shared machine wall time counts
	// other tenants' load; this is events per second of one core.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(hits)/float64(b.N), "matches/event")
}

// BenchmarkMatchBySource splits the mixed stream: Windows records only
// (events with winlog.channel) and every other event, each with all active
// rules loaded.
//
//	go test ./internal/detect/sigma/ -run '^$' -bench MatchBySource -benchtime 100000x -cpu 1
func BenchmarkMatchBySource(b *testing.B) {
	rs, _, _ := loadCorpus(b)
	var win, other []*event.Event
	for _, e := range benchStream(b) {
		if _, ok := e.Get("winlog.channel"); ok {
			win = append(win, e)
		} else {
			other = append(other, e)
		}
	}
	for _, part := range []struct {
		name string
		evs  []*event.Event
	}{{"windows", win}, {"other", other}} {
		b.Run(part.name, func(b *testing.B) {
			benchMatch(b, rs.Match, part.evs)
		})
	}
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatchBusBatches is the detection consumer's path: the mixed
// stream encoded in bus batches of 500 events, each batch decoded with a
// reused ViewDecoder and every event matched while it is fresh in cache.
// "decode" alone is the part of the figure that is not matching.
//
//	go test ./internal/detect/sigma/ -run '^$' -bench MatchBusBatches -benchtime 400x -cpu 1
func BenchmarkMatchBusBatches(b *testing.B) {
	rs, _, _ := loadCorpus(b)
	evs := benchStream(b)
	const per = 500
	var batches [][]byte
	for i := 0; i+per <= len(evs); i += per {
		batches = append(batches, event.AppendBatch(nil, evs[i:i+per]))
	}
	for _, mode := range []string{"decode+match", "decode"} {
		b.Run(mode, func(b *testing.B) {
			var dec event.ViewDecoder
			hits, n := 0, 0
			fn := func(*Rule) { hits++ }
			runtime.GC()
			cpu0 := cpuTime()
			start := time.Now()
			i := 0
			for b.Loop() {
				got, err := dec.Decode(batches[i])
				if err != nil {
					b.Fatal(err)
				}
				if mode == "decode+match" {
					for _, e := range got {
						rs.Match(e, fn)
					}
				}
				n += len(got)
				if i++; i == len(batches) {
					i = 0
				}
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(n)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
			b.ReportMetric(float64(hits)/float64(n), "matches/event")
		})
	}
}
