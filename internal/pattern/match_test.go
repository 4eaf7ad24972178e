package pattern

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestBodyMatch(t *testing.T) {
	tests := []struct {
		name string
		rec  string // record data
		data string
		want string // "" no match, else match offset
	}{
		{"exact", "0:*:41424344", "xxABCDyy", "2"},
		{"absent", "0:*:41424344", "xxABCEyy", ""},
		{"at start", "0:*:41424344", "ABCD", "0"},
		{"offset exact", "0:2:41424344", "xxABCD", "2"},
		{"offset exact miss", "0:3:41424344", "xxABCD", ""},
		{"offset shift", "0:1,3:41424344", "xxxxABCD", "4"},
		{"offset shift miss", "0:1,2:41424344", "xxxxABCD", ""},
		{"eof", "0:EOF-6:41424344", "xxxxABCDyy", "4"},
		{"eof miss", "0:EOF-5:41424344", "xxxxABCDyy", ""},
		{"eof shift", "0:EOF-8,3:41424344", "xxxxABCDyy", "4"},
		{"eof too long", "0:EOF-20:41424344", "xxxxABCDyy", ""},
		{"any byte", "0:*:4142??44", "ABzD", "0"},
		{"nibble hi", "0:*:41424?44", "AB@D ABCD", "0"},
		{"nibble lo", "0:*:4142?344", "ABsD", "0"},
		{"nibble miss", "0:*:4142?344", "ABtD", ""},
		{"gap fixed", "0:*:4142{2}4344", "ABxxCD", "0"},
		{"gap range", "0:*:4142{1-3}4344", "ABxxxCD", "0"},
		{"gap range short", "0:*:4142{1-3}4344", "ABCD", ""},
		{"gap range long", "0:*:4142{1-3}4344", "ABxxxxCD", ""},
		{"gap upto", "0:*:4142{-2}4344", "ABCD", "0"},
		{"gap atleast", "0:*:4142{3-}4344", "ABxxxxxxxCD", "0"},
		{"gap atleast short", "0:*:4142{3-}4344", "ABxxCD", ""},
		{"star", "0:*:4142*4344", "ABxxxxxxxxxxxxCD", "0"},
		{"star order", "0:*:4142*4344", "CD ABxx", ""},
		{"star zero", "0:*:4142*4344", "ABCD", "0"},
		{"star no overlap", "0:*:41424142*42414241", "ABABA", ""},
		{"star chain", "0:*:4142*4344*4546", "AB..CD..EF", "0"},
		{"star chain order", "0:*:4142*4344*4546", "AB..EF..CD", ""},
		{"alt single", "0:*:41(42|43)44", "ACD", "0"},
		{"alt multi", "0:*:4142(4344|45)4647", "ABEFG ABCDFG", "0"},
		{"alt multi second", "0:*:4142(4344|45)4647", "ABCDFG", "0"},
		{"alt nibble", "0:*:4142(3?|7?)4344", "AB5CD", "0"},
		{"neg alt", "0:*:4142!(43|44)4546", "ABCEF ABXEF", "6"},
		{"neg alt multi", "0:*:4142!(4344|4546)4748", "ABCDGH ABCEGH", "7"},
		{"star then offset", "0:0:4142*4344", "xABCD", ""},
		{"anchored seg2", "0:0:4142*4344", "ABxxCD", "0"},
		{"leading gap", "0:0:{2}4142", "xxAB", "0"},
		{"leading gap miss", "0:1:{2}4142", "xxAB", ""},
		{"short anchor", "0:*:4d5a", "..MZ..", "2"},
		{"short anchor seg", "0:*:41424344*4d5a", "ABCD..MZ", "0"},
		{"short then long", "0:*:4d5a*41424344", "MZ..ABCD", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := compileRecs(t, "body S "+tc.rec)
			got := names(detect(t, set, []byte(tc.data)))
			want := ""
			if tc.want != "" {
				want = "S@" + tc.want
			}
			if got != want {
				t.Errorf("%s on %q: got %q, want %q", tc.rec, tc.data, got, want)
			}
		})
	}
}

