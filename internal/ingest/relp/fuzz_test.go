package relp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"
)

// FuzzRELPFrame checks the frame parser: no panic, results within the
// grammar's limits, and the same answer whatever prefix of a stream is
// buffered (the server parses whatever it has read so far).
func FuzzRELPFrame(f *testing.F) {
	f.Add([]byte(librelpOpen + "2 syslog 5 hello\n3 close 0\n"))
	f.Add([]byte("1 rsp 6 200 OK\n0 serverclose 0\n"))
	f.Add([]byte("999999999 syslog 1 x\n1234567890 a 1 b\n"))
	f.Add([]byte("1 abcdefghijklmnopqrstuvwxyzABCDEFG 0\n"))
	f.Add([]byte("1 syslog 0 \n1 syslog 2 a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxData = 1 << 10
		h, err := parseHeader(data, maxData)
		switch {
		case err == nil:
			if h.hdrLen > len(data) || h.txnr < 0 || h.txnr > maxTxnr || h.dataLen < 0 || h.dataLen > maxData {
				t.Fatalf("header out of bounds: %+v for %q", h, data)
			}
			if len(h.cmd) == 0 || len(h.cmd) > maxCmdLen {
				t.Fatalf("command %q", h.cmd)
			}
			// Re-encode and re-parse.
			enc := fmt.Sprintf("%d %s %d", h.txnr, h.cmd, h.dataLen)
			if h.dataLen == 0 {
				enc += "\n"
			} else {
				enc += " "
			}
			h2, err2 := parseHeader([]byte(enc), maxData)
			if err2 != nil || h2.txnr != h.txnr || !bytes.Equal(h2.cmd, h.cmd) || h2.dataLen != h.dataLen {
				t.Fatalf("re-encoded %q parses as %+v, %v; want %+v", enc, h2, err2, h)
			}
		case err == errIncomplete:
			if len(data) > maxHeaderLen {
				t.Fatalf("incomplete after %d bytes: %q", len(data), data)
			}
		case errors.Is(err, ErrMalformedFrame), errors.Is(err, ErrFrameTooLarge):
		default:
			t.Fatalf("unexpected error %v", err)
		}
		// Every prefix gives errIncomplete or the same answer.
		for k := 0; k < len(data) && k <= maxHeaderLen+1; k++ {
			hk, errk := parseHeader(data[:k], maxData)
			if errk == errIncomplete {
				continue
			}
			if (errk == nil) != (err == nil) || (err != nil && errk.Error() != err.Error()) ||
				hk.txnr != h.txnr || hk.dataLen != h.dataLen || hk.hdrLen != h.hdrLen || !bytes.Equal(hk.cmd, h.cmd) {
				t.Fatalf("prefix %q: %+v, %v; whole %q: %+v, %v", data[:k], hk, errk, data, h, err)
			}
		}
		// Split the input into frames as the reader does.
		rest := data
		for len(rest) > 0 {
			h, d, n, err := nextFrame(rest, maxData)
			if err != nil {
				break
			}
			if n <= 0 || n > len(rest) || len(d) != h.dataLen || rest[n-1] != '\n' {
				t.Fatalf("frame %+v, %d bytes of data, length %d, of %q", h, len(d), n, rest)
			}
			if string(h.cmd) == "open" {
				parseOffers(d)
			}
			rest = rest[n:]
		}
	})
}

// fakeConn reads from a byte slice and discards writes.
type fakeConn struct {
	r *bytes.Reader
}

func (c *fakeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn runs whole sessions from arbitrary bytes: ServeConn must
// return (no deadlock between reader and processor), store each message at
// most once per frame, and never store more messages than frames read.
func FuzzServeConn(f *testing.F) {
	f.Add([]byte(librelpOpen+"2 syslog 5 hello\n3 syslog 0\n4 foo 1 x\n5 close 0\n"), uint8(0))
	f.Add([]byte(librelpOpen+"2 syslog 5 hello\n3 syslog 5 world\n2 syslog 1 x\n"), uint8(3))
	f.Add([]byte("1 syslog 1 a\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		calls := 0
		srv := &Server{
			MaxFrame: 64,
			MaxBatch: int(mode%4) + 1,
			Logger:   slog.New(slog.DiscardHandler),
			Handler: func(ctx context.Context, _ ConnInfo, msgs [][]byte) error {
				calls++
				if mode&4 != 0 && calls%2 == 0 {
					return errors.New("fail")
				}
				return nil
			},
		}
		if mode&8 != 0 {
			srv.OnHandlerError = RespondError
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ServeConn(context.Background(), &fakeConn{bytes.NewReader(data)})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn did not return on %q", data)
		}
		st := srv.Stats()
		if st.Messages+st.Unacknowledged > st.Frames || st.ConnectionsActive != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
