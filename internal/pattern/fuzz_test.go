package pattern

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// Fuzz targets. Seeds live in testdata/fuzz/<Name>/; CI runs the seeds
// only, `go test -fuzz=<Name>` explores further.

// checkRecords asserts what every parser promises about its records: the
// canonical text round-trips, is a fixed point of re-parsing, and compiles.
func checkRecords(t *testing.T, recs []Record, warns []Warning) {
	for _, w := range warns {
		if w.Err == nil || w.Line < 0 {
			t.Fatalf("bad warning %#v", w)
		}
	}
	for _, r := range recs {
		r2, err := ParseRecord(r.String())
		if err != nil || r2.String() != r.String() {
			t.Fatalf("record %q does not round-trip: %v", r, err)
		}
		set, w, err := Compile([]Record{r2})
		if err != nil || len(w) > 0 {
			t.Fatalf("record %q does not compile: %v %v", r, err, w)
		}
		// Scanning with it must not panic.
		NewScanner(set, Limits{}).ScanBytes(context.Background(), "f", []byte("MZ\x90\x00ABCDEFGH\x00\x00EICAR"))
		var buf bytes.Buffer
		if err := WriteYAML(&buf, []Record{r2}); err != nil {
			t.Fatalf("WriteYAML %q: %v", r, err)
		}
		back, w2, _ := Parse(&buf, "f.yaml", FormatYAML)
		if len(w2) > 0 || len(back) != 1 || back[0].String() != r.String() {
			t.Fatalf("YAML round trip of %q: %v %v\n%s", r, back, w2, buf.String())
		}
	}
}

func fuzzLines(f *testing.F, format Format) {
	f.Fuzz(func(t *testing.T, line string) {
		recs, warns, err := Parse(strings.NewReader(line), "f."+string(format), format)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, recs, warns)
	})
}

func FuzzParseNDB(f *testing.F)  { fuzzLines(f, FormatNDB) }
func FuzzParseLDB(f *testing.F)  { fuzzLines(f, FormatLDB) }
func FuzzParseHash(f *testing.F) { fuzzLines(f, FormatHSB) }

func FuzzParseYAML(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, warns, err := Parse(bytes.NewReader(data), "f.yaml", FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, recs, warns)
	})
}

// FuzzScanContainer feeds arbitrary bytes to the scanner, as a file and as
// a stream, with small limits: it must not panic, must respect the limits
// and must find the EICAR string when it is in the raw bytes.
func FuzzScanContainer(f *testing.F) {
	set := eicarSet(f)
	lim := Limits{MaxDepth: 4, MaxTotalBytes: 4 << 20, MaxFiles: 50, MaxInMemory: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := NewScanner(set, lim)
		sc.repanic = true
		for _, mode := range []string{"bytes", "reader"} {
			var dets []Detection
			var err error
			if mode == "bytes" {
				dets, err = sc.ScanBytes(context.Background(), "f", data)
			} else {
				dets, err = sc.ScanReader(context.Background(), "f", &oneByteThenChunks{r: bytes.NewReader(data)})
			}
			if err != nil {
				t.Fatal(err)
			}
			raw := false
			for _, d := range dets {
				if strings.Count(d.Container, "!")+1 > lim.MaxDepth && d.Container != "" {
					t.Fatalf("%s: deeper than MaxDepth", d.Location())
				}
				if d.Container == "" && d.Signature == "E.Body" {
					raw = true
				}
			}
			if bytes.Contains(data, []byte("EICAR-STANDARD")) && !raw {
				t.Fatalf("%s: raw EICAR string not found: %v", mode, dets)
			}
		}
	})
}

// FuzzBodyMatch checks one body signature on one input: ScanBytes and a
// chunked ScanReader agree, and for small patterns a regular expression
// built from the same tokens agrees too.
func FuzzBodyMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, hexsig, off string, data []byte) {
		set, warns, err := Compile([]Record{{Kind: KindBody, Name: "F", Data: "0:" + off + ":" + hexsig}})
		if err != nil || len(warns) > 0 {
			return
		}
		sc := NewScanner(set, Limits{})
		a, _ := sc.ScanBytes(context.Background(), "f", data)
		b, _ := sc.ScanReader(context.Background(), "f", &oneByteThenChunks{r: bytes.NewReader(data)})
		if len(a) != len(b) {
			t.Fatalf("bytes %v vs reader %v", a, b)
		}
		toks, _ := parseHexSig(hexsig)
		o, _ := parseOffset(off)
		if len(data) > 2048 || len(hexsig) > 200 {
			return
		}
		var re strings.Builder
		re.WriteString("(?s)^")
		for _, tk := range toks {
			if tk.kind == tkGap && tk.max > 200 || tk.kind == tkGap && tk.min > 200 {
				return
			}
			re.WriteString(reTok(tk))
		}
		rx, err := regexp.Compile(re.String())
		if err != nil {
			return
		}
		// A raw match (Container "") is what the regexp can see; the
		// input may also be a container whose members match.
		got := false
		for _, d := range a {
			if d.Container == "" {
				got = true
			}
		}
		lo, hi, ok := o.resolve(&objInfo{size: int64(len(data))})
		want := false
		for s := 0; ok && s <= len(data) && !want; s++ {
			if int64(s) >= lo && int64(s) <= hi {
				want = rx.MatchString(latin1(data[s:]))
			}
		}
		if got != want {
			t.Fatalf("engine %v, regexp %v (%s)", got, want, re.String())
		}
	})
}
