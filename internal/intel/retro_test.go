package intel

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// retroRows are stored in an embedded VictoriaLogs; "id" names each row.
var retroRows = []map[string]string{
	{"id": "ip", "source.ip": "192.0.2.10", "destination.ip": "10.0.0.1"},
	{"id": "ip-other", "source.ip": "192.0.2.100"},
	{"id": "ip-sysmon", "winlog.event_data.DestinationIp": "192.0.2.10"},
	{"id": "cidr-in", "destination.ip": "198.51.100.77"},
	{"id": "cidr-out", "destination.ip": "198.51.101.1"},
	{"id": "v6", "destination.ip": "2001:DB8::1"},
	{"id": "v6-cidr", "destination.ip": "2001:db8:aa:1::5"},
	{"id": "dns", "dns.question.name": "evil.example"},
	{"id": "dns-sub", "dns.question.name": "A.B.Evil.Example."},
	{"id": "dns-not-sub", "dns.question.name": "notevil.example"},
	{"id": "dns-longer", "dns.question.name": "evil.example.net"},
	{"id": "url-host", "url.original": "https://cdn.evil.example:8443/x"},
	{"id": "url-exact", "url.original": "HTTPS://Malware.Example.com:443/eicar.com#frag"},
	{"id": "url-other-path", "url.original": "http://malware.example.com/eicar.com.txt"},
	{"id": "url-path-only", "url.domain": "malware.example.com", "url.original": "/eicar.com"},
	{"id": "hash", "file.hash.md5": "44D88612FEA8A8F36DE82E1278ABB02F"},
	{"id": "hash-sysmon", "winlog.event_data.Hashes": "SHA1=3395856CE81F2B7382DEE72602F798B642F14140,MD5=44D88612FEA8A8F36DE82E1278ABB02F"},
	{"id": "hash-longer", "file.hash.sha256": "44d88612fea8a8f36de82e1278abb02f00"},
	{"id": "email", "email.from.address": "Bank <Banking@G0thamNatl.com>"},
	{"id": "email-list", "email.to.address": "x@a.example,banking@g0thamnatl.com"},
	{"id": "file", "file.name": "Invoice.EXE"},
	{"id": "file-path", "winlog.event_data.Image": `C:\Users\a\invoice.exe`},
	{"id": "file-suffix", "file.name": "my-invoice.exe"},
}

func openRetroStorage(t *testing.T) *logstorage.Storage {
	s := logstorage.MustOpenStorage(t.TempDir(), &logstorage.StorageConfig{Retention: 7 * 24 * time.Hour})
	lr := logstorage.GetLogRows(nil, nil, nil, nil, "")
	defer logstorage.PutLogRows(lr)
	ts := time.Now().Add(-time.Hour).UnixNano()
	for _, row := range retroRows {
		var fields []logstorage.Field
		for k, v := range row {
			fields = append(fields, logstorage.Field{Name: k, Value: v})
		}
		sort.Slice(fields, func(a, b int) bool { return fields[a].Name < fields[b].Name })
		lr.MustAdd(logstorage.TenantID{}, ts, fields, -1)
	}
	s.MustAddRows(lr)
	s.DebugFlush()
	t.Cleanup(s.MustClose)
	return s
}

func TestRetroQuery(t *testing.T) {
	s := openRetroStorage(t)
	cases := []struct {
		typ   Type
		value string
		want  string
	}{
		{TypeIPv4, "192.0.2.10", "ip,ip-sysmon"},
		{TypeCIDR, "198.51.100.0/24", "cidr-in"},
		{TypeIPv6, "2001:db8::1", "v6"},
		{TypeCIDR, "2001:db8:aa::/48", "v6-cidr"},
		{TypeDomain, "evil.example", "dns,dns-sub,url-host"},
		{TypeURL, "http://malware.example.com/eicar.com", "url-exact,url-path-only"},
		{TypeMD5, "44d88612fea8a8f36de82e1278abb02f", "hash,hash-sysmon"},
		{TypeSHA1, "3395856ce81f2b7382dee72602f798b642f14140", "hash-sysmon"},
		{TypeEmail, "banking@g0thamnatl.com", "email,email-list"},
		{TypeFilename, "invoice.exe", "file,file-path"},
	}
	for _, c := range cases {
		t.Run(string(c.typ)+":"+c.value, func(t *testing.T) {
			q, err := RetroQuery(&Indicator{Type: c.typ, Value: c.value})
			if err != nil {
				t.Fatal(err)
			}
			pq, err := logstorage.ParseQuery(q)
			if err != nil {
				t.Fatalf("ParseQuery(%s): %v", q, err)
			}
			got := strings.Join(runRetro(t, s, pq), ",")
			if got != c.want {
				t.Errorf("rows %q, want %q\nquery: %s", got, c.want, q)
			}
		})
	}
	if _, err := RetroQuery(&Indicator{Type: TypeIPv4, Value: "not-an-ip"}); err == nil {
		t.Error("invalid indicator gave a query")
	}
}

func runRetro(t *testing.T, s *logstorage.Storage, q *logstorage.Query) []string {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	write := func(_ uint, db *logstorage.DataBlock) {
		c := db.GetColumnByName("id")
		if c == nil {
			return
		}
		mu.Lock()
		for _, v := range c.Values { // the block's memory is reused after the callback
			ids = append(ids, strings.Clone(v))
		}
		mu.Unlock()
	}
	qctx := logstorage.NewQueryContext(context.Background(), &logstorage.QueryStats{}, []logstorage.TenantID{{}}, q, false, nil)
	if err := s.RunQuery(qctx, write); err != nil {
		t.Fatalf("RunQuery: %v", err)
	}
	sort.Strings(ids)
	return slices.Compact(ids)
}

// FuzzRetroQuery: any indicator that normalizes gives a query LogsQL
// accepts.
func FuzzRetroQuery(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "evil.example", `http://a.example/p?q="x"\`, "44d88612fea8a8f36de82e1278abb02f", "a@b.example", `we"ird$(name).exe`} {
		f.Add("", s)
	}
	f.Add("filename", `a\b".exe`)
	f.Fuzz(func(t *testing.T, typ, value string) {
		ind := &Indicator{Type: Type(typ), Value: value}
		q, err := RetroQuery(ind)
		if err != nil {
			return
		}
		if q == "" {
			t.Fatalf("empty query for %s %q", typ, value)
		}
		if _, err := logstorage.ParseQuery(q); err != nil {
			t.Fatalf("ParseQuery(%s): %v", q, err)
		}
	})
}
