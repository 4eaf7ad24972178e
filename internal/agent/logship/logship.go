package logship

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// ErrNoPaths: nothing to ship.
var ErrNoPaths = errors.New("logship: no log paths")

// Options configure a Shipper.
type Options struct {
	// Paths are files or glob patterns (filepath.Match syntax), looked up
	// again at every poll so files that appear later are picked up.
	Paths []string
	// StateFile keeps the committed offsets (JSON); "" keeps them in
	// memory only.
	StateFile string
	// FromStart reads a newly seen file from its beginning instead of its end.
	FromStart bool
	// Send delivers one batch (lines separated by '\n'); an error means
	// nothing of it was accepted and it is sent again.
	Send func(ctx context.Context, batch []byte) error

	Poll       time.Duration // how often files are checked (default 1 s)
	BatchBytes int           // largest batch (default 1 MiB)
	MaxLine    int           // longer lines are cut (default 64 KiB)
	Logger     *slog.Logger
}

// Stats count what a Shipper did.
type Stats struct {
	Lines     int64 `json:"lines"`
	Bytes     int64 `json:"bytes"`
	Batches   int64 `json:"batches"`
	SendFails int64 `json:"send_failures"`
	Cut       int64 `json:"lines_cut"`
	Rotations int64 `json:"rotations"`
	Truncated int64 `json:"truncations"`
}