func TestLogicalMatch(t *testing.T) {
	const ab, cd, ef = "4142", "4344", "4546"
	tests := []struct {
		rec, data string
		match     bool
	}{
		{"Target:0;0&1;" + ab + ";" + cd, "AB CD", true},
		{"Target:0;0&1;" + ab + ";" + cd, "AB", false},
		{"Target:0;0|1;" + ab + ";" + cd, "CD", true},
		{"Target:0;0&1=0;" + ab + ";" + cd, "AB", true},
		{"Target:0;0&1=0;" + ab + ";" + cd, "AB CD", false},
		{"Target:0;0>2;" + ab, "AB AB", false},
		{"Target:0;0>2;" + ab, "AB AB AB", true},
		{"Target:0;0=2;" + ab, "AB AB", true},
		{"Target:0;0=2;" + ab, "AB AB AB", false},
		{"Target:0;0<3&1;" + ab + ";" + cd, "AB AB CD", true},
		{"Target:0;0<3&1;" + ab + ";" + cd, "AB AB AB CD", false},
		{"Target:0;(0|1|2)>2;" + ab + ";" + cd + ";" + ef, "AB CD EF", true},
		{"Target:0;(0|1|2)>2;" + ab + ";" + cd + ";" + ef, "AB CD", false},
		{"Target:0;(0|1|2)>1,3;" + ab + ";" + cd + ";" + ef, "AB AB CD", false},
		{"Target:0;(0|1|2)>1,3;" + ab + ";" + cd + ";" + ef, "AB CD EF", true},
		{"Target:0;(0|1|2)=2,2;" + ab + ";" + cd + ";" + ef, "AB CD", true},
		{"Target:0;0&(1|2);" + ab + ";" + cd + ";" + ef, "AB EF", true},
		{"Target:0,FileSize:1-5;0;" + ab, "ABxxx", true},
		{"Target:0,FileSize:1-5;0;" + ab, "ABxxxx", false},
		{"Target:0;0;2:" + ab, "xxAB", true},
		{"Target:0;0;1:" + ab, "xxAB", false},
		{"Target:0;0;EOF-2:" + ab, "xxAB", true},
		{"Target:0;0&1;EOF-2:" + ab + ";" + cd, "CDAB", true},
		{"Target:0;0;" + ab + "::i", "xaBx", true},
		{"Target:0;0;" + ab, "xaBx", false},
		{"Target:0;0;" + ab + "::w", "A\x00B\x00", true},
		{"Target:0;0;" + ab + "::w", "AB", false},
		{"Target:0;0;" + ab + "::wa", "AB", true},
		{"Target:0;0;" + ab + "::f", "x AB.", true},
		{"Target:0;0;" + ab + "::f", "xAB.", false},
		{"Target:0;0;" + ab + "::f", "AB", true},
		{"Target:0;0;" + ab + "::f", "ABc", false},
		{"Target:0;0;" + ab + "::fi", "-ab-", true},
		{"Target:1;0;" + ab, "AB", false}, // not a PE
	}
	for _, tc := range tests {
		set := compileRecs(t, "logical L "+tc.rec)
		got := detect(t, set, []byte(tc.data))
		if (len(got) == 1) != tc.match || len(got) > 1 {
			t.Errorf("%s on %q: got %v, want match=%v", tc.rec, tc.data, got, tc.match)
		}
	}
}

