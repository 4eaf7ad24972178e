package update

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// TestFuzzSeeds keeps testdata/fuzz/<FuzzName>/ in step with the seed
// generators (go test -run TestFuzzSeeds -update rewrites them); the fuzz
// targets run those files as part of every go test.
func TestFuzzSeeds(t *testing.T) {
	write := func(name string, args ...[]byte) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(a)))
		}
		sum := sha256.Sum256(b.Bytes())
		path := filepath.Join("testdata", "fuzz", name, fmt.Sprintf("seed-%x", sum[:8]))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed %s missing (go test -run TestFuzzSeeds -update): %v", path, err)
		}
	}
	for _, s := range fullSeeds() {
		write("FuzzDecodeFull", s)
	}
	for _, s := range deltaSeeds() {
		write("FuzzApplyDelta", s.base, s.blob)
	}
}

const fuzzMaxDecoded = 1 << 20

// FuzzDecodeFull: any input either decodes to a canonical set whose hash
// and count match its header, or fails with a package sentinel; never a
// panic or an allocation beyond the limit.
func FuzzDecodeFull(f *testing.F) {
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, recs, err := DecodeFull(blob, fuzzMaxDecoded)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrVerify) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if !isCanonical(recs) || h.Records != len(recs) || ContentHash(recs) != h.ContentSHA256 {
			t.Fatalf("accepted a blob that is not what its header says")
		}
		for _, r := range recs {
			if checkRecord(r) != nil {
				t.Fatalf("accepted an invalid record %q", r)
			}
		}
		// Re-encoding gives the same content.
		_, again, err := DecodeFull(EncodeFull(h.Channel, h.Version, recs), fuzzMaxDecoded)
		if err != nil || !equalRecords(again, recs) {
			t.Fatalf("re-encoded blob does not round-trip: %v", err)
		}
	})
}

// FuzzApplyDelta: base is newline-separated records, blob a delta. A delta
// that applies must yield exactly the content (count and hash) it
// promises; everything else fails with ErrDelta.
func FuzzApplyDelta(f *testing.F) {
	f.Fuzz(func(t *testing.T, baseText, blob []byte) {
		var base Records
		for _, l := range bytes.Split(baseText, []byte{'\n'}) {
			if len(l) > 0 {
				base = append(base, l)
			}
		}
		base, err := Canonical(base)
		if err != nil {
			return
		}
		d, err := DecodeDelta(blob, fuzzMaxDecoded)
		if err != nil {
			if !errors.Is(err, ErrDelta) {
				t.Fatalf("decode error without ErrDelta: %v", err)
			}
			return
		}
		out, err := d.Apply(base)
		if err != nil {
			if !errors.Is(err, ErrDelta) {
				t.Fatalf("apply error without ErrDelta: %v", err)
			}
			return
		}
		if len(out) != d.ToRecords || ContentHash(out) != d.ToSHA256 || !isCanonical(out) {
			t.Fatal("applied delta does not produce what it promises")
		}
		// The delta's lists are exactly the difference it claims.
		rm, add := DiffRecords(base, out)
		if !equalRecords(rm, d.Removed) || !equalRecords(add, d.Added) {
			t.Fatal("delta lists are not the difference between base and result")
		}
	})
}

func fullSeeds() [][]byte {
	small, _ := Canonical(genRecords(1, 3))
	mid, _ := Canonical(genRecords(2, 40))
	return [][]byte{
		EncodeFull("main", 1, nil),
		EncodeFull(BandageChannel, 7, small),
		EncodeFull("main", 42, mid),
		EncodeFull("cleanup", 3, recs("x")),
		[]byte("MMRF"),
		{0x28, 0xb5, 0x2f, 0xfd},
	}
}

type deltaSeed struct{ base, blob []byte }

func deltaSeeds() []deltaSeed {
	a, _ := Canonical(genRecords(3, 20))
	b := mutateSet(4, a, 5, 7)
	text := func(r Records) []byte { return appendLines(nil, r) }
	seeds := []deltaSeed{
		{text(a), EncodeDelta(testDelta(a, b))},
		{text(a), EncodeDelta(testDelta(a, nil))},
		{nil, EncodeDelta(testDelta(nil, recs("only")))},
		{text(recs("a", "c", "e")), EncodeDelta(testDelta(recs("a", "c", "e"), recs("b", "c", "d")))},
		{text(b), EncodeDelta(testDelta(a, b))}, // wrong base
	}
	return seeds
}
