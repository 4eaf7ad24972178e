//go:build linux

package relp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/mamori-soc/mamori/internal/testutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run a real rsyslogd (Debian packages rsyslog and rsyslog-relp)
// with a private configuration: messages sent to its imtcp input on an
// ephemeral loopback port are forwarded by omrelp to our Server.

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	testutil.Missing(t, format, args...)
}

// findRsyslog returns the rsyslogd binary, or skips the test when rsyslogd or
// its omrelp module is not installed.
func findRsyslog(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		skipOrFail(t, "rsyslogd not found: install the Debian packages rsyslog and rsyslog-relp")
	}
	var mods []string
	for _, g := range []string{"/usr/lib/*/rsyslog/omrelp.so", "/usr/lib/rsyslog/omrelp.so", "/usr/lib64/rsyslog/omrelp.so"} {
		m, _ := filepath.Glob(g)
		mods = append(mods, m...)
	}
	if len(mods) == 0 {
		skipOrFail(t, "rsyslog's omrelp module not found: install the Debian package rsyslog-relp")
	}
	return bin
}

// rsyslog is a running rsyslogd.
type rsyslog struct {
	inPort string
	dir    string
	out    *bytes.Buffer
}

// startRsyslog starts rsyslogd forwarding to relpAddr with omrelp. extra is
// appended to the omrelp action parameters. It is stopped when the test ends.
func startRsyslog(t *testing.T, relpAddr string, extra string) *rsyslog {
	t.Helper()
	bin := findRsyslog(t)
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(relpAddr)
	if err != nil {
		t.Fatal(err)
	}
	portFile := filepath.Join(dir, "imtcp.port")
	conf := fmt.Sprintf(`
global(workDirectory=%q maxMessageSize="64k")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName=%q ruleset="fwd")
ruleset(name="fwd") {
  action(type="omrelp" target=%q port=%q
         queue.type="LinkedList" queue.size="100000" queue.dequeueBatchSize="1024"
         action.resumeRetryCount="-1" action.resumeInterval="1" %s)
}
`, work, portFile, host, port, extra)
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	cmd := exec.Command(bin, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Dir = dir
	// rsyslogd dies with the test binary even if the cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = &lockedWriter{w: out}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		skipOrFail(t, "cannot start rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", out.String())
		}
	})
	rs := &rsyslog{dir: dir, out: out}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(portFile)
		if p := strings.TrimSpace(string(b)); err == nil && p != "" && p != "0" {
			rs.inPort = p
			break
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited at startup:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not write its imtcp port file:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rs
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// send writes n messages "seq=<i>" for i in [from, from+n) to rsyslog's imtcp
// input, LF-framed, on one connection.
func (rs *rsyslog) send(t *testing.T, from, n int) {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", rs.inPort))
	if err != nil {
		t.Fatalf("dial rsyslog imtcp: %v", err)
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	for i := from; i < from+n; i++ {
		fmt.Fprintf(w, "<13>Nov 25 12:00:00 testhost mamori-relp-test: seq=%07d payload %s\n", i, strings.Repeat("x", i%50))
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("send to rsyslog: %v", err)
	}
}

var seqRE = regexp.MustCompile(`seq=(\d{7})`)

// seqCounter is a Handler counting received sequence numbers.
type seqCounter struct {
	mu       sync.Mutex
	seen     map[int]int
	total    int
	batches  int
	maxBatch int
	inOrder  bool
	last     int
	foreign  []string
	before   func(call int, msgs [][]byte) error // optional, runs first
	calls    int
}

func newSeqCounter() *seqCounter { return &seqCounter{seen: map[int]int{}, inOrder: true, last: -1} }

func (s *seqCounter) handle(ctx context.Context, _ ConnInfo, msgs [][]byte) error {
	s.mu.Lock()
	call := s.calls
	s.calls++
	before := s.before
	s.mu.Unlock()
	if before != nil {
		if err := before(call, msgs); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	s.maxBatch = max(s.maxBatch, len(msgs))
	for _, m := range msgs {
		sm := seqRE.FindSubmatch(m)
		if sm == nil {
			s.foreign = append(s.foreign, string(m))
			continue
		}
		n, _ := strconv.Atoi(string(sm[1]))
		if n <= s.last {
			s.inOrder = false
		}
		s.last = n
		s.seen[n]++
		s.total++
	}
	return nil
}

func (s *seqCounter) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// check waits until all n sequence numbers arrived and reports duplicates.
func (s *seqCounter) check(t *testing.T, n int, timeout time.Duration) (dups int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for s.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []int
	for i := 0; i < n; i++ {
		if s.seen[i] == 0 {
			missing = append(missing, i)
		}
		if s.seen[i] > 1 {
			dups += s.seen[i] - 1
		}
	}
	if len(s.seen) != n || len(missing) > 0 {
		t.Fatalf("received %d distinct of %d messages (%d total); %d missing, first: %v",
			len(s.seen), n, s.total, len(missing), missing[:min(10, len(missing))])
	}
	if len(s.foreign) > 0 {
		t.Errorf("%d unexpected messages, first %q", len(s.foreign), s.foreign[0])
	}
	t.Logf("received %d distinct messages, %d deliveries, %d duplicates, %d batches (largest %d), in order: %v",
		len(s.seen), s.total, dups, s.batches, s.maxBatch, s.inOrder)
	return dups
}

const rsyslogN = 10000

func TestRsyslogOmrelpNoLoss(t *testing.T) {
	findRsyslog(t)
	sc := newSeqCounter()
	srv := &Server{Handler: sc.handle}
	addr := startRelpServer(t, srv)
	rs := startRsyslog(t, addr, "")
	start := time.Now()
	rs.send(t, 0, rsyslogN)
	if dups := sc.check(t, rsyslogN, 60*time.Second); dups != 0 {
		t.Errorf("%d duplicates without any failure", dups)
	}
	el := time.Since(start)
	t.Logf("%d messages through rsyslog omrelp in %v (%.0f messages/s); server stats %+v",
		rsyslogN, el, rsyslogN/el.Seconds(), srv.Stats())
	// Without the MSS clamp of Listen this takes about 14 s (TestRsyslogCorkStall).
	if el > 10*time.Second {
		t.Errorf("rsyslog forwarding took %v: is the TCP_CORK stall back?", el)
	}
}

func TestRsyslogHandlerFailureRetransmits(t *testing.T) {
	findRsyslog(t)
	sc := newSeqCounter()
	var failed atomic.Int64
	sc.before = func(call int, msgs [][]byte) error {
		if call == 0 || call == 5 {
			failed.Add(int64(len(msgs)))
			return errors.New("simulated store failure")
		}
		return nil
	}
	srv := &Server{Handler: sc.handle}
	addr := startRelpServer(t, srv)
	rs := startRsyslog(t, addr, "")
	rs.send(t, 0, rsyslogN)
	dups := sc.check(t, rsyslogN, 90*time.Second)
	st := srv.Stats()
	t.Logf("handler failed %d batches (%d messages); rsyslog reconnected %d times; %d duplicates; stats %+v",
		st.HandlerErrors, failed.Load(), st.ConnectionsAccepted-1, dups, st)
	if st.HandlerErrors != 2 {
		t.Fatalf("HandlerErrors = %d, want 2", st.HandlerErrors)
	}
}

func TestRsyslogSlowHandlerBackpressure(t *testing.T) {
	findRsyslog(t)
	sc := newSeqCounter()
	sc.before = func(call int, msgs [][]byte) error {
		time.Sleep(10 * time.Millisecond)
		return nil
	}
	const maxBatch = 32
	srv := &Server{Handler: sc.handle, MaxBatch: maxBatch}
	addr := startRelpServer(t, srv)
	// A window far above what the server reads ahead (2 batches and its read
	// buffer): TCP backpressure, not the RELP window, holds rsyslog back.
	rs := startRsyslog(t, addr, `windowSize="4096"`)
	start := time.Now()
	rs.send(t, 0, rsyslogN)
	if dups := sc.check(t, rsyslogN, 120*time.Second); dups != 0 {
		t.Errorf("%d duplicates without any failure", dups)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.maxBatch > maxBatch {
		t.Fatalf("batch of %d messages, MaxBatch %d", sc.maxBatch, maxBatch)
	}
	t.Logf("slow handler (10 ms per batch): %d messages in %v", rsyslogN, time.Since(start))
}

// startRelpServer serves srv on a loopback listener made by Listen.
func startRelpServer(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serveOn(t, srv, ln)
	return addr
}

// TestRsyslogCorkStall shows why Listen clamps the MSS: on a plain loopback
// listener librelp's corked frames wait for the 200 ms cork timeout at every
// window. It checks for no loss and logs the rate.
func TestRsyslogCorkStall(t *testing.T) {
	findRsyslog(t)
	if testing.Short() {
		t.Skip("slow by design (about 1.5 s)")
	}
	const n = 1000
	sc := newSeqCounter()
	srv := &Server{Handler: sc.handle}
	addr, _ := startServer(t, srv) // net.Listen: loopback MSS of about 64 KiB
	rs := startRsyslog(t, addr, "")
	start := time.Now()
	rs.send(t, 0, n)
	sc.check(t, n, 60*time.Second)
	el := time.Since(start)
	t.Logf("plain listener: %d messages in %v (%.0f messages/s)", n, el, n/el.Seconds())
}

// TestRsyslogRespond500 checks what RespondError does with rsyslog: librelp
// drops the first transaction it sees answered 500 from its retransmission
// list (then reconnects and resends the others), so the messages answered 500
// may be lost. Every message not answered 500 must arrive.
func TestRsyslogRespond500(t *testing.T) {
	findRsyslog(t)
	sc := newSeqCounter()
	var failedMu sync.Mutex
	failed := map[int]bool{}
	sc.before = func(call int, msgs [][]byte) error {
		if call != 0 && call != 5 {
			return nil
		}
		failedMu.Lock()
		defer failedMu.Unlock()
		for _, m := range msgs {
			if sm := seqRE.FindSubmatch(m); sm != nil {
				n, _ := strconv.Atoi(string(sm[1]))
				failed[n] = true
			}
		}
		return errors.New("simulated store failure")
	}
	srv := &Server{Handler: sc.handle, OnHandlerError: RespondError}
	addr := startRelpServer(t, srv)
	rs := startRsyslog(t, addr, "")
	rs.send(t, 0, rsyslogN)
	// Wait for every message not answered 500, then a little longer for
	// retransmissions of those answered 500.
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, lost, nfailed := 0, 0, 0
		sc.mu.Lock()
		failedMu.Lock()
		for i := 0; i < rsyslogN; i++ {
			if sc.seen[i] == 0 {
				if failed[i] {
					lost++
				} else {
					missing++
				}
			}
		}
		nfailed = len(failed)
		failedMu.Unlock()
		sc.mu.Unlock()
		if missing == 0 {
			if deadline.Sub(time.Now()) > 57*time.Second { // settle at least 3 s
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.Logf("%d messages answered 500; %d of them never resent by rsyslog (lost); stats %+v",
				nfailed, lost, srv.Stats())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages missing that were never answered 500", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRsyslogOmrelpTLS(t *testing.T) {
	findRsyslog(t)
	cert, _ := selfSigned(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	// librelp speaks anonymous TLS unless it has a certificate of its own.
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "client.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	var tlsSeen atomic.Bool
	sc := newSeqCounter()
	srv := &Server{Handler: func(ctx context.Context, ci ConnInfo, msgs [][]byte) error {
		if ci.TLS != nil && ci.TLS.HandshakeComplete {
			tlsSeen.Store(true)
		}
		return sc.handle(ctx, ci, msgs)
	}}
	addr, _ := serveOn(t, srv, ln)
	rs := startRsyslog(t, addr, fmt.Sprintf(
		`tls="on" tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q tls.authMode="name" tls.permittedPeer=["localhost"]`,
		caFile, caFile, keyFile))
	const n = 2000
	rs.send(t, 0, n)
	sc.check(t, n, 60*time.Second)
	if !tlsSeen.Load() {
		t.Fatal("Handler never saw a TLS connection state")
	}
}
