package relp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors that end a connection. ServeConn returns them wrapped; callers
// compare with errors.Is.
var (
	// ErrMalformedFrame reports a frame that does not follow the RELP
	// grammar. The stream cannot be resynchronized: the server sends
	// serverclose and drops the connection.
	ErrMalformedFrame = errors.New("relp: malformed frame")
	// ErrFrameTooLarge reports a DATALEN above Server.MaxFrame. The
	// connection is dropped as for ErrMalformedFrame.
	ErrFrameTooLarge = errors.New("relp: frame data exceeds the maximum size")
	// ErrProtocol reports a well-formed frame that breaks the session rules:
	// transaction number out of sequence, syslog before open, an open
	// without the syslog command or with an invalid relp_version.
	ErrProtocol = errors.New("relp: protocol violation")
	// ErrHandler wraps the Handler's error when the connection is dropped
	// because of it (policy CloseOnError).
	ErrHandler = errors.New("relp: handler failed")
)

// Defaults for the zero Server fields.
const (
	// DefaultMaxFrame is librelp's default maximum DATALEN (128 KiB).
	DefaultMaxFrame = 128 << 10
	// DefaultMaxBatch is the default number of messages per Handler call.
	DefaultMaxBatch = 1024
	// DefaultMaxBatchBytes is the default byte budget of a batch.
	DefaultMaxBatchBytes = 8 << 20
	// DefaultWriteTimeout bounds each write of responses.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultHandshakeTimeout bounds the TLS handshake.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultSoftware is the relp_software offer sent to clients.
	DefaultSoftware = "mamori"
)

// Handler receives a batch of syslog messages (each exactly the DATA of one
// syslog command, in transaction order) read from one connection. It must
// return only when they are durable; the server then acknowledges all of them
// with "rsp 6 200 OK". The slices are copies the Handler may retain.
//
// ctx is canceled when the connection ends or the server shuts down; a
// Handler that gives up then returns an error and the messages stay
// unacknowledged, so the client sends them again.
//
// If it returns an error, none of the batch is acknowledged as stored; what
// the client is told depends on Server.OnHandlerError.
type Handler func(ctx context.Context, conn ConnInfo, msgs [][]byte) error

// ConnInfo describes the connection a batch came from.
type ConnInfo struct {
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
	// TLS is the connection state after the handshake, nil for plain TCP.
	TLS *tls.ConnectionState
}

// ErrorPolicy says how the server reacts when the Handler fails.
type ErrorPolicy int

const (
	// CloseOnError leaves the failed messages unacknowledged, sends
	// serverclose and drops the connection. librelp (rsyslog omrelp) then
	// reconnects and retransmits every unacknowledged message, so nothing is
	// lost. This is the default.
	CloseOnError ErrorPolicy = iota
	// RespondError answers "rsp 500 <reason>" for each failed transaction and
	// keeps the session. librelp 1.11 (rsyslog omrelp) then reports an error,
	// reconnects and resends the other unacknowledged messages, but drops the
	// first transaction it sees answered 500: measured with rsyslog 8.2302,
	// one message lost per failed batch. Use only with clients known to
	// resend on 500.
	RespondError
)

// Server is a RELP server. The zero value is not usable: Handler must be set.
// Other fields take defaults when zero. Fields must not change once serving
// starts; a Server must not be copied after first use.
type Server struct {
	// Handler receives the messages. Required.
	Handler Handler
	// MaxFrame is the maximum DATALEN accepted (DefaultMaxFrame if 0). A
	// larger frame ends the connection (ErrFrameTooLarge).
	MaxFrame int
	// MaxBatch is the maximum number of messages per Handler call
	// (DefaultMaxBatch if 0).
	MaxBatch int
	// MaxBatchBytes bounds the bytes of one batch (DefaultMaxBatchBytes if
	// 0); a batch holds at least one message.
	MaxBatchBytes int
	// OnHandlerError says what the client is told when Handler fails.
	OnHandlerError ErrorPolicy
	// Software is sent as relp_software in the open response
	// (DefaultSoftware if empty).
	Software string
	// WriteTimeout bounds each write to a client (DefaultWriteTimeout if 0).
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake of a *tls.Conn
	// (DefaultHandshakeTimeout if 0).
	HandshakeTimeout time.Duration
	// Logger receives connection events (slog.Default() if nil). Message
	// bytes are never logged.
	Logger *slog.Logger

	stats counters
}

