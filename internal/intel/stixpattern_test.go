package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/testutil"
)

func TestParsePattern(t *testing.T) {
	cases := []struct {
		in   string
		want string // canonical rendering
		obs  string // extracted observables, "type:value" joined by " "
		errs int    // extraction errors
	}{
		{"[ipv4-addr:value = '198.51.100.1']", "[ipv4-addr:value = '198.51.100.1']", "ipv4:198.51.100.1", 0},
		{"[ ipv4-addr:value == '10.0.0.0/8' ]", "[ipv4-addr:value = '10.0.0.0/8']", "cidr:10.0.0.0/8", 0},
		{"[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']",
			"[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']",
			"sha256:ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c", 0},
		{"[file:hashes.MD5 = '001dd76872d80801692ff942308c64e6' OR file:hashes.'SHA-1' = '3395856ce81f2b7382dee72602f798b642f14140']",
			"[file:hashes.MD5 = '001dd76872d80801692ff942308c64e6' OR file:hashes.'SHA-1' = '3395856ce81f2b7382dee72602f798b642f14140']",
			"md5:001dd76872d80801692ff942308c64e6 sha1:3395856ce81f2b7382dee72602f798b642f14140", 0},
		{"[domain-name:value = 'a.example' OR ipv4-addr:value = '192.0.2.1'] OR [url:value = 'http://x.example/p']",
			"[domain-name:value = 'a.example' OR ipv4-addr:value = '192.0.2.1'] OR [url:value = 'http://x.example/p']",
			"domain:a.example ipv4:192.0.2.1 url:http://x.example/p", 0},
		{"[domain-name:value IN ('a.example', 'B.example')]", "[domain-name:value IN ('a.example', 'B.example')]", "domain:a.example domain:b.example", 0},
		{"[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b']",
			"[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b']", "", 1},
		{"[email-message:from_ref.value MATCHES '.+\\\\banking@g0thamnatl\\\\.com$']",
			"[email-message:from_ref.value MATCHES '.+\\\\banking@g0thamnatl\\\\.com$']", "", 1},
		{"[email-message:from_ref.value = 'Evil@Example.com']", "[email-message:from_ref.value = 'Evil@Example.com']", "email:evil@example.com", 0},
		{"[network-traffic:dst_ref.value = '203.0.113.5' OR network-traffic:dst_ref.value = 'c2.example']",
			"[network-traffic:dst_ref.value = '203.0.113.5' OR network-traffic:dst_ref.value = 'c2.example']", "ipv4:203.0.113.5 domain:c2.example", 0},
		{"[ipv4-addr:value != '1.2.3.4']", "[ipv4-addr:value != '1.2.3.4']", "", 1},
		{"[ipv4-addr:value NOT = '1.2.3.4']", "[ipv4-addr:value NOT = '1.2.3.4']", "", 1},
		{"[domain-name:value LIKE '%.example']", "[domain-name:value LIKE '%.example']", "", 1},
		{"[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "", 1},
		{"[ipv4-addr:value ISSUPERSET '198.51.100.0/24']", "[ipv4-addr:value ISSUPERSET '198.51.100.0/24']", "", 1},
		{"[file:size > 1024 AND file:name = 'a.exe']", "[file:size > 1024 AND file:name = 'a.exe']", "", 1},
		{"([file:name = 'a.exe'] AND [ipv4-addr:value = '1.2.3.4']) WITHIN 300 SECONDS",
			"([file:name = 'a.exe'] AND [ipv4-addr:value = '1.2.3.4']) WITHIN 300 SECONDS", "", 1},
		{"[file:name = 'a.exe'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.4']", "[file:name = 'a.exe'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.4']", "", 1},
		{"[file:name = 'a.exe'] REPEATS 5 TIMES", "[file:name = 'a.exe'] REPEATS 5 TIMES", "", 1},
		{"[ipv4-addr:value = '1.2.3.4'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
			"[ipv4-addr:value = '1.2.3.4'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'", "", 1},
		{"[(file:name = 'a.exe' OR file:name = 'b.exe')]", "[(file:name = 'a.exe' OR file:name = 'b.exe')]", "filename:a.exe filename:b.exe", 0},
		{"[file:name = 'a.exe' OR windows-registry-key:key = 'HKLM\\\\x']", "[file:name = 'a.exe' OR windows-registry-key:key = 'HKLM\\\\x']", "filename:a.exe", 1},
		{"[domain-name:value = 'domain autuo.xicp.net']", "[domain-name:value = 'domain autuo.xicp.net']", "", 1},
		{"[file:name = 'it\\'s.exe']", "[file:name = 'it\\'s.exe']", "filename:it's.exe", 0},
		{"[process:command_line MATCHES 'a' AND EXISTS process:pid]", "[process:command_line MATCHES 'a' AND EXISTS process:pid]", "", 1},
		{"[artifact:payload_bin = b'aGVsbG8=' OR file:x = h'ff00' OR file:y = true OR file:z < 1.5 OR file:created > t'2020-01-01T00:00:00.5Z']",
			"[artifact:payload_bin = b'aGVsbG8=' OR file:x = h'ff00' OR file:y = true OR file:z < 1.5 OR file:created > t'2020-01-01T00:00:00.5Z']", "", 5},
		{"[email-message:body_multipart[*].body_raw_ref.name MATCHES '^a']", "[email-message:body_multipart[*].body_raw_ref.name MATCHES '^a']", "", 1},
		{"[a:b[0].c = 'x']", "[a:b[0].c = 'x']", "", 1},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p, err := ParsePattern(c.in)
			if err != nil {
				t.Fatalf("ParsePattern: %v", err)
			}
			if got := p.String(); got != c.want {
				t.Errorf("String() = %s\nwant        %s", got, c.want)
			}
			obs, errs := p.Observables()
			var got []string
			for _, o := range obs {
				got = append(got, string(o.Type)+":"+o.Value)
			}
			if g := strings.Join(got, " "); g != c.obs || len(errs) != c.errs {
				t.Errorf("Observables = %q with %d errors %v; want %q with %d", g, len(errs), errs, c.obs, c.errs)
			}
			for _, e := range errs {
				if !errors.Is(e, ErrUnsupported) && !errors.Is(e, ErrInvalid) {
					t.Errorf("extraction error %v wraps neither ErrUnsupported nor ErrInvalid", e)
				}
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	cases := []struct {
		in  string
		pos int
	}{
		{"", 0},
		{"ipv4-addr:value = '1.2.3.4'", 0},    // no brackets
		{"[ipv4-addr:value = '1.2.3.4'", 28},  // unclosed
		{"[ipv4-addr:value = '1.2.3.4]", 19},  // unterminated string
		{"[ipv4-addr value = '1.2.3.4']", 11}, // missing ':'
		{"[ipv4-addr:value '1.2.3.4']", 17},   // missing operator
		{"[ipv4-addr:value = ]", 19},          // missing value
		{"[a:b = 'x'] AND", 15},               // dangling AND
		{"[a:b = 'x'] WITHIN -5 SECONDS", 19}, // negative
		{"[a:b = 'x'] REPEATS 0 TIMES", 20},   // zero
		{"[a:b = t'yesterday']", 7},           // bad timestamp
		{"[a:b = 'x\\n']", 9},                 // bad escape
		{"[a:b = 'x'] and [a:b = 'y']", 12},   // keywords are upper case
		{"[a:b IN ()]", 9},                    // empty set
		{"[a:b[x] = 'y']", 5},                 // bad index
		{"[a:b > true]", 5},                   // ordering a boolean
		{"[a:b = 'x'] START t'2020-01-01T00:00:00Z'", 41},
		{"[a:b = 'x'] #", 12},
	}
	for _, c := range cases {
		_, err := ParsePattern(c.in)
		var pe *PatternError
		if !errors.As(err, &pe) || !errors.Is(err, ErrPattern) {
			t.Errorf("ParsePattern(%q) = %v, want a *PatternError", c.in, err)
			continue
		}
		if pe.Pos != c.pos {
			t.Errorf("ParsePattern(%q): error at %d, want %d (%v)", c.in, pe.Pos, c.pos, err)
		}
	}
	deep := strings.Repeat("(", 500) + "[a:b = 'x']" + strings.Repeat(")", 500)
	if _, err := ParsePattern(deep); !errors.Is(err, ErrPattern) {
		t.Errorf("500 nested groups: %v, want a depth error", err)
	}
}

// oracleEntry is one row of derived/stix_indicator_comparisons.json: every
// comparison of every STIX-pattern indicator in the corpus bundles.
type oracleEntry struct {
	File        string `json:"file"`
	IndicatorID string `json:"indicator_id"`
	PatternType string `json:"pattern_type"`
	ObjectType  string `json:"object_type"`
	Path        string `json:"path"`
	Op          string `json:"op"`
	Value       string `json:"value"`
	FullPattern string `json:"full_pattern"`
}

func (o oracleEntry) key() string {
	return strings.Join([]string{o.File, o.IndicatorID, o.ObjectType, o.Path, o.Op, o.Value}, " | ")
}

// TestSTIXOracle parses the pattern of every indicator in the bundles the
// oracle lists and compares all comparisons found with the oracle's. The
// oracle keeps string values as written; \\ and \' are unescaped here
// because the parser returns decoded strings.
func TestSTIXOracle(t *testing.T) {
	root := testutil.Corpus(t, "threatintel")
	b, err := os.ReadFile(filepath.Join(root, "derived", "stix_indicator_comparisons.json"))
	if err != nil {
		t.Fatal(err)
	}
	var oracle []oracleEntry
	if err := json.Unmarshal(b, &oracle); err != nil {
		t.Fatal(err)
	}
	unescape := strings.NewReplacer(`\\`, `\`, `\'`, `'`)
	var want, got []string
	files := map[string]bool{}
	for _, o := range oracle {
		o.Value = unescape.Replace(o.Value)
		want = append(want, o.key())
		files[o.File] = true
	}
	indicators := 0
	for file := range files {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []struct {
				Type        string `json:"type"`
				ID          string `json:"id"`
				Pattern     string `json:"pattern"`
				PatternType string `json:"pattern_type"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(raw, &bundle); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, obj := range bundle.Objects {
			if obj.Type != "indicator" || obj.PatternType != "stix" {
				continue
			}
			indicators++
			p, err := ParsePattern(obj.Pattern)
			if err != nil {
				t.Errorf("%s %s: %v", file, obj.ID, err)
				continue
			}
			for _, c := range p.Comparisons() {
				op := c.Op
				if c.Negated {
					op = "NOT " + op
				}
				got = append(got, oracleEntry{File: file, IndicatorID: obj.ID, ObjectType: c.Path.ObjectType,
					Path: c.Path.Property(), Op: op, Value: c.Value.Str}.key())
			}
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) != 173 || indicators != 85 {
		t.Errorf("oracle has %d comparisons from %d indicators; its README says 173 from 85", len(want), indicators)
	}
	if !slices.Equal(got, want) {
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing: %s", w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("extra: %s", g)
			}
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"[ipv4-addr:value = '198.51.100.1/32']",
		"[file:hashes.'SHA-256' = 'ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c']",
		"([a:b = 'x'] AND [c:d[*].e IN (1, 2.5, 'z')]) WITHIN 5 SECONDS FOLLOWEDBY [x:y MATCHES '\\\\d']",
		"[a:b NOT LIKE 'x%'] REPEATS 2 TIMES START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'",
		"[EXISTS a:b OR (a:c = h'00ff' AND a:d = b'AA==')]",
	} {
		f.Add(s)
	}
	if root := testutil.CorpusDir(); root != "" {
		if b, err := os.ReadFile(filepath.Join(root, "threatintel", "derived", "stix_indicator_comparisons.json")); err == nil {
			var oracle []oracleEntry
			_ = json.Unmarshal(b, &oracle)
			for _, o := range oracle {
				f.Add(o.FullPattern)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePattern(s)
		if err != nil {
			if !errors.Is(err, ErrPattern) {
				t.Fatalf("error %v does not wrap ErrPattern", err)
			}
			var pe *PatternError
			if errors.As(err, &pe) && (pe.Pos < 0 || pe.Pos > len(s)) {
				t.Fatalf("error position %d outside the input (len %d)", pe.Pos, len(s))
			}
			return
		}
		// Round trip: the canonical form parses to the same canonical form.
		canon := p.String()
		p2, err := ParsePattern(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if again := p2.String(); again != canon {
			t.Fatalf("round trip changed %q to %q", canon, again)
		}
		if len(p.Comparisons()) != len(p2.Comparisons()) {
			t.Fatalf("round trip changed the comparisons of %q", s)
		}
		obs, errs := p.Observables()
		for _, o := range obs {
			if _, v, err := Normalize(o.Type, o.Value); err != nil || v != o.Value {
				t.Fatalf("observable %v is not normalized (%q, %v)", o, v, err)
			}
		}
		for _, e := range errs {
			if !errors.Is(e, ErrUnsupported) && !errors.Is(e, ErrInvalid) {
				t.Fatalf("extraction error %v", e)
			}
		}
		_ = fmt.Sprint(len(obs))
	})
}
