package relp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// librelpOpen is the open command rsyslog 8.2302 / librelp 1.11 sends.
const librelpOpen = "1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n"

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// collector is a Handler that records what it receives.
type collector struct {
	mu      sync.Mutex
	msgs    []string
	raw     [][]byte // the slices as passed, to check they are retained safely
	batches []int
	info    []ConnInfo
	fail    func(call int, msgs [][]byte) error // optional
	calls   int
	notify  chan struct{}
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) handle(ctx context.Context, ci ConnInfo, msgs [][]byte) error {
	c.mu.Lock()
	call := c.calls
	c.calls++
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		if err := fail(call, msgs); err != nil {
			return err
		}
	}
	c.mu.Lock()
	for _, m := range msgs {
		c.msgs = append(c.msgs, string(m))
		c.raw = append(c.raw, m)
	}
	c.batches = append(c.batches, len(msgs))
	c.info = append(c.info, ci)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t *testing.T, srv *Server) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return serveOn(t, srv, ln)
}

func serveOn(t *testing.T, srv *Server, ln net.Listener) (addr string, stop func()) {
	t.Helper()
	if srv.Logger == nil {
		srv.Logger = testLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// rframe is a frame received by the test client.
type rframe struct {
	txnr int
	cmd  string
	data string
}

func (f rframe) String() string { return fmt.Sprintf("%d %s %q", f.txnr, f.cmd, f.data) }

// client is a hand-written RELP client.
type client struct {
	t   testing.TB
	c   net.Conn
	buf []byte
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

func (cl *client) send(s string) {
	cl.t.Helper()
	cl.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(cl.c, s); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame from the server, or an error (io.EOF when the
// server closed the connection).
func (cl *client) read() (rframe, error) {
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		h, data, n, err := nextFrame(cl.buf, 1<<20)
		if err == nil {
			f := rframe{h.txnr, string(h.cmd), string(data)}
			cl.buf = cl.buf[n:]
			return f, nil
		}
		if err != errIncomplete {
			return rframe{}, err
		}
		var tmp [4096]byte
		n, err = cl.c.Read(tmp[:])
		cl.buf = append(cl.buf, tmp[:n]...)
		if n == 0 && err != nil {
			return rframe{}, err
		}
	}
}

func (cl *client) expect(want ...string) {
	cl.t.Helper()
	for _, w := range want {
		f, err := cl.read()
		if err != nil {
			cl.t.Fatalf("waiting for %q: %v", w, err)
		}
		if got := f.String(); got != w {
			cl.t.Fatalf("got frame %s, want %s", got, w)
		}
	}
}

// expectClosed reads the serverclose hint and then EOF.
func (cl *client) expectClosed() {
	cl.t.Helper()
	cl.expect(`0 serverclose ""`)
	if f, err := cl.read(); err == nil {
		cl.t.Fatalf("got frame %s after serverclose, want EOF", f)
	} else if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		cl.t.Fatalf("after serverclose: %v, want EOF", err)
	}
}

func syslogFrame(txnr int, msg string) string { return frame(txnr, "syslog", msg) }

func frame(txnr int, cmd, data string) string {
	if data == "" {
		return fmt.Sprintf("%d %s 0\n", txnr, cmd)
	}
	return fmt.Sprintf("%d %s %d %s\n", txnr, cmd, len(data), data)
}

func openRsp(software string) string {
	return fmt.Sprintf("1 rsp %q", "200 OK\nrelp_version=0\nrelp_software="+software+"\ncommands=syslog")
}

// waitFor polls cond until it holds or the timeout elapses.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeByteByByte sends s one byte per write; it runs in its own goroutine.
func writeByteByByte(t testing.TB, c net.Conn, s string) {
	w := bufio.NewWriterSize(c, 1)
	for i := 0; i < len(s); i++ {
		w.WriteByte(s[i])
		if err := w.Flush(); err != nil {
			t.Errorf("write byte %d: %v", i, err)
			return
		}
	}
}

// sendAsync sends s from another goroutine.
func (cl *client) sendAsync(s string) {
	go func() {
		cl.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(cl.c, s); err != nil {
			cl.t.Errorf("write: %v", err)
		}
	}()
}