// Stats is a snapshot of a Server's counters since it was created.
type Stats struct {
	ConnectionsAccepted uint64 // connections served
	ConnectionsActive   int64  // connections being served now
	Frames              uint64 // well-formed frames read, all commands
	Messages            uint64 // syslog messages stored by Handler and acknowledged
	Batches             uint64 // successful Handler calls
	HandlerErrors       uint64 // failed Handler calls
	Unacknowledged      uint64 // messages of failed calls (answered 500 or left for retransmission)
	MalformedFrames     uint64 // connections dropped for a malformed frame
	OversizeFrames      uint64 // connections dropped for a DATALEN above MaxFrame
	ProtocolErrors      uint64 // connections dropped for a protocol violation
	UnknownCommands     uint64 // frames answered "500 unknown command"
}

type counters struct {
	accepted, frames, messages, batches, handlerErrors, unacked,
	malformed, oversize, protocol, unknown atomic.Uint64
	active atomic.Int64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		ConnectionsAccepted: c.accepted.Load(),
		ConnectionsActive:   c.active.Load(),
		Frames:              c.frames.Load(),
		Messages:            c.messages.Load(),
		Batches:             c.batches.Load(),
		HandlerErrors:       c.handlerErrors.Load(),
		Unacknowledged:      c.unacked.Load(),
		MalformedFrames:     c.malformed.Load(),
		OversizeFrames:      c.oversize.Load(),
		ProtocolErrors:      c.protocol.Load(),
		UnknownCommands:     c.unknown.Load(),
	}
}

func (s *Server) logger() *slog.Logger {
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("component", "relp")
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Server) software() string {
	sw := s.Software
	if sw == "" {
		sw = DefaultSoftware
	}
	// An offer value ends at LF.
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, sw)
}

// Serve accepts connections on ln and serves each with ServeConn in its own
// goroutine. Make ln with Listen (optionally wrapped by tls.NewListener). It returns nil when ctx is done, or the accept error (wrapped)
// when ln is closed otherwise. Before returning it stops every connection it
// started: in-flight Handler calls see their context canceled, messages not
// yet acknowledged are left for the client to resend, each client is sent
// serverclose, and Serve waits for all of them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Handler == nil {
		return errors.New("relp: Server.Handler is nil")
	}
	log := s.logger()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("relp: accept on %s: %w", ln.Addr(), err)
			}
			// Other accept errors (EMFILE, ECONNABORTED...) are transient.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed; retrying", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ServeConn(ctx, c); err != nil {
				log.Warn("connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// ServeConn serves one RELP session on c and closes c. It returns nil when the
// client closed the session (close command, or EOF between frames) or ctx is
// done; otherwise an error wrapping ErrMalformedFrame, ErrFrameTooLarge,
// ErrProtocol, ErrHandler or the I/O error that ended it.
//
// Frames are read ahead of the Handler: while one batch is being stored, the
// next fills with the frames already received, up to MaxBatch messages or
// MaxBatchBytes; then reading stops until the Handler returns, which pushes
// back on the client through TCP. Responses are sent strictly in transaction
// order.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	if s.Handler == nil {
		c.Close()
		return errors.New("relp: Server.Handler is nil")
	}
	s.stats.accepted.Add(1)
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	defer c.Close()

	info := ConnInfo{RemoteAddr: c.RemoteAddr()}
	log := s.logger().With("remote", c.RemoteAddr().String())
	if tc, ok := c.(*tls.Conn); ok {
		hctx, hcancel := context.WithTimeout(ctx, orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout))
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			return fmt.Errorf("relp: TLS handshake with %s: %w", c.RemoteAddr(), err)
		}
		st := tc.ConnectionState()
		info.TLS = &st
	}
	cn := newConn(s, c, info, log)
	return cn.serve(ctx)
}
