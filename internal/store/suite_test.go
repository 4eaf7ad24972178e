package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// Tenants of the suite. "ghost" resolves to nothing.
var testTenants = map[string]uint32{"acme": 11, "globex": 12, "initech": 13}

func testResolver(t string) (uint32, error) {
	if id, ok := testTenants[t]; ok {
		return id, nil
	}
	return 0, fmt.Errorf("tenant %q: %w", t, ErrUnknownTenant)
}

// suiteData is the data set of runStoreSuite.
type suiteData struct {
	events   []*event.Event
	byID     map[string]*event.Event
	acmeOld  int // acme events in 2015 (Windows logons)
	acmeNew  int // acme events in the last hour (firewall)
	globOld  int
	globNew  int
	actions  map[string]int // acme firewall event.action -> count
	alice    int            // acme user.name=alice
	baseTime time.Time      // now, truncated
}

var oldBase = time.Date(2015, 6, 1, 8, 0, 0, 0, time.UTC)

func makeSuiteData(now time.Time) *suiteData {
	d := &suiteData{byID: map[string]*event.Event{}, actions: map[string]int{}, baseTime: now}
	gen := event.NewIDGen()
	add := func(e *event.Event) {
		e.ID = gen.Next()
		d.events = append(d.events, e)
		d.byID[e.ID] = e
	}
	users := []string{"alice", "bob", "carol"}
	// acme: 2015 Windows logons, from an EVTX import.
	for i := 0; i < 120; i++ {
		user := users[i%3]
		if user == "alice" {
			d.alice++
		}
		e := &event.Event{
			Tenant:    "acme",
			Timestamp: oldBase.Add(time.Duration(i) * 37 * time.Minute).Add(123456789 * time.Nanosecond),
			Ingested:  now.Add(-time.Minute),
			Source:    "file",
			Original:  fmt.Sprintf("An account was successfully logged on. Subject: WS-%02d\\%s Logon Type: 3", i%7, user),
		}
		e.Set(event.FieldWinEventID, "4624")
		e.Set(event.FieldWinChannel, "Security")
		e.Set(event.FieldWinProvider, "Microsoft-Windows-Security-Auditing")
		e.Set(event.FieldWinComputer, fmt.Sprintf("WS-%02d.acme.local", i%7))
		e.Set(event.FieldWinRecordID, strconv.Itoa(100000+i))
		e.Set(event.FieldHostName, fmt.Sprintf("WS-%02d", i%7))
		e.Set(event.FieldUserName, user)
		e.Set(event.FieldUserDomain, "ACME")
		e.Set(event.FieldSourceIP, fmt.Sprintf("10.1.%d.%d", i%4, i%250+1))
		e.Set(event.FieldEventCode, "4624")
		e.Set(event.FieldAction, "logged-in")
		e.Set(event.FieldOutcome, "success")
		e.Set(event.FieldCategory, "authentication")
		e.Set(event.FieldObserverProduct, "Windows")
		e.Set(event.FieldObserverVendor, "Microsoft")
		e.Set(event.FieldKind, event.KindEvent)
		add(e)
		d.acmeOld++
	}
	// acme: recent FortiGate traffic.
	actions := []string{"accept", "deny", "accept", "close"}
	for i := 0; i < 200; i++ {
		act := actions[i%len(actions)]
		d.actions[act]++
		e := &event.Event{
			Tenant:    "acme",
			Timestamp: now.Add(-time.Duration(i+1) * 7 * time.Second),
			Ingested:  now,
			Source:    "syslog-udp",
			Original:  fmt.Sprintf(`date=2026-01-01 devname="FGT-1" type="traffic" action="%s" srcip=192.168.1.%d dstip=8.8.%d.8 dstport=53`, act, i%200+1, i%3),
		}
		e.Set(event.FieldSourceIP, fmt.Sprintf("192.168.1.%d", i%200+1))
		e.Set(event.FieldSourcePort, strconv.Itoa(40000+i))
		e.Set(event.FieldDestIP, fmt.Sprintf("8.8.%d.8", i%3))
		e.Set(event.FieldDestPort, "53")
		e.Set(event.FieldNetworkTransport, "udp")
		e.Set(event.FieldAction, act)
		e.Set(event.FieldObserverProduct, "FortiGate")
		e.Set(event.FieldObserverVendor, "Fortinet")
		e.Set(event.FieldObserverHostname, "FGT-1")
		e.Set("fortigate.policyid", strconv.Itoa(i%5))
		e.Set(event.FieldRuleID, strconv.Itoa(i%5))
		e.Set(event.FieldCategory, "network")
		e.Set(event.FieldSourceBytes, strconv.Itoa(i*10))
		e.Set(event.FieldDestBytes, strconv.Itoa(i*20))
		e.Set(event.FieldKind, event.KindEvent)
		add(e)
		d.acmeNew++
	}
	// globex: same shapes, with values acme never has.
	for i := 0; i < 50; i++ {
		e := &event.Event{
			Tenant:    "globex",
			Timestamp: oldBase.Add(time.Duration(i) * 53 * time.Minute),
			Ingested:  now,
			Source:    "file",
			Original:  "globexsecret An account was successfully logged on by mallory",
		}
		e.Set(event.FieldWinEventID, "4624")
		e.Set(event.FieldUserName, "mallory")
		e.Set(event.FieldHostName, "GX-01")
		e.Set(event.FieldAction, "logged-in")
		e.Set(event.FieldObserverProduct, "Windows")
		e.Set("globex.secret", "s3cr3t")
		add(e)
		d.globOld++
	}
	for i := 0; i < 100; i++ {
		e := &event.Event{
			Tenant:    "globex",
			Timestamp: now.Add(-time.Duration(i+1) * 11 * time.Second),
			Ingested:  now,
			Source:    "syslog-tcp",
			Original:  fmt.Sprintf(`globexsecret action="deny" srcip=172.16.0.%d`, i+1),
		}
		e.Set(event.FieldSourceIP, fmt.Sprintf("172.16.0.%d", i+1))
		e.Set(event.FieldAction, "deny")
		e.Set(event.FieldUserName, "mallory")
		e.Set(event.FieldObserverProduct, "FortiGate")
		e.Set("globex.secret", "s3cr3t")
		add(e)
		d.globNew++
	}
	return d
}

