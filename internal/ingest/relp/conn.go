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
	"sync"
	"time"
)

type itemKind uint8

const (
	kindSyslog   itemKind = iota // a message for the Handler
	kindResponse                 // a response to send as is
	kindClose                    // answer close, then end the session
	kindFatal                    // send serverclose, then end the session
)

// item is one entry of the ordered queue between the reader and the
// processor; responses leave in queue order, hence in txnr order.
type item struct {
	kind itemKind
	txnr int
	msg  []byte // kindSyslog: a copy; kindResponse: the response DATA
	err  error  // kindFatal: why
}

const (
	minReadBuf   = 64 << 10
	arenaSize    = 64 << 10
	writeBufSize = 32 << 10
	// shutdownWriteGrace bounds the last writes (acks, serverclose) once the
	// server shuts down.
	shutdownWriteGrace = time.Second
)

var longAgo = time.Unix(1, 0)

// errStopped tells the reader the processor is gone or the server shuts down.
var errStopped = errors.New("relp: connection stopping")

type conn struct {
	s    *Server
	nc   net.Conn
	info ConnInfo
	log  *slog.Logger

	maxFrame, maxBatch, maxBatchBytes int
	writeTimeout                      time.Duration

	// Shared between reader and processor, guarded by mu.
	mu         sync.Mutex
	cond       sync.Cond
	items      []item // filled by the reader
	spare      []item // processed slice handed back for reuse
	nmsgs      int    // syslog items in items
	nbytes     int    // their bytes
	readerDone bool
	readErr    error
	procDone   bool
	shutdown   bool

	// Reader state.
	buf      []byte
	r, w     int
	arena    []byte
	expected int // next txnr
	opened   bool
	unknown  int // unknown commands seen

	// Processor state.
	bw   *bufio.Writer
	wbuf []byte
}

func newConn(s *Server, nc net.Conn, info ConnInfo, log *slog.Logger) *conn {
	c := &conn{
		s:             s,
		nc:            nc,
		info:          info,
		log:           log,
		maxFrame:      orDefault(s.MaxFrame, DefaultMaxFrame),
		maxBatch:      orDefault(s.MaxBatch, DefaultMaxBatch),
		maxBatchBytes: orDefault(s.MaxBatchBytes, DefaultMaxBatchBytes),
		writeTimeout:  orDefault(s.WriteTimeout, DefaultWriteTimeout),
		expected:      1,
	}
	c.cond.L = &c.mu
	c.buf = make([]byte, max(minReadBuf, c.maxFrame+maxHeaderLen+1))
	c.bw = bufio.NewWriterSize(nc, writeBufSize)
	return c
}

func (c *conn) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// On shutdown, interrupt the reader wherever it blocks and let the
	// processor finish its current Handler call and say serverclose.
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.shutdown = true
		c.cond.Broadcast()
		c.mu.Unlock()
		c.nc.SetReadDeadline(longAgo)
		c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteGrace))
	})
	defer stop()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := c.readLoop()
		c.mu.Lock()
		c.readerDone = true
		c.readErr = err
		c.cond.Broadcast()
		c.mu.Unlock()
	}()

	err := c.processLoop(ctx)

	c.mu.Lock()
	c.procDone = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.SetReadDeadline(longAgo)
	wg.Wait()
	return err
}

// ---- reader ----

// readLoop parses frames and queues them until the session ends. Its error
// is informational: protocol errors also reach the processor as kindFatal.
func (c *conn) readLoop() error {
	for {
		for c.r < c.w {
			h, data, n, err := nextFrame(c.buf[c.r:c.w], c.maxFrame)
			if err == errIncomplete {
				break
			}
			if err != nil {
				if errors.Is(err, ErrFrameTooLarge) {
					c.s.stats.oversize.Add(1)
				} else {
					c.s.stats.malformed.Add(1)
				}
				c.push(item{kind: kindFatal, err: err})
				return err
			}
			c.s.stats.frames.Add(1)
			done, err := c.handleFrame(h, data)
			c.r += n
			if done || err != nil {
				return err
			}
		}
		// Every complete frame is queued: wake the processor before blocking.
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
		if err := c.fill(); err != nil {
			c.mu.Lock()
			stopping := c.shutdown || c.procDone
			c.mu.Unlock()
			switch {
			case stopping:
				return errStopped
			case err == io.EOF && c.r == c.w:
				return nil
			case err == io.EOF:
				return fmt.Errorf("relp: connection closed inside a frame: %w", io.ErrUnexpectedEOF)
			default:
				return fmt.Errorf("relp: read: %w", err)
			}
		}
	}
}

