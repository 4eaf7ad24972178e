package pattern

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// Limits bound the work and memory of scanning one top-level object. Zero
// fields take the defaults of DefaultLimits. Every breach is reported as a
// Detection of KindLimit, so an incomplete scan is never silent.
type Limits struct {
	// MaxDepth is how many container levels are opened (a file in a zip
	// in a tar.gz is at depth 3). Default 5.
	MaxDepth int
	// MaxTotalBytes bounds all bytes produced by decompression and
	// decoding for one top-level object. Default 512 MiB.
	MaxTotalBytes int64
	// MaxRatio bounds output/input of one compressed stream (after the
	// first MiB). Default 250.
	MaxRatio int64
	// MaxFiles bounds entries per archive and parts per mail. Default 10000.
	MaxFiles int
	// MaxObjects bounds all members extracted from one top-level object,
	// at every depth (archives of archives of empty files cost time, not
	// bytes). Default 100000.
	MaxObjects int
	// MaxScanBytes bounds how much of one object is searched for body
	// patterns; hashes still cover the whole object. Default 1 GiB.
	MaxScanBytes int64
	// MaxInMemory bounds a nested object that must be held in memory for
	// random access (a zip inside another container). Default 64 MiB.
	MaxInMemory int64
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:      5,
		MaxTotalBytes: 512 << 20,
		MaxRatio:      250,
		MaxFiles:      10000,
		MaxObjects:    100000,
		MaxScanBytes:  1 << 30,
		MaxInMemory:   64 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxScanBytes <= 0 {
		l.MaxScanBytes = d.MaxScanBytes
	}
	if l.MaxInMemory <= 0 {
		l.MaxInMemory = d.MaxInMemory
	}
	return l
}

// Names of limit detections (Detection.Kind == KindLimit).
const (
	LimitDepth       = "Mamori.Limit.MaxDepth"
	LimitTotalBytes  = "Mamori.Limit.MaxTotalBytes"
	LimitRatio       = "Mamori.Limit.MaxRatio"
	LimitFiles       = "Mamori.Limit.MaxFiles"
	LimitObjects     = "Mamori.Limit.MaxObjects"
	LimitScanBytes   = "Mamori.Limit.MaxScanBytes"
	LimitInMemory    = "Mamori.Limit.MaxInMemory"
	LimitEncrypted   = "Mamori.Unscanned.Encrypted"
	LimitCompression = "Mamori.Unscanned.UnsupportedCompression"
	LimitDecoder     = "Mamori.Unscanned.DecoderFailure"
)

// Detection is one signature match (or one limit that cut the scan short,
// see KindLimit).
type Detection struct {
	Path      string `json:"path"`                // the top-level file (or the name given to ScanReader/ScanBytes)
	Container string `json:"container,omitempty"` // path inside Path, members joined by "!"; "" for Path itself
	Signature string `json:"signature"`
	Kind      Kind   `json:"kind"`
	// Offset is where the match starts in the object named by Container
	// (for logical signatures: the earliest subsignature match); -1 for
	// whole-object matches (hashes, limits).
	Offset int64 `json:"offset"`
}

// Location is Path and Container joined by "!", e.g.
// "eicar.tar.gz!eicar.tar!eicar.com".
func (d Detection) Location() string {
	if d.Container == "" {
		return d.Path
	}
	return d.Path + "!" + d.Container
}

func (d Detection) String() string {
	return d.Location() + ": " + d.Signature + " (" + string(d.Kind) + ")"
}

// Scanner scans objects against a Set. It is safe for concurrent use; each
// call keeps its own state.
type Scanner struct {
	set  *Set
	lim  Limits
	pool sync.Pool // *objScan
	// repanic makes container decoder panics propagate (tests and fuzzing
	// want to see them; production reports them as a limit).
	repanic bool
}

// NewScanner returns a scanner for set with the given limits (zero fields
// take defaults).
func NewScanner(set *Set, lim Limits) *Scanner {
	s := &Scanner{set: set, lim: lim.withDefaults()}
	s.pool.New = func() any {
		o := &objScan{}
		if set.hasBody() {
			o.body = newBodyScan(set)
		}
		return o
	}
	return s
}

// Limits returns the effective limits.
func (s *Scanner) Limits() Limits { return s.lim }

// ErrNotRegular is returned by ScanFile for paths that are not regular
// files (devices, FIFOs and sockets could block or never end).
var ErrNotRegular = errors.New("pattern: not a regular file")

// ScanFile scans the file at path, including what its containers hold.
func (s *Scanner) ScanFile(ctx context.Context, path string) ([]Detection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pattern: scan: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pattern: scan: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, path)
	}
	return s.scan(ctx, path, f, st.Size(), f)
}