// A tiny valid PE: headers, one section at file offset 0x200 (RVA 0x1000)
// holding the entry point at RVA 0x1010.
func tinyPE(body []byte) []byte {
	pe := make([]byte, 0x200+0x200)
	copy(pe, "MZ")
	binary.LittleEndian.PutUint32(pe[0x3c:], 0x40)
	copy(pe[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(pe[0x46:], 1)    // sections
	binary.LittleEndian.PutUint16(pe[0x54:], 0xe0) // optional header size
	opt := 0x58
	binary.LittleEndian.PutUint16(pe[opt:], 0x10b)
	binary.LittleEndian.PutUint32(pe[opt+16:], 0x1010) // entry point RVA
	binary.LittleEndian.PutUint32(pe[opt+32:], 0x1000) // section alignment
	binary.LittleEndian.PutUint32(pe[opt+36:], 0x200)  // file alignment
	binary.LittleEndian.PutUint32(pe[opt+60:], 0x200)  // size of headers
	sec := opt + 0xe0
	copy(pe[sec:], ".text")
	binary.LittleEndian.PutUint32(pe[sec+8:], 0x200)
	binary.LittleEndian.PutUint32(pe[sec+12:], 0x1000)
	binary.LittleEndian.PutUint32(pe[sec+16:], 0x200)
	binary.LittleEndian.PutUint32(pe[sec+20:], 0x200)
	copy(pe[0x210:], body)
	return pe
}

func TestPEOffsets(t *testing.T) {
	pe := tinyPE([]byte("ABCD"))
	tests := []struct {
		rec  string
		data []byte
		want bool
	}{
		{"1:EP+0:41424344", pe, true},
		{"1:EP+1:41424344", pe, false},
		{"1:EP-16,16:41424344", pe, true},
		{"1:S0+16:41424344", pe, true},
		{"1:S0+15:41424344", pe, false},
		{"1:S1+16:41424344", pe, false}, // no such section
		{"1:SL+16:41424344", pe, true},
		{"1:*:41424344", pe, true},
		{"6:*:41424344", pe, false},
		{"1:*:41424344", append([]byte("ZM"), pe[2:]...), false},
		{"6:*:41424344", []byte("\x7fELF....ABCD"), true},
		{"9:*:41424344", []byte("\xcf\xfa\xed\xfe....ABCD"), true},
	}
	for _, tc := range tests {
		set := compileRecs(t, "body S "+tc.rec)
		if got := len(detect(t, set, tc.data)) == 1; got != tc.want {
			t.Errorf("%s: match=%v, want %v", tc.rec, got, tc.want)
		}
	}
	for _, tc := range []struct {
		cond string
		want bool
	}{{"EntryPoint:528", true}, {"EntryPoint:0-527", false}, {"NumberOfSections:1", true}, {"NumberOfSections:2-3", false}} {
		set := compileRecs(t, "logical L Target:1,"+tc.cond+";0;41424344")
		if got := len(detect(t, set, pe)) == 1; got != tc.want {
			t.Errorf("%s: match=%v, want %v", tc.cond, got, tc.want)
		}
	}
}

// Matches must be found wherever they fall relative to the scan window:
// across chunk boundaries, in the retained tail, behind long gaps.
func TestStreamingBoundaries(t *testing.T) {
	set := compileRecs(t,
		"body Fixed 0:*:41424344454647",
		"body Star 0:*:5152535455*6162636465",
		"body Gappy 0:*:7172{100-300}73747576",
		"body Tail 0:EOF-40000:8182838485",
		"logical Two Target:0;0&1;9192939495;a1a2a3a4a5",
	)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{1000, scanChunk - 3, scanChunk + 17, 3*scanChunk + 5} {
		for trial := range 8 {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.IntN(16)) // never one of the pattern bytes
			}
			at := func(n int) int { return rng.IntN(size - n) }
			put := func(p int, s string) { copy(data[p:], s) }
			// Near chunk edges on some trials, anywhere on others.
			edge := func(n int) int {
				if trial%2 == 0 && size > scanChunk+n {
					return scanChunk - n/2 - rng.IntN(3)
				}
				return at(n)
			}
			put(edge(7), "ABCDEFG")
			p := at(5)
			put(p, "QRSTU")
			if q := p + 5 + rng.IntN(size-p-5); q+5 <= size {
				put(q, "abcde")
			} else {
				put(p, "xxxxx")
			}
			g := edge(400)
			put(g, "qr")
			put(g+2+150, "stuv")
			if size > 40000 {
				put(size-40000, "\x81\x82\x83\x84\x85")
			}
			put(at(5), "\x91\x92\x93\x94\x95")
			put(at(5), "\xa1\xa2\xa3\xa4\xa5")

			want := map[string]bool{
				"Fixed": bytes.Contains(data, []byte("ABCDEFG")),
				"Star":  bytes.Contains(data, []byte("QRSTU")) && bytes.Contains(data[bytes.Index(data, []byte("QRSTU"))+5:], []byte("abcde")),
				"Gappy": regexp.MustCompile(`(?s)qr.{100,300}stuv`).Match(data),
				"Tail":  size >= 40000 && bytes.HasPrefix(data[size-40000:], []byte("\x81\x82\x83\x84\x85")),
				"Two":   bytes.Contains(data, []byte("\x91\x92\x93\x94\x95")) && bytes.Contains(data, []byte("\xa1\xa2\xa3\xa4\xa5")),
			}
			for _, mode := range []string{"bytes", "reader"} {
				sc := NewScanner(set, Limits{})
				var dets []Detection
				var err error
				if mode == "bytes" {
					dets, err = sc.ScanBytes(t.Context(), "t", data)
				} else {
					dets, err = sc.ScanReader(t.Context(), "t", &oneByteThenChunks{r: bytes.NewReader(data)})
				}
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]bool{}
				for _, d := range dets {
					got[d.Signature] = true
				}
				for sig, w := range want {
					if got[sig] != w {
						t.Errorf("size %d trial %d %s: %s found=%v, want %v", size, trial, mode, sig, got[sig], w)
					}
				}
			}
		}
	}
}