// handleFrame queues what a frame calls for. done is true when the reader
// must stop (close, or a fatal error already queued).
func (c *conn) handleFrame(h header, data []byte) (done bool, err error) {
	if h.txnr == 0 {
		// A hint (txnr 0) from a client has no defined meaning: no response.
		c.log.Debug("ignoring hint frame from client", "command", string(h.cmd))
		return false, nil
	}
	if h.txnr != c.expected {
		return true, c.fatal(fmt.Errorf("%w: transaction number %d, expected %d", ErrProtocol, h.txnr, c.expected))
	}
	c.expected = nextTxnr(c.expected)

	switch string(h.cmd) {
	case "syslog":
		if !c.opened {
			c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte("500 session not open")})
			return true, c.fatal(fmt.Errorf("%w: syslog command before open", ErrProtocol))
		}
		if err := c.push(item{kind: kindSyslog, txnr: h.txnr, msg: c.copyMsg(data)}); err != nil {
			return true, err
		}
	case "open":
		if c.opened {
			// librelp's answer to a repeated open.
			err := c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte("200 connection already open - ignored")})
			return err != nil, err
		}
		o := parseOffers(data)
		switch {
		case o.badVersion:
			c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte("500 invalid relp_version offer")})
			return true, c.fatal(fmt.Errorf("%w: open with an invalid relp_version", ErrProtocol))
		case !o.syslog:
			c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte("500 required command not supported by client")})
			return true, c.fatal(fmt.Errorf("%w: open without the syslog command", ErrProtocol))
		}
		c.opened = true
		c.log.Debug("session open", "relp_version", o.version, "relp_software", o.software)
		// We speak relp_version 0 only; a client offering more accepts less.
		rsp := "200 OK\nrelp_version=0\nrelp_software=" + c.s.software() + "\ncommands=syslog"
		if err := c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte(rsp)}); err != nil {
			return true, err
		}
	case "close":
		c.push(item{kind: kindClose, txnr: h.txnr})
		return true, nil
	default:
		c.s.stats.unknown.Add(1)
		c.unknown++
		lvl := slog.LevelDebug
		if c.unknown == 1 {
			lvl = slog.LevelWarn // once per connection: a client could send millions
		}
		c.log.Log(context.Background(), lvl, "unknown RELP command answered 500", "command", string(h.cmd), "txnr", h.txnr)
		if err := c.push(item{kind: kindResponse, txnr: h.txnr, msg: []byte("500 unknown command")}); err != nil {
			return true, err
		}
	}
	return false, nil
}

func (c *conn) fatal(err error) error {
	c.s.stats.protocol.Add(1)
	c.push(item{kind: kindFatal, err: err})
	return err
}

// copyMsg copies a message into the current arena. Arenas are never reused,
// so the copy stays valid for as long as the Handler keeps it.
func (c *conn) copyMsg(b []byte) []byte {
	if len(b) > cap(c.arena)-len(c.arena) {
		c.arena = make([]byte, 0, max(arenaSize, len(b)))
	}
	off := len(c.arena)
	c.arena = append(c.arena, b...)
	return c.arena[off : off+len(b) : off+len(b)]
}

// push queues it, waiting for room when a syslog item would exceed the
// batch limits, or when MaxBatch items of any kind wait already (a client
// sending only unknown commands is held back too). Items that end the
// session never wait. It fails with errStopped once the session is stopping.
func (c *conn) push(it item) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	full := func() bool {
		switch it.kind {
		case kindSyslog:
			return c.nmsgs > 0 && (c.nmsgs >= c.maxBatch || c.nbytes+len(it.msg) > c.maxBatchBytes)
		case kindResponse:
			return len(c.items) >= c.maxBatch
		}
		return false
	}
	for full() && !c.procDone && !c.shutdown {
		c.cond.Broadcast()
		c.cond.Wait()
	}
	if c.procDone || c.shutdown {
		return errStopped
	}
	if it.kind == kindSyslog {
		c.nmsgs++
		c.nbytes += len(it.msg)
	}
	c.items = append(c.items, it)
	return nil
}

