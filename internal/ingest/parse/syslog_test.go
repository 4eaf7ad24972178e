package parse

import (
	"fmt"
	"github.com/mamori-soc/mamori/internal/event"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
)

// fastVsGoSyslog checks that whenever the strict fast path accepts text,
// go-syslog parses it without error into the same fields. It returns an
// error describing the first difference.
func fastVsGoSyslog(text string) error {
	text = trimEnd(text)
	_, n, ok := priPrefix(text)
	if !ok {
		return nil
	}
	rest := text[n:]
	if isVersion5424(rest) {
		var env envelope
		if !parse5424Fast(text, n, &env) {
			return nil
		}
		msg, err := rfc5424.NewMachine(rfc5424.WithBestEffort()).Parse([]byte(text))
		if err != nil {
			return fmt.Errorf("fast path accepted what go-syslog refuses (%v)", err)
		}
		sm := msg.(*rfc5424.SyslogMessage)
		var ts time.Time
		if sm.Timestamp != nil {
			ts = *sm.Timestamp
		}
		if !ts.Equal(env.ts) {
			return fmt.Errorf("timestamp %v vs go-syslog %v", env.ts, ts)
		}
		for _, c := range [][3]string{{"host", env.host, deref(sm.Hostname)}, {"app", env.app, deref(sm.Appname)},
			{"procid", env.procid, deref(sm.ProcID)}, {"msgid", env.msgid, deref(sm.MsgID)}, {"msg", env.msg, deref(sm.Message)}} {
			if c[1] != c[2] {
				return fmt.Errorf("%s %q vs go-syslog %q", c[0], c[1], c[2])
			}
		}
		mine := map[string]map[string]string{}
		for _, q := range env.sd {
			if mine[q.id] == nil {
				mine[q.id] = map[string]string{}
			}
			if q.name != "" {
				mine[q.id][q.name] = q.value
			}
		}
		theirs := map[string]map[string]string{}
		if sm.StructuredData != nil {
			theirs = *sm.StructuredData
		}
		if !maps.EqualFunc(mine, theirs, func(a, b map[string]string) bool { return maps.Equal(a, b) }) {
			return fmt.Errorf("SD %v vs go-syslog %v", mine, theirs)
		}
		return nil
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return nil // go-syslog's RFC 3164 MSG refuses control characters; the fast path keeps them
		}
	}
	var env envelope
	if !parseBSD(rest, true, ingested, time.UTC, &env) {
		return nil
	}
	var got envelope
	if !parse3164Machine(text, ingested, time.UTC, &got) {
		return fmt.Errorf("fast path accepted what go-syslog refuses")
	}
	if got.err != "" {
		return fmt.Errorf("fast path accepted, go-syslog: %s", got.err)
	}
	if !got.ts.Equal(env.ts) {
		return fmt.Errorf("timestamp %v vs go-syslog %v", env.ts, got.ts)
	}
	for _, c := range [][3]string{{"host", env.host, got.host}, {"app", env.app, got.app},
		{"procid", env.procid, got.procid}, {"msg", env.msg, got.msg}} {
		if c[1] != c[2] {
			return fmt.Errorf("%s %q vs go-syslog %q", c[0], c[1], c[2])
		}
	}
	return nil
}

