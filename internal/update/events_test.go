package update

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sseReader reads named events from a stream.
type sseReader struct {
	t *testing.T
	r *bufio.Reader
}

func (s sseReader) next() (name, data string) {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			return name, strings.TrimPrefix(line, "data: ")
		}
	}
}

// TestEventStreamTakesOverConnections: over HTTP/1.1 the stream keeps only
// the socket; timestamps reach every stream, nudges only their key's, and
// a stream whose client left is dropped at the next write.
func TestEventStreamTakesOverConnections(t *testing.T) {
	e := newEnv(t)
	es := NewEventStream(e.repo, EventsOptions{Heartbeat: 50 * time.Millisecond, Key: func(r *http.Request) string { return r.URL.Query().Get("agent") }})
	srv := httptest.NewServer(es)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	open := func(agent string) (sseReader, func()) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?agent="+agent, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
		}
		return sseReader{t, bufio.NewReader(resp.Body)}, func() { resp.Body.Close() }
	}
	a, closeA := open("agt_a")
	b, closeB := open("agt_b")
	defer closeB()
	for _, s := range []sseReader{a, b} {
		if n, d := s.next(); n != "timestamp" || d != string(e.repo.Timestamp()) {
			t.Fatalf("first event %s %q", n, d)
		}
	}
	if n := es.Connections(); n != 2 {
		t.Fatalf("%d connections held", n)
	}
	e.publish(BandageChannel, recs("one"))
	for _, s := range []sseReader{a, b} {
		if n, d := s.next(); n != "timestamp" || d != string(e.repo.Timestamp()) {
			t.Fatalf("after publish %s %q", n, d)
		}
	}
	es.Nudge("agt_b", "commands")
	if n, d := b.next(); n != "commands" || d != "{}" {
		t.Fatalf("nudge %s %q", n, d)
	}
	// a got no nudge: its next event is the next timestamp.
	e.publish(BandageChannel, recs("two"))
	if n, _ := a.next(); n != "timestamp" {
		t.Fatalf("a received %s", n)
	}
	if n, _ := b.next(); n != "timestamp" {
		t.Fatalf("b received %s", n)
	}
	closeA()
	for deadline := time.Now().Add(10 * time.Second); es.Connections() != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream is still held: %d", es.Connections())
		}
	}
	// A removed agent's stream is closed by the server at once.
	es.Disconnect("agt_b")
	if _, err := io.ReadAll(b.r); err != nil {
		t.Fatalf("after Disconnect: %v", err)
	}
	if es.Connections() != 0 {
		t.Fatalf("%d streams held after Disconnect", es.Connections())
	}
}

// TestEventStreamFallback: a connection that cannot be taken over (an
// HTTP/2-like writer) is served by a goroutine, nudges included.
func TestEventStreamFallback(t *testing.T) {
	e := newEnv(t)
	es := NewEventStream(e.repo, EventsOptions{Key: func(*http.Request) string { return "agt_x" }})
	pr, pw := newPipeWriter()
	ctx, cancel := context.WithCancel(bg)
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() { es.ServeHTTP(pw, req); close(done) }()
	s := sseReader{t, bufio.NewReader(pr)}
	if n, _ := s.next(); n != "timestamp" {
		t.Fatalf("first event %s", n)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		es.mu.Lock()
		n := len(es.byKey["agt_x"])
		es.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fallback stream not registered for nudges")
		}
	}
	es.Nudge("agt_x", "commands")
	if n, _ := s.next(); n != "commands" {
		t.Fatalf("nudge %s", n)
	}
	defer cancel()
	es.Disconnect("agt_x") // ends the serving goroutine
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Disconnect did not end the fallback stream")
	}
	if es.Connections() != 0 || len(es.byKey) != 0 {
		t.Fatal("fallback stream not dropped")
	}
}

// pipeWriter is a ResponseWriter that flushes into a pipe and cannot be
// hijacked.
type pipeWriter struct {
	h http.Header
	w *strings.Builder
	c chan []byte
}

func newPipeWriter() (*chanReader, *pipeWriter) {
	c := make(chan []byte, 64)
	return &chanReader{c: c}, &pipeWriter{h: http.Header{}, c: c}
}

func (p *pipeWriter) Header() http.Header { return p.h }
func (p *pipeWriter) WriteHeader(int)     {}
func (p *pipeWriter) Write(b []byte) (int, error) {
	p.c <- append([]byte(nil), b...)
	return len(b), nil
}
func (p *pipeWriter) Flush() {}

type chanReader struct {
	c   chan []byte
	buf []byte
}

func (r *chanReader) Read(b []byte) (int, error) {
	if len(r.buf) == 0 {
		r.buf = <-r.c
	}
	n := copy(b, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func TestFileCache(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, n), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := &fileCache{m: map[string][]byte{}, max: 100, maxFile: 60}
	a, b, big := write("a", 50), write("b", 40), write("big", 61)
	for _, p := range []string{a, b} {
		if got, err := c.get(p); err != nil || len(got) == 0 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// Served from memory: the file may go, the bytes stay.
	_ = os.Remove(a)
	if got, err := c.get(a); err != nil || len(got) != 50 {
		t.Fatalf("cached a: %d %v", len(got), err)
	}
	if _, err := c.get(big); !errors.Is(err, errTooBig) {
		t.Fatalf("big: %v", err)
	}
	c3 := write("c", 30) // 50+40+30 > 100: a, the oldest, goes
	if _, err := c.get(c3); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.m[a]; ok || c.size != 70 {
		t.Fatalf("eviction: size %d, a kept %v", c.size, ok)
	}
	if _, err := c.get(dir + "/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	rec := httptest.NewRecorder()
	c.serve(rec, httptest.NewRequest("GET", "/", nil), big, "application/octet-stream")
	if rec.Code != 200 || rec.Body.Len() != 61 {
		t.Fatalf("big served %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestEventStreamTellsGating: with Gated set, every timestamp (the first
// one included) is preceded by the rollout state it was sent under.
func TestEventStreamTellsGating(t *testing.T) {
	e := newEnv(t)
	var gated atomic.Bool
	srv := httptest.NewServer(NewEventStream(e.repo, EventsOptions{Gated: gated.Load}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := sseReader{t, bufio.NewReader(resp.Body)}
	want := func(gate string) {
		t.Helper()
		if n, d := s.next(); n != "rollout" || d != `{"gated":`+gate+`}` {
			t.Fatalf("got %s %s, want rollout gated %s", n, d, gate)
		}
		if n, _ := s.next(); n != "timestamp" {
			t.Fatalf("got %s after the rollout event", n)
		}
	}
	want("false")
	gated.Store(true)
	e.publish(BandageChannel, recs("one"))
	want("true")
}
