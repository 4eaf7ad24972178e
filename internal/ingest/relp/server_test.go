package relp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpenNegotiationAndClose(t *testing.T) {
	col := newCollector()
	addr, _ := startServer(t, &Server{Handler: col.handle})
	cl := dial(t, addr)
	cl.send(librelpOpen)
	cl.expect(openRsp("mamori"))
	cl.send(syslogFrame(2, "<13>hello"))
	cl.expect(`2 rsp "200 OK"`)
	cl.send("3 close 0\n")
	cl.expect(`3 rsp ""`)
	cl.expectClosed()
	if got := col.snapshot(); len(got) != 1 || got[0] != "<13>hello" {
		t.Fatalf("handler got %q", got)
	}
}

func TestOpenVariants(t *testing.T) {
	tests := []struct {
		name   string
		open   string
		want   []string
		closed bool
	}{
		{name: "higher version accepted as 0",
			open: frame(1, "open", "relp_version=3\nrelp_software=x\ncommands=syslog"),
			want: []string{openRsp("custom,1.0")}},
		{name: "no version offer",
			open: frame(1, "open", "commands=syslog"),
			want: []string{openRsp("custom,1.0")}},
		{name: "several commands",
			open: frame(1, "open", "relp_version=0\ncommands=foo,syslog"),
			want: []string{openRsp("custom,1.0")}},
		{name: "no syslog command",
			open: frame(1, "open", "relp_version=0\ncommands=foo"),
			want: []string{`1 rsp "500 required command not supported by client"`}, closed: true},
		{name: "bad version",
			open: frame(1, "open", "relp_version=x\ncommands=syslog"),
			want: []string{`1 rsp "500 invalid relp_version offer"`}, closed: true},
		{name: "syslog before open",
			open: syslogFrame(1, "m"),
			want: []string{`1 rsp "500 session not open"`}, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector()
			srv := &Server{Handler: col.handle, Software: "custom,1.0\n"}
			addr, _ := startServer(t, srv)
			cl := dial(t, addr)
			cl.send(tt.open)
			cl.expect(tt.want...)
			if tt.closed {
				cl.expectClosed()
				if srv.Stats().ProtocolErrors != 1 {
					t.Errorf("ProtocolErrors = %d, want 1", srv.Stats().ProtocolErrors)
				}
				return
			}
			cl.send(frame(2, "open", "commands=syslog"))
			cl.expect(`2 rsp "200 connection already open - ignored"`)
			cl.send(syslogFrame(3, "m"))
			cl.expect(`3 rsp "200 OK"`)
		})
	}
}

// pipelined builds open, n syslog frames and close.
func pipelined(n int) (wire string, msgs []string) {
	var b strings.Builder
	b.WriteString(librelpOpen)
	for i := 0; i < n; i++ {
		m := fmt.Sprintf("<13>Nov 25 12:00:00 host app: message %d", i)
		if i%10 == 3 {
			m += " with\nembedded LF and trailing LF\n"
		}
		msgs = append(msgs, m)
		b.WriteString(syslogFrame(i+2, m))
	}
	fmt.Fprintf(&b, "%d close 0\n", n+2)
	return b.String(), msgs
}

func checkPipelinedAcks(t *testing.T, cl *client, n int) {
	t.Helper()
	cl.expect(openRsp("mamori"))
	for i := 0; i < n; i++ {
		cl.expect(fmt.Sprintf(`%d rsp "200 OK"`, i+2))
	}
	cl.expect(fmt.Sprintf(`%d rsp ""`, n+2))
	cl.expectClosed()
}

func TestPipelinedInOneWrite(t *testing.T) {
	const n = 5000
	col := newCollector()
	srv := &Server{Handler: col.handle, MaxBatch: 100}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	wire, msgs := pipelined(n)
	cl.sendAsync(wire)
	checkPipelinedAcks(t, cl, n)
	got := col.snapshot()
	if strings.Join(got, "\x00") != strings.Join(msgs, "\x00") {
		t.Fatalf("handler got %d messages, want the %d sent in order", len(got), n)
	}
	for _, b := range col.batches {
		if b > 100 {
			t.Fatalf("batch of %d messages, MaxBatch 100", b)
		}
	}
	st := srv.Stats()
	if st.Messages != n || st.Frames != n+2 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d messages in %d batches", n, len(col.batches))
}

