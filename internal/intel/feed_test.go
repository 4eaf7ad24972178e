package intel

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

var feedOpts = FeedOptions{Source: "test-feed", Now: t0, TTL: 7 * 24 * time.Hour}

// corpusFile reads a corpus file and returns it with its corpus-relative
// name (stable in golden files).
func corpusFile(t *testing.T, rel string) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(testutil.Corpus(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b, rel
}

func keys(f *Feed) []string {
	var out []string
	for i := range f.Indicators {
		out = append(out, f.Indicators[i].Key().String())
	}
	return out
}

// checkFeed asserts what every parsed feed must satisfy: normalized
// values, a source per indicator, the options applied, located problems.
func checkFeed(t *testing.T, f *Feed, o FeedOptions) {
	t.Helper()
	for i := range f.Indicators {
		ind := f.Indicators[i]
		c := ind.Clone()
		if err := c.Validate(); err != nil {
			t.Errorf("indicator %d (%s) invalid: %v", i, ind.Key(), err)
		} else if c.Key() != ind.Key() {
			t.Errorf("indicator %d not normalized: %s vs %s", i, ind.Key(), c.Key())
		}
		if len(ind.Sources) != 1 || ind.Sources[0].Source != o.Source || ind.Tenant != o.Tenant {
			t.Errorf("indicator %d: sources %+v tenant %q", i, ind.Sources, ind.Tenant)
		}
	}
	for _, p := range f.Problems {
		if p.File == "" || p.Reason == "" || p.Line == 0 && p.Path == "" {
			t.Errorf("problem without location or reason: %+v", p)
		}
	}
}

func TestParseSTIXCorpus(t *testing.T) {
	files := []string{
		"threatintel/cti-documentation-examples/examples/example_json/apt1.json",
		"threatintel/cti-documentation-examples/examples/example_json/poisonivy.json",
		"threatintel/cti-documentation-examples/examples/example_json/indicator-for-malicious-url.json",
		"threatintel/cti-documentation-examples/examples/example_json/malware-indicator-for-file-hash.json",
		"threatintel/cti-documentation-examples/examples/example_json/using-marking-definitions.json",
		"threatintel/cti-documentation-examples/examples/example_json/using-granular-markings.json",
		"threatintel/stix2-json-schemas/examples/indicators-for-C2-with-COA.json",
		"threatintel/stix2-json-schemas/examples/malicious-email-indicator-with-attachment.json",
		"threatintel/stix2-json-schemas/examples/indicator-for-c2-ip-address.json",
	}
	for _, rel := range files {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			b, name := corpusFile(t, rel)
			f, err := ParseSTIX(bytes.NewReader(b), name, feedOpts)
			if err != nil {
				t.Fatal(err)
			}
			checkFeed(t, f, feedOpts)
			golden(t, "stix_"+strings.TrimSuffix(filepath.Base(rel), ".json"), f)
		})
	}
	// Every STIX JSON in the corpus parses without error or panic.
	for _, dir := range []string{"threatintel/cti-documentation-examples/examples/example_json", "threatintel/stix2-json-schemas/examples"} {
		root := testutil.Corpus(t, dir)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
				return err
			}
			b, _ := os.ReadFile(p)
			if _, err := ParseSTIX(bytes.NewReader(b), p, feedOpts); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			return nil
		})
	}
}

