package store

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/store/vltest"
)

func openTestHTTP(t *testing.T, base string, opts HTTPOptions) *HTTP {
	t.Helper()
	s, err := openHTTP(base, testResolver, opts)
	if err != nil {
		t.Fatalf("OpenVictoriaLogs(%s): %v", base, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// checkPhysicallyDeleted checks with a fresh Store (no cut-offs) what
// runStoreSuite's DeleteBefore left on the server.
func checkPhysicallyDeleted(t *testing.T, base string) {
	t.Helper()
	s := openTestHTTP(t, base, HTTPOptions{})
	d := makeSuiteData(time.Now())
	if got := count(t, s, []string{"acme"}, noTime, noTime, "*"); got != d.acmeNew+1 {
		t.Errorf("acme on the server after DeleteBefore = %d, want %d (recent + the late one)", got, d.acmeNew+1)
	}
	if got := count(t, s, []string{"globex"}, noTime, noTime, "*"); got != d.globOld+d.globNew {
		t.Errorf("globex on the server = %d, want %d", got, d.globOld+d.globNew)
	}
}

func TestVictoriaLogsSingle(t *testing.T) {
	n := vltest.StartSingle(t)
	s := openTestHTTP(t, n.URL, HTTPOptions{SyncToDisk: true})
	runStoreSuite(t, s)
	checkPhysicallyDeleted(t, n.URL)
}

func TestVictoriaLogsSingleOpenURL(t *testing.T) {
	n := vltest.StartSingle(t)
	s, err := Open("victorialogs://"+n.Addr+"?force_flush=1", "", testResolver)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := s.(*HTTP)
	if hs.base != n.URL || hs.opts.Compression != CompressionZstd {
		t.Errorf("Open: base %q, opts %+v", hs.base, hs.opts)
	}
	// gzip bodies too.
	z := openTestHTTP(t, n.URL, HTTPOptions{Compression: CompressionGzip})
	now := time.Now()
	if err := z.Write(context.Background(), []*event.Event{{ID: "z1", Tenant: "initech", Timestamp: now, Original: "gzip body"}}); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s, []string{"initech"}, noTime, noTime, `"gzip body"`); got != 1 {
		t.Errorf("gzip insert: %d rows", got)
	}
}

func TestVictoriaLogsCluster(t *testing.T) {
	c := vltest.StartCluster(t, 2)
	s := openTestHTTP(t, c.Front.URL, HTTPOptions{SyncToDisk: true, StorageNodes: c.StorageURLs()})
	runStoreSuite(t, s)
	checkPhysicallyDeleted(t, c.Front.URL)
	// Rows are spread over the storage nodes by stream: write many streams, find them on both.
	now := time.Now()
	var evts []*event.Event
	for i := 0; i < 64; i++ {
		e := &event.Event{ID: "spread-" + strconv.Itoa(i), Tenant: "initech", Timestamp: now, Original: "spread"}
		e.Set(event.FieldObserverProduct, "product-"+strconv.Itoa(i))
		evts = append(evts, e)
	}
	if err := s.Write(context.Background(), evts); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, sn := range c.Storage {
		ns := openTestHTTP(t, sn.URL, HTTPOptions{})
		got := count(t, ns, []string{"initech"}, noTime, noTime, "spread")
		if got == 0 {
			t.Errorf("storage node %d holds no rows", i)
		}
		total += got
	}
	if total != 64 {
		t.Errorf("storage nodes hold %d rows, want 64", total)
	}
}

// TestHTTPContentTypeMatters shows why insert sets Content-Type: sent as a form
// (what curl --data and some clients do by default) VictoriaLogs answers 200 and
// stores nothing.
func TestHTTPContentTypeMatters(t *testing.T) {
	n := vltest.StartSingle(t)
	s := openTestHTTP(t, n.URL, HTTPOptions{})
	line := `{"_time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","_msg":"content type probe","tenant":"initech"}` + "\n"
	post := func(ct string) {
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/insert/jsonline?"+insertArgs, strings.NewReader(line))
		req.Header = tenantHeader(testTenants["initech"])
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("insert with %q: HTTP %d", ct, resp.StatusCode)
		}
		if err := s.forceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	initech := []string{"initech"}
	post("application/x-www-form-urlencoded")
	if got := count(t, s, initech, noTime, noTime, `"content type probe"`); got != 0 {
		t.Errorf("form content type: %d rows stored (VictoriaLogs behaviour changed?)", got)
	}
	post("application/stream+json")
	if got := count(t, s, initech, noTime, noTime, `"content type probe"`); got != 1 {
		t.Errorf("stream+json content type: %d rows, want 1", got)
	}
}

// TestHTTPDeleteDisabled: without -delete.enable DeleteBefore fails with ErrDeleteDisabled
// but the cut-off still hides the rows from this Store.
func TestHTTPDeleteDisabled(t *testing.T) {
	dir := t.TempDir()
	n := vltest.Start(t, "-storageDataPath="+dir)
	s := openTestHTTP(t, n.URL, HTTPOptions{})
	ctx := context.Background()
	evts := []*event.Event{
		{ID: "1", Tenant: "acme", Timestamp: oldBase, Original: "old"},
		{ID: "2", Tenant: "acme", Timestamp: time.Now(), Original: "new"},
	}
	if err := s.Write(ctx, evts); err != nil {
		t.Fatal(err)
	}
	err := s.DeleteBefore(ctx, "acme", time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC))
	if !errors.Is(err, ErrDeleteDisabled) {
		t.Fatalf("DeleteBefore = %v, want ErrDeleteDisabled", err)
	}
	if got := count(t, s, []string{"acme"}, noTime, noTime, "*"); got != 1 {
		t.Errorf("acme after refused delete = %d, want 1", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	vals := []string{"", "plain", `quo"te`, `back\slash`, "tab\tnl\ncr\r", "ctl\x01\x1f", "ünïcödé ✓ 𝄞", "</script>"}
	var fields []event.Field
	for i, v := range vals {
		fields = append(fields, event.Field{Name: "f" + string(rune('a'+i)), Value: v})
	}
	line := appendJSONLine(nil, 1700000000123456789, fields)
	if !bytes.HasSuffix(line, []byte("}\n")) {
		t.Fatalf("line %q", line)
	}
	row, err := parseJSONRow(line)
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	if v, _ := row.Get("_time"); v != "2023-11-14T22:13:20.123456789Z" {
		t.Errorf("_time = %q", v)
	}
	for i, v := range vals {
		got, ok := row.Get(fields[i].Name)
		if v == "" {
			if ok {
				t.Errorf("empty value kept: %q", got)
			}
			continue
		}
		if got != v {
			t.Errorf("%s: got %q want %q", fields[i].Name, got, v)
		}
		if jsonLen(v) != len(appendJSONString(nil, v))-2 {
			t.Errorf("jsonLen(%q) = %d", v, jsonLen(v))
		}
	}
	// Escapes VictoriaLogs may emit.
	row, err = parseJSONRow([]byte(`{"a":"\u00e9\/\b\f","b":"\ud834\udd1e","c":12,"d":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := row.Get("a"); v != "é/\b\f" {
		t.Errorf("a = %q", v)
	}
	if v, _ := row.Get("b"); v != "𝄞" {
		t.Errorf("b = %q", v)
	}
	if v, _ := row.Get("c"); v != "12" {
		t.Errorf("c = %q", v)
	}
	for _, bad := range []string{"", "[]", `{"a":}`, `{"a":"b"`, `{"a" "b"}`, "error: something broke"} {
		if _, err := parseJSONRow([]byte(bad)); err == nil {
			t.Errorf("parseJSONRow(%q) succeeded", bad)
		}
	}
}

func TestRowFieldsMapping(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	e := &event.Event{ID: "id1", Tenant: "acme", Timestamp: now, Ingested: now.Add(time.Second), Source: "relp", Original: "raw \xff bytes"}
	e.Set("_time", "evil")
	e.Set("_stream", "evil")
	e.Set("tenant", "globex") // cannot override the tenant
	e.Set(event.FieldObserverProduct, "FortiGate")
	e.Set(event.FieldUserName, "alice")
	fields, nStream := rowFields(nil, e, "", nil)
	if nStream != 3 {
		t.Errorf("nStream = %d", nStream)
	}
	want := []event.Field{
		{Name: "tenant", Value: "acme"}, {Name: "mamori.source", Value: "relp"}, {Name: "observer.product", Value: "FortiGate"},
		{Name: "_msg", Value: "raw \uFFFD bytes"}, {Name: "event.id", Value: "id1"},
		{Name: "event.ingested", Value: "2024-05-06T07:08:10.00000001Z"}, {Name: "user.name", Value: "alice"},
	}
	if len(fields) != len(want) {
		t.Fatalf("fields = %v", fields)
	}
	for i := range want {
		if fields[i] != want[i] {
			t.Errorf("field %d = %v, want %v", i, fields[i], want[i])
		}
	}
	// RowToEvent inverts it.
	row := Row(append([]event.Field{{Name: "_time", Value: now.Format(time.RFC3339Nano)}, {Name: "_stream", Value: "{}"}}, fields...))
	got := RowToEvent(row)
	if got.ID != "id1" || got.Tenant != "acme" || !got.Timestamp.Equal(now) || got.Source != "relp" || got.Value(event.FieldObserverProduct) != "FortiGate" {
		t.Errorf("RowToEvent = %+v", got)
	}
	if _, ok := got.Get("_stream"); ok {
		t.Errorf("RowToEvent kept _stream")
	}
	if RowToEvent(Row{{Name: "_msg", Value: defaultMsgHTTP}}).Original != "" {
		t.Errorf("default _msg not mapped to empty")
	}
}

func TestTrimRowHTTPLimits(t *testing.T) {
	lim := rowLimits{maxFields: 10, maxNameLen: 128, maxRowLen: 1000, valueLen: jsonLen}
	e := &event.Event{ID: "x", Tenant: "acme", Original: strings.Repeat(`"`, 2000)}
	for i := 0; i < 20; i++ {
		e.Set("f"+string(rune('a'+i)), "v")
	}
	fields, _ := rowFields(nil, e, "", &lim)
	line := appendJSONLine(nil, 0, fields)
	if len(line) > 1000 {
		t.Errorf("line of %d bytes", len(line))
	}
	if len(fields) != 10 || fields[len(fields)-1].Name != FieldTruncated {
		t.Errorf("fields = %v", fields)
	}
}