func TestFramesSplitByteByByte(t *testing.T) {
	const n = 50
	col := newCollector()
	addr, _ := startServer(t, &Server{Handler: col.handle})
	cl := dial(t, addr)
	wire, msgs := pipelined(n)
	go writeByteByByte(t, cl.c, wire)
	checkPipelinedAcks(t, cl, n)
	if got := col.snapshot(); strings.Join(got, "\x00") != strings.Join(msgs, "\x00") {
		t.Fatalf("handler got %q", got)
	}
}

func TestEmptyMessageAndBinaryData(t *testing.T) {
	col := newCollector()
	addr, _ := startServer(t, &Server{Handler: col.handle})
	cl := dial(t, addr)
	cl.send(librelpOpen + "2 syslog 0\n" + syslogFrame(3, "a\x00b\n\xff"))
	cl.expect(openRsp("mamori"), `2 rsp "200 OK"`, `3 rsp "200 OK"`)
	if got := col.snapshot(); len(got) != 2 || got[0] != "" || got[1] != "a\x00b\n\xff" {
		t.Fatalf("handler got %q", got)
	}
}

func TestMalformedFrames(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		oversize bool
		protocol bool
	}{
		{name: "datalen not a number", frame: "3 syslog abc x\n"},
		{name: "datalen too short", frame: "3 syslog 2 abc\n"},
		{name: "datalen too long", frame: "3 syslog 9 abc\n3 syslog 1 a\n"},
		{name: "no datalen", frame: "3 syslog \n"},
		{name: "zero datalen then SP", frame: "3 close 0 \n"},
		{name: "txnr not a number", frame: "x syslog 1 a\n"},
		{name: "txnr too long", frame: "1234567890 syslog 1 a\n"},
		{name: "command with digit", frame: "3 sys1og 1 a\n"},
		{name: "command too long", frame: "3 " + strings.Repeat("a", 33) + " 1 a\n"},
		{name: "datalen too many digits", frame: "3 syslog 0000000001 a\n"},
		{name: "double space", frame: "3  syslog 1 a\n"},
		{name: "CRLF trailer", frame: "3 syslog 1 a\r\n"},
		{name: "binary garbage", frame: "\x16\x03\x01\x02\x00"},
		{name: "oversize", frame: "3 syslog 101 " + strings.Repeat("x", 101) + "\n", oversize: true},
		{name: "txnr out of sequence", frame: syslogFrame(5, "m"), protocol: true},
		{name: "txnr repeated", frame: syslogFrame(2, "m"), protocol: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			col := newCollector()
			srv := &Server{Handler: col.handle, MaxFrame: 100}
			addr, _ := startServer(t, srv)
			cl := dial(t, addr)
			// A valid frame pipelined before the bad one is still stored and acked.
			cl.send(librelpOpen + syslogFrame(2, "good") + tt.frame)
			cl.expect(openRsp("mamori"), `2 rsp "200 OK"`)
			cl.expectClosed()
			if got := col.snapshot(); len(got) != 1 || got[0] != "good" {
				t.Fatalf("handler got %q", got)
			}
			waitFor(t, 5*time.Second, "connection end", func() bool { return srv.Stats().ConnectionsActive == 0 })
			st := srv.Stats()
			want := Stats{ConnectionsAccepted: 1, Frames: 2, Messages: 1, Batches: 1}
			switch {
			case tt.oversize:
				want.OversizeFrames = 1
			case tt.protocol:
				want.ProtocolErrors = 1
				want.Frames = 3
			default:
				want.MalformedFrames = 1
			}
			if st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
		})
	}
}

func TestServeConnErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{librelpOpen + "3 syslog 1 a\n", ErrProtocol},
		{librelpOpen + "2 syslog x\n", ErrMalformedFrame},
		{librelpOpen + "2 syslog 999 ", ErrFrameTooLarge},
		{librelpOpen + syslogFrame(2, "a") + "3 syslog 0", nil}, // EOF inside a frame
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range tests {
		srv := &Server{Handler: newCollector().handle, MaxFrame: 100, Logger: testLogger(t)}
		b, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			b.Write([]byte(tt.in))
			b.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, b)
		}()
		err = srv.ServeConn(context.Background(), a)
		if tt.want == nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("ServeConn(%q) = %v, want io.ErrUnexpectedEOF", tt.in, err)
			}
		} else if !errors.Is(err, tt.want) {
			t.Errorf("ServeConn(%q) = %v, want %v", tt.in, err, tt.want)
		}
		b.Close()
	}
}