// fill reads more bytes, compacting the buffer first when needed.
func (c *conn) fill() error {
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.r > 0 && len(c.buf)-c.w < maxHeaderLen+1 || c.w == len(c.buf) {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.buf) {
		return errors.New("relp: internal read buffer full")
	}
	for range 100 {
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ---- processor ----

// processLoop takes what the reader queued, runs the Handler and writes the
// responses, in order, until the session ends.
func (c *conn) processLoop(ctx context.Context) error {
	for {
		c.mu.Lock()
		for len(c.items) == 0 && !c.readerDone && !c.shutdown {
			c.cond.Wait()
		}
		if c.shutdown {
			n := c.nmsgs
			c.mu.Unlock()
			c.log.Info("server shutting down; closing session", "unacknowledged", n)
			c.writeServerClose()
			return nil
		}
		if len(c.items) == 0 { // reader done
			err := c.readErr
			c.mu.Unlock()
			if err == errStopped {
				err = nil
			}
			return err
		}
		items := c.items
		c.items, c.spare = c.spare, nil
		c.nmsgs, c.nbytes = 0, 0
		c.cond.Broadcast()
		c.mu.Unlock()

		done, err := c.process(ctx, items)
		if done {
			return err
		}
		clear(items)
		c.mu.Lock()
		c.spare = items[:0]
		c.mu.Unlock()
	}
}

// process handles items in order. done is true when the session is over.
func (c *conn) process(ctx context.Context, items []item) (done bool, err error) {
	defer func() {
		if ferr := c.flush(); ferr != nil && err == nil {
			done, err = true, ferr
		}
	}()
	for i := 0; i < len(items); {
		if c.stopping() {
			c.writeServerClose()
			return true, nil
		}
		switch it := items[i]; it.kind {
		case kindSyslog:
			j := i + 1
			for j < len(items) && items[j].kind == kindSyslog {
				j++
			}
			if err := c.deliver(ctx, items[i:j]); err == errStopped {
				return true, nil
			} else if err != nil {
				return true, err
			}
			i = j
		case kindResponse:
			c.wbuf = appendRsp(c.wbuf[:0], it.txnr, string(it.msg))
			if err := c.write(c.wbuf); err != nil {
				return true, err
			}
			i++
		case kindClose:
			c.wbuf = appendRsp(c.wbuf[:0], it.txnr, "")
			c.wbuf = append(c.wbuf, serverClose...)
			if err := c.write(c.wbuf); err != nil {
				return true, err
			}
			c.log.Debug("session closed by client")
			return true, nil
		case kindFatal:
			c.log.Warn("dropping connection", "err", it.err)
			c.writeServerClose()
			return true, it.err
		}
	}
	return false, nil
}

// deliver runs the Handler on a run of syslog items and answers them.
func (c *conn) deliver(ctx context.Context, run []item) error {
	// Responses queued before this run must not wait for the Handler.
	if err := c.flush(); err != nil {
		return err
	}
	msgs := make([][]byte, len(run))
	for k := range run {
		msgs[k] = run[k].msg
	}
	herr := c.s.Handler(ctx, c.info, msgs)
	if herr == nil {
		c.s.stats.batches.Add(1)
		c.s.stats.messages.Add(uint64(len(run)))
		c.wbuf = c.wbuf[:0]
		for _, it := range run {
			c.wbuf = appendRsp(c.wbuf, it.txnr, "200 OK")
		}
		return c.write(c.wbuf)
	}
	c.s.stats.handlerErrors.Add(1)
	c.s.stats.unacked.Add(uint64(len(run)))
	if c.stopping() {
		// Most likely the canceled context: the client resends after reconnecting.
		c.log.Info("handler did not finish before shutdown; messages left unacknowledged",
			"messages", len(run), "err", herr)
		c.writeServerClose()
		return errStopped
	}
	if c.s.OnHandlerError == RespondError {
		c.log.Error("handler failed; answering 500", "messages", len(run), "err", herr)
		c.wbuf = c.wbuf[:0]
		for _, it := range run {
			c.wbuf = appendRsp(c.wbuf, it.txnr, "500 message not stored, retry later")
		}
		return c.write(c.wbuf)
	}
	c.log.Error("handler failed; dropping connection so the client retransmits",
		"messages", len(run), "err", herr)
	c.writeServerClose()
	return fmt.Errorf("%w: %w", ErrHandler, herr)
}

func (c *conn) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shutdown
}

func (c *conn) write(b []byte) error {
	if c.bw.Available() < len(b) {
		c.setWriteDeadline()
	}
	if _, err := c.bw.Write(b); err != nil {
		return fmt.Errorf("relp: write: %w", err)
	}
	return nil
}

func (c *conn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.setWriteDeadline()
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("relp: write: %w", err)
	}
	return nil
}

func (c *conn) setWriteDeadline() {
	if c.stopping() {
		return // the shutdown set a short deadline already
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
}

// writeServerClose sends the serverclose hint after anything buffered,
// ignoring errors: the client may be gone already.
func (c *conn) writeServerClose() {
	if _, err := c.bw.WriteString(serverClose); err == nil {
		c.setWriteDeadline()
		if err := c.bw.Flush(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.log.Debug("could not send serverclose", "err", err)
		}
	}
}
