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
	// Wait for the replay to settle: the count stops changing.
	var total uint64
	for i := 0; i < 100; i++ {
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
