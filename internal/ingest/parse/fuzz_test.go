package parse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mamori-soc/mamori/internal/event"
)

// Seed corpora live in testdata/fuzz/FuzzXxx (go test fuzz v1 files);
// `go test -run TestFuzzSeeds -update` regenerates them from the test
// tables and the syslog-wire captures. Plain `go test` runs the seeds.

// fuzzState returns a state for calling one format parser directly.
func fuzzState(e *event.Event) (*state, func()) {
	sc := scratchPool.Get().(*scratch)
	st := &state{p: New(), e: e, ref: ingested, sc: sc}
	return st, func() { sc.reset(); scratchPool.Put(sc) }
}

// fieldsOK checks sortedness (after finish), non-empty names/values and
// UTF-8 validity.
func fieldsOK(t *testing.T, in string, e *event.Event) {
	t.Helper()
	sc := new(scratch)
	finish(e, sc)
	for i, f := range e.Fields {
		if f.Name == "" || f.Value == "" || !utf8.ValidString(f.Name) || !utf8.ValidString(f.Value) {
			t.Fatalf("%q: bad field %+v", in, f)
		}
		if i > 0 && e.Fields[i-1].Name >= f.Name {
			t.Fatalf("%q: not sorted/unique: %q %q", in, e.Fields[i-1].Name, f.Name)
		}
	}
}

func FuzzParse(f *testing.F) {
	p := New()
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEvent()
		r := p.Parse(b, e)
		if err := invariantErr(b, r, e); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		// Deterministic: the same input gives the same event.
		e2 := newEvent()
		r2 := p.Parse(b, e2)
		if r != r2 || !e.Timestamp.Equal(e2.Timestamp) || fmt.Sprint(e.Fields) != fmt.Sprint(e2.Fields) {
			t.Fatalf("%q: not deterministic", b)
		}
		if len(b) > 0 && !r.Unparsed && r.Format == "" {
			t.Fatalf("%q: no format", b)
		}
	})
}

func FuzzCEF(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		e := newEvent()
		st, done := fuzzState(e)
		defer done()
		ok := st.parseCEF("CEF:" + strings.TrimPrefix(s, "CEF:"))
		fieldsOK(t, s, e)
		if ok && e.Value("cef.version") == "" {
			t.Fatalf("%q: accepted without version", s)
		}
		// The extension scanner never invents bytes: every key is in the input.
		for _, p := range scanCEFExt(s, nil) {
			if !strings.Contains(s, p.key+"=") {
				t.Fatalf("%q: key %q not in input", s, p.key)
			}
		}
	})
}

func FuzzLEEF(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		e := newEvent()
		st, done := fuzzState(e)
		defer done()
		st.parseLEEF("LEEF:" + strings.TrimPrefix(s, "LEEF:"))
		fieldsOK(t, s, e)
		for _, d := range []byte{'\t', '^', '|'} {
			for _, p := range scanDelimited(s, d, nil) {
				if !strings.Contains(s, p.key) {
					t.Fatalf("%q: key %q not in input", s, p.key)
				}
			}
		}
	})
}

func FuzzKV(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		e := newEvent()
		st, done := fuzzState(e)
		defer done()
		format := st.parseKV(s, looksFortiGate(s))
		fieldsOK(t, s, e)
		if format == "" && len(e.Fields) != 0 {
			t.Fatalf("%q: rejected but wrote %v", s, e.Fields)
		}
		pairs, covered, other := scanKV(s, nil)
		if covered+other > len(s) {
			t.Fatalf("%q: covered %d + other %d > %d", s, covered, other, len(s))
		}
		if format != "" && len(pairs) < kvMinPairs {
			t.Fatalf("%q: accepted %d pairs", s, len(pairs))
		}
	})
}

// refFlatten flattens v the documented way using encoding/json's decoding;
// it reports false when two paths collide (then the order is ambiguous).
func refFlatten(prefix string, depth int, v any, out map[string]string) bool {
	switch x := v.(type) {
	case map[string]any:
		if depth >= maxFlattenDepth && len(x) > 0 {
			out[prefix] = "\x00raw" // kept as JSON text
			return true
		}
		for k, val := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if !refFlatten(p, depth+1, val, out) {
				return false
			}
		}
		return true
	case []any:
		var parts []string
		for _, el := range x {
			switch y := el.(type) {
			case map[string]any, []any:
				out[prefix] = "\x00raw" // compared loosely
				return true
			case nil:
			case string:
				if y != "" {
					parts = append(parts, y)
				}
			default:
				parts = append(parts, fmt.Sprint(y))
			}
		}
		if len(parts) > 0 {
			return setRef(out, prefix, strings.Join(parts, ","))
		}
		return true
	case nil:
		return true
	case string:
		if x == "" {
			return true
		}
		return setRef(out, prefix, x)
	case bool:
		return setRef(out, prefix, fmt.Sprint(x))
	case json.Number:
		return setRef(out, prefix, x.String())
	}
	return false
}

func setRef(out map[string]string, k, v string) bool {
	if _, dup := out[k]; dup {
		return false
	}
	out[k] = v
	return true
}

func FuzzJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		var js jsonScratch
		trailing, err := js.parseObject(s)
		valid := json.Valid([]byte(s))
		trimmed := strings.TrimLeft(s, " \t\r\n")
		isObj := strings.HasPrefix(trimmed, "{")
		deep := strings.Count(s, "[")+strings.Count(s, "{") > maxJSONDepth-10
		hasCtl := false
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				hasCtl = true
			}
		}
		switch {
		case valid && isObj && !deep && (err != nil || trailing != 0):
			t.Fatalf("%q: valid JSON object refused: %v (trailing %d)", s, err, trailing)
		case err == nil && trailing == 0 && !valid && !hasCtl:
			t.Fatalf("%q: invalid JSON accepted", s)
		}
		if err != nil || !valid || !isObj {
			return
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v map[string]any
		if dec.Decode(&v) != nil {
			return
		}
		ref := map[string]string{}
		if !refFlatten("", 0, v, ref) {
			return
		}
		mine := map[string]string{}
		for i := range js.leaves {
			mine[string(js.key(&js.leaves[i]))] = js.leaves[i].val
		}
		for k, want := range ref {
			got, ok := mine[k]
			if want == "\x00raw" {
				if !ok || !json.Valid([]byte(got)) {
					t.Fatalf("%q: key %q raw %q", s, k, got)
				}
				continue
			}
			if !ok || got != want {
				t.Fatalf("%q: key %q = %q, want %q", s, k, got, want)
			}
		}
		// And through Parse: every event invariant holds.
		e := newEvent()
		r := New().Parse(b, e)
		if err := invariantErr(b, r, e); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
	})
}

// fuzzSeeds are the seed inputs of each target.
func fuzzSeeds(t testing.TB) map[string][]string {
	cefs := []string{
		`CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232`,
		`CEF:0|a\|b|c\\d|1|2|n|Low|k=v\=w x=line\nnext y=trailing\\ z=`,
		`CEF:0|V|P|1|1|n|5|`, `CEF:0|V|P|1|1|n|5`, `CEF:0|V|P|1|1|n`, `CEF:|||||||`, `CEF:0|V|P|1|1|n|5|=`, `CEF:0|V|P|1|1|n|5| a= =b c==d`,
		`CEF:0|V|P|1|1|n|5|rt=Nov 25 2026 10:00:00.123 CET start=0 end=99999999999999999999 cs1Label=a b cs1=x fileHash=abc`,
		"CEF:0|V|P|1|1|n|5|msg=\\", "CEF:1|V|P|1|1|n|5|url=http://x/?a=b&c=d e=f",
	}
	leefs := []string{
		"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1\tsev=5",
		"LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=1^dst=2^msg=a^b",
		"LEEF:2.0|V|P|1|E|x09|a=1\tb=2", "LEEF:2.0|V|P|1|E|0x7C|a=1|b=2", "LEEF:2.0|V|P|1|E||a=1\tb=2", "LEEF:2.0|V|P|1|E|xZZ|a=1",
		"LEEF:1.0|V|P|1|E|devTime=Nov 25 2026 10:00:00\tdevTimeFormat=MMM dd yyyy HH:mm:ss", "LEEF:1.0|V|P|1|E|devTime=x\tdevTimeFormat='unterminated",
		"LEEF:1.0|V|P|1", "LEEF:9|V|P|1|E|", "LEEF:1.0|V|P|1|E|a b=c d",
	}
	kvs := []string{
		`date=2026-11-25 time=10:00:00 devname="FG100" devid="FG" logid="1" type="traffic" subtype="forward" srcip=10.0.0.1 action="deny" proto=6`,
		`a=1 b=2 c=3`, `a="x \"y\" z" b=\ c="unterminated`, `k= k2= k3=`, `=== a=b`, `a=b c=d prose prose prose prose`,
		`date=2026-13-45 time=99:99:99 tz="+9999" eventtime=1 a=b`, `type="utm" subtype="virus" devid=x virus="EICAR" action=blocked`,
	}
	jsons := []string{
		`{}`, `{"a":1}`, `{"a":{"b":{"c":[1,2,{"d":null}]}},"e":"\u00e9\ud83d\ude00\ud800x","f":-0.5e+10,"g":[],"h":[[]],"i":true}`,
		`{"a":"\"\\\/\b\f\n\r\t"}`, `{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":"x` + "\x01" + `"}`, `{"a":1} {"b":2}`, `[{"a":1}]`,
		`{"a.b":1,"a":{"b":2}}`, `{"a":{},"b":[null,"",1]}`, strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40),
		`{"timestamp":"2026-11-25T10:00:00Z","event_type":"alert","alert":{"signature":"x"}}`, `{"ts":1.5,"uid":"C","id.orig_h":"1.1.1.1"}`,
	}
	parses := []string{"", "<", "<1>", "<191>", "<192>x", "<0>1 ", "<13>1 - - - - - [", "\xff\xfe", "\xef\xbb\xbf<13>x", "<13>Nov 25 17:52:33", "@cee: {\"a\":1}", "@cee:"}
	for _, c := range cases {
		parses = append(parses, c.in)
	}
	parses = append(parses, cefs...)
	parses = append(parses, leefs...)
	parses = append(parses, kvs...)
	parses = append(parses, jsons...)
	if dir := filepath.Join(corpusDir, "syslog-wire", "captures"); dirExists(dir) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, fr := range deframe(b) {
				parses = append(parses, string(fr))
			}
		}
	}
	return map[string][]string{"FuzzParse": parses, "FuzzCEF": cefs, "FuzzLEEF": leefs, "FuzzKV": kvs, "FuzzJSON": jsons,
		"FuzzSyslogFastPath": syslogSamples(t)}
}

// TestFuzzSeeds keeps testdata/fuzz in step with fuzzSeeds (-update
// rewrites it) so plain `go test` runs every seed through the targets.
func TestFuzzSeeds(t *testing.T) {
	for target, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			sum := sha256.Sum256([]byte(body))
			path := filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8]))
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Errorf("%s: seed %q missing (run go test -run TestFuzzSeeds -update)", target, s)
				break
			}
		}
	}
}
