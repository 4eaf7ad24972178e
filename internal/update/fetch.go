package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Fetcher retrieves repository files by their path relative to the update
// root ("metadata/timestamp.json", "metadata/3.snapshot.json",
// "blobs/<sha256>"). Get must return an error wrapping ErrTooLarge without
// reading more than max+1 bytes when the file is larger than max, and one
// wrapping ErrNotFound when the file does not exist. The bytes are
// untrusted: the Client verifies them.
type Fetcher interface {
	Get(ctx context.Context, path string, max int64) ([]byte, error)
}

// HTTPFetcher fetches from an update endpoint over HTTP(S).
type HTTPFetcher struct {
	// BaseURL is where Handler is mounted, e.g.
	// "https://soc.example/update/v1/".
	BaseURL string
	// Client defaults to http.DefaultClient; set timeouts and TLS here.
	Client *http.Client
	// Header is added to every request (agent authentication).
	Header http.Header
}

// Get implements Fetcher. A declared Content-Length over max is refused
// before the body is read; otherwise the body is read through a limit of
// max+1 so a server that lies about (or omits) the length cannot make the
// agent buffer more.
func (f *HTTPFetcher) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	u, err := url.JoinPath(f.BaseURL, path)
	if err != nil {
		return nil, fmt.Errorf("%w: url for %s: %w", ErrInvalid, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("update: fetch %s: %w", path, err)
	}
	for k, v := range f.Header {
		req.Header[k] = v
	}
	hc := f.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("update: fetch %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("update: fetch %s: HTTP %s", path, resp.Status)
	case resp.ContentLength > max:
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, path, resp.ContentLength, max)
	}
	return readLimited(resp.Body, path, max)
}

func readLimited(r io.Reader, path string, max int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("update: fetch %s: %w", path, err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, path, max)
	}
	return buf.Bytes(), nil
}

// LocalFetcher calls h (a Handler) in-process, without a network: for
// simulations of many agents in one process and for tests. It enforces max
// like HTTPFetcher: the handler's writes fail past max+1 bytes.
func LocalFetcher(h http.Handler) Fetcher { return localFetcher{h} }

type localFetcher struct{ h http.Handler }

func (l localFetcher) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	if strings.HasPrefix(path, "/") || strings.Contains(path, "..") {
		return nil, fmt.Errorf("%w: path %q", ErrInvalid, path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("update: fetch %s: %w", path, err)
	}
	w := &limitWriter{max: max, header: http.Header{}}
	l.h.ServeHTTP(w, req)
	switch {
	case w.tooLarge:
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, path, max)
	case w.status == http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	case w.status != 0 && w.status != http.StatusOK:
		return nil, fmt.Errorf("update: fetch %s: HTTP %d", path, w.status)
	}
	return w.body.Bytes(), nil
}

var errLimit = errors.New("response exceeds the fetch limit")

type limitWriter struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	max      int64
	tooLarge bool
}

func (w *limitWriter) Header() http.Header { return w.header }

func (w *limitWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *limitWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if int64(w.body.Len()+len(b)) > w.max {
		w.tooLarge = true
		return 0, errLimit
	}
	return w.body.Write(b)
}
