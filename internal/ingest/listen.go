package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/ingest/framing"
)

// Source names (the "source" metric label and the event's mamori.source).
const (
	SourceUDP  = "syslog-udp"
	SourceTCP  = "syslog-tcp"
	SourceTLS  = "syslog-tls"
	SourceRELP = "relp"
	SourceHTTP = "http"
	// SourceAgent: lines shipped by an enrolled endpoint agent.
	SourceAgent = "agent"
)

// Listeners serves the syslog-family transports into a Pipeline.
type Listeners struct {
	Pipeline *Pipeline
	Router   *Router
	MaxFrame int
	// ChunkFrames and ChunkWait bound how many frames a stream connection
	// collects before handing them to the pipeline.
	ChunkFrames int
	ChunkWait   time.Duration
	Logger      *slog.Logger
	Metrics     *Metrics

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]*connState
}

// connState is what shutdown needs to know of an open stream connection.
type connState struct {
	read atomic.Int64 // bytes read so far
}

// countingReader counts what a connection's reader consumed, so that a
// draining shutdown can tell a sender still delivering from an idle one.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (l *Listeners) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// ServeUDP reads datagrams until ctx ends. One datagram is one frame (a
// trailing newline is left for the parser to trim). When the pipeline is
// full, datagrams are dropped and counted: UDP has no way to push back.
func (l *Listeners) ServeUDP(ctx context.Context, pc net.PacketConn, tenant string) error {
	log := l.logger().With("component", "ingest", "source", SourceUDP)
	type dgram struct {
		data   []byte
		tenant string
	}
	queue := make(chan dgram, 16384)
	var workers sync.WaitGroup
	workers.Add(1)
	go func() {
		defer workers.Done()
		chunk := map[string][][]byte{}
		n := 0
		flush := func() {
			for t, frames := range chunk {
				if _, err := l.Pipeline.TrySubmit(ctx, Origin{Tenant: t, Source: SourceUDP}, frames); err != nil {
					if l.Metrics != nil {
						l.Metrics.UDPDrops.Add(float64(len(frames)))
					}
				}
				delete(chunk, t)
			}
			n = 0
		}
		for d := range queue {
			chunk[d.tenant] = append(chunk[d.tenant], d.data)
			n++
			// Drain what is already queued, then submit.
			for n < 512 {
				select {
				case d2, ok := <-queue:
					if !ok {
						flush()
						return
					}
					chunk[d2.tenant] = append(chunk[d2.tenant], d2.data)
					n++
					continue
				default:
				}
				break
			}
			flush()
		}
		flush()
	}()
	go func() { <-ctx.Done(); _ = pc.Close() }()
	buf := make([]byte, 65536)
	var err error
	for {
		var n int
		var from net.Addr
		n, from, err = pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				err = nil
			}
			break
		}
		if n > l.MaxFrame {
			if l.Metrics != nil {
				l.Metrics.FrameErrors.WithLabelValues(SourceUDP, "too_large").Inc()
			}
			n = l.MaxFrame // store the first MaxFrame bytes, flagged by the count
		}
		t, rerr := l.Router.Resolve(tenant, addrOf(from), nil)
		if rerr != nil {
			if l.Metrics != nil {
				l.Metrics.Rejected.WithLabelValues(SourceUDP, "unmapped").Inc()
			}
			continue
		}
		select {
		case queue <- dgram{data: append([]byte(nil), buf[:n]...), tenant: t}:
		default:
			if l.Metrics != nil {
				l.Metrics.UDPDrops.Inc()
			}
		}
	}
	close(queue)
	workers.Wait()
	if err != nil {
		log.Error("udp listener stopped", "err", err)
	}
	return err
}

// ServeStream accepts TCP (or TLS, when ln is a TLS listener) connections
// until ctx ends, then closes them and waits for their handlers.
func (l *Listeners) ServeStream(ctx context.Context, ln net.Listener, source, tenant string) error {
	l.mu.Lock()
	if l.conns == nil {
		l.conns = map[net.Conn]*connState{}
	}
	l.mu.Unlock()
	go func() { <-ctx.Done(); _ = ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept %s: %w", source, err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			st := l.track(c)
			defer l.untrack(c)
			l.serveConn(ctx, c, st, source, tenant)
		}()
	}
	return nil
}

func (l *Listeners) track(c net.Conn) *connState {
	st := &connState{}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[c] = st
	return st
}

func (l *Listeners) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// drainIdle is how long a connection may deliver nothing before a draining
// shutdown closes it.
const drainIdle = 500 * time.Millisecond

