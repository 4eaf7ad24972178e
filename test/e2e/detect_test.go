package e2e

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type alertJSON struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Kind   string `json:"kind"`
	Rule   struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"rule"`
	Severity string              `json:"severity"`
	Status   string              `json:"status"`
	Count    int                 `json:"count"`
	Tags     []string            `json:"tags"`
	Entities map[string][]string `json:"entities"`
	EventIDs []string            `json:"event_ids"`
	Retro    bool                `json:"retro"`
	Details  map[string]string   `json:"details"`
}

func (s *server) alerts(q url.Values) []alertJSON {
	s.t.Helper()
	var r struct {
		Alerts []alertJSON `json:"alerts"`
	}
	code, err := s.api("GET", "/api/v1/alerts?"+q.Encode(), "", nil, &r)
	if err != nil || code != 200 {
		s.t.Fatalf("GET /api/v1/alerts?%s: %d %v", q.Encode(), code, err)
	}
	return r.Alerts
}

// waitAlerts polls until the summed count of the alerts matching q reaches
// want (or the deadline) and returns the alerts.
func (s *server) waitAlerts(q url.Values, want int, d time.Duration) ([]alertJSON, int) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		as := s.alerts(q)
		n := 0
		for _, a := range as {
			n += a.Count
		}
		if n >= want || time.Now().After(deadline) {
			return as, n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBruteForceAlertAndStream: real sshd lines sent by logger become one
// brute-force alert (Mamori's builtin correlation), delivered on the live
// stream too; an exception then suppresses the next one.
func TestBruteForceAlertAndStream(t *testing.T) {
	need(t, "logger")
	s := startServer(t, "")
	// Subscribe before sending.
	req, _ := http.NewRequest("GET", s.url("/api/v1/alerts/stream"), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	streamed := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				streamed <- d
			}
		}
	}()
	host, port := hostPort(t, s.addr.SyslogTCP)
	send := func(ip string, n int) {
		for i := 0; i < n; i++ {
			run(t, t.Context(), "logger", "-n", host, "-P", port, "-T", "--rfc5424", "-t", "sshd", "-p", "auth.info",
				fmt.Sprintf("Failed password for root from %s port %d ssh2", ip, 40000+i))
		}
	}
	send("203.0.113.77", 12)
	as, n := s.waitAlerts(url.Values{"kind": {"correlation"}, "rule": {"7fe89049-344a-4aef-9eb3-c0377981bf17"}}, 10, 20*time.Second)
	if len(as) != 1 || n < 10 {
		t.Fatalf("brute force by source: %d alerts, count %d; want 1 alert covering ≥ 10 events", len(as), n)
	}
	a := as[0]
	if a.Tenant != "default" || a.Severity != "high" || a.Details["group.source.ip"] != "203.0.113.77" || len(a.EventIDs) < 10 {
		t.Fatalf("alert: %+v", a)
	}
	if !contains(a.Tags, "attack.t1110") || !contains(a.Entities["ip"], "203.0.113.77") || !contains(a.Entities["user"], "root") {
		t.Fatalf("alert tags/entities: %v %v", a.Tags, a.Entities)
	}
	// The covered events are searchable by their ids.
	if got := s.waitCount("event.id:"+a.EventIDs[0], 1, 10*time.Second); got != 1 {
		t.Fatalf("alert's event %s not searchable", a.EventIDs[0])
	}
	select {
	case d := <-streamed:
		if !strings.Contains(d, `"kind":"correlation"`) {
			t.Fatalf("streamed: %s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert on the live stream")
	}

	// An exception for this source: the next burst is suppressed, not alerted.
	code, err := s.api("POST", "/api/v1/exceptions", "", strings.NewReader(`{"rule_id":"7fe89049-344a-4aef-9eb3-c0377981bf17","field":"source.ip","op":"cidr","values":["198.51.100.0/24"],"comment":"scanner"}`), nil)
	if err != nil || code != 201 {
		t.Fatalf("add exception: %d %v", code, err)
	}
	send("198.51.100.9", 12)
	sup, n := s.waitAlerts(url.Values{"status": {"suppressed"}}, 10, 20*time.Second)
	if len(sup) != 1 || n < 10 || sup[0].Details["group.source.ip"] != "198.51.100.9" {
		t.Fatalf("suppressed: %d alerts covering %d events: %+v", len(sup), n, sup)
	}
	if open := s.alerts(url.Values{"rule": {"7fe89049-344a-4aef-9eb3-c0377981bf17"}}); len(open) != 1 {
		t.Fatalf("%d visible alerts for the rule, want only the first one", len(open))
	}
}

// oracleErrata are regression rows whose expected count is lower than the
// events that match by the Sigma specification (checked by hand; see
// internal/detect/sigma's regression test).
var oracleErrata = map[string]bool{
	"0b9ad457-2554-44c1-82c2-d56a99c42377": true,
	"8fbf3271-1ef6-4e94-8210-03c2317947f6": true,
	"45e112d0-7759-4c2a-aa36-9f8fb79d3393": true,
	"c7dcacd0-cc59-4004-b0a4-1d6cdebe6f3e": true,
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// TestSigmaRegressionEndToEnd ingests SigmaHQ regression EVTX files with
// `mamori ingest` into a server running the whole rule corpus, one tenant
// per case, and checks each case's rule raised alerts covering exactly the
// expected number of events.
func TestSigmaRegressionEndToEnd(t *testing.T) {
	root := corpus(t, "sigma")
	f, err := os.Open(filepath.Join(root, "regression_expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	if _, err := r.Read(); err != nil { // header
		t.Fatal(err)
	}
	type tcase struct {
		rule, evtx string
		want       int
		atLeast    bool
	}
	var cases []tcase
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) < 6 || !strings.HasSuffix(rec[3], ".evtx") {
			continue
		}
		c := tcase{rule: rec[0], evtx: filepath.Join(root, rec[3])}
		if n, err := strconv.Atoi(rec[5]); err == nil {
			c.want = n
		} else {
			c.want, c.atLeast = 1, true
		}
		// Twenty cases keep the test short; the sigma package's own test runs
		// all of them. Four oracle rows undercount (see oracleErrata there).
		if len(cases) < 20 && c.want == 1 && !oracleErrata[c.rule] {
			cases = append(cases, c)
		}
	}
	s := startServer(t, "", "--rules", filepath.Join(root, "rules"), "--rules", filepath.Join(root, "rules-emerging-threats"),
		"--rules", filepath.Join(root, "rules-threat-hunting"))
	for i, c := range cases {
		addTenantCLI(t, s, fmt.Sprintf("case%d", i), "")
		sent, stored := ingestCLI(t, s, "--tenant", fmt.Sprintf("case%d", i), c.evtx)
		if sent == 0 || stored != sent {
			t.Fatalf("%s: sent %d, stored %d", c.evtx, sent, stored)
		}
	}
	pass := 0
	for i, c := range cases {
		q := url.Values{"tenant": {fmt.Sprintf("case%d", i)}, "rule": {c.rule}}
		_, n := s.waitAlerts(q, c.want, 15*time.Second)
		if n == c.want || c.atLeast && n >= 1 {
			pass++
			continue
		}
		t.Errorf("rule %s on %s: alerts cover %d events, want %d", c.rule, filepath.Base(c.evtx), n, c.want)
	}
	t.Logf("%d of %d regression cases raised the expected alerts end to end", pass, len(cases))
}

// TestIntelRetroHuntAndLive: events stored before an indicator existed are
// found by the retro-hunt its addition starts (alerts marked retro); events
// after it are matched live; a feed imported with the CLI matches too.
func TestIntelRetroHuntAndLive(t *testing.T) {
	s := startServer(t, "")
	post := func(body string) {
		code, err := s.api("POST", "/api/v1/ingest", "", strings.NewReader(body), nil)
		if err != nil || code != 202 {
			t.Fatalf("ingest: %d %v", code, err)
		}
	}
	// Before the indicator exists: a connection to it and DNS for a subdomain of a later one.
	post(`{"message":"conn","host":{"name":"ws-1"},"source":{"ip":"10.1.2.3"},"destination":{"ip":"203.0.113.9","port":"443"}}
{"message":"dns","host":{"name":"ws-2"},"dns":{"question":{"name":"cdn.evil.example"}}}
{"message":"benign","host":{"name":"ws-3"},"destination":{"ip":"192.0.2.200"}}` + "\n")
	s.waitCount("conn OR dns OR benign", 3, 10*time.Second)
	if as := s.alerts(url.Values{"kind": {"indicator"}}); len(as) != 0 {
		t.Fatalf("indicator alerts before any indicator: %+v", as)
	}
	out, err := runOut(mamoriBin, "intel", "add", "ip", "203.0.113.9", "--source", "NTT-CERT", "--confidence", "80", "--ttl", "7d",
		"--server", "http://"+s.addr.HTTP, "--token", s.token)
	if err != nil || !strings.Contains(out, "retro-hunt") {
		t.Fatalf("intel add: %v\n%s", err, out)
	}
	if _, err := runOut(mamoriBin, "intel", "add", "domain", "evil.example", "--source", "vendor-lab", "--server", "http://"+s.addr.HTTP, "--token", s.token); err != nil {
		t.Fatal(err)
	}
	retro, n := s.waitAlerts(url.Values{"kind": {"indicator"}}, 2, 20*time.Second)
	if n != 2 || len(retro) != 2 {
		t.Fatalf("retro-hunt: %d alerts covering %d events, want 2 and 2: %+v", len(retro), n, retro)
	}
	for _, a := range retro {
		if !a.Retro {
			t.Errorf("alert %s (%s) not marked retro", a.ID, a.Rule.ID)
		}
		switch a.Rule.ID {
		case "ipv4:203.0.113.9":
			if a.Severity != "high" || a.Details["sources"] != "NTT-CERT" || !contains(a.Entities["host"], "ws-1") {
				t.Errorf("ip alert: %+v", a)
			}
		case "domain:evil.example":
			if !contains(a.Entities["host"], "ws-2") {
				t.Errorf("domain alert: %+v", a)
			}
		default:
			t.Errorf("unexpected alert for %s", a.Rule.ID)
		}
	}
	// Live: a new event to the indicator.
	post(`{"message":"conn2","host":{"name":"ws-9"},"destination":{"ip":"203.0.113.9"}}` + "\n")
	live, _ := s.waitAlerts(url.Values{"kind": {"indicator"}, "rule": {"ipv4:203.0.113.9"}}, 2, 20*time.Second)
	seenLive := false
	for _, a := range live {
		if !a.Retro && contains(a.Entities["host"], "ws-9") {
			seenLive = true
		}
	}
	if !seenLive {
		t.Fatalf("no live (non-retro) alert for the new event: %+v", live)
	}
	// A feed imported with the CLI (abuse.ch Feodo layout) matches live events.
	feed := corpus(t, "threatintel/derived/abusech-format-synthetic/feodo_ipblocklist.csv")
	out, err = runOut(mamoriBin, "intel", "import", feed, "--source", "abuse.ch-feodo", "--server", "http://"+s.addr.HTTP, "--token", s.token)
	if err != nil || !strings.Contains(out, "3 new") {
		t.Fatalf("intel import: %v\n%s", err, out)
	}
	post(`{"message":"c2","host":{"name":"ws-5"},"destination":{"ip":"198.51.100.22","port":"8080"}}` + "\n")
	if _, n := s.waitAlerts(url.Values{"rule": {"ipv4:198.51.100.22"}}, 1, 20*time.Second); n != 1 {
		t.Fatalf("feed indicator: %d events alerted, want 1", n)
	}
}

// TestCrashDetection: kill -9 while events that match an indicator stream
// in; after a restart every stored matching event is covered by exactly one
// alert count — none evaluated zero times, none counted twice.
func TestCrashDetection(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	code, err := s.api("POST", "/api/v1/intel", "", strings.NewReader(`{"type":"ip","value":"203.0.113.50","source":"test","confidence":90}`), nil)
	if err != nil || code != 200 {
		t.Fatalf("add indicator: %d %v", code, err)
	}
	const perReq = 50 // one host per request: each alert stays within its 100 kept event ids
	var wg sync.WaitGroup
	stop := make(chan struct{})
	acked := 0
	var mu sync.Mutex
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i += 2 {
				select {
				case <-stop:
					return
				default:
				}
				var sb strings.Builder
				for j := 0; j < perReq; j++ {
					fmt.Fprintf(&sb, `{"message":"crash-detect req=%d n=%d","host":{"name":"h%d"},"destination":{"ip":"203.0.113.50"}}`+"\n", i, j, i)
				}
				code, err := s.api("POST", "/api/v1/ingest", "", strings.NewReader(sb.String()), nil)
				if err != nil {
					return
				}
				if code == 202 {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	s.kill9()
	close(stop)
	wg.Wait()
	if acked == 0 {
		t.Fatal("no request acknowledged before the crash")
	}
	s.start()
	// Unacknowledged batches come back after the consumers' AckWait (30 s).
	var stored uint64
	var alerted int
	stable := 0
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && stable < 10; time.Sleep(500 * time.Millisecond) {
		r, _ := s.search("crash-detect", url.Values{"limit": {"0"}})
		n := 0
		for _, a := range s.alerts(url.Values{"rule": {"ipv4:203.0.113.50"}, "limit": {"1000"}}) {
			n += a.Count
		}
		if r.Total == stored && n == alerted && uint64(n) == stored {
			stable++
		} else {
			stable = 0
		}
		stored, alerted = r.Total, n
	}
	t.Logf("crash: %d requests acknowledged (%d events), %d stored, alerts cover %d", acked, acked*perReq, stored, alerted)
	if stored < uint64(acked*perReq) {
		t.Errorf("%d acknowledged events, only %d stored", acked*perReq, stored)
	}
	if uint64(alerted) != stored {
		t.Errorf("alerts cover %d events, %d matching events are stored", alerted, stored)
	}
}

// TestBruteForceAcrossRestart: a brute force half counted when the server
// stops cleanly is completed by the failures after the restart.
func TestBruteForceAcrossRestart(t *testing.T) {
	need(t, "logger")
	s := startServer(t, "")
	send := func(n, from int) {
		host, port := hostPort(t, s.addr.SyslogTCP)
		for i := 0; i < n; i++ {
			run(t, t.Context(), "logger", "-n", host, "-P", port, "-T", "--rfc5424", "-t", "sshd", "-p", "auth.info",
				fmt.Sprintf("Failed password for alice from 192.0.2.44 port %d ssh2", 50000+from+i))
		}
	}
	send(6, 0)
	s.waitCount("alice", 6, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // the detection consumer has seen them
	s.stop()
	s.start()
	send(5, 6)
	as, n := s.waitAlerts(url.Values{"rule": {"88fabc0c-be96-4075-9059-01dccf632985"}}, 10, 20*time.Second)
	if len(as) != 1 || n < 10 {
		t.Fatalf("brute force across a restart: %d alerts covering %d events, want 1 covering ≥ 10", len(as), n)
	}
}