// ScanReader scans what r yields; name is used as Detection.Path.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.Reader) ([]Detection, error) {
	return s.scan(ctx, name, r, -1, nil)
}

// ScanBytes scans data; name is used as Detection.Path.
func (s *Scanner) ScanBytes(ctx context.Context, name string, data []byte) ([]Detection, error) {
	br := bytes.NewReader(data)
	return s.scan(ctx, name, br, int64(len(data)), br)
}

func (s *Scanner) scan(ctx context.Context, name string, r io.Reader, size int64, ra io.ReaderAt) ([]Detection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &job{s: s, ctx: ctx, path: name, budget: s.lim.MaxTotalBytes, seen: map[detKey]bool{}}
	top := &ctxReader{ctx: ctx, r: r}
	j.scanObject(top, size, ra, nil, 0)
	if err := ctx.Err(); err != nil {
		return j.dets, err
	}
	if top.err != nil {
		return j.dets, fmt.Errorf("pattern: scan %s: %w", name, top.err)
	}
	return j.dets, nil
}

// ctxReader stops reading once the context is done and remembers the
// first error of the top-level reader (to tell it from container errors).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}

type detKey struct {
	container string
	sig       string
	kind      Kind
}

// job is the state of scanning one top-level object.
type job struct {
	s       *Scanner
	ctx     context.Context
	path    string
	budget  int64
	objects int
	dets    []Detection
	seen    map[detKey]bool
}

func (j *job) add(cpath []string, sig string, kind Kind, off int64) {
	c := strings.Join(cpath, "!")
	k := detKey{c, sig, kind}
	if kind == KindLimit && (sig == LimitTotalBytes || sig == LimitObjects) {
		// These budgets are per top-level object: report exhaustion once.
		k.container = ""
	}
	if j.seen[k] {
		return
	}
	j.seen[k] = true
	j.dets = append(j.dets, Detection{Path: j.path, Container: c, Signature: sig, Kind: kind, Offset: off})
}

func (j *job) limit(cpath []string, name string) { j.add(cpath, name, KindLimit, -1) }

// objScan is the sink one object streams through: hashes and body scan.
type objScan struct {
	body    *bodyScan
	hash    hashSink
	hashing bool
}

func (o *objScan) Write(p []byte) (int, error) {
	if o.hashing {
		o.hash.Write(p)
	}
	if o.body != nil {
		o.body.Write(p)
	}
	return len(p), nil
}

// errReader remembers the first non-EOF error of r.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// sniffLen is how much of an object is peeked at to recognise containers.
const sniffLen = 8 << 10

// scanObject scans one object: its bytes stream through the hash and body
// sinks while, for a recognised container, a parser reads the same stream
// (through a tee) and each member is scanned recursively. size is the
// object length or -1; ra, when set, reads the same bytes at random.
func (j *job) scanObject(r io.Reader, size int64, ra io.ReaderAt, cpath []string, depth int) {
	set, lim := j.s.set, j.s.lim
	if depth > 0 {
		if j.objects++; j.objects > lim.MaxObjects {
			j.limit(cpath, LimitObjects)
			return
		}
	}
	er := &errReader{r: r}
	br := bufio.NewReaderSize(er, sniffLen)
	head, _ := br.Peek(sniffLen)
	kind := sniffContainer(head)

	o := j.s.pool.Get().(*objScan)
	defer j.s.pool.Put(o)
	o.hashing = o.hash.reset(set, size)
	if o.body != nil {
		o.body.reset(size, lim.MaxScanBytes)
	}
	tee := io.TeeReader(br, o)

	if kind != ctNone && depth >= lim.MaxDepth {
		j.limit(cpath, LimitDepth)
		kind = ctNone
	}
	if kind != ctNone && j.ctx.Err() == nil {
		j.extract(kind, tee, size, ra, cpath, depth)
	}
	// Whatever the parser did not consume is still part of the object.
	drain(tee)

	truncated := er.err != nil || j.ctx.Err() != nil
	if o.hashing && !truncated {
		o.hash.finish(func(sig int32) { j.add(cpath, set.names[sig], set.kinds[sig].Kind(), -1) })
	}
	o.hashing = false
	if o.body != nil {
		o.body.finish(truncated, func(sig int32, off int64) { j.add(cpath, set.names[sig], set.kinds[sig].Kind(), off) })
		if o.body.cut {
			j.limit(cpath, LimitScanBytes)
		}
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// drain reads r to the end in 64 KiB reads (io.Discard's own ReadFrom
// would use 8 KiB ones).
func drain(r io.Reader) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, *bp)
}