func TestUnknownCommand(t *testing.T) {
	col := newCollector()
	srv := &Server{Handler: col.handle}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a") + "3 starttls 0\n" + "4 serverclose 0\n" + syslogFrame(5, "b"))
	cl.expect(openRsp("mamori"), `2 rsp "200 OK"`, `3 rsp "500 unknown command"`,
		`4 rsp "500 unknown command"`, `5 rsp "200 OK"`)
	if st := srv.Stats(); st.UnknownCommands != 2 {
		t.Fatalf("UnknownCommands = %d", st.UnknownCommands)
	}
	// A hint (txnr 0) gets no answer and does not consume a txnr.
	cl.send("0 foo 0\n" + syslogFrame(6, "c"))
	cl.expect(`6 rsp "200 OK"`)
}

func TestClientEOFStillDelivers(t *testing.T) {
	col := newCollector()
	srv := &Server{Handler: col.handle}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a") + syslogFrame(3, "b"))
	cl.c.(*net.TCPConn).CloseWrite()
	cl.expect(openRsp("mamori"), `2 rsp "200 OK"`, `3 rsp "200 OK"`)
	waitFor(t, 5*time.Second, "connection end", func() bool { return srv.Stats().ConnectionsActive == 0 })
}

func TestHandlerErrorCloseOnError(t *testing.T) {
	col := newCollector()
	col.fail = func(call int, _ [][]byte) error {
		if call == 0 {
			return errors.New("store unavailable")
		}
		return nil
	}
	srv := &Server{Handler: col.handle}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a") + syslogFrame(3, "b"))
	cl.expect(openRsp("mamori"))
	cl.expectClosed() // no ack for 2 and 3: the client will resend them
	st := srv.Stats()
	if st.HandlerErrors != 1 || st.Unacknowledged != 2 || st.Messages != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Reconnect and resend, as librelp does.
	cl = dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a") + syslogFrame(3, "b"))
	cl.expect(openRsp("mamori"), `2 rsp "200 OK"`, `3 rsp "200 OK"`)
	if got := col.snapshot(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("handler stored %q", got)
	}
}

func TestHandlerErrorRespond500(t *testing.T) {
	col := newCollector()
	col.fail = func(call int, _ [][]byte) error {
		if call == 0 {
			return errors.New("store unavailable: secret detail")
		}
		return nil
	}
	srv := &Server{Handler: col.handle, OnHandlerError: RespondError}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a"))
	cl.expect(openRsp("mamori"), `2 rsp "500 message not stored, retry later"`)
	cl.send(syslogFrame(3, "a") + syslogFrame(4, "b"))
	cl.expect(`3 rsp "200 OK"`, `4 rsp "200 OK"`)
}

// TestBackpressure uses net.Pipe, which has no buffer: a client write completes
// only when the server reads it, so the frames written while the Handler is
// blocked show exactly how far the server reads ahead.
func TestBackpressure(t *testing.T) {
	for _, kind := range []string{"syslog", "unknown-command"} {
		t.Run(kind, func(t *testing.T) { testBackpressure(t, kind) })
	}
}

