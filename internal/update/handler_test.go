package update

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHandlerRoutesAndCaching(t *testing.T) {
	e := newEnv(t)
	rel := e.publish("main", genRecords(1, 100))
	srv := httptest.NewServer(http.StripPrefix("/update/v1", Handler(e.repo)))
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + "/update/v1" + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	body := func(resp *http.Response) []byte {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	resp := get("/metadata/timestamp.json")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" || !bytes.Equal(body(resp), e.repo.Timestamp()) {
		t.Fatalf("timestamp: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/metadata/1.root.json", "/metadata/2.targets.json", "/metadata/2.snapshot.json", "/metadata/1.bandage.json"} {
		resp := get(p)
		body(resp)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	resp = get("/blobs/" + rel.Full.SHA256)
	b := body(resp)
	if resp.StatusCode != 200 || int64(len(b)) != rel.Full.Length || resp.Header.Get("Content-Length") != strconv.FormatInt(rel.Full.Length, 10) ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("ETag") != `"`+rel.Full.SHA256+`"` {
		t.Fatalf("blob: %d len %d headers %v", resp.StatusCode, len(b), resp.Header)
	}
	for _, p := range []string{
		"/metadata/99.snapshot.json", "/metadata/root.json", "/metadata/0.root.json", "/metadata/..%2F..%2Fkeys",
		"/metadata/1.root.json.tmp", "/blobs/" + strings.Repeat("0", 64), "/blobs/" + strings.ToUpper(rel.Full.SHA256),
		"/blobs/..", "/releases/main/1.json", "/",
	} {
		resp := get(p)
		body(resp)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
	// End to end through HTTP with the mount prefix.
	c, err := NewClient(e.repo.Root(), &HTTPFetcher{BaseURL: srv.URL + "/update/v1/"}, ClientOptions{Now: e.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 1)
}

func TestHandlerEvents(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(newHandler(e.repo, 50*time.Millisecond))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	// next returns the data of the next timestamp event, counting the
	// heartbeats on the way.
	heartbeats := 0
	next := func() []byte {
		t.Helper()
		var event string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == ": heartbeat":
				heartbeats++
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if event != "timestamp" {
					t.Fatalf("data for event %q", event)
				}
				return []byte(strings.TrimPrefix(line, "data: "))
			}
		}
	}
	if got := next(); !bytes.Equal(got, e.repo.Timestamp()) {
		t.Fatal("first event is not the current timestamp")
	}
	time.Sleep(120 * time.Millisecond)
	e.publish(BandageChannel, recs("one"))
	got := next()
	if !bytes.Equal(got, e.repo.Timestamp()) {
		t.Fatal("publish did not push the new timestamp")
	}
	if heartbeats == 0 {
		t.Fatal("no heartbeat")
	}
	// The pushed bytes are what a client verifies.
	in, err := e.client(newFetcher(e.repo)).Update(bg, got, BandageChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, BandageChannel, 1)
}

func TestLocalFetcherLimits(t *testing.T) {
	e := newEnv(t)
	rel := e.publish("main", genRecords(1, 100))
	f := LocalFetcher(Handler(e.repo))
	if _, err := f.Get(bg, "blobs/"+rel.Full.SHA256, rel.Full.Length-1); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("over the limit: %v", err)
	}
	if b, err := f.Get(bg, "blobs/"+rel.Full.SHA256, rel.Full.Length); err != nil || int64(len(b)) != rel.Full.Length {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := f.Get(bg, "blobs/"+strings.Repeat("a", 64), 100)
	wantErr(t, err, ErrNotFound)
	_, err = f.Get(bg, "../etc/passwd", 100)
	wantErr(t, err, ErrInvalid)
}