// collect runs a query and returns its rows.
func collect(t *testing.T, s Store, tenants []string, from, to time.Time, q string) []Row {
	t.Helper()
	var rows []Row
	err := s.Query(context.Background(), tenants, from, to, q, func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatalf("query %q on %v: %v", q, tenants, err)
	}
	return rows
}

// count runs `q | count() n` and returns n.
func count(t *testing.T, s Store, tenants []string, from, to time.Time, q string) int {
	t.Helper()
	rows := collect(t, s, tenants, from, to, q+" | count() n")
	if len(rows) != 1 {
		t.Fatalf("count %q on %v: %d rows: %v", q, tenants, len(rows), rows)
	}
	v, _ := rows[0].Get("n")
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("count %q: bad value %q in %v", q, v, rows[0])
	}
	return n
}

var noTime time.Time

// runStoreSuite checks a Store end to end; s must be empty.
func runStoreSuite(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	d := makeSuiteData(now)

	// Write in three batches, tenants mixed.
	n := len(d.events)
	for _, b := range [][2]int{{0, n / 3}, {n / 3, 2 * n / 3}, {2 * n / 3, n}} {
		batch := slices.Clone(d.events[b[0]:b[1]])
		// interleave tenants within the batch
		slices.SortStableFunc(batch, func(a, b *event.Event) int { return int(a.Timestamp.Unix()%3) - int(b.Timestamp.Unix()%3) })
		if err := s.Write(ctx, batch); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	acme, globex := []string{"acme"}, []string{"globex"}
	both := []string{"acme", "globex"}

	t.Run("counts", func(t *testing.T) {
		if got, want := count(t, s, acme, noTime, noTime, "*"), d.acmeOld+d.acmeNew; got != want {
			t.Errorf("acme count = %d, want %d", got, want)
		}
		if got, want := count(t, s, globex, noTime, noTime, "*"), d.globOld+d.globNew; got != want {
			t.Errorf("globex count = %d, want %d", got, want)
		}
		// Several tenants: one aggregated row.
		if got, want := count(t, s, both, noTime, noTime, "*"), len(d.events); got != want {
			t.Errorf("acme+globex count = %d, want %d", got, want)
		}
		if got := count(t, s, []string{"initech"}, noTime, noTime, "*"); got != 0 {
			t.Errorf("initech count = %d, want 0", got)
		}
	})

	t.Run("time range", func(t *testing.T) {
		y2015 := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
		y2016 := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
		if got := count(t, s, acme, y2015, y2016, "*"); got != d.acmeOld {
			t.Errorf("acme 2015 = %d, want %d", got, d.acmeOld)
		}
		if got := count(t, s, acme, now.Add(-2*time.Hour), noTime, "*"); got != d.acmeNew {
			t.Errorf("acme recent = %d, want %d", got, d.acmeNew)
		}
		// [from, to): the first old event is at oldBase+0.123456789s.
		first := oldBase.Add(123456789 * time.Nanosecond)
		if got := count(t, s, acme, first, first.Add(time.Nanosecond), "*"); got != 1 {
			t.Errorf("acme [first, first+1ns) = %d, want 1", got)
		}
		if got := count(t, s, acme, oldBase, first, "*"); got != 0 {
			t.Errorf("acme [oldBase, first) = %d, want 0 (to is exclusive)", got)
		}
		// The range also binds queries that ask the engine to ignore it.
		if got := count(t, s, acme, y2015, y2016, "options(ignore_global_time_filter=true) *"); got != d.acmeOld {
			t.Errorf("acme 2015 with ignore_global_time_filter = %d, want %d", got, d.acmeOld)
		}
		// Relative filters are evaluated at the end of the range.
		if got := count(t, s, acme, y2015, first.Add(time.Hour), "_time:1h"); got != 2 {
			t.Errorf("acme _time:1h at first+1h = %d, want 2", got)
		}
	})

	t.Run("field filter", func(t *testing.T) {
		if got := count(t, s, acme, noTime, noTime, "user.name:=alice"); got != d.alice {
			t.Errorf("user.name:=alice = %d, want %d", got, d.alice)
		}
		if got := count(t, s, acme, noTime, noTime, `winlog.event_id:=4624 observer.product:=Windows`); got != d.acmeOld {
			t.Errorf("winlog.event_id:=4624 = %d, want %d", got, d.acmeOld)
		}
		if got := count(t, s, acme, noTime, noTime, `_stream:{observer.product="FortiGate"}`); got != d.acmeNew {
			t.Errorf("stream filter = %d, want %d", got, d.acmeNew)
		}
		if got := count(t, s, acme, noTime, noTime, `source.ip:ipv4_range("10.1.0.0/16")`); got != d.acmeOld {
			t.Errorf("ipv4_range = %d, want %d", got, d.acmeOld)
		}
		if got := count(t, s, acme, noTime, noTime, `destination.port:=53 event.action:=deny`); got != d.actions["deny"] {
			t.Errorf("port+action = %d, want %d", got, d.actions["deny"])
		}
	})

	t.Run("free text", func(t *testing.T) {
		if got := count(t, s, acme, noTime, noTime, "successfully"); got != d.acmeOld {
			t.Errorf("word successfully = %d, want %d", got, d.acmeOld)
		}
		if got := count(t, s, acme, noTime, noTime, `"successfully logged on"`); got != d.acmeOld {
			t.Errorf("phrase = %d, want %d", got, d.acmeOld)
		}
		if got := count(t, s, acme, noTime, noTime, `"FGT-1" type`); got != d.acmeNew {
			t.Errorf("FGT-1 = %d, want %d", got, d.acmeNew)
		}
	})

	t.Run("stats by", func(t *testing.T) {
		rows := collect(t, s, acme, now.Add(-2*time.Hour), noTime, "* | stats by (event.action) count() c")
		got := map[string]int{}
		for _, r := range rows {
			a, _ := r.Get("event.action")
			c, _ := r.Get("c")
			got[a], _ = strconv.Atoi(c)
		}
		if len(got) != len(d.actions) {
			t.Errorf("stats by event.action = %v, want %v", got, d.actions)
		}
		for a, c := range d.actions {
			if got[a] != c {
				t.Errorf("stats by event.action: %s = %d, want %d", a, got[a], c)
			}
		}
		// Across tenants the groups merge.
		rows = collect(t, s, both, noTime, noTime, "* | stats by (tenant) count() c | sort by (tenant)")
		if len(rows) != 2 {
			t.Fatalf("stats by tenant: %v", rows)
		}
		for i, want := range []struct {
			tenant string
			n      int
		}{{"acme", d.acmeOld + d.acmeNew}, {"globex", d.globOld + d.globNew}} {
			tn, _ := rows[i].Get("tenant")
			c, _ := rows[i].Get("c")
			if tn != want.tenant || c != strconv.Itoa(want.n) {
				t.Errorf("stats by tenant row %d = %v, want %s=%d", i, rows[i], want.tenant, want.n)
			}
		}
		rows = collect(t, s, both, noTime, noTime, "* | stats by (event.action) count() c | sort by (c desc) | limit 1")
		if len(rows) != 1 {
			t.Fatalf("top action: %v", rows)
		}
		if a, _ := rows[0].Get("event.action"); a != "logged-in" { // 120 acme + 50 globex
			t.Errorf("top action across tenants = %v, want logged-in", rows[0])
		}
		if c, _ := rows[0].Get("c"); c != strconv.Itoa(d.acmeOld+d.globOld) {
			t.Errorf("top action across tenants = %v, want %d", rows[0], d.acmeOld+d.globOld)
		}
	})

	t.Run("order by time", func(t *testing.T) {
		rows := collect(t, s, acme, noTime, noTime, "* | sort by (_time) | limit 25")
		if len(rows) != 25 {
			t.Fatalf("got %d rows", len(rows))
		}
		prev := time.Time{}
		for i, r := range rows {
			v, _ := r.Get("_time")
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatalf("row %d: _time %q: %v", i, v, err)
			}
			if ts.Before(prev) {
				t.Fatalf("row %d: %s before %s", i, ts, prev)
			}
			prev = ts
		}
		if v, _ := rows[0].Get("_time"); v != oldBase.Add(123456789*time.Nanosecond).Format(time.RFC3339Nano) {
			t.Errorf("first row _time = %s", v)
		}
		rows = collect(t, s, both, noTime, noTime, "* | sort by (_time desc) | limit 3")
		if len(rows) != 3 {
			t.Fatalf("got %d rows", len(rows))
		}
		if v, _ := rows[0].Get("_time"); v != now.Add(-7*time.Second).Format(time.RFC3339Nano) {
			t.Errorf("newest across tenants = %v", rows[0])
		}
	})

	t.Run("tenant isolation", func(t *testing.T) {
		for _, q := range []string{
			"user.name:=mallory",
			"globexsecret",
			"tenant:=globex",
			`_stream:{tenant="globex"}`,
			"globex.secret:*",
			"* | filter tenant:=globex",
			"options(ignore_global_time_filter=true) tenant:=globex",
			"* | union (tenant:=globex)",
			"tenant:in(* | filter tenant:=globex | fields tenant)",
		} {
			rows := collect(t, s, acme, noTime, noTime, q)
			for _, r := range rows {
				if tn, _ := r.Get("tenant"); tn != "acme" {
					t.Errorf("acme query %q returned a %q row: %v", q, tn, r)
				}
				if _, ok := r.Get("globex.secret"); ok {
					t.Errorf("acme query %q returned globex data: %v", q, r)
				}
			}
			if q == "* | union (tenant:=globex)" {
				if len(rows) != d.acmeOld+d.acmeNew {
					t.Errorf("union: %d rows", len(rows))
				}
			} else if len(rows) != 0 {
				t.Errorf("acme query %q returned %d rows", q, len(rows))
			}
		}
		rows := collect(t, s, acme, noTime, noTime, "* | stats by (tenant) count() c")
		if len(rows) != 1 {
			t.Errorf("acme stats by tenant = %v", rows)
		}
		rows = collect(t, s, globex, noTime, noTime, "* | uniq by (tenant, user.name)")
		if len(rows) != 1 {
			t.Errorf("globex uniq = %v", rows)
		} else if u, _ := rows[0].Get("user.name"); u != "mallory" {
			t.Errorf("globex uniq = %v", rows)
		}
		// Unknown tenants and no tenants are errors, not empty results.
		err := s.Query(ctx, []string{"acme", "ghost"}, noTime, noTime, "*", func(Row) error { return nil })
		if !errors.Is(err, ErrUnknownTenant) {
			t.Errorf("query with unknown tenant: err = %v, want ErrUnknownTenant", err)
		}
		err = s.Query(ctx, nil, noTime, noTime, "*", func(Row) error { return nil })
		if !errors.Is(err, ErrNoTenants) {
			t.Errorf("query without tenants: err = %v, want ErrNoTenants", err)
		}
		err = s.Write(ctx, []*event.Event{{Tenant: "ghost", Original: "x", Timestamp: now}})
		if !errors.Is(err, ErrUnknownTenant) {
			t.Errorf("write with unknown tenant: err = %v, want ErrUnknownTenant", err)
		}
	})

	t.Run("bad query", func(t *testing.T) {
		err := s.Query(ctx, acme, noTime, noTime, "* | stats by (", func(Row) error { return nil })
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("err = %v, want ErrBadQuery", err)
		}
	})

	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := s.Query(ctx, both, noTime, noTime, "*", func(Row) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 3 {
			t.Errorf("err = %v after %d calls, want stop after 3", err, calls)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		for _, want := range []*event.Event{d.events[0], d.events[d.acmeOld+5], d.events[len(d.events)-1]} {
			rows := collect(t, s, []string{want.Tenant}, noTime, noTime, "event.id:="+strconv.Quote(want.ID))
			if len(rows) != 1 {
				t.Fatalf("event %s: %d rows", want.ID, len(rows))
			}
			if v, ok := rows[0].Get("_stream"); !ok || v == "" {
				t.Errorf("row has no _stream: %v", rows[0])
			}
			got := RowToEvent(rows[0])
			checkSameEvent(t, got, want)
		}
	})

	t.Run("delete before", func(t *testing.T) {
		cut := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := s.DeleteBefore(dctx, "acme", cut); err != nil {
			t.Fatalf("DeleteBefore: %v", err)
		}
		if got := count(t, s, acme, noTime, noTime, "*"); got != d.acmeNew {
			t.Errorf("acme after delete = %d, want %d", got, d.acmeNew)
		}
		if got := count(t, s, acme, noTime, cut, "options(ignore_global_time_filter=true) *"); got != 0 {
			t.Errorf("acme before cut-off = %d, want 0", got)
		}
		if got := count(t, s, globex, noTime, noTime, "*"); got != d.globOld+d.globNew {
			t.Errorf("globex after acme delete = %d, want %d", got, d.globOld+d.globNew)
		}
		if got := count(t, s, both, noTime, noTime, "*"); got != d.acmeNew+d.globOld+d.globNew {
			t.Errorf("both after delete = %d, want %d", got, d.acmeNew+d.globOld+d.globNew)
		}
		// An old event written after the cut-off stays invisible.
		late := &event.Event{ID: "late-1", Tenant: "acme", Timestamp: oldBase, Ingested: now, Source: "file", Original: "late old event"}
		if err := s.Write(ctx, []*event.Event{late}); err != nil {
			t.Fatalf("write late: %v", err)
		}
		if got := count(t, s, acme, noTime, noTime, `"late old event"`); got != 0 {
			t.Errorf("late old event visible after DeleteBefore: %d", got)
		}
		if got := count(t, s, both, noTime, noTime, `"late old event"`); got != 0 {
			t.Errorf("late old event visible in multi-tenant query: %d", got)
		}
		if err := s.DeleteBefore(ctx, "ghost", cut); !errors.Is(err, ErrUnknownTenant) {
			t.Errorf("DeleteBefore(ghost) = %v, want ErrUnknownTenant", err)
		}
	})
}

func checkSameEvent(t *testing.T, got, want *event.Event) {
	t.Helper()
	if got.ID != want.ID || got.Tenant != want.Tenant || got.Source != want.Source || got.Original != want.Original {
		t.Errorf("round trip: got %+v\nwant %+v", got, want)
	}
	if !got.Timestamp.Equal(want.Timestamp) || !got.Ingested.Equal(want.Ingested) {
		t.Errorf("round trip times: got %s/%s, want %s/%s", got.Timestamp, got.Ingested, want.Timestamp, want.Ingested)
	}
	if !slices.Equal(got.Fields, want.Fields) {
		t.Errorf("round trip fields:\n got %v\nwant %v", got.Fields, want.Fields)
	}
}