func testBackpressure(t *testing.T, kind string) {
	const maxBatch = 4
	release := make(chan struct{})
	var calls atomic.Int32
	var maxSeen atomic.Int32
	handler := func(ctx context.Context, _ ConnInfo, msgs [][]byte) error {
		if int32(len(msgs)) > maxSeen.Load() {
			maxSeen.Store(int32(len(msgs)))
		}
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	}
	srv := &Server{Handler: handler, MaxBatch: maxBatch, Logger: testLogger(t)}
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), a) }()
	go func() { // drain responses
		var buf [4096]byte
		for {
			if _, err := b.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	var written atomic.Int32
	const n = 200
	go func() {
		b.Write([]byte(librelpOpen))
		b.Write([]byte(syslogFrame(2, "first"))) // blocks the handler
		for i := 0; i < n; i++ {
			f := syslogFrame(i+3, "m")
			if kind != "syslog" {
				f = frame(i+3, "nosuchcommand", "x")
			}
			if _, err := b.Write([]byte(f)); err != nil {
				return
			}
			written.Add(1)
		}
		b.Write([]byte(fmt.Sprintf("%d close 0\n", n+3)))
	}()
	waitFor(t, 5*time.Second, "first handler call", func() bool { return calls.Load() == 1 })
	time.Sleep(200 * time.Millisecond)
	// In flight: at most one batch; queued: at most maxBatch items; plus the
	// frame the reader holds while it waits for room.
	if w := written.Load(); w > 2*maxBatch+1 {
		t.Fatalf("%d frames accepted while the handler was blocked; want at most %d", w, 2*maxBatch+1)
	} else {
		t.Logf("%d frames accepted while the handler was blocked (MaxBatch %d)", w, maxBatch)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	st := srv.Stats()
	if kind == "syslog" && st.Messages != n+1 || kind != "syslog" && st.UnknownCommands != n {
		t.Fatalf("stats %+v", st)
	}
	if maxSeen.Load() > maxBatch {
		t.Fatalf("batch of %d, MaxBatch %d", maxSeen.Load(), maxBatch)
	}
}

func TestMaxBatchBytes(t *testing.T) {
	col := newCollector()
	gate := make(chan struct{})
	first := true
	col.fail = func(call int, _ [][]byte) error {
		if first {
			first = false
			<-gate
		}
		return nil
	}
	srv := &Server{Handler: col.handle, MaxBatchBytes: 100}
	addr, _ := startServer(t, srv)
	cl := dial(t, addr)
	msg := strings.Repeat("x", 40)
	var wire strings.Builder
	wire.WriteString(librelpOpen)
	for i := 0; i < 20; i++ {
		wire.WriteString(syslogFrame(i+2, msg))
	}
	cl.send(wire.String())
	time.Sleep(100 * time.Millisecond)
	close(gate)
	cl.expect(openRsp("mamori"))
	for i := 0; i < 20; i++ {
		cl.expect(fmt.Sprintf(`%d rsp "200 OK"`, i+2))
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, b := range col.batches {
		if b*len(msg) > 100 {
			t.Fatalf("batch of %d messages of %d bytes exceeds MaxBatchBytes 100", b, len(msg))
		}
	}
}

func TestMessagesAreSafeToRetain(t *testing.T) {
	col := newCollector()
	addr, _ := startServer(t, &Server{Handler: col.handle})
	cl := dial(t, addr)
	wire, msgs := pipelined(3000)
	cl.sendAsync(wire)
	checkPipelinedAcks(t, cl, 3000)
	col.mu.Lock()
	defer col.mu.Unlock()
	for i, m := range col.raw {
		if string(m) != msgs[i] {
			t.Fatalf("retained message %d changed to %q", i, m)
		}
		if cap(m) != len(m) {
			t.Fatalf("message %d has spare capacity %d: appending would clobber its neighbour", i, cap(m)-len(m))
		}
	}
}

func TestShutdownSendsServerClose(t *testing.T) {
	entered := make(chan struct{})
	handler := func(ctx context.Context, _ ConnInfo, msgs [][]byte) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}
	srv := &Server{Handler: handler}
	addr, stop := startServer(t, srv)
	cl := dial(t, addr)
	cl.send(librelpOpen + syslogFrame(2, "a") + syslogFrame(3, "b"))
	cl.expect(openRsp("mamori"))
	<-entered
	go stop()
	cl.expectClosed() // 2 and 3 unacknowledged
	waitFor(t, 5*time.Second, "connection end", func() bool { return srv.Stats().ConnectionsActive == 0 })
}

func TestShutdownIdleConnections(t *testing.T) {
	srv := &Server{Handler: newCollector().handle}
	addr, stop := startServer(t, srv)
	var cls []*client
	for i := 0; i < 3; i++ {
		cl := dial(t, addr)
		cl.send(librelpOpen)
		cl.expect(openRsp("mamori"))
		cls = append(cls, cl)
	}
	stop()
	for _, cl := range cls {
		cl.expectClosed()
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatalf("listener still accepting after shutdown")
	}
}

func TestServeReturnsWhenListenerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: newCollector().handle, Logger: testLogger(t)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := (&Server{}).Serve(context.Background(), ln); err == nil {
		t.Fatal("Serve without Handler did not fail")
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	addr, _ := serveOn(t, &Server{Handler: col.handle}, ln)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c}
	cl.send(librelpOpen + syslogFrame(2, "over tls"))
	cl.expect(openRsp("mamori"), `2 rsp "200 OK"`)
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.info) != 1 || col.info[0].TLS == nil || !col.info[0].TLS.HandshakeComplete {
		t.Fatalf("ConnInfo %+v: want the TLS state", col.info)
	}
	if col.info[0].RemoteAddr == nil {
		t.Fatalf("ConnInfo without RemoteAddr")
	}
}

// selfSigned returns a certificate for localhost/127.0.0.1 and a pool
// trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestNextTxnrWraps(t *testing.T) {
	if nextTxnr(1) != 2 || nextTxnr(999999998) != 999999999 || nextTxnr(999999999) != 1 {
		t.Fatal("nextTxnr")
	}
}