// position is a file's committed place.
type position struct {
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

type follower struct {
	path    string
	f       *os.File
	id      fileID
	offset  int64  // committed: everything before it was accepted
	partial []byte // read but not yet a whole line
	retired bool   // renamed away: read to its end, then closed
}

// Shipper follows files and sends their new lines.
type Shipper struct {
	o     Options
	log   *slog.Logger
	fol   map[string]*follower // path → the file being followed
	state map[string]position
	buf   []byte // one read buffer, reused

	mu    sync.Mutex
	stats Stats
}

// New returns a Shipper, loading committed offsets from o.StateFile.
func New(o Options) (*Shipper, error) {
	if len(o.Paths) == 0 {
		return nil, ErrNoPaths
	}
	if o.Send == nil {
		return nil, errors.New("logship: no Send")
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 20
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shipper{o: o, log: o.Logger, fol: map[string]*follower{}, state: map[string]position{}}
	if o.StateFile != "" {
		b, err := os.ReadFile(o.StateFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("logship state: %w", err)
		default:
			if err := json.Unmarshal(b, &s.state); err != nil {
				return nil, fmt.Errorf("logship state %s: %w", o.StateFile, err)
			}
		}
	}
	return s, nil
}

// Stats returns the counters so far.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run ships until ctx ends.
func (s *Shipper) Run(ctx context.Context) error {
	defer func() {
		for _, f := range s.fol {
			f.f.Close()
		}
	}()
	backoff := time.Second
	for {
		err := s.Once(ctx)
		wait := s.o.Poll
		if err != nil && ctx.Err() == nil {
			s.log.Warn("log shipping", "err", err, "retry_in", backoff)
			wait = backoff + rand.N(backoff/2)
			backoff = min(2*backoff, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Once looks at every file and ships what is new, batch by batch; it
// stops at the first batch the server does not accept.
func (s *Shipper) Once(ctx context.Context) error {
	s.discover()
	paths := make([]string, 0, len(s.fol))
	for p := range s.fol {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := s.drain(ctx, s.fol[p]); err != nil {
			return err
		}
	}
	return nil
}

// discover opens files matching the patterns and notices rotation and
// truncation of the ones followed.
func (s *Shipper) discover() {
	seen := map[string]bool{}
	for _, pat := range s.o.Paths {
		matches, _ := filepath.Glob(pat)
		for _, p := range matches {
			seen[p] = true
			st, err := os.Stat(p)
			if err != nil || !st.Mode().IsRegular() {
				continue
			}
			id := idOf(st)
			f := s.fol[p]
			switch {
			case f == nil:
				s.open(p, id, st.Size())
			case f.id != id:
				// Rotated: the old file is read to its end first (drain
				// sees retired), the new one follows from its start.
				f.retired = true
				s.count(func(st *Stats) { st.Rotations++ })
			default:
				if st.Size() < f.offset {
					s.log.Warn("log file truncated; reading it again from the start", "path", p)
					f.offset, f.partial = 0, nil
					s.count(func(st *Stats) { st.Truncated++ })
				}
			}
		}
	}
	for p, f := range s.fol {
		if !seen[p] {
			f.retired = true // removed or renamed without a successor (yet)
		}
	}
}

func (s *Shipper) open(p string, id fileID, size int64) {
	fh, err := os.Open(p)
	if err != nil {
		s.log.Warn("cannot open log file", "path", p, "err", err)
		return
	}
	f := &follower{path: p, f: fh, id: id}
	if pos, ok := s.state[p]; ok && pos.Dev == id.dev && pos.Inode == id.inode && pos.Offset <= size {
		f.offset = pos.Offset
	} else if !s.o.FromStart && !ok {
		f.offset = size
	}
	s.fol[p] = f
	s.log.Info("following log file", "path", p, "offset", f.offset)
}

// drain sends a follower's whole lines from its committed offset on.
func (s *Shipper) drain(ctx context.Context, f *follower) error {
	for {
		batch, next, lines, cut, err := s.read(f)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := s.o.Send(ctx, batch); err != nil {
				s.count(func(st *Stats) { st.SendFails++ })
				return fmt.Errorf("send %s: %w", f.path, err)
			}
			f.offset = next
			s.count(func(st *Stats) { st.Lines += lines; st.Bytes += int64(len(batch)); st.Batches++; st.Cut += cut })
			if err := s.commit(f); err != nil {
				return err
			}
		}
		if len(batch) == 0 {
			break
		}
	}
	if f.retired {
		// Whatever is left without a final newline is a line too.
		if len(f.partial) > 0 {
			if err := s.o.Send(ctx, f.partial); err != nil {
				s.count(func(st *Stats) { st.SendFails++ })
				return fmt.Errorf("send %s: %w", f.path, err)
			}
			s.count(func(st *Stats) { st.Lines++; st.Bytes += int64(len(f.partial)); st.Batches++ })
		}
		f.f.Close()
		delete(s.fol, f.path)
		delete(s.state, f.path)
		if st, err := os.Stat(f.path); err == nil && st.Mode().IsRegular() {
			s.open(f.path, idOf(st), 0)
			if nf := s.fol[f.path]; nf != nil {
				nf.offset = 0 // a rotated-in file is new: all of it
			}
		}
		return s.saveState()
	}
	return nil
}

// read returns up to BatchBytes of whole lines from the committed offset,
// and the offset after them.
func (s *Shipper) read(f *follower) (batch []byte, next int64, lines, cut int64, err error) {
	if s.buf == nil {
		s.buf = make([]byte, s.o.BatchBytes)
	}
	buf := s.buf
	n, err := f.f.ReadAt(buf, f.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, 0, 0, fmt.Errorf("read %s: %w", f.path, err)
	}
	data := buf[:n]
	next = f.offset
	var out bytes.Buffer
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) >= s.o.MaxLine || (n == len(buf) && out.Len() == 0) {
				// A line longer than we accept: split it here.
				i = min(len(data), s.o.MaxLine)
				out.Write(data[:i])
				out.WriteByte('\n')
				next += int64(i)
				lines++
				cut++
				data = data[i:]
				continue
			}
			break
		}
		line := data[:i]
		for len(line) > s.o.MaxLine {
			out.Write(line[:s.o.MaxLine])
			out.WriteByte('\n')
			line = line[s.o.MaxLine:]
			lines++
			cut++
		}
		out.Write(line)
		out.WriteByte('\n')
		next += int64(i + 1)
		lines++
		data = data[i+1:]
	}
	f.partial = append(f.partial[:0], data...)
	return out.Bytes(), next, lines, cut, nil
}

func (s *Shipper) commit(f *follower) error {
	s.state[f.path] = position{Dev: f.id.dev, Inode: f.id.inode, Offset: f.offset}
	return s.saveState()
}

func (s *Shipper) saveState() error {
	if s.o.StateFile == "" {
		return nil
	}
	b, _ := json.Marshal(s.state)
	tmp := s.o.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("logship state: %w", err)
	}
	if err := os.Rename(tmp, s.o.StateFile); err != nil {
		return fmt.Errorf("logship state: %w", err)
	}
	return nil
}

func (s *Shipper) count(fn func(*Stats)) {
	s.mu.Lock()
	fn(&s.stats)
	s.mu.Unlock()
}
