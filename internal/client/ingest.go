package client

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/mamori-soc/mamori/internal/ingest/evtx"
)

// IngestResult counts what a file ingest did.
type IngestResult struct {
	Files    int
	Sent     int // events sent
	Stored   int // events the server acknowledged as durable
	Unparsed int // events the server stored as unparsed
	// EVTXErrors counts .evtx records the reader could not decode.
	EVTXErrors int
}

// IngestOptions tunes Ingest.
type IngestOptions struct {
	Tenant     string
	BatchLines int // lines per request
	BatchBytes int // bytes per request (before compression)
	MaxLine    int // longest line accepted locally
	Progress   func(IngestResult)
}

var evtxMagic = []byte("ElfFile\x00")

// IngestFile sends one file (plain text, NDJSON, gzip of either, or a
// Windows .evtx) and returns when the server acknowledged every event.
func (c *Client) IngestFile(ctx context.Context, path string, o IngestOptions, res *IngestResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var head [8]byte
	n, _ := io.ReadFull(f, head[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res.Files++
	s := &sender{c: c, o: o, res: res}
	switch {
	case n == 8 && bytes.Equal(head[:], evtxMagic):
		_, errs, err := evtx.Read(f, func(rec map[string]any) error {
			b, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			return s.add(ctx, b)
		})
		res.EVTXErrors += errs
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	default:
		var r io.Reader = f
		if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
			gz, err := gzip.NewReader(f)
			if err != nil {
				return fmt.Errorf("%s: gzip: %w", path, err)
			}
			defer gz.Close()
			r = gz
		}
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			line, err := readLine(br, o.MaxLine)
			if len(bytes.TrimSpace(line)) > 0 {
				if aerr := s.add(ctx, line); aerr != nil {
					return aerr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return s.flush(ctx)
}

// readLine returns one line without its newline; a line longer than max is
// cut into pieces of max bytes (each stored, none lost).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if err == bufio.ErrBufferFull && len(out) < max {
			continue
		}
		out = bytes.TrimRight(out, "\r\n")
		if err == bufio.ErrBufferFull {
			err = nil
		}
		return out, err
	}
}

type sender struct {
	c     *Client
	o     IngestOptions
	res   *IngestResult
	buf   bytes.Buffer
	lines int
}

func (s *sender) add(ctx context.Context, line []byte) error {
	s.buf.Write(line)
	s.buf.WriteByte('\n')
	s.lines++
	if s.lines >= s.o.BatchLines || s.buf.Len() >= s.o.BatchBytes {
		return s.flush(ctx)
	}
	return nil
}

func (s *sender) flush(ctx context.Context) error {
	if s.lines == 0 {
		return nil
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = zw.Write(s.buf.Bytes())
	_ = zw.Close()
	q := url.Values{}
	if s.o.Tenant != "" {
		q.Set("tenant", s.o.Tenant)
	}
	hdr := http.Header{"Content-Type": {"application/x-ndjson"}, "Content-Encoding": {"gzip"}}
	var ans struct {
		Accepted int `json:"accepted"`
		Unparsed int `json:"unparsed"`
	}
	for attempt := 0; ; attempt++ {
		err := s.c.Do(ctx, http.MethodPost, "/api/v1/ingest", q, bytes.NewReader(gz.Bytes()), hdr, &ans)
		if err == nil {
			break
		}
		var ra *retryAfter
		if errors.As(err, &ra) && attempt < 30 {
			// The server is pushing back: wait as asked, then resend.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(ra.after):
			}
			continue
		}
		if errors.As(err, &ra) {
			return ra.Problem
		}
		return err
	}
	s.res.Sent += s.lines
	s.res.Stored += ans.Accepted
	s.res.Unparsed += ans.Unparsed
	s.buf.Reset()
	s.lines = 0
	if s.o.Progress != nil {
		s.o.Progress(*s.res)
	}
	return nil
}
