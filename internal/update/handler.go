package update

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Heartbeat is how often the event stream sends a comment line, so proxies
// and agents can tell a quiet stream from a dead one.
const Heartbeat = 15 * time.Second

// Handler serves repo over HTTP, relative to wherever it is mounted (use
// http.StripPrefix("/update/v1", Handler(repo))):
//
//	GET /metadata/timestamp.json   current timestamp, Cache-Control: no-cache
//	GET /metadata/N.<role>.json    versioned metadata (root, snapshot, targets,
//	                               bandage), Cache-Control: immutable
//	GET /blobs/<sha256>            a blob, exact length, immutable; 404 unknown
//	GET /events                    server-sent events: "event: timestamp",
//	                               data = the signed timestamp JSON (one line),
//	                               at connect and on every new timestamp;
//	                               ": heartbeat" every 15 s
//
// It authenticates nobody: the caller puts agent authentication in front.
func Handler(repo *Repo) http.Handler { return newHandler(repo, Heartbeat) }

var blobNameRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

const immutable = "public, max-age=31536000, immutable"

func newHandler(repo *Repo, heartbeat time.Duration) http.Handler {
	mux := http.NewServeMux()
	cache := &fileCache{m: map[string][]byte{}, max: 64 << 20, maxFile: 1 << 20}
	mux.HandleFunc("GET /metadata/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "timestamp.json" {
			b := repo.Timestamp()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			_, _ = w.Write(b)
			return
		}
		if !versionedRE.MatchString(name) {
			http.NotFound(w, r)
			return
		}
		cache.serve(w, r, repo.metaPath(name), "application/json")
	})
	mux.HandleFunc("GET /blobs/{sha}", func(w http.ResponseWriter, r *http.Request) {
		sha := r.PathValue("sha")
		if !blobNameRE.MatchString(sha) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"`+sha+`"`)
		cache.serve(w, r, repo.blobPath(sha), "application/octet-stream")
	})
	mux.Handle("GET /events", NewEventStream(repo, EventsOptions{Heartbeat: heartbeat}))
	return mux
}

// fileCache keeps small immutable files in memory. Right after a release
// every agent asks for the same few files at once: served from memory they
// cost neither a descriptor nor a system call each (at 10,000 agents,
// opening them one request at a time ran the server out of descriptors).
// Names are versions or hashes, so an entry never goes stale; the oldest
// entries go first when the cache is full.
type fileCache struct {
	mu           sync.Mutex
	m            map[string][]byte
	order        []string
	size         int64
	max, maxFile int64
}

var errTooBig = errors.New("not cached: too big")

func (c *fileCache) get(path string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.m[path]; ok {
		return b, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if st.Size() > c.maxFile {
		return nil, errTooBig
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c.m[path] = b
	c.order = append(c.order, path)
	c.size += int64(len(b))
	for c.size > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= int64(len(c.m[old]))
		delete(c.m, old)
	}
	return b, nil
}

// serve serves an immutable file from the cache, or from disk when it is
// too big to cache.
func (c *fileCache) serve(w http.ResponseWriter, r *http.Request, path, ctype string) {
	b, err := c.get(path)
	switch {
	case errors.Is(err, errTooBig):
		serveFile(w, r, path, ctype)
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
	case err != nil:
		http.Error(w, "cannot read the file", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", immutable)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}
}

// serveFile serves an immutable file (names are versions or hashes, so a
// cache may keep it forever).
func serveFile(w http.ResponseWriter, r *http.Request, path, ctype string) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, "cannot read the file", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", immutable)
	http.ServeContent(w, r, "", time.Time{}, f)
}

// serveEvents serves one push stream in this goroutine; event renders a
// timestamp as the bytes to send (nil: refused).
func serveEvents(w http.ResponseWriter, r *http.Request, repo *Repo, heartbeat time.Duration, nudges <-chan string, event func(ts []byte) []byte) {
	rc := http.NewResponseController(w)
	// Subscribe before reading the current timestamp: a publish in between
	// is then delivered, not lost.
	ch, cancel := repo.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(ts []byte) bool {
		msg := event(ts)
		if msg == nil {
			return false
		}
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(repo.Timestamp()) {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ts, ok := <-ch:
			if !ok || !send(ts) {
				return
			}
		case name := <-nudges:
			if !writeNamed(w, name, []byte("{}")) || rc.Flush() != nil {
				return
			}
		case <-tick.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// There is no event id: resuming is moot because the current timestamp is
// sent at every connect, and the signed timestamp carries its own version.
// Compact JSON has no newline, which SSE data lines cannot contain;
// anything else is refused rather than split.
func writeNamed(w http.ResponseWriter, name string, data []byte) bool {
	buf := eventBytes(name, data)
	if buf == nil {
		return false
	}
	_, err := w.Write(buf)
	return err == nil
}
