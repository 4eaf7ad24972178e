package update

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func recs(lines ...string) Records {
	out := make(Records, len(lines))
	for i, l := range lines {
		out[i] = []byte(l)
	}
	return out
}

func TestCanonical(t *testing.T) {
	in := recs("b", "a", "c", "a", "b")
	got, err := Canonical(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := recs("a", "b", "c"); !equalRecords(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if string(in[0]) != "b" {
		t.Fatal("Canonical modified its input")
	}
	for _, bad := range []Records{recs("a\nb"), recs(""), {make([]byte, MaxRecordLen+1)}} {
		if _, err := Canonical(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Canonical(%.20q): %v, want ErrInvalid", bad, err)
		}
	}
	if ContentHash(nil) != sha256.Sum256(nil) || ContentHash(recs("a", "b")) != sha256.Sum256([]byte("a\nb\n")) {
		t.Fatal("ContentHash is not the sha256 of the newline-terminated lines")
	}
	long := Records{bytes.Repeat([]byte("x"), 100<<10), []byte("y")}
	if ContentHash(long) != sha256.Sum256(append(append(bytes.Repeat([]byte("x"), 100<<10), '\n'), "y\n"...)) {
		t.Fatal("ContentHash wrong for a record larger than its buffer")
	}
}

func equalRecords(a, b Records) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestValidChannel(t *testing.T) {
	for _, ok := range []string{"main", "bandage", "cleanup", "a", "tenant-7"} {
		if ValidChannel(ok) != nil {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "Main", "7main", "a/b", "..", "main.json", "a b", "abcdefghijklmnopqrstuvwxyzabcdefg"} {
		if ValidChannel(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFullRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 5000} {
		r, _ := Canonical(genRecords(uint64(n), n))
		blob := EncodeFull("main", 7, r)
		h, got, err := DecodeFull(blob, 0)
		if err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if h.Channel != "main" || h.Version != 7 || h.Records != len(r) || h.ContentSHA256 != ContentHash(r) || !equalRecords(got, r) {
			t.Fatalf("%d records: round trip differs: %+v", n, h)
		}
	}
}

func TestDecodeFullRejects(t *testing.T) {
	good, _ := Canonical(genRecords(1, 100))
	blob := EncodeFull("main", 1, good)
	raw, _ := decompress(blob, 0)
	enc := func(raw []byte) []byte { return compress(deltaEncoder(), raw) }
	headerLen := len(raw) - good.Size()
	mod := func(f func(b []byte) []byte) []byte { return enc(f(append([]byte(nil), raw...))) }
	cases := map[string]struct {
		blob []byte
		want error
	}{
		"empty":            {nil, ErrFormat},
		"not zstd":         {[]byte("hello world, not a zstd frame"), ErrFormat},
		"delta magic":      {mod(func(b []byte) []byte { copy(b, magicDelta); return b }), ErrFormat},
		"format 2":         {mod(func(b []byte) []byte { b[4] = 2; return b }), ErrFormat},
		"truncated header": {enc(raw[:10]), ErrFormat},
		"count too high":   {mod(func(b []byte) []byte { return b[:len(b)-1] }), ErrFormat},
		"trailing bytes":   {mod(func(b []byte) []byte { return append(b, "zzz\n"...) }), ErrFormat},
		"out of order":     {mod(func(b []byte) []byte { swapFirstTwoLines(b[headerLen:]); return b }), ErrFormat},
		"hash mismatch":    {mod(func(b []byte) []byte { b[len(b)-2] ^= 1; return b }), ErrVerify},
		"second frame":     {append(append([]byte(nil), blob...), blob...), ErrFormat},
	}
	for name, tc := range cases {
		if _, _, err := DecodeFull(tc.blob, 0); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// The declared size is checked against the limit before decoding.
	if _, _, err := DecodeFull(blob, int64(len(raw)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
	// A frame without a declared content size is refused.
	w, _ := zstd.NewWriter(nil)
	stream := w.EncodeAll([]byte("tiny"), nil)
	if _, _, err := DecodeFull(stream, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("frame without content size: %v", err)
	}
}

func swapFirstTwoLines(b []byte) {
	i := bytes.IndexByte(b, '\n')
	j := i + 1 + bytes.IndexByte(b[i+1:], '\n')
	a, c := append([]byte(nil), b[:i]...), append([]byte(nil), b[i+1:j]...)
	if len(a) != len(c) {
		// Keep the bytes in place: only the order of equal-length lines is
		// easy to swap; otherwise reverse the first line's bytes.
		for k := 0; k < i/2; k++ {
			b[k], b[i-1-k] = b[i-1-k], b[k]
		}
		if bytes.Compare(b[:i], b[i+1:j]) < 0 {
			b[0] = 0xff
		}
		return
	}
	copy(b, c)
	copy(b[i+1:], a)
}

func testDelta(from, to Records) *Delta {
	rm, add := DiffRecords(from, to)
	return &Delta{Channel: "main", From: 1, To: 2, FromRecords: len(from), ToRecords: len(to),
		FromSHA256: ContentHash(from), ToSHA256: ContentHash(to), Removed: rm, Added: add}
}

func TestDeltaRoundTripAndApply(t *testing.T) {
	a, _ := Canonical(genRecords(1, 2000))
	for _, b := range []Records{a, mutateSet(2, a, 100, 300), mutateSet(3, a, 2000, 0), mutateSet(4, a, 0, 500), nil} {
		d := testDelta(a, b)
		got, err := DecodeDelta(EncodeDelta(d), 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := got.Apply(a)
		if err != nil {
			t.Fatal(err)
		}
		if !equalRecords(out, b) && len(b) != 0 {
			t.Fatal("applied delta differs from the target")
		}
	}
}

func TestDeltaApplyRejects(t *testing.T) {
	a := recs("a", "c", "e")
	b := recs("b", "c", "d")
	good := testDelta(a, b)
	check := func(name string, d *Delta, base Records) {
		t.Helper()
		if _, err := d.Apply(base); !errors.Is(err, ErrDelta) {
			t.Errorf("%s: %v, want ErrDelta", name, err)
		}
	}
	check("wrong base", good, recs("a", "c", "f"))
	check("short base", good, recs("a", "c"))
	d := *good
	d.Removed = recs("x")
	d.FromSHA256 = ContentHash(a)
	check("removed record absent", &d, a)
	d = *good
	d.Added = recs("b", "e") // e is already present
	d.ToRecords = 4
	check("added record present", &d, a)
	d = *good
	d.ToSHA256[0] ^= 1
	check("result hash", &d, a)
	// Decoding checks the structure.
	for name, mut := range map[string]func(*Delta){
		"backwards":      func(d *Delta) { d.From, d.To = 3, 2 },
		"counts":         func(d *Delta) { d.ToRecords++ },
		"unsorted added": func(d *Delta) { d.Added = recs("d", "b") },
		"duplicate":      func(d *Delta) { d.Removed = recs("a", "a"); d.ToRecords-- },
	} {
		d := *good
		mut(&d)
		if _, err := DecodeDelta(EncodeDelta(&d), 0); !errors.Is(err, ErrDelta) {
			t.Errorf("decode %s: %v, want ErrDelta", name, err)
		}
	}
	if _, err := DecodeDelta(EncodeFull("main", 1, a), 0); !errors.Is(err, ErrDelta) {
		t.Errorf("full blob as delta: %v", err)
	}
}

func TestDiffRecords(t *testing.T) {
	rm, add := DiffRecords(recs("a", "b", "d"), recs("b", "c", "d", "e"))
	if !equalRecords(rm, recs("a")) || !equalRecords(add, recs("c", "e")) {
		t.Fatalf("removed %q added %q", rm, add)
	}
}
