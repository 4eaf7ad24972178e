package query

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

var update = flag.Bool("update", false, "rewrite testdata/translate.golden")

type translateCase struct {
	in   string
	want string // LogsQL, or the error message when errPos >= 0
	err  int    // error position; -1 when the translation must succeed
}

const ok = -1

var translateCases = []translateCase{
	// empty and match-all
	{"", "*", ok},
	{"   ", "*", ok},
	{"*", "*", ok},
	{"* AND mimikatz", `i("mimikatz")`, ok},

	// free text: case-insensitive words and phrases in _msg
	{"mimikatz", `i("mimikatz")`, ok},
	{`"failed password"`, `i("failed password")`, ok},
	{"mimi*", `i("mimi"*)`, ok},
	{`"failed pass"*`, `i("failed pass"*)`, ok},
	{"*kat*", `_msg:~"(?i)kat"`, ok},
	{"*kat", `_msg:~"(?i)kat\\b"`, ok},
	{"mimi*kat", `_msg:~"\\b(?i:mimi)[^\\s\\x{212A}]*(?i:kat)\\b"`, ok},
	{"*.exe", `_msg:~"(?i)\\.exe\\b"`, ok},
	{`"C:\Windows\System32"`, `i("C:\\Windows\\System32")`, ok},
	{`"say \"hi\""`, `i("say \"hi\"")`, ok},
	{"http://evil.example.com/x", `i("http://evil.example.com/x")`, ok},
	{"10:23:45", `i("10:23:45")`, ok},
	{"/etc/passwd", `i("/etc/passwd")`, ok},
	{`foo\:bar`, `i("foo:bar")`, ok},
	{`50\*`, `i("50*")`, ok},
	{"/mimi.*katz/", `_msg:~"mimi.*katz"`, ok},
	{"event.original:foo", `i("foo")`, ok},
	{"_msg:/^GET /", `_msg:~"^GET "`, ok},

	// keyword fields: exact, case-sensitive
	{"user.name:root", `user.name:="root"`, ok},
	{`user.name:"John Smith"`, `user.name:="John Smith"`, ok},
	{"user.name:adm*", `user.name:="adm"*`, ok},
	{"user.name:*min*", `user.name:*"min"*`, ok},
	{"user.name:*min", `user.name:~"min$"`, ok},
	{"user.name:a*b", `user.name:~"(?s)^a.*b$"`, ok},
	{"user.name:*", `user.name:*`, ok},
	{`user.name:""`, `user.name:=""`, ok},
	{"url.original:http://evil.example.com/x?a=1", `url.original:="http://evil.example.com/x?a=1"`, ok},
	{`file.path:C\:\\Windows\\x`, `file.path:="C:\\Windows\\x"`, ok},
	{"file.path:/etc/passwd", `file.path:="/etc/passwd"`, ok},
	{`file.name:"mimi*"`, `file.name:="mimi*"`, ok},
	{"destination.port:22", `destination.port:="22"`, ok},
	{"host.name:/^web-\\d+$/", `host.name:~"^web-\\d+$"`, ok},
	{"_exists_:url.original", `url.original:*`, ok},
	{"NOT _exists_:user.name", `NOT user.name:*`, ok},

	// text fields: word match like free text
	{"message:error", `message:i("error")`, ok},
	{"process.command_line:mimikatz", `process.command_line:i("mimikatz")`, ok},
	{`process.command_line:"-enc"`, `process.command_line:i("-enc")`, ok},
	{"process.command_line:*sekurlsa*", `process.command_line:~"(?i)sekurlsa"`, ok},

	// field names
	{"@timestamp:2024-01-15", `_time:"2024-01-15"`, ok},
	{"in.foo:bar", `"in.foo":="bar"`, ok},
	{"and:x", `"and":="x"`, ok},
	{"user-agent:x", `"user-agent":="x"`, ok},
	{"@version:1", `"@version":="1"`, ok},
	{"_stream:x", "field \"_stream\" cannot be searched", 0},

	// IPs and CIDRs
	{"source.ip:1.2.3.4", `source.ip:="1.2.3.4"`, ok},
	{"source.ip:10.0.0.0/8", `source.ip:ipv4_range("10.0.0.0/8")`, ok},
	{"source.ip:10.1.2.3/8", `source.ip:ipv4_range("10.0.0.0/8")`, ok},
	{"source.ip:2001:db8::/32", `source.ip:ipv6_range("2001:db8::/32")`, ok},
	{"source.ip:2001:DB8::1", `source.ip:ipv6_range("2001:db8::1")`, ok},
	{`source.ip:"10.0.0.0/8"`, `source.ip:="10.0.0.0/8"`, ok},
	{"source.ip:[10.0.0.1 TO 10.0.0.9]", `source.ip:ipv4_range("10.0.0.1", "10.0.0.9")`, ok},
	{"source.ip:{10.0.0.1 TO 10.0.0.9}", `source.ip:ipv4_range("10.0.0.2", "10.0.0.8")`, ok},
	{"source.ip:>=192.168.0.0", `source.ip:ipv4_range("192.168.0.0", "255.255.255.255")`, ok},
	{"source.ip:<::1", `source.ip:ipv6_range("::", "::")`, ok},

	// numeric ranges and comparisons
	{"destination.port:[1 TO 1024]", `destination.port:range[1, 1024]`, ok},
	{"destination.port:{1 TO 1024}", `destination.port:range(1, 1024)`, ok},
	{"destination.port:[1 TO 1024}", `destination.port:range[1, 1024)`, ok},
	{"destination.port:[1024 TO *]", `destination.port:>=1024`, ok},
	{"destination.port:{* TO 1024}", `destination.port:<1024`, ok},
	{"destination.port:[* TO *]", `destination.port:*`, ok},
	{"destination.port:[1 to 5]", `destination.port:range[1, 5]`, ok},
	{"bytes:>1000", `bytes:>1000`, ok},
	{"bytes:>=1000", `bytes:>=1000`, ok},
	{"bytes:<1.5e3", `bytes:<1.5e3`, ok},
	{"bytes:<=-5", `bytes:<=-5`, ok},
	{`bytes:>"100"`, `bytes:>100`, ok},
	{"@timestamp:[2024-01-01 TO 2024-02-01]", `_time:["2024-01-01", "2024-02-01"]`, ok},
	{"@timestamp:{2024-01-01 TO 2024-02-01}", `_time:("2024-01-01", "2024-02-01")`, ok},
	{"@timestamp:>2024-01-01T10:00:00Z", `_time:>"2024-01-01T10:00:00Z"`, ok},
	{"@timestamp:[2024-01-01 TO *]", `_time:>="2024-01-01"`, ok},
	{"@timestamp:1h", `_time:"1h"`, ok},
	{"@timestamp:*", `*`, ok},

	// boolean logic
	{"a b", `i("a") AND i("b")`, ok},
	{"a AND b OR c", `i("a") AND i("b") OR i("c")`, ok},
	{"a OR b c", `i("a") OR i("b") AND i("c")`, ok},
	{"(a OR b) c", `(i("a") OR i("b")) AND i("c")`, ok},
	{"a && b || c", `i("a") AND i("b") OR i("c")`, ok},
	{"NOT a", `NOT i("a")`, ok},
	{"-a b", `NOT i("a") AND i("b")`, ok},
	{"!a", `NOT i("a")`, ok},
	{"+a -b", `i("a") AND NOT i("b")`, ok},
	{"NOT NOT a", `i("a")`, ok},
	{"NOT (a OR b)", `NOT (i("a") OR i("b"))`, ok},
	{"a and b", `i("a") AND i("and") AND i("b")`, ok},
	{"event.code:(4624 OR 4625) host.name:dc01", `(event.code:="4624" OR event.code:="4625") AND host.name:="dc01"`, ok},
	{"source.ip:(10.0.0.0/8 OR ::1)", `source.ip:ipv4_range("10.0.0.0/8") OR source.ip:ipv6_range("::1")`, ok},
	{"destination.port:(-22 [1 TO 5])", `NOT destination.port:="22" AND destination.port:range[1, 5]`, ok},
	{"user.name:root AND NOT source.ip:10.0.0.0/8", `user.name:="root" AND NOT source.ip:ipv4_range("10.0.0.0/8")`, ok},

	// injection attempts stay literals
	{`user.name:"x\" | delete"`, `user.name:="x\" | delete"`, ok},
	{`"x\" | delete _msg"`, `i("x\" | delete _msg")`, ok},
	{`user.name:x\"\ \|\ delete`, `user.name:="x\" | delete"`, ok},
	{`"options(ignore_global_time_filter=true)"`, `i("options(ignore_global_time_filter=true)")`, ok},
	{`user.name:"a\") OR (\"b"`, `user.name:="a\") OR (\"b"`, ok},
	{"x`y'z", "i(\"x`y'z\")", ok},

	// pipes
	{"| stats count() by host.name", `* | stats by (host.name) count()`, ok},
	{"error | stats count() by host.name, user.name", `i("error") | stats by (host.name, user.name) count()`, ok},
	{"* | stats count() as hits, count_uniq(user.name), sum(bytes), avg(bytes), min(bytes), max(bytes) by (host.name)",
		`* | stats by (host.name) count() as "hits", count_uniq(user.name), sum(bytes), avg(bytes), min(bytes), max(bytes)`, ok},
	{"* | STATS dc(user.name) as users", `* | stats count_uniq(user.name) as users`, ok},
	{"| stats by event.kind count()", `* | stats by (event.kind) count()`, ok},
	{"error | top 5 source.ip", `i("error") | top 5 by (source.ip)`, ok},
	{"error | top source.ip, user.name", `i("error") | top 10 by (source.ip, user.name)`, ok},
	{"| sort @timestamp desc", `* | sort by (_time desc)`, ok},
	{"| sort by host.name asc, bytes desc", `* | sort by (host.name, bytes desc)`, ok},
	{"| head 10", `* | limit 10`, ok},
	{"| limit 5 | fields @timestamp, host.name, message", `* | limit 5 | fields _time, host.name, message`, ok},
	{"| fields limit", `* | fields "limit"`, ok},

	// errors, with positions
	{"(a", "expected ')' to close '(' at position 0", 2},
	{"a)", "unexpected ')'", 1},
	{"()", "empty group '()'", 0},
	{"a AND", "expected a search term after AND", 5},
	{"OR a", "expected a search term before OR", 0},
	{"NOT", "expected a search term after NOT", 3},
	{"a OR", "expected a search term after OR", 4},
	{"f:", "expected a value after 'f:'", 2},
	{"f: x", "expected a value after 'f:'", 2},
	{`"abc`, "unterminated quoted string", 0},
	{`a "b`, "unterminated quoted string", 2},
	{`x" | delete`, "unexpected \"\\\"\" right after a value; put the whole value in quotes or escape it with '\\'", 1},
	{"f:[1 TO x]", `range bound "x" is not a number or an IP address`, 8},
	{"f:[1 5]", "expected TO in range", 5},
	{"f:[1 TO 5", "expected ']' or '}' to close the range at position 2", 9},
	{"f:[10.0.0.1 TO ::1]", "range bounds mix IPv4 and IPv6", 15},
	{"f:>abc", `expected a number or an IP address after '>', got "abc"`, 3},
	{"f:/(/", "invalid regex: missing closing ): `(`", 2},
	{"[1 TO 5]", "a range needs a field, e.g. destination.port:[1 TO 1024]", 0},
	{">5", "a comparison needs a field, e.g. bytes:>1000", 0},
	{`""`, "empty search phrase", 0},
	{"@timestamp:foo", "invalid timestamp for @timestamp (use e.g. 2024-05-01, 2024-05-01T10:00:00Z or a duration such as 1h)", 11},
	{"@timestamp:2024*", "@timestamp does not support wildcards; use a timestamp or a range", 11},
	{"@timestamp:/x/", "@timestamp cannot be matched with a regex", 11},
	{"_exists_:*", "_exists_ expects a field name", 9},
	{"a | delete x", `unknown pipe "delete"; supported pipes: stats, top, sort, head, limit, fields`, 4},
	{"a |", "expected a pipe name after '|' (stats, top, sort, head, limit, fields)", 3},
	{"a | stats", "expected a stats function: count(), count_uniq(f), sum(f), avg(f), min(f), max(f)", 9},
	{"a | stats median(x)", `unknown stats function "median"; supported: count, count_uniq, sum, avg, min, max`, 10},
	{"a | stats sum()", "sum() needs one field", 10},
	{"a | stats count(", "expected ')' to close count(", 16},
	{"a | head 0", "expected the number of events: a whole number from 1 to 1000000000", 9},
	{"a | head x", "expected the number of events: a whole number from 1 to 1000000000", 9},
	{"a | fields a b", `unexpected "b" after the fields pipe`, 13},
	{"a | top 5", "expected a field name", 9},
	{"a | stats count(), count()", `invalid stats pipe: cannot parse "stats" pipe: cannot use identical result name "count(*)" for [count(*)] and [count(*)]; context: [* | stats count(), count()]`, 4},
	{"a || | b", "expected a search term after OR", 5},
	{"foo(bar)", "unexpected \"(\" right after a value; put the whole value in quotes or escape it with '\\'", 3},
	{strings.Repeat("(", 200) + "a" + strings.Repeat(")", 200), "query is nested too deeply", 100},
	{"a\xffb", "query is not valid UTF-8", 1},
}