// oneByteThenChunks returns reads of uneven sizes, to exercise the window
// refill logic.
type oneByteThenChunks struct {
	r *bytes.Reader
	n int
}

func (o *oneByteThenChunks) Read(p []byte) (int, error) {
	o.n++
	lim := []int{1, 7, 4096, 100000, 3}[o.n%5]
	if len(p) > lim {
		p = p[:lim]
	}
	return o.r.Read(p)
}

// Differential test: random patterns and data over a small alphabet (so
// that matches and near-matches are frequent), checked against a regular
// expression built from the same tokens.
func TestBodyDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	n := 3000
	if testing.Short() {
		n = 300
	}
	checked, matched := 0, 0
	for i := 0; i < n; i++ {
		if ok, m := diffCase(t, rng); ok {
			checked++
			if m {
				matched++
			}
		}
	}
	if checked < n/2 || matched < checked/10 || matched > checked*9/10 {
		t.Fatalf("weak test: %d of %d generated cases compiled, %d matched", checked, n, matched)
	}
	t.Logf("%d cases compiled, %d matched", checked, matched)
}

const diffAlphabet = "abc"

func randPattern(rng *rand.Rand) string {
	var sb strings.Builder
	lit := func() { sb.WriteString(fmt.Sprintf("%02x", diffAlphabet[rng.IntN(len(diffAlphabet))])) }
	lit()
	lit()
	for n := 2 + rng.IntN(8); n > 0; n-- {
		switch r := rng.IntN(20); {
		case r < 10:
			lit()
		case r == 10:
			sb.WriteString("??")
		case r == 11:
			sb.WriteString("6?")
		case r == 12:
			sb.WriteString("?2")
		case r == 13:
			fmt.Fprintf(&sb, "{%d-%d}", rng.IntN(3), 3+rng.IntN(3))
		case r == 14:
			fmt.Fprintf(&sb, "{%d-}", rng.IntN(3))
			lit()
			lit()
		case r == 15:
			sb.WriteString("*")
			lit()
			lit()
		case r == 16:
			sb.WriteString("(61|62)")
		case r == 17:
			sb.WriteString("(6162|63)")
		case r == 18:
			sb.WriteString("!(61|63)")
		case r == 19:
			fmt.Fprintf(&sb, "{%d}", rng.IntN(4))
		}
	}
	lit()
	return sb.String()
}

func reByte(b byte) string { return fmt.Sprintf(`\x{%x}`, b) }

