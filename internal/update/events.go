package update

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// EventsOptions configure an EventStream.
type EventsOptions struct {
	Heartbeat time.Duration // default Heartbeat
	// Key names a connection's owner (an agent id) so that Nudge can reach
	// it; nil or "": the connection gets timestamps only.
	Key func(r *http.Request) string
	// Gated, when set, is asked before each timestamp is sent, and its
	// answer goes first as an event "rollout" ({"gated":false} or true):
	// an agent told that nothing is gated need not ask which version it
	// may have — one request less per agent and release.
	Gated func() bool
}

// EventStream serves the push stream of signed timestamps (Handler mounts
// it at /events) and carries nudges to the connections of one key.
//
// A connected agent is idle nearly all the time, and a server holds one
// connection per agent: tens of thousands. So over HTTP/1.1 the stream
// takes the connection over (hijack) after its response header and keeps
// only the socket: no goroutine, no buffers per agent. One goroutine writes
// each new timestamp to every connection (in parallel, with a deadline)
// and a heartbeat every Heartbeat; a write that fails closes that
// connection, which is how a vanished agent is noticed. Where the
// connection cannot be taken over (HTTP/2), a goroutine serves it.
type EventStream struct {
	repo *Repo
	o    EventsOptions
	once sync.Once

	mu    sync.Mutex
	conns map[*sseConn]struct{}
	byKey map[string]map[*sseConn]struct{}
}

// sseConn is one agent's stream: a taken-over socket, or (fallback) the
// nudge channel of a goroutine serving it.
type sseConn struct {
	key    string
	c      net.Conn           // nil in fallback mode
	nudge  chan string        // fallback mode only
	cancel context.CancelFunc // fallback mode only: ends its goroutine
	mu     sync.Mutex         // serialises writes to c
	dead   bool
}

// writeTimeout bounds one event write to one agent: a peer that stopped
// reading must not hold up the others.
const writeTimeout = 10 * time.Second

// NewEventStream returns the push stream of repo.
func NewEventStream(repo *Repo, o EventsOptions) *EventStream {
	if o.Heartbeat <= 0 {
		o.Heartbeat = Heartbeat
	}
	return &EventStream{repo: repo, o: o, conns: map[*sseConn]struct{}{}, byKey: map[string]map[*sseConn]struct{}{}}
}

// Connections returns how many streams are open.
func (e *EventStream) Connections() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// Nudge sends an event called name, with data {}, to every stream of key.
func (e *EventStream) Nudge(key, name string) {
	e.mu.Lock()
	var targets []*sseConn
	for c := range e.byKey[key] {
		targets = append(targets, c)
	}
	e.mu.Unlock()
	msg := eventBytes(name, []byte("{}"))
	for _, c := range targets {
		if c.c == nil {
			select {
			case c.nudge <- name:
			default: // one pending nudge is as good as two
			}
			continue
		}
		e.write(c, msg)
	}
}

func (e *EventStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.once.Do(func() { go e.loop() })
	key := ""
	if e.o.Key != nil {
		key = e.o.Key(r)
	}
	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		e.serveFallback(w, r, key)
		return
	}
	c := &sseConn{key: key, c: netConn}
	if tc, ok := netConn.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(time.Minute)
	}
	// The request had no body to speak of; whatever the client might
	// still send is never read (a stream is one-way).
	_ = brw.Writer.Flush()
	c.mu.Lock()
	e.add(c)
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
	buf := append([]byte(head), e.timestampEvent(e.repo.Timestamp())...)
	_ = netConn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = netConn.Write(buf)
	c.mu.Unlock()
	if err != nil {
		e.drop(c)
	}
}

// serveFallback serves a stream that cannot be taken over, in this
// goroutine, until the client goes.
func (e *EventStream) serveFallback(w http.ResponseWriter, r *http.Request, key string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &sseConn{key: key, nudge: make(chan string, 1), cancel: cancel}
	e.add(c)
	defer e.drop(c)
	serveEvents(w, r.WithContext(ctx), e.repo, e.o.Heartbeat, c.nudge, e.timestampEvent)
}

// Disconnect closes every stream of key at once (a removed agent must
// not keep hearing releases on a stream opened while it was trusted).
func (e *EventStream) Disconnect(key string) {
	e.mu.Lock()
	var conns []*sseConn
	for c := range e.byKey[key] {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		if c.cancel != nil {
			c.cancel()
		}
		e.drop(c)
	}
}

func (e *EventStream) add(c *sseConn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.c != nil {
		e.conns[c] = struct{}{}
	}
	if c.key != "" {
		if e.byKey[c.key] == nil {
			e.byKey[c.key] = map[*sseConn]struct{}{}
		}
		e.byKey[c.key][c] = struct{}{}
	}
}

func (e *EventStream) drop(c *sseConn) {
	e.mu.Lock()
	delete(e.conns, c)
	if m := e.byKey[c.key]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(e.byKey, c.key)
		}
	}
	e.mu.Unlock()
	if c.c != nil {
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		_ = c.c.Close()
	}
}

// write sends msg to one taken-over connection; a failure drops it.
func (e *EventStream) write(c *sseConn, msg []byte) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.c.Write(msg)
	c.mu.Unlock()
	if err != nil {
		e.drop(c)
	}
}

// broadcast writes msg to every taken-over connection, a few writers in
// parallel so that one slow peer delays only its share.
func (e *EventStream) broadcast(msg []byte) {
	e.mu.Lock()
	all := make([]*sseConn, 0, len(e.conns))
	for c := range e.conns {
		all = append(all, c)
	}
	e.mu.Unlock()
	workers := min(max(runtime.GOMAXPROCS(0), 2), 8, len(all))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(all); i += workers {
				e.write(all[i], msg)
			}
		}()
	}
	wg.Wait()
}

// loop delivers every new timestamp and the heartbeats.
func (e *EventStream) loop() {
	ch, cancel := e.repo.Subscribe()
	defer cancel()
	tick := time.NewTicker(e.o.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ts, ok := <-ch:
			if !ok {
				return
			}
			if msg := e.timestampEvent(ts); msg != nil {
				e.broadcast(msg)
			}
		case <-tick.C:
			e.broadcast([]byte(": heartbeat\n\n"))
		}
	}
}

// timestampEvent is the timestamp event, preceded by the rollout event
// when Gated is set; nil when ts cannot be sent.
func (e *EventStream) timestampEvent(ts []byte) []byte {
	msg := eventBytes("timestamp", ts)
	if msg == nil || e.o.Gated == nil {
		return msg
	}
	gated := []byte(`{"gated":false}`)
	if e.o.Gated() {
		gated = []byte(`{"gated":true}`)
	}
	return append(eventBytes("rollout", gated), msg...)
}

// eventBytes is one server-sent event, or nil when data or name holds a
// line break (which an SSE data line cannot carry: refused, not split).
func eventBytes(name string, data []byte) []byte {
	for _, b := range [][]byte{[]byte(name), data} {
		for _, c := range b {
			if c == '\n' || c == '\r' {
				return nil
			}
		}
	}
	buf := make([]byte, 0, len(data)+len(name)+16)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}
