package query

import (
	"context"
	"flag"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// semanticRows are stored in an embedded VictoriaLogs; each map is one event
// (event.id identifies it in the assertions).
var semanticRows = []map[string]string{
	{"event.id": "1", "tenant": "acme", "_msg": "Mimikatz detected: sekurlsa::logonpasswords on DC01",
		"source.ip": "10.1.2.3", "destination.port": "445", "user.name": "Administrator", "host.name": "dc01",
		"bytes": "1500", "event.kind": "alert", "process.command_line": `C:\tools\mimikatz.exe privilege::debug`,
		"file.path": `C:\tools\mimikatz.exe`},
	{"event.id": "2", "tenant": "acme", "_msg": "Failed password for root from 192.168.1.5 port 22 ssh2",
		"source.ip": "192.168.1.5", "destination.port": "22", "user.name": "root", "host.name": "web-01",
		"bytes": "300", "event.kind": "event"},
	{"event.id": "3", "tenant": "acme", "_msg": "Accepted password for admin from 2001:db8::5 port 22 ssh2",
		"source.ip": "2001:db8::5", "destination.port": "22", "user.name": "admin", "host.name": "web-02",
		"bytes": "99999", "event.kind": "event"},
	{"event.id": "4", "tenant": "globex", "_msg": "GET /index.html HTTP/1.1 200 passwords.txt",
		"source.ip": "8.8.8.8", "destination.port": "8080", "user.name": "John Smith", "host.name": "proxy",
		"bytes": "0", "url.original": "http://evil.example.com/x?a=1", "event.kind": "event"},
	{"event.id": "5", "tenant": "globex", "_msg": `odd value x" | delete _msg`,
		"source.ip": "10.200.0.1", "destination.port": "1024", "user.name": `x" | delete`, "host.name": "web-10",
		"bytes": "2", "event.kind": "event"},
}

// openSemanticStorage fills a Storage in a temp dir with semanticRows.
// Row i has _time = base + i minutes.
func openSemanticStorage(t *testing.T) (*logstorage.Storage, time.Time) {
	t.Helper()
	if !flag.Parsed() {
		_ = flag.CommandLine.Parse(nil)
	}
	dir := t.TempDir()
	s := logstorage.MustOpenStorage(dir, &logstorage.StorageConfig{Retention: 7 * 24 * time.Hour})
	t.Cleanup(s.MustClose)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UTC()
	lr := logstorage.GetLogRows(nil, nil, nil, nil, "")
	defer logstorage.PutLogRows(lr)
	for i, row := range semanticRows {
		fields := make([]logstorage.Field, 0, len(row))
		for k, v := range row {
			fields = append(fields, logstorage.Field{Name: k, Value: v})
		}
		sort.Slice(fields, func(a, b int) bool { return fields[a].Name < fields[b].Name })
		ts := base.Add(time.Duration(i) * time.Minute).UnixNano()
		lr.MustAdd(logstorage.TenantID{}, ts, fields, -1)
	}
	s.MustAddRows(lr)
	s.DebugFlush()
	return s, base
}

// runIDs runs LogsQL and returns the sorted event.id values it matched.
func runIDs(t *testing.T, s *logstorage.Storage, logsql string) []string {
	t.Helper()
	q, err := logstorage.ParseQuery(logsql)
	if err != nil {
		t.Fatalf("ParseQuery(%s): %v", logsql, err)
	}
	var mu sync.Mutex
	var ids []string
	write := func(_ uint, db *logstorage.DataBlock) {
		c := db.GetColumnByName("event.id")
		if c == nil {
			return
		}
		mu.Lock()
		for _, v := range c.Values { // the block's memory is reused after the callback
			ids = append(ids, strings.Clone(v))
		}
		mu.Unlock()
	}
	qctx := logstorage.NewQueryContext(context.Background(), &logstorage.QueryStats{},
		[]logstorage.TenantID{{}}, q, false, nil)
	if err := s.RunQuery(qctx, write); err != nil {
		t.Fatalf("RunQuery(%s): %v", logsql, err)
	}
	sort.Strings(ids)
	return ids
}

func TestSemantics(t *testing.T) {
	s, base := openSemanticStorage(t)
	ts := func(minutes int) string { return base.Add(time.Duration(minutes) * time.Minute).Format(time.RFC3339) }

	cases := []struct {
		q    string
		want string // comma-separated event.id values
	}{
		// free text: words, case-insensitive, not substrings
		{"mimikatz", "1"},
		{"MIMIKATZ", "1"},
		{"password", "2,3"},
		{"pass", ""},
		{"passwords", "4"},
		{`"failed password"`, "2"},
		{`"password failed"`, ""},
		{"password*", "2,3,4"},
		{"*asswor*", "1,2,3,4"},
		{"*words", "1,4"},
		{"*.txt", "4"},
		{"mimi*tz", "1"},
		{"mimi*dc01", ""},
		{"*etecte*", "1"},
		{"/Mimi[k]atz/", "1"},
		{"/mimi[k]atz/", ""},
		{"password -failed", "3"},
		{"accepted OR failed", "2,3"},
		{`"x\" | delete _msg"`, "5"},
		{"*", "1,2,3,4,5"},
		// keyword fields: exact, case-sensitive
		{"user.name:root", "2"},
		{"user.name:Root", ""},
		{"user.name:roo", ""},
		{"user.name:John", ""},
		{`user.name:"John Smith"`, "4"},
		{"user.name:adm*", "3"},
		{"user.name:*min*", "1,3"},
		{"user.name:*min", "3"},
		{"user.name:A*r", "1"},
		{`user.name:"x\" | delete"`, "5"},
		{`user.name:x\"\ \|\ delete`, "5"},
		{"host.name:web*", "2,3,5"},
		{"host.name:/^web-0[12]$/", "2,3"},
		{"host.name:web-01 OR host.name:proxy", "2,4"},
		{"url.original:*evil*", "4"},
		{"url.original:http://evil.example.com/x?a=1", "4"},
		{"_exists_:url.original", "4"},
		{`url.original:""`, "1,2,3,5"},
		{"NOT url.original:*", "1,2,3,5"},
		{`file.path:"C:\tools\mimikatz.exe"`, "1"},
		// text field: words
		{"process.command_line:mimikatz", "1"},
		{"process.command_line:MIMIKATZ.exe", "1"},
		{"process.command_line:tools\\\\mimi*", "1"},
		// IPs
		{"source.ip:10.0.0.0/8", "1,5"},
		{"source.ip:10.1.2.3", "1"},
		{"source.ip:10.1.2", ""},
		{"source.ip:192.168.0.0/16", "2"},
		{"source.ip:2001:db8::/32", "3"},
		{"source.ip:2001:0db8:0:0::5", "3"},
		{"NOT source.ip:10.0.0.0/8", "2,3,4"},
		{"source.ip:[10.0.0.0 TO 10.100.0.0]", "1"},
		{"source.ip:>10.100.0.0", "2,5"},
		// numbers
		{"destination.port:[1 TO 1024]", "1,2,3,5"},
		{"destination.port:{22 TO 1024}", "1"},
		{"destination.port:[22 TO 445}", "2,3"},
		{"destination.port:[1024 TO *]", "4,5"},
		{"bytes:>1000", "1,3"},
		{"bytes:<=300", "2,4,5"},
		{"bytes:<2", "4"},
		{"event.kind:alert AND -host.name:dc02", "1"},
		{"event.code:(4624 OR 4625)", ""},
		{"destination.port:(22 OR 8080) -user.name:root", "3,4"},
		// time
		{"@timestamp:>=" + ts(3), "4,5"},
		{"@timestamp:[" + ts(1) + " TO " + ts(2) + "]", "2,3"},
		{"@timestamp:{" + ts(1) + " TO " + ts(3) + "}", "3"},
	}
	for _, tc := range cases {
		logsql, err := Translate(tc.q)
		if err != nil {
			t.Errorf("Translate(%q): %v", tc.q, err)
			continue
		}
		got := strings.Join(runIDs(t, s, logsql), ",")
		if got != tc.want {
			t.Errorf("%s\n  LogsQL: %s\n  got ids [%s], want [%s]", tc.q, logsql, got, tc.want)
		}
	}

	// A pipe end to end: the count per host of matching events.
	logsql, err := Translate("password | stats count() as n by host.name | sort host.name")
	if err != nil {
		t.Fatal(err)
	}
	q, err := logstorage.ParseQuery(logsql)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	var mu sync.Mutex
	qctx := logstorage.NewQueryContext(context.Background(), &logstorage.QueryStats{}, []logstorage.TenantID{{}}, q, false, nil)
	err = s.RunQuery(qctx, func(_ uint, db *logstorage.DataBlock) {
		h, n := db.GetColumnByName("host.name"), db.GetColumnByName("n")
		mu.Lock()
		defer mu.Unlock()
		for i := range h.Values {
			rows = append(rows, h.Values[i]+"="+n.Values[i])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"web-01=1", "web-02=1"}; !slices.Equal(rows, want) {
		t.Errorf("%s: got %v, want %v", logsql, rows, want)
	}
}

// TestExpertScoping shows why ValidateLogsQL refuses query options: with
// ignore_global_time_filter the caller's AddTimeFilter is silently dropped;
// an accepted query scoped with AddTimeFilter and AddExtraFilters sees only
// its tenant's rows in the range.
func TestExpertScoping(t *testing.T) {
	s, base := openSemanticStorage(t)
	start, end := base.Add(2*time.Minute).UnixNano(), base.Add(10*time.Minute).UnixNano()
	tenant, err := logstorage.ParseFilter(`tenant:="acme"`)
	if err != nil {
		t.Fatal(err)
	}
	run := func(expert string) string {
		q, err := logstorage.ParseQuery(expert)
		if err != nil {
			t.Fatal(err)
		}
		q.AddTimeFilter(start, end)
		q.AddExtraFilters(tenant)
		return strings.Join(runIDs(t, s, q.String()), ",")
	}

	escape := `options(ignore_global_time_filter=true) *`
	if got := run(escape); got != "1,2,3" {
		t.Fatalf("%s: got [%s]; the time range should have been dropped (want 1,2,3)", escape, got)
	}
	if ValidateLogsQL(escape) == nil {
		t.Fatalf("ValidateLogsQL accepted %s", escape)
	}

	allowed := `password OR mimikatz | fields event.id`
	if err := ValidateLogsQL(allowed); err != nil {
		t.Fatal(err)
	}
	if got := run(allowed); got != "3" {
		t.Fatalf("%s: got [%s], want [3]", allowed, got)
	}
}