// syslogSamples returns hand-written headers plus the wire captures.
func syslogSamples(t testing.TB) []string {
	s := []string{
		`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8`,
		`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		`<165>1 2003-10-11T22:14:15.003Z host app - - [a@1 x="a\\b\"c\]d\e"] msg`,
		`<165>1 2003-10-11T22:14:15.003Z host app - - [a@1] msg`,
		`<165>1 2003-10-11T22:14:15.003Z host app - - [a@1][a@1 x="1"] dup`,
		`<165>1 2003-10-11T22:14:15.0000003Z host app - - - seven fraction digits`,
		`<165>1 2003-10-11T22:14:15+0100 host app - - - no colon offset`,
		`<165>1 2003-10-11T22:14:15 host app - - - no offset`,
		`<165>1 2003-02-29T22:14:15Z host app - - - not a leap year`,
		`<165>1 2003-10-11T22:14:15Z host app - - -`,
		`<165>1 2003-10-11T22:14:15Z host app - - - `,
		`<165>2 2003-10-11T22:14:15Z host app - - - version 2`,
		`<13>Nov 25 17:52:33 fw1 date=2026 x=y`,
		`<13>Nov 05 17:52:33 fw1 app[12]: x`,
		`<13>Nov 25 17:52:33.123 fw1 app: x`,
		`<13>Nov 25 17:52:33.1234567 fw1 app: x`,
		`<13>Nov 25 17:52:33 fw1 app:nospace`,
		`<13>Nov 25 17:52:33 fw1 : empty tag`,
		`<13>Nov 25 17:52:33 fw1 app: `,
		`<13>Nov 25 17:52:33 fw1 app:`,
		`<13>Nov 25 17:52:33 fw1 app[1 2]: x`,
		`<13>Nov 25 17:52:33 fw1 app[]: x`,
		`<13>Nov 25 17:52:33 fw1 a]b: x`,
		`<13>Nov 25 17:52:33 fw1 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz: long tag`,
		`<13>Nov 31 17:52:33 fw1 app: x`,
		`<13>Feb 29 17:52:33 fw1 app: leap`,
		`<13>Nov  5 17:52:33 fw1 app: x`,
		`<13>Nov 5 17:52:33 fw1 app: x`,
		`<13>Nov 25 17:52:33  fw1 app: two spaces`,
		`<13>Nov 25 17:52:33 fw1  app: two spaces`,
		`<13>2026-11-25T17:52:33Z fw1 app: x`,
		`<13>2026-11-25T17:52:33.1234567Z fw1 app: x`,
		`<13>2026-11-25T17:52:33 fw1 app: no offset`,
		`<13>2026-11-25 17:52:33 fw1 app: space`,
		`<13>Nov 25 17:52:33 fw1 app: tab	inside`,
		"<13>Nov 25 17:52:33 fw1 app: caf\u00e9 unicode",
		`<13>Nov 25 17:52:33 host:x app: colon in host`,
		`<13>Nov 25 17:52:33 fw1 word more words`,
		`<13>Nov 25 17:52:33 fw1 app[12] no colon`,
		`<13>Nov 25 17:52:33 fw1 sshd[1]: sshd started`,
		`<13>Nov 25 17:52:33 fw1 app: app said`,
		`<13>Nov 25 17:52:33 fw1 a]: x`,
		`<13>Nov 25 17:52:33 fw1 a[]: x`,
		`<13>Nov 25 17:52:33 fw1 0 0[0000]: 0`,
		`<13>NoV 25 17:52:33 fw1 app: x`,
	}
	for _, c := range cases {
		s = append(s, c.in)
	}
	if dir := filepath.Join(corpusDir, "syslog-wire", "captures"); dirExists(dir) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, fr := range deframe(b) {
				s = append(s, string(fr))
			}
		}
	}
	return s
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// TestFastPathMatchesGoSyslog is the differential test of the fast path.
func TestFastPathMatchesGoSyslog(t *testing.T) {
	accepted := 0
	for _, s := range syslogSamples(t) {
		if err := fastVsGoSyslog(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
		var env envelope
		if _, n, ok := priPrefix(trimEnd(s)); ok && (parse5424Fast(trimEnd(s), n, &env) || parseBSD(trimEnd(s)[n:], true, ingested, time.UTC, &env)) {
			accepted++
		}
	}
	if accepted < 20 {
		t.Errorf("fast path accepted only %d samples", accepted)
	}
}

// FuzzSyslogFastPath fuzzes the differential test.
func FuzzSyslogFastPath(f *testing.F) {
	for _, s := range syslogSamples(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		if err := fastVsGoSyslog(s); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

func TestYearInference(t *testing.T) {
	ref := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	cases := []struct {
		st   bsdStamp
		want time.Time
	}{
		{bsdStamp{month: 12, day: 31, hour: 23}, time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)},
		{bsdStamp{month: 1, day: 1, hour: 23}, time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC)},
		{bsdStamp{month: 1, day: 2, hour: 0}, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{bsdStamp{month: 1, day: 3, hour: 1}, time.Date(2025, 1, 3, 1, 0, 0, 0, time.UTC)},
		{bsdStamp{month: 2, day: 29}, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		if got := yearFor(c.st, ref, time.UTC); !got.Equal(c.want) {
			t.Errorf("%+v: %v, want %v", c.st, got, c.want)
		}
	}
	// Dec 31 logs ingested just after New Year's in a zone ahead of UTC.
	ref = time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	if got := yearFor(bsdStamp{month: 1, day: 1, hour: 0, min: 5}, ref, time.UTC); got.Year() != 2027 {
		t.Errorf("Jan 1 seen on Dec 31: %v", got)
	}
}

func TestParserLocation(t *testing.T) {
	loc := time.FixedZone("X", 2*3600)
	p := &Parser{Location: loc}
	e := newEvent()
	p.Parse([]byte("<13>Nov 25 12:00:00 h app: x"), e)
	if want := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC); !e.Timestamp.Equal(want) {
		t.Errorf("got %v want %v", e.Timestamp, want)
	}
	var nilP *Parser
	if nilP.loc() != time.UTC {
		t.Error("nil parser location")
	}
}

func TestTimeHelpers(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"2026-11-25T10:00:00Z", "2026-11-25T10:00:00Z"},
		{"2026-11-25T10:00:00.123456789+01:00", "2026-11-25T09:00:00.123456789Z"},
		{"2026-11-25 10:00:00-0530", "2026-11-25T15:30:00Z"},
		{"2026-11-25T10:00:00+01", "2026-11-25T09:00:00Z"},
		{"1795600800", "2026-11-25T10:00:00Z"},
		{"1795600800.5", "2026-11-25T10:00:00.5Z"},
		{"1795600800123", "2026-11-25T10:00:00.123Z"},
		{"1795600800123456", "2026-11-25T10:00:00.123456Z"},
		{"1795600800123456789", "2026-11-25T10:00:00.123456789Z"},
		{"Nov 25 2026 10:00:00", "2026-11-25T10:00:00Z"},
		{"Nov 25 2026 10:00:00.250 GMT", "2026-11-25T10:00:00.25Z"},
		{"Nov 25 2026 10:00:00 +0200", "2026-11-25T08:00:00Z"},
		{"Wed, 25 Nov 2026 10:00:00 +0000", "2026-11-25T10:00:00Z"},
		{"25/Nov/2026:10:00:00 +0100", "2026-11-25T09:00:00Z"},
	} {
		got, ok := parseAnyTime(c.in, ingested, time.UTC)
		if !ok || got.Format(time.RFC3339Nano) != c.want {
			t.Errorf("%q: %v %v, want %s", c.in, got, ok, c.want)
		}
	}
	for _, bad := range []string{"", "42", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "Foo 25 2026 10:00:00", "99999999999999999999999", "1.2.3"} {
		if got, ok := parseAnyTime(bad, ingested, time.UTC); ok {
			t.Errorf("%q parsed as %v", bad, got)
		}
	}
	if l := convertJavaLayout("yyyy-MM-dd'T'HH:mm:ss.SSSZ"); l != "2006-01-02T15:04:05.000-0700" {
		t.Errorf("java layout %q", l)
	}
	if l := convertJavaLayout("MMM dd yyyy HH:mm:ss z"); l != "Jan 02 2006 15:04:05 MST" {
		t.Errorf("java layout %q", l)
	}
	if l := convertJavaLayout("qq"); l != "" {
		t.Errorf("java layout %q", l)
	}
}

// TestBareTagFromRsyslogForward: rsyslog's RSYSLOG_ForwardFormat of an RFC
// 5424 input writes "app[pid]" without a colon (seen in the e2e rsyslog
// test); the tag must still become the app name.
func TestBareTagFromRsyslogForward(t *testing.T) {
	e := &event.Event{Ingested: ingested}
	New().Parse([]byte("<22>2026-11-25T19:26:20Z vm postfix/smtpd[4242] connect from unknown[192.0.2.18]"), e)
	if e.Value(event.FieldLogSyslogAppName) != "postfix/smtpd" || e.Value(event.FieldProcessPID) != "4242" || e.Value(event.FieldSourceIP) != "192.0.2.18" {
		t.Fatalf("fields: %v", e.Fields)
	}
	if m := e.Value(event.FieldMessage); m != "connect from unknown[192.0.2.18]" {
		t.Fatalf("message %q", m)
	}
}
