package pattern

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// genRecords builds a deterministic synthetic signature set: nHash hash
// signatures (md5/sha1/sha256 mixed, 10% size-wildcard) and nBody body
// signatures of 8-40 bytes, some with ??, nibbles, bounded gaps,
// alternatives and '*'.
func genRecords(nHash, nBody int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	recs := make([]Record, 0, nHash+nBody)
	widths := []int{16, 20, 32}
	buf := make([]byte, 32)
	for i := range nHash {
		w := widths[rng.IntN(3)]
		for j := range w {
			buf[j] = byte(rng.Uint32())
		}
		size := fmt.Sprint(rng.IntN(4 << 20))
		if rng.IntN(10) == 0 {
			size = "*"
		}
		recs = append(recs, Record{Kind: KindHash, Name: fmt.Sprintf("Gen.Hash.%d", i), Data: hex.EncodeToString(buf[:w]) + ":" + size})
	}
	for i := range nBody {
		n := 8 + rng.IntN(33)
		var sb strings.Builder
		for j := 0; j < n; j++ {
			switch r := rng.IntN(100); {
			case j < 4 || j >= n-1 || r >= 12:
				fmt.Fprintf(&sb, "%02x", byte(rng.Uint32()))
			case r < 4:
				sb.WriteString("??")
			case r < 6:
				fmt.Fprintf(&sb, "%x?", rng.IntN(16))
			case r < 8:
				fmt.Fprintf(&sb, "{%d-%d}", rng.IntN(3), 3+rng.IntN(8))
			case r < 10:
				fmt.Fprintf(&sb, "(%02x|%02x|%02x)", byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()))
			case r < 11 && j > 6 && n-j > 6:
				sb.WriteString("*")
				for k := 0; k < 4; k++ {
					fmt.Fprintf(&sb, "%02x", byte(rng.Uint32()))
				}
			default:
				fmt.Fprintf(&sb, "%02x", byte(rng.Uint32()))
			}
		}
		recs = append(recs, Record{Kind: KindBody, Name: fmt.Sprintf("Gen.Body.%d", i), Data: "0:*:" + sb.String()})
	}
	return recs
}

// benchData is a few MB of half random bytes, half English-like text.
func benchData(size int) []byte {
	rng := rand.New(rand.NewPCG(7, 11))
	data := make([]byte, 0, size)
	for len(data) < size/2 {
		data = append(data, byte(rng.Uint32()))
	}
	words := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were their one all we can her has there been if more when will would who so no")
	for len(data) < size {
		data = append(data, words[rng.IntN(len(words))]...)
		data = append(data, ' ')
		if rng.IntN(12) == 0 {
			data = append(data, ".\n"...)
		}
	}
	return data[:size]
}

// smallSet has as few signatures as possible while costing the same
// hashing work as the large generated set: one size-wildcard signature of
// each hash type forces all three digests, as the 10% wildcards of the
// large set do.
func smallSet() []Record {
	recs := genRecords(2, 5, 1)
	for _, h := range []string{
		"0123456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcdef01234567",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	} {
		recs = append(recs, Record{Kind: KindHash, Name: "Small." + h[:4], Data: h + ":*"})
	}
	return recs
}

func benchScan(b *testing.B, recs []Record) {
	set, warns, err := Compile(recs)
	if err != nil {
		b.Fatal(err)
	}
	if st := set.Stats(); len(warns) > st.Body/50+1 {
		b.Fatalf("%d generated signatures rejected, first: %v", len(warns), warns[0])
	}
	data := benchData(4 << 20)
	sc := NewScanner(set, Limits{})
	ctx := context.Background()
	b.ReportMetric(float64(set.Stats().Hash+set.Stats().Body), "sigs")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := sc.ScanBytes(ctx, "bench", data); err != nil {
			b.Fatal(err)
		}
	}
}

// Throughput with 110,000 signatures and with 10: the difference is what
// the signature count costs (the hashing work is the same in both).
func BenchmarkScan(b *testing.B) {
	b.Run("sigs=100k-hash+10k-body", func(b *testing.B) { benchScan(b, genRecords(100_000, 10_000, 1)) })
	b.Run("sigs=10", func(b *testing.B) { benchScan(b, smallSet()) })
}

// Body matching alone (no hash signatures, so no digests are computed).
func BenchmarkScanBodyOnly(b *testing.B) {
	b.Run("body=10k", func(b *testing.B) { benchScan(b, genRecords(0, 10_000, 1)) })
	b.Run("body=5", func(b *testing.B) { benchScan(b, genRecords(0, 5, 1)) })
}

func BenchmarkCompile500kHash10kBody(b *testing.B) {
	recs := genRecords(500_000, 10_000, 2)
	b.ReportAllocs()
	var set *Set
	for b.Loop() {
		var err error
		if set, _, err = Compile(recs); err != nil {
			b.Fatal(err)
		}
	}
	// Retained size of the compiled set.
	runtime.GC()
	var with, without runtime.MemStats
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(set)
	set = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(with.HeapAlloc-without.HeapAlloc)/(1<<20), "set-MiB")
}

// BenchmarkLoad500kHash10kBody parses ClamAV text files (hdb/hsb/ndb) and
// compiles them: the cost of loading a database from disk.
func BenchmarkLoad500kHash10kBody(b *testing.B) {
	dir := b.TempDir()
	files := map[string]*strings.Builder{"gen.hdb": {}, "gen.hsb": {}, "gen.ndb": {}}
	for _, r := range genRecords(500_000, 10_000, 2) {
		switch {
		case r.Kind == KindBody:
			fmt.Fprintf(files["gen.ndb"], "%s:%s\n", r.Name, r.Data)
		case strings.IndexByte(r.Data, ':') == 32:
			h, size, _ := strings.Cut(r.Data, ":")
			fmt.Fprintf(files["gen.hdb"], "%s:%s:%s\n", h, size, r.Name)
		default:
			h, size, _ := strings.Cut(r.Data, ":")
			fmt.Fprintf(files["gen.hsb"], "%s:%s:%s\n", h, size, r.Name)
		}
	}
	for name, sb := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		set, _, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if set.Stats().Hash != 500_000 {
			b.Fatalf("stats %+v", set.Stats())
		}
	}
}
