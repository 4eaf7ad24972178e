package parse

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"github.com/mamori-soc/mamori/internal/testutil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/evtx"
)

// corpusDir is the shared test corpus ("" when absent).
var corpusDir = testutil.CorpusDir()

// corpus returns the path of a corpus folder, skipping the test when it is
// absent (a fresh clone) unless MAMORI_REQUIRE_ALL=1.
func corpus(t testing.TB, sub string) string {
	t.Helper()
	return testutil.Corpus(t, sub)
}

// deframe splits a captured TCP/UDP byte stream into syslog messages:
// RFC 6587 octet counting ("NNN <pri>...") or LF-terminated frames. Test
// only: the real framing lives in the ingest transport.
func deframe(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && i < 10 && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i > 0 && i+1 < len(b) && b[i] == ' ' && b[i+1] == '<' {
			if n, err := strconv.Atoi(string(b[:i])); err == nil && i+1+n <= len(b) {
				out = append(out, b[i+1:i+1+n])
				b = b[i+1+n:]
				continue
			}
		}
		k := bytes.IndexByte(b, '\n')
		if k < 0 {
			out = append(out, b)
			break
		}
		if k > 0 {
			out = append(out, b[:k])
		}
		b = b[k+1:]
	}
	return out
}

func TestDeframe(t *testing.T) {
	got := deframe([]byte("5 <1>ab3 <2>x\n<3>y\n<4>z"))
	want := []string{"<1>ab", "<2>", "x", "<3>y", "<4>z"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("frame %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestSyslogWireCaptures parses every frame of the real client captures.
func TestSyslogWireCaptures(t *testing.T) {
	noVendor(t)
	dir := filepath.Join(corpus(t, "syslog-wire"), "captures")
	type expect struct {
		frames int
		format string
		host   string
		app    string
	}
	want := map[string]expect{
		"loggen_tcp5424_first10.bin": {10, "rfc5424", "localhost", "prg00000"},
		"logger_tcp_lf.bin":          {1, "rfc5424", "vm", "soc-test"},
		"logger_tcp_octet.bin":       {2, "rfc5424", "vm", "soc-test"},
		"logger_udp3164.bin":         {1, "rfc3164", "vm", "soc-test"},
		"logger_udp5424.bin":         {1, "rfc5424", "vm", "soc-test"},
		"openssl_s_client_octet.bin": {1, "rfc5424", "host", "app"},
		"rs_tcp_octet.bin":           {2, "rfc5424", "vm", ""},
		"rs_tls_gtls.bin":            {2, "rfc5424", "vm", ""},
		"rs_tls_ossl.bin":            {2, "rfc3164", "vm", ""},
		"rs_udp.bin":                 {2, "rfc5424", "vm", ""},
		"sng_5424_tcp.bin":           {1, "rfc5424", "vm", "sshd"},
		"sng_5424_tls.bin":           {1, "rfc5424", "vm", "sshd"},
		"sng_bsd_tcp.bin":            {1, "rfc3164", "vm", "sshd"},
		"socat_tls_octet.bin":        {1, "rfc5424", "host", "app"},
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	if len(files) == 0 {
		t.Fatalf("no captures in %s", dir)
	}
	p := New()
	for _, f := range files {
		name := filepath.Base(f)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: new capture without expectation", name)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		frames := deframe(b)
		if len(frames) != w.frames {
			t.Errorf("%s: %d frames, want %d", name, len(frames), w.frames)
		}
		for i, fr := range frames {
			e := newEvent()
			r := p.Parse(fr, e)
			checkInvariants(t, fr, r, e)
			if r.Format != w.format {
				t.Errorf("%s[%d]: format %q, want %q", name, i, r.Format, w.format)
			}
			if e.Timestamp.Equal(ingested) || e.Timestamp.Year() < 2024 {
				t.Errorf("%s[%d]: timestamp %v not from the message", name, i, e.Timestamp)
			}
			if h := e.Value(event.FieldHostName); h != w.host {
				t.Errorf("%s[%d]: host.name %q, want %q", name, i, h, w.host)
			}
			if w.app != "" && e.Value(event.FieldLogSyslogAppName) != w.app {
				t.Errorf("%s[%d]: appname %q, want %q", name, i, e.Value(event.FieldLogSyslogAppName), w.app)
			}
			msg := e.Value(event.FieldMessage)
			if msg == "" || strings.HasPrefix(msg, " ") || strings.HasPrefix(msg, "\uFEFF") || strings.HasSuffix(msg, "\n") {
				t.Errorf("%s[%d]: message %q not clean", name, i, msg)
			}
			if e.Value(event.FieldParseError) != "" {
				t.Errorf("%s[%d]: error.message %q", name, i, e.Value(event.FieldParseError))
			}
		}
	}
	// Spot checks on the rsyslog variants.
	b, _ := os.ReadFile(filepath.Join(dir, "rs_tls_ossl.bin"))
	e := newEvent()
	New().Parse(deframe(b)[0], e)
	if e.Value(event.FieldLogSyslogAppName) != "postfix/smtpd" || !strings.HasPrefix(e.Value(event.FieldMessage), "NOQUEUE: reject") ||
		!e.Timestamp.Equal(time.Date(2026, 11, 25, 17, 51, 42, 0, time.UTC)) {
		t.Errorf("RSYSLOG_ForwardFormat: %v %v", e.Timestamp, e.Fields)
	}
}

// TestSuricataSamples parses the 548 real EVE alerts and the documentation
// examples.
func TestSuricataSamples(t *testing.T) {
	dir := corpus(t, "netsec")
	files, _ := filepath.Glob(filepath.Join(dir, "suricata-sample-data/samples/*/alerts-only.ndjson"))
	files = append(files, filepath.Join(dir, "suricata-schema-docs/eve-json-format.examples.ndjson"))
	p := New()
	n, alerts := 0, 0
	for _, f := range files {
		eachLine(t, f, func(line []byte) {
			n++
			e := newEvent()
			r := p.Parse(line, e)
			checkInvariants(t, line, r, e)
			if r.Format != "suricata" {
				t.Fatalf("%s: format %q for %s", f, r.Format, line)
			}
			if e.Timestamp.Equal(ingested) {
				t.Errorf("%s: no timestamp from %s", f, line)
			}
			if e.Value("suricata.event_type") == "alert" {
				alerts++
				if e.Kind() != event.KindAlert || e.Value(event.FieldRuleName) == "" || e.Value(event.FieldRuleID) == "" ||
					e.Value(event.FieldSourceIP) == "" || e.Value(event.FieldSeverity) == "" {
					t.Errorf("alert badly mapped: %s -> %v", line, e.Fields)
				}
			}
			if v := e.Value(event.FieldParseError); v != "" {
				t.Errorf("error %q for %s", v, line)
			}
		})
	}
	if n < 500 || alerts < 500 {
		t.Errorf("only %d records, %d alerts", n, alerts)
	}
	t.Logf("%d EVE records, %d alerts", n, alerts)
}

// TestZeekSamples parses the real Zeek NDJSON logs.
func TestZeekSamples(t *testing.T) {
	dir := corpus(t, "netsec/zeek-wrccdc-zed-sample-data/zeek-json")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	p := New()
	n := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for k := 0; k < 2000 && sc.Scan(); k++ {
			line := sc.Bytes()
			n++
			e := newEvent()
			r := p.Parse(line, e)
			checkInvariants(t, line, r, e)
			if r.Format != "zeek" || e.Timestamp.Equal(ingested) || !strings.HasPrefix(e.Value(event.FieldEventDataset), "zeek.") {
				t.Fatalf("%s: %+v ts=%v %v", f, r, e.Timestamp, e.Fields)
			}
			if e.Value("zeek.uid") != "" && e.Value(event.FieldSourceIP) == "" {
				t.Errorf("%s: conn tuple not mapped: %s", f, line)
			}
		}
		zr.Close()
		fh.Close()
	}
	if n == 0 {
		t.Fatal("no Zeek records")
	}
	t.Logf("%d Zeek records", n)
}

func eachLine(t *testing.T, path string, fn func([]byte)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			fn(line)
		}
	}
}

// TestEVTXPassThrough reads real .evtx files with package evtx, marshals
// each record to JSON and checks Parse keeps every key and value.
func TestEVTXPassThrough(t *testing.T) {
	dir := corpus(t, "evtx/sbousseaden-EVTX-ATTACK-SAMPLES")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.evtx"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.evtx"))
	files = append(files, more...)
	p := New()
	n := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = evtx.Read(f, func(rec map[string]any) error {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			n++
			e := newEvent()
			r := p.Parse(b, e)
			if err := invariantErr(b, r, e); err != nil {
				return err
			}
			if r.Format != "winlog" {
				return fmt.Errorf("format %q for %s", r.Format, b)
			}
			for k, v := range rec {
				if k == "@timestamp" {
					want, _ := time.Parse(time.RFC3339Nano, v.(string))
					if !e.Timestamp.Equal(want) {
						return fmt.Errorf("timestamp %v, want %v", e.Timestamp, want)
					}
					continue
				}
				want := fmt.Sprint(v)
				if l, ok := v.([]any); ok {
					parts := make([]string, len(l))
					for i, x := range l {
						parts[i] = fmt.Sprint(x)
					}
					want = strings.Join(parts, ",")
				}
				if got := e.Value(k); got != want {
					return fmt.Errorf("%s: %q, want %q (%s)", k, got, want, b)
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	t.Logf("%d EVTX records passed through Parse", n)
}