func TestParseSTIXDetails(t *testing.T) {
	b, name := corpusFile(t, "threatintel/cti-documentation-examples/examples/example_json/poisonivy.json")
	f, err := ParseSTIX(bytes.NewReader(b), name, feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	// The OR-joined C2 patterns yield one indicator per value.
	ks := keys(f)
	for _, want := range []string{"domain:www.webserver.dynssl.com", "ipv4:113.10.246.30", "domain:microsoftc.byinter.net", "filename:cbricksdoc"} {
		if !slices.Contains(ks, want) {
			t.Errorf("poisonivy: %s not extracted", want)
		}
	}
	var bad *Problem
	for i := range f.Problems {
		if strings.Contains(f.Problems[i].Reason, "autuo.xicp.net") {
			bad = &f.Problems[i]
		}
	}
	if bad == nil || bad.ID == "" || !strings.HasSuffix(bad.Path, ".pattern") {
		t.Errorf("the invalid domain 'domain autuo.xicp.net' is not reported with id and path: %+v", bad)
	}

	b, name = corpusFile(t, "threatintel/cti-documentation-examples/examples/example_json/apt1.json")
	f, err = ParseSTIX(bytes.NewReader(b), name, feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range f.Problems {
		if strings.Contains(p.Reason, "AND-joined") && strings.HasSuffix(p.Reason, "unsupported for IOC matching") && strings.HasPrefix(p.ID, "indicator--") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("apt1: %d x509 AND patterns reported as unsupported with their id, want 2: %v", n, f.Problems)
	}

	// valid_until, confidence, TLP by marking reference.
	doc := `{"type":"bundle","id":"bundle--1","objects":[
	 {"type":"marking-definition","id":"marking-definition--custom","definition_type":"tlp","definition":{"tlp":"red"}},
	 {"type":"indicator","id":"indicator--a","pattern":"[ipv4-addr:value = '192.0.2.1']","pattern_type":"stix",
	  "valid_from":"2026-01-01T00:00:00Z","valid_until":"2026-02-01T00:00:00Z","confidence":85,
	  "object_marking_refs":["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"],"labels":["c2"]},
	 {"type":"indicator","id":"indicator--b","pattern":"[domain-name:value = 'x.example']","pattern_type":"stix",
	  "valid_from":"2026-01-01T00:00:00Z","object_marking_refs":["marking-definition--custom"]},
	 {"type":"indicator","id":"indicator--c","pattern":"rule x { condition: true }","pattern_type":"yara","valid_from":"2026-01-01T00:00:00Z"},
	 {"type":"indicator","id":"indicator--d","pattern":"[ipv4-addr:value = '1.2.3.4'","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},
	 {"type":"indicator","id":"indicator--e","pattern":"[ipv4-addr:value = '192.0.2.9']","revoked":true,"valid_from":"2026-01-01T00:00:00Z"},
	 "not an object"
	]}`
	f, err = ParseSTIX(strings.NewReader(doc), "inline.json", feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Indicators) != 2 {
		t.Fatalf("indicators %v", keys(f))
	}
	a, bb := f.Indicators[0].Sources[0], f.Indicators[1].Sources[0]
	if !a.Expires.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) || a.Confidence != 85 || a.TLP != TLPAmberStrict || a.Ref != "indicator--a" || !slices.Equal(a.Tags, []string{"c2"}) {
		t.Errorf("indicator--a source %+v", a)
	}
	if !bb.Expires.Equal(t0.Add(feedOpts.TTL)) || bb.Confidence != 50 || bb.TLP != TLPRed {
		t.Errorf("indicator--b source %+v (want TTL expiry, default confidence, TLP red from the bundle's marking)", bb)
	}
	want := []string{"objects[3]", "objects[4]", "objects[5]", "objects[6]"}
	var got []string
	for _, p := range f.Problems {
		got = append(got, strings.SplitN(p.Path, ".", 2)[0])
	}
	if !slices.Equal(got, want) {
		t.Errorf("problem paths %v, want %v: %v", got, want, f.Problems)
	}
}

func TestParseMISPFeed(t *testing.T) {
	root := testutil.Corpus(t, "threatintel/derived/misp-feed-from-pymisp")
	f, err := ParseMISPFeed(os.DirFS(root), ".", feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	checkFeed(t, f, feedOpts)
	golden(t, "misp_feed", f)
	ks := keys(f)
	for _, want := range []string{"md5:0749bae92ca336a02c83d126e04ec628", "filename:3z4wng9603it23y.exe",
		"sha256:b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"} {
		if !slices.Contains(ks, want) {
			t.Errorf("%s missing", want)
		}
	}
	for _, ind := range f.Indicators {
		if ind.Key().String() == "md5:0749bae92ca336a02c83d126e04ec628" {
			s := ind.Sources[0]
			if s.TLP != TLPClear || s.Description != "Ransomware - Xorist" || s.Ref != "57c4445b-c548-4654-af0b-4be3950d210f" {
				t.Errorf("Xorist md5 source %+v (want tlp:white as clear, event info, event uuid)", s)
			}
		}
		if ind.Type == TypeURL && strings.Contains(ind.Value, "virustotal") {
			t.Errorf("non-to_ids link attribute imported: %s", ind.Value)
		}
	}
	// to_ids regkey|value is reported, not dropped silently.
	if !slices.ContainsFunc(f.Problems, func(p Problem) bool { return strings.Contains(p.Reason, "regkey|value") && p.ID != "" }) {
		t.Errorf("regkey|value attribute not reported: %v", f.Problems)
	}

	// A missing event file and a truncated one are problems; the rest is kept.
	fsys := fstest.MapFS{
		"feed/manifest.json": {Data: []byte(`{"a1":{},"b2":{},"c3":{}}`)},
		"feed/a1.json":       {Data: []byte(`{"Event":{"uuid":"a1","info":"x","Tag":[{"name":"tlp:amber"}],"Attribute":[{"type":"ip-dst|port","value":"198.51.100.7|443","to_ids":true,"uuid":"u1","Tag":[{"name":"osint:certainty=\"80\""}]},{"type":"domain|ip","value":"evil.example|192.0.2.5","to_ids":"1","uuid":"u2"},{"type":"hostname","value":"bad host","to_ids":true,"uuid":"u3"}]}}`)},
		"feed/c3.json":       {Data: []byte(`{"Event":{"uuid":"c3","Attribute":[{"type":"md5"`)},
	}
	f, err = ParseMISPFeed(fsys, "feed", feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(f); !slices.Equal(got, []string{"ipv4:198.51.100.7", "domain:evil.example", "ipv4:192.0.2.5"}) {
		t.Errorf("keys %v", got)
	}
	if s := f.Indicators[0].Sources[0]; s.TLP != TLPAmber || s.Confidence != 80 {
		t.Errorf("tags not applied: %+v", s)
	}
	var reasons []string
	for _, p := range f.Problems {
		reasons = append(reasons, p.String())
	}
	joined := strings.Join(reasons, "\n")
	for _, want := range []string{"u3", "b2", "c3.json", "cut short"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems do not mention %q:\n%s", want, joined)
		}
	}
	if _, err := ParseMISPFeed(fstest.MapFS{}, "nowhere", feedOpts); err == nil {
		t.Error("a feed without manifest.json must fail")
	}
}

func TestParseMISPEventCorpus(t *testing.T) {
	for _, rel := range []string{"threatintel/pymisp-tests/tests/misp_event.json", "threatintel/pymisp-tests/tests/57c4445b-c548-4654-af0b-4be3950d210f.json"} {
		b, name := corpusFile(t, rel)
		f, err := ParseMISPEvent(bytes.NewReader(b), name, feedOpts)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		checkFeed(t, f, feedOpts)
	}
}

func TestParseAbuseCH(t *testing.T) {
	cases := []struct {
		file, format string
		want         []string
	}{
		{"urlhaus_csv.txt", "urlhaus", []string{"url:http://malware.example.com/eicar.com", "url:http://192.0.2.44:8080/i", "url:https://phish.example.net/login.php"}},
		{"feodo_ipblocklist.csv", "feodo", []string{"ipv4:192.0.2.10", "ipv4:198.51.100.22", "ipv4:203.0.113.63"}},
		{"threatfox_full.csv", "threatfox", []string{"ipv4:192.0.2.10", "domain:c2.example.org", "url:http://malware.example.com/eicar.com",
			"md5:44d88612fea8a8f36de82e1278abb02f", "sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}},
		{"malwarebazaar_full.csv", "malwarebazaar", []string{"sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
			"md5:44d88612fea8a8f36de82e1278abb02f", "sha1:3395856ce81f2b7382dee72602f798b642f14140"}},
		{"plain_blocklists.txt", "list", []string{"ipv4:192.0.2.10", "cidr:198.51.100.0/24", "cidr:2001:db8::/32", "domain:c2.example.org", "md5:44d88612fea8a8f36de82e1278abb02f"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			b, name := corpusFile(t, "threatintel/derived/abusech-format-synthetic/"+c.file)
			f, err := ParseFeed(bytes.NewReader(b), name, feedOpts)
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != c.format {
				t.Errorf("format %q, want %q", f.Format, c.format)
			}
			if got := keys(f); !slices.Equal(got, c.want) || len(f.Problems) != 0 {
				t.Errorf("keys %v problems %v\nwant %v", got, f.Problems, c.want)
			}
			checkFeed(t, f, feedOpts)
			golden(t, "abusech_"+strings.TrimSuffix(strings.TrimSuffix(c.file, ".txt"), ".csv"), f)
			if c.format != "list" {
				if _, err := ParseAbuseCH(bytes.NewReader(b), name, feedOpts); err != nil {
					t.Errorf("ParseAbuseCH: %v", err)
				}
			}
		})
	}
	b, name := corpusFile(t, "threatintel/derived/abusech-format-synthetic/threatfox_full.csv")
	f, _ := ParseAbuseCH(bytes.NewReader(b), name, feedOpts)
	if s := f.Indicators[1].Sources[0]; s.Confidence != 75 || s.Ref != "threatfox:1002" || s.Description != "Emotet" {
		t.Errorf("threatfox columns not mapped: %+v", s)
	}
}

func TestFeedErrors(t *testing.T) {
	urlhaus := "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n" +
		`"3","2024-01-01 00:00:00","http://a.example/x","online","","malware_download","exe","https://urlhaus.abuse.ch/url/3/","r"` + "\n" +
		`"4","2024-01-01 00:00:00","http://b.example/y","onl` // cut short
	f, err := ParseAbuseCH(strings.NewReader(urlhaus), "urlhaus.csv", feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Indicators) != 1 || len(f.Problems) != 1 || f.Problems[0].Line != 3 {
		t.Errorf("truncated last row: indicators %v problems %v (want 1 and a problem on line 3)", keys(f), f.Problems)
	}
	list := "192.0.2.1\nnot a value at all!\n0.0.0.0 ads.example # hosts file\n44d88612fea8a8f36de82e1278abb02f;EICAR\nhxxp://evil[.]example/a\n"
	f, err = ParseList(strings.NewReader(list), "list.txt", feedOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(f); !slices.Equal(got, []string{"ipv4:192.0.2.1", "domain:ads.example", "md5:44d88612fea8a8f36de82e1278abb02f", "url:http://evil.example/a"}) {
		t.Errorf("list keys %v", got)
	}
	if len(f.Problems) != 1 || f.Problems[0].Line != 2 {
		t.Errorf("list problems %v, want one on line 2", f.Problems)
	}
	if f.Indicators[2].Sources[0].Description != "EICAR" {
		t.Errorf("description after ';' lost: %+v", f.Indicators[2].Sources[0])
	}

	bad := []struct {
		name, data string
		parse      func(string, string) error
		want       string
	}{
		{"html", "<!DOCTYPE html><html><body>Login</body></html>", abuseParse, "HTML page"},
		{"html-list", "\n  <html><head>", listParse, "HTML page"},
		{"empty", "  \n", stixParse, "empty"},
		{"binary", "\x1f\x8b\x08\x00\x00\x00", listParse, "binary"},
		{"json cut", `{"type":"bundle","objects":[{"type":"indicator","pattern":"[a:b = 'x']"`, stixParse, "cut short"},
		{"json bad", `{"type":"bundle","objects":[}`, stixParse, "invalid JSON at byte"},
		{"not stix", `{"hello":"world"}`, stixParse, "not STIX"},
		{"not misp", `{"hello":"world"}`, mispParse, "not a MISP event"},
		{"misp cut", `{"Event":{"uuid":"x","Attribute":[`, mispParse, "cut short"},
		{"csv without header", "1.2.3.4,5\n", abuseParse, "no abuse.ch column header"},
	}
	for _, c := range bad {
		err := c.parse(c.data, c.name)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: error %v, want ErrFormat naming the file and saying %q", c.name, err, c.want)
		}
	}
	if _, err := ParseList(strings.NewReader("1.2.3.4"), "x", FeedOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("options without a source: %v", err)
	}
}

func abuseParse(data, name string) error {
	_, err := ParseAbuseCH(strings.NewReader(data), name, feedOpts)
	return err
}

func listParse(data, name string) error {
	_, err := ParseList(strings.NewReader(data), name, feedOpts)
	return err
}

func stixParse(data, name string) error {
	_, err := ParseSTIX(strings.NewReader(data), name, feedOpts)
	return err
}

func mispParse(data, name string) error {
	_, err := ParseMISPEvent(strings.NewReader(data), name, feedOpts)
	return err
}

// fuzzFeed checks the invariants every feed parser keeps on any input.
func fuzzFeed(t *testing.T, f *Feed, err error) {
	if err != nil {
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("error %v does not wrap ErrFormat", err)
		}
		if f != nil {
			t.Fatal("both a feed and an error")
		}
		return
	}
	checkFeed(t, f, feedOpts)
}

func FuzzParseSTIX(f *testing.F) {
	f.Add([]byte(`{"type":"bundle","objects":[{"type":"indicator","id":"indicator--1","pattern":"[ipv4-addr:value = '192.0.2.1' OR domain-name:value = 'a.example']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","confidence":70}]}`))
	f.Add([]byte(`[{"type":"marking-definition","id":"m","definition_type":"tlp","definition":{"tlp":"green"}},{"type":"indicator","pattern":"[url:value = 'http://x.example/']","object_marking_refs":["m"]}]`))
	f.Add([]byte(`{"type":"indicator","pattern":"[file:hashes.'SHA-256' = 'x']","valid_until":"bad"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseSTIX(bytes.NewReader(b), "fuzz.json", feedOpts)
		fuzzFeed(t, feed, err)
	})
}

func FuzzParseMISPEvent(f *testing.F) {
	f.Add([]byte(`{"Event":{"uuid":"e","info":"i","Tag":[{"name":"tlp:green"}],"Attribute":[{"type":"ip-dst|port","value":"192.0.2.1|80","to_ids":true},{"type":"filename|sha256","value":"a.exe|275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f","to_ids":"1"}],"Object":[{"Attribute":[{"type":"domain","value":"x.example","to_ids":true,"timestamp":"1472480394"}]}]}}`))
	f.Add([]byte(`{"uuid":"e","Attribute":[{"type":"md5","value":"nothex","to_ids":true,"first_seen":"2020-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseMISPEvent(bytes.NewReader(b), "fuzz.json", feedOpts)
		fuzzFeed(t, feed, err)
	})
}

func FuzzParseAbuseCH(f *testing.F) {
	f.Add([]byte("# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\"1\",\"2024-01-01 00:00:00\",\"http://a.example/\",\"online\",\"\",\"m\",\"x,y\",\"l\",\"r\"\n"))
	f.Add([]byte("\"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\"2023-12-30 13:56:31\",\"192.0.2.10\",\"443\",\"online\",\"2024-01-01\",\"QakBot\"\n"))
	f.Add([]byte("# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"confidence_level\"\n\"2024-01-01 00:00:00\", \"1\", \"[2001:db8::1]:443\", \"ip:port\", \"101\"\n"))
	f.Add([]byte("# Listingdate,SHA1,Listingreason\n2024-01-01 00:00:00,3395856ce81f2b7382dee72602f798b642f14140,C2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseAbuseCH(bytes.NewReader(b), "fuzz.csv", feedOpts)
		fuzzFeed(t, feed, err)
	})
}

func FuzzParseList(f *testing.F) {
	f.Add([]byte("# comment\n192.0.2.1\n198.51.100.0/24\n0.0.0.0 ads.example\nhash;desc\nhxxps://a[.]example/x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		feed, err := ParseList(bytes.NewReader(b), "fuzz.txt", feedOpts)
		fuzzFeed(t, feed, err)
		if err == nil {
			// Every kept line re-read alone gives the same indicator.
			for _, ind := range feed.Indicators {
				again, err := ParseList(strings.NewReader(ind.Value), "again", feedOpts)
				if err != nil || len(again.Indicators) != 1 || again.Indicators[0].Key() != ind.Key() {
					t.Fatalf("%s does not re-read as itself: %v %v", ind.Key(), again, err)
				}
			}
		}
	})
}