// CloseConns closes every open stream connection (at shutdown, after the
// listeners stopped accepting) and waits for their handlers to submit what
// they read. It drains first: syslog over TCP has no acknowledgement, so
// what a sender wrote before the shutdown may still sit in the socket
// buffer. A connection that keeps delivering is read until it ends or grace
// has passed; one that is idle for drainIdle is closed at once.
func (l *Listeners) CloseConns(grace time.Duration) {
	deadline := time.Now().Add(grace)
	seen := map[net.Conn]int64{}
	for {
		now := time.Now()
		l.mu.Lock()
		open := len(l.conns)
		for c, st := range l.conns {
			n := st.read.Load()
			if prev, ok := seen[c]; ok && prev == n || !now.Before(deadline) {
				_ = c.SetReadDeadline(now)
			}
			seen[c] = n
		}
		l.mu.Unlock()
		if open == 0 || !now.Before(deadline) {
			break
		}
		time.Sleep(min(drainIdle, time.Until(deadline)))
	}
	l.wg.Wait()
}

func (l *Listeners) serveConn(ctx context.Context, c net.Conn, st *connState, source, listenerTenant string) {
	log := l.logger().With("component", "ingest", "source", source, "remote", c.RemoteAddr().String())
	defer c.Close()
	if l.Metrics != nil {
		l.Metrics.Connections.WithLabelValues(source).Inc()
		defer l.Metrics.Connections.WithLabelValues(source).Dec()
	}
	var cert *x509.Certificate
	if tc, ok := c.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			log.Warn("tls handshake failed", "err", err)
			if l.Metrics != nil {
				l.Metrics.FrameErrors.WithLabelValues(source, "tls_handshake").Inc()
			}
			return
		}
		if pcs := tc.ConnectionState().PeerCertificates; len(pcs) > 0 {
			cert = pcs[0]
		}
	}
	tenant, err := l.Router.Resolve(listenerTenant, addrOf(c.RemoteAddr()), cert)
	if err != nil {
		log.Warn("connection refused", "err", err)
		if l.Metrics != nil {
			l.Metrics.Rejected.WithLabelValues(source, "unmapped").Inc()
		}
		return
	}
	ch := newChunker(l.Pipeline, Origin{Tenant: tenant, Source: source}, max(l.ChunkFrames, 1), l.ChunkWait, ctx)
	defer ch.close()
	r := framing.NewReader(countingReader{c, &st.read}, l.MaxFrame)
	for {
		frame, err := r.Next()
		if len(frame) > 0 {
			ch.add(frame)
		}
		if err == nil {
			continue
		}
		reason := ""
		switch {
		case errors.Is(err, framing.ErrFrameTooLarge):
			reason = "too_large"
		case errors.Is(err, framing.ErrBadOctetCount):
			reason = "bad_octet_count"
		case errors.Is(err, framing.ErrTruncated):
			reason = "truncated"
		}
		if reason != "" && l.Metrics != nil {
			l.Metrics.FrameErrors.WithLabelValues(source, reason).Inc()
		}
		if errors.Is(err, framing.ErrUnrecoverable) {
			log.Warn("dropping connection: framing cannot recover", "err", err)
			return
		}
		if reason != "" && !errors.Is(err, framing.ErrTruncated) {
			log.Debug("frame error", "err", err)
			continue
		}
		// EOF, a closed connection or a truncated tail: the connection is done.
		return
	}
}

// chunker collects a connection's frames and submits them in chunks: when
// full, or ChunkWait after the first frame of a chunk. Submit runs under the
// chunker's lock so a blocked pipeline also blocks the reader (backpressure).
type chunker struct {
	p      *Pipeline
	o      Origin
	n      int
	wait   time.Duration
	ctx    context.Context
	mu     sync.Mutex
	frames [][]byte
	buf    []byte
	timer  *time.Timer
}

func newChunker(p *Pipeline, o Origin, n int, wait time.Duration, ctx context.Context) *chunker {
	if n <= 1 {
		n = 512
	}
	if wait <= 0 {
		wait = 5 * time.Millisecond
	}
	c := &chunker{p: p, o: o, n: n, wait: wait, ctx: ctx}
	c.timer = time.AfterFunc(time.Hour, c.flushTimer)
	c.timer.Stop()
	return c
}

func (c *chunker) add(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Copy into one growing buffer per chunk: one allocation for many frames.
	if cap(c.buf)-len(c.buf) < len(frame) {
		c.buf = make([]byte, 0, max(256<<10, len(frame)))
	}
	start := len(c.buf)
	c.buf = append(c.buf, frame...)
	c.frames = append(c.frames, c.buf[start:len(c.buf):len(c.buf)])
	if len(c.frames) >= c.n {
		c.flushLocked()
	} else if len(c.frames) == 1 {
		c.timer.Reset(c.wait)
	}
}

func (c *chunker) flushTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *chunker) flushLocked() {
	if len(c.frames) == 0 {
		return
	}
	frames := c.frames
	c.frames = nil
	c.buf = c.buf[len(c.buf):] // frames keep the old backing array
	// Shutdown must not lose what was read: submit with a background
	// context, the pipeline itself refuses only once it is closed.
	if _, err := c.p.Submit(context.WithoutCancel(c.ctx), c.o, frames); err != nil && c.p.m != nil {
		c.p.m.Rejected.WithLabelValues(c.o.Source, "closed").Add(float64(len(frames)))
	}
}

func (c *chunker) close() {
	c.timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}