func reClass(ok func(byte) bool) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for c := 0; c < 256; c++ {
		if ok(byte(c)) {
			sb.WriteString(reByte(byte(c)))
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

func reTok(t tok) string {
	switch t.kind {
	case tkByte:
		return reByte(t.b)
	case tkAny:
		return "."
	case tkHiNib:
		return reClass(func(c byte) bool { return c&0xf0 == t.b })
	case tkLoNib:
		return reClass(func(c byte) bool { return c&0x0f == t.b })
	case tkGap:
		if t.max < 0 {
			return fmt.Sprintf(".{%d,}", t.min)
		}
		return fmt.Sprintf(".{%d,%d}", t.min, t.max)
	case tkStar:
		return ".*"
	}
	var alts []string
	for _, a := range t.alts {
		var s string
		for _, e := range a {
			s += reTok(e)
		}
		alts = append(alts, s)
	}
	if t.neg {
		return reClass(func(c byte) bool {
			for _, a := range t.alts {
				if e := byteElem(a[0], false); e.matchByte(c) {
					return false
				}
			}
			return true
		})
	}
	return "(?:" + strings.Join(alts, "|") + ")"
}

// sample returns bytes the tokens match.
func sample(rng *rand.Rand, toks []tok) []byte {
	var out []byte
	pick := func(ok func(byte) bool) byte {
		for {
			c := byte(rng.IntN(256))
			if rng.IntN(2) == 0 {
				c = diffAlphabet[rng.IntN(len(diffAlphabet))]
			}
			if ok(c) {
				return c
			}
		}
	}
	any := func(n int) {
		for range n {
			out = append(out, pick(func(byte) bool { return true }))
		}
	}
	for _, t := range toks {
		switch t.kind {
		case tkByte, tkAny, tkHiNib, tkLoNib:
			e := byteElem(t, false)
			out = append(out, pick(e.matchByte))
		case tkGap:
			hi := t.max
			if hi < 0 {
				hi = t.min + 3
			}
			any(t.min + rng.IntN(hi-t.min+1))
		case tkStar:
			any(rng.IntN(4))
		case tkAlt:
			if t.neg {
				out = append(out, pick(func(c byte) bool {
					for _, a := range t.alts {
						if e := byteElem(a[0], false); e.matchByte(c) {
							return false
						}
					}
					return true
				}))
				continue
			}
			out = append(out, sample(rng, t.alts[rng.IntN(len(t.alts))])...)
		}
	}
	return out
}

// latin1 maps bytes to runes 0-255 so that regexp can match raw bytes.
func latin1(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func diffCase(t *testing.T, rng *rand.Rand) (checked, matched bool) {
	hexsig := randPattern(rng)
	offsets := []string{"*", "0", "2", "1,4", "EOF-6", "EOF-9,3"}
	off := offsets[rng.IntN(len(offsets))]
	toks, err := parseHexSig(hexsig)
	if err != nil {
		t.Fatalf("generated %q: %v", hexsig, err)
	}
	set, warns, err := Compile([]Record{{Kind: KindBody, Name: "D", Data: "0:" + off + ":" + hexsig}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		if !strings.Contains(warns[0].Error(), "anchor") {
			t.Fatalf("%s: unexpected warning %v", hexsig, warns[0])
		}
		return false, false
	}
	var re strings.Builder
	re.WriteString("(?s)^")
	for _, tk := range toks {
		re.WriteString(reTok(tk))
	}
	rx := regexp.MustCompile(re.String())

	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = diffAlphabet[rng.IntN(len(diffAlphabet))]
		}
		return b
	}
	// Random context around an instance of the pattern, sometimes with
	// one byte changed.
	data := randBytes(rng.IntN(12))
	inst := sample(rng, toks)
	if len(inst) > 0 && rng.IntN(3) == 0 {
		inst[rng.IntN(len(inst))] = diffAlphabet[rng.IntN(len(diffAlphabet))]
	}
	data = append(data, inst...)
	data = append(data, randBytes(rng.IntN(12))...)
	o, _ := parseOffset(off)
	lo, hi, ok := o.resolve(&objInfo{size: int64(len(data))})
	text := latin1(data)
	want := false
	for s := 0; ok && s <= len(data) && !want; s++ {
		if int64(s) < lo || int64(s) > hi {
			continue
		}
		// text is Latin-1 in UTF-8: byte offset s is rune offset s.
		bs := len(latin1(data[:s]))
		want = rx.MatchString(text[bs:])
	}
	got := len(detect(t, set, data)) > 0
	if got != want {
		t.Errorf("pattern %s offset %s on %q: engine %v, regexp %v (%s)", hexsig, off, data, got, want, re.String())
	}
	return true, want
}