func TestTranslate(t *testing.T) {
	for _, tc := range translateCases {
		got, err := Translate(tc.in)
		if tc.err == ok {
			if err != nil {
				t.Errorf("Translate(%q): unexpected error %v", tc.in, err)
				continue
			}
			if got != tc.want {
				t.Errorf("Translate(%q)\n got: %s\nwant: %s", tc.in, got, tc.want)
			}
			mustBeValidLogsQL(t, tc.in, got)
			continue
		}
		if err == nil {
			t.Errorf("Translate(%q) = %s; want error %q at %d", tc.in, got, tc.want, tc.err)
			continue
		}
		var qe *Error
		if !errors.As(err, &qe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Translate(%q): error %v is not a *Error wrapping ErrInvalid", tc.in, err)
			continue
		}
		if qe.Pos != tc.err || qe.Msg != tc.want {
			t.Errorf("Translate(%q)\n got error: %d %s\nwant error: %d %s", tc.in, qe.Pos, qe.Msg, tc.err, tc.want)
		}
	}
}

// mustBeValidLogsQL checks a translation with the real LogsQL parser and
// with the expert-mode checks.
func mustBeValidLogsQL(t *testing.T, in, out string) {
	t.Helper()
	if _, err := logstorage.ParseQuery(out); err != nil {
		t.Errorf("Translate(%q) = %s: rejected by logstorage.ParseQuery: %v", in, out, err)
	}
	if err := ValidateLogsQL(out); err != nil {
		t.Errorf("Translate(%q) = %s: rejected by ValidateLogsQL: %v", in, out, err)
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Translate("(a")
	if err == nil || err.Error() != "position 2: expected ')' to close '(' at position 0" {
		t.Fatalf("unexpected error text: %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatal("errors.Is(err, ErrInvalid) = false")
	}
}

func TestTranslateGolden(t *testing.T) {
	var b strings.Builder
	for _, tc := range translateCases {
		if strings.ContainsAny(tc.in, "\t\n\r") || !isPrintable(tc.in) {
			continue
		}
		out, err := Translate(tc.in)
		if err != nil {
			out = "ERROR " + err.Error()
		}
		b.WriteString(tc.in + "\t" + out + "\n")
	}
	path := filepath.Join("testdata", "translate.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTranslateGolden -update)", err)
	}
	if string(want) != b.String() {
		gotLines := strings.Split(b.String(), "\n")
		wantLines := strings.Split(string(want), "\n")
		for i := 0; i < len(gotLines) || i < len(wantLines); i++ {
			var g, w string
			if i < len(gotLines) {
				g = gotLines[i]
			}
			if i < len(wantLines) {
				w = wantLines[i]
			}
			if g != w {
				t.Fatalf("testdata/translate.golden differs at line %d (run with -update if intended)\n got: %s\nwant: %s", i+1, g, w)
			}
		}
	}
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == 0xfffd || r < 0x20 {
			return false
		}
	}
	return len(s) < 300
}

