package e2e

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashHTTP kills the server with SIGKILL while clients ingest over
// HTTP, restarts it, and checks that every acknowledged event is stored
// exactly once.
func TestCrashHTTP(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	const perReq = 500
	var mu sync.Mutex
	acked := map[int]bool{} // request number → 202 received
	var wg sync.WaitGroup
	stop := make(chan struct{})
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
					fmt.Fprintf(&sb, `{"message":"crash-http req=%d n=%d","labels":{"req":"%d","n":"%d"}}`+"\n", i, j, i, j)
				}
				code, err := s.api("POST", "/api/v1/ingest", "", strings.NewReader(sb.String()), nil)
				if err != nil {
					return // the server died
				}
				if code == 202 {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	s.kill9()
	close(stop)
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked == 0 {
		t.Fatal("no request acknowledged before the crash")
	}
	s.start()
	// Wait for the replay to settle: the count stops changing. Unacknowledged
	// batches come back at the latest after the consumer's AckWait (30 s).
	var total uint64
	for i := 0; i < 250; i++ {
		r, _ := s.search("crash-http", url.Values{"limit": {"0"}})
		if r.Total == total && total >= uint64(nAcked*perReq) {
			break
		}
		total = r.Total
		time.Sleep(300 * time.Millisecond)
	}
	// Count each acknowledged request's events.
	r, code := s.search(`crash-http | stats count() by labels.req`, nil)
	if code != 200 {
		t.Fatalf("stats: %d", code)
	}
	counts := map[int]int{}
	for _, row := range r.Rows {
		req, _ := strconv.Atoi(row["labels.req"])
		for k, v := range row {
			if k != "labels.req" {
				n, _ := strconv.Atoi(v)
				counts[req] = n
			}
		}
	}
	missing, dups := 0, 0
	for req := range acked {
		switch c := counts[req]; {
		case c < perReq:
			missing += perReq - c
		case c > perReq:
			dups += c - perReq
		}
	}
	for req, c := range counts {
		if !acked[req] && c > perReq {
			dups += c - perReq
		}
	}
	t.Logf("crash: %d requests acknowledged (%d events), %d events stored in all, %d acknowledged missing, %d duplicates",
		nAcked, nAcked*perReq, total, missing, dups)
	if missing > 0 {
		t.Errorf("%d acknowledged events lost", missing)
	}
	if dups > 0 {
		t.Errorf("%d events stored twice", dups)
	}
}

// TestGracefulShutdown: what TCP senders wrote before Ctrl-C is stored
// after a restart.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c, err := net.Dial("tcp", s.addr.SyslogTCP)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("<13>1 2026-11-25T10:00:00Z h app - - - graceful seq=%d", i)
		fmt.Fprintf(c, "%d %s", len(msg), msg)
	}
	c.Close()
	time.Sleep(200 * time.Millisecond) // the kernel delivered the bytes; the server is mid-way
	s.stop()
	s.start()
	if got := s.waitCount("graceful", n, 30*time.Second); got != n {
		t.Fatalf("%d of %d stored across a clean restart", got, n)
	}
}

// TestConfigStrict: a strict config file with an unknown key fails
// with a message naming it.
func TestConfigStrict(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/mamori.yaml"
	writeFile(t, cfg, "syslog:\n  tcp:\n    adress: 127.0.0.1:1\n")
	out, err := runOut(mamoriBin, "serve", "--config", cfg, "--data", dir)
	if err == nil || !strings.Contains(out, "line 3: unknown key adress") {
		t.Fatalf("want an error naming the key and line, got %v: %s", err, out)
	}
	out, err = runOut(mamoriBin, "config", "print", "--data", dir)
	if err != nil || !strings.Contains(out, "MAMORI_SYSLOG_TCP_ADDR") {
		t.Fatalf("config print: %v %s", err, out)
	}
}

// TestCrashRELP: rsyslog relays over RELP (omrelp) while mamori is killed
// with SIGKILL and restarted on the same port. RELP acknowledges only
// durable frames, so every message must be stored; what mamori stored but
// could not acknowledge before dying is resent by rsyslog and counted as a
// duplicate.
func TestCrashRELP(t *testing.T) {
	need(t, "rsyslogd")
	needFile(t, "/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so")
	s := startServer(t, t.TempDir())
	_, rp := hostPort(t, s.addr.RELP)
	inPort := freePort(t)
	work := t.TempDir()
	conf := fmt.Sprintf(`
global(workDirectory="%[1]s")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="%[2]d" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omrelp" target="127.0.0.1" port="%[3]s" queue.type="LinkedList" queue.size="100000"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`, work, inPort, rp)
	stopRS := startRsyslog(t, work, conf, inPort)
	defer stopRS()
	const n = 30000
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", inPort))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer c.Close()
		for i := 0; i < n; i++ {
			fmt.Fprintf(c, "<13>1 2026-11-25T10:00:00Z vm app - - - relp-crash seq=%d end\n", i)
		}
	}()
	s.waitCount("relp-crash", 3000, 30*time.Second)
	s.kill9()
	time.Sleep(500 * time.Millisecond)
	s.restartSamePorts()
	q := url.Values{"lang": {"logsql"}, "limit": {"0"}}
	var uniq, total int
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		r, code := s.search(`"relp-crash" | extract "seq=<seq> " | stats count_uniq(seq) as u, count() as n`, q)
		if code != 200 || len(r.Rows) != 1 {
			t.Fatalf("count: %d %+v %s", code, r.Rows, r.Detail)
		}
		uniq, _ = strconv.Atoi(r.Rows[0]["u"])
		total, _ = strconv.Atoi(r.Rows[0]["n"])
		if uniq == n {
			break
		}
	}
	t.Logf("RELP crash: %d of %d messages stored, %d duplicates (stored but not acknowledged before the kill, resent by rsyslog)", uniq, n, total-uniq)
	if uniq != n {
		t.Fatalf("lost %d messages", n-uniq)
	}
}