// TestSearchDocExamples keeps docs/SEARCH.md honest: in its tables, every
// `input` of the first column must translate to the `LogsQL` of the second.
func TestSearchDocExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "SEARCH.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		line = strings.ReplaceAll(line, `\|`, "\x00")
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		ins := codeSpans(cells[1])
		outs := codeSpans(cells[2])
		if len(ins) == 0 || len(outs) != 1 {
			continue
		}
		for _, in := range ins {
			n++
			got, err := Translate(in)
			if err != nil {
				t.Errorf("SEARCH.md: %q: %v", in, err)
				continue
			}
			if got != outs[0] {
				t.Errorf("SEARCH.md: %q\n got: %s\n doc: %s", in, got, outs[0])
			}
		}
	}
	t.Logf("%d examples checked", n)
	if n < 40 {
		t.Fatalf("only %d examples found in SEARCH.md", n)
	}
}

func codeSpans(cell string) []string {
	var out []string
	parts := strings.Split(cell, "`")
	for i := 1; i < len(parts); i += 2 {
		out = append(out, strings.ReplaceAll(parts[i], "\x00", "|"))
	}
	return out
}

func TestHasPipe(t *testing.T) {
	for q, want := range map[string]bool{
		`a | stats count()`:              true,
		`a || b`:                         false,
		`"x | y"`:                        false,
		`f:/a|b/`:                        false,
		`_msg:~"a|b" | count()`:          true,
		`i("mimikatz") OR "p\"|q"`:       false,
		`user.name:="x" | top 10 by (y)`: true,
	} {
		if got := HasPipe(q); got != want {
			t.Errorf("HasPipe(%q) = %v, want %v", q, got, want)
		}
	}
}
