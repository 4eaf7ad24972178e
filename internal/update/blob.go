package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Blob format (inside one zstd frame, so the header is compressed with the
// body and the frame's declared content size bounds decoding):
//
//	full:  "MMRF" fmt=1 | channel (uvarint len + bytes) | version uvarint |
//	       records uvarint | content sha256 [32] | records, each + '\n'
//	delta: "MMRD" fmt=1 | channel | from uvarint | to uvarint |
//	       from records uvarint | to records uvarint |
//	       from sha256 [32] | to sha256 [32] |
//	       removed uvarint | added uvarint |
//	       removed records, each + '\n' | added records, each + '\n'
//
// Both lists in a delta are canonical (strictly ascending). A binary header
// rather than JSON: the blob is verified by its signed sha256 before it is
// decoded, so the header needs no self-description, and a bandage blob
// should cost bytes for its record, not for field names.
const (
	blobFormat     = 1
	magicFull      = "MMRF"
	magicDelta     = "MMRD"
	maxChannelLen  = 64
	defaultMaxBlob = 1 << 30
)

// FullHeader describes a full blob.
type FullHeader struct {
	Channel       string
	Version       uint64
	Records       int
	ContentSHA256 [32]byte
}

// Delta is a decoded delta blob: what turns version From of Channel into
// version To.
type Delta struct {
	Channel     string
	From, To    uint64
	FromRecords int
	ToRecords   int
	FromSHA256  [32]byte
	ToSHA256    [32]byte
	Removed     Records
	Added       Records
}

// The codecs are shared by every Repo and Client in the process: they are
// safe for concurrent EncodeAll/DecodeAll and hold no per-call state, and a
// decoder per client would cost memory the 10,000-agent simulation does not
// have. They are built on first use (sync.OnceValue) and never reconfigured.
//
// Full blobs use the better level (about 4% smaller on signature text, at a
// quarter of the speed): they are what a new or far-behind agent downloads.
// Deltas use the fastest level (as small as the default on signature
// text, twice as fast): publishing builds up to thirty of them.
var (
	fullEncoder  = sync.OnceValue(func() *zstd.Encoder { return newEncoder(zstd.SpeedBetterCompression) })
	deltaEncoder = sync.OnceValue(func() *zstd.Encoder { return newEncoder(zstd.SpeedFastest) })
	decoder      = sync.OnceValue(func() *zstd.Decoder {
		// DecodeAllCapLimit: output never grows beyond the capacity the
		// caller allocated from the (checked) frame content size, so a frame
		// that lies about its size or a second frame appended to the first
		// fails instead of allocating.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(defaultMaxBlob),
			zstd.WithDecoderMaxWindow(defaultMaxBlob))
		if err != nil {
			panic(err) // options are constants: cannot fail
		}
		return d
	})
)

func newEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	// Single segment: the frame header then always records the content
	// size, even for a 100-byte bandage, which decompress requires.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithSingleSegment(true))
	if err != nil {
		panic(err)
	}
	return e
}

// compress wraps raw in a single zstd frame that records its content size.
func compress(e *zstd.Encoder, raw []byte) []byte {
	return e.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
}

// decompress decodes a single-frame blob whose declared content size is at
// most max. It refuses frames without a declared size, so the bound is known
// before anything is allocated.
func decompress(blob []byte, max int64) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(blob); err != nil {
		return nil, fmt.Errorf("%w: zstd header: %v", ErrFormat, err)
	}
	if h.Skippable || !h.HasFCS {
		return nil, fmt.Errorf("%w: zstd frame without content size", ErrFormat)
	}
	if max <= 0 || max > defaultMaxBlob {
		max = defaultMaxBlob
	}
	if h.FrameContentSize > uint64(max) {
		return nil, fmt.Errorf("%w: blob decodes to %d bytes, limit %d", ErrTooLarge, h.FrameContentSize, max)
	}
	out, err := decoder().DecodeAll(blob, make([]byte, 0, int(h.FrameContentSize)))
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, fmt.Errorf("%w: blob decodes beyond its declared size: %v", ErrFormat, err)
		}
		return nil, fmt.Errorf("%w: zstd: %v", ErrFormat, err)
	}
	if uint64(len(out)) != h.FrameContentSize {
		return nil, fmt.Errorf("%w: decoded %d bytes, frame declares %d", ErrFormat, len(out), h.FrameContentSize)
	}
	return out, nil
}

// EncodeFull builds the full blob of version of channel. recs must be
// canonical.
func EncodeFull(channel string, version uint64, recs Records) []byte {
	sum := ContentHash(recs)
	raw := make([]byte, 0, 64+len(channel)+recs.Size())
	raw = append(raw, magicFull...)
	raw = append(raw, blobFormat)
	raw = appendString(raw, channel)
	raw = binary.AppendUvarint(raw, version)
	raw = binary.AppendUvarint(raw, uint64(len(recs)))
	raw = append(raw, sum[:]...)
	raw = appendLines(raw, recs)
	return compress(fullEncoder(), raw)
}

// DecodeFull decodes and checks a full blob: its records must be canonical,
// as many as the header says, and hash to the header's content sha256.
// maxDecoded bounds the decompressed size (0: 1 GiB). The returned records
// share one buffer.
func DecodeFull(blob []byte, maxDecoded int64) (FullHeader, Records, error) {
	var h FullHeader
	raw, err := decompress(blob, maxDecoded)
	if err != nil {
		return h, nil, err
	}
	r := reader{b: raw}
	if string(r.next(4)) != magicFull {
		return h, nil, fmt.Errorf("%w: not a full blob", ErrFormat)
	}
	if f := r.byte(); f != blobFormat {
		return h, nil, fmt.Errorf("%w: full blob format %d, want %d", ErrFormat, f, blobFormat)
	}
	h.Channel = r.string()
	h.Version = r.uvarint()
	n := r.count()
	copy(h.ContentSHA256[:], r.next(32))
	if r.err != nil {
		return h, nil, fmt.Errorf("%w: full blob header: %v", ErrFormat, r.err)
	}
	h.Records = n
	recs, rest, err := splitLines(r.b, n)
	if err != nil {
		return h, nil, fmt.Errorf("%w: full blob: %v", ErrFormat, err)
	}
	if len(rest) != 0 {
		return h, nil, fmt.Errorf("%w: full blob: %d bytes after the last record", ErrFormat, len(rest))
	}
	if sha256.Sum256(r.b) != h.ContentSHA256 {
		return h, nil, fmt.Errorf("%w: full blob content does not match its sha256", ErrVerify)
	}
	return h, recs, nil
}

// EncodeDelta builds a delta blob. d.Removed and d.Added must be canonical
// and the counts and hashes filled in.
func EncodeDelta(d *Delta) []byte {
	raw := make([]byte, 0, 128+len(d.Channel)+d.Removed.Size()+d.Added.Size())
	raw = append(raw, magicDelta...)
	raw = append(raw, blobFormat)
	raw = appendString(raw, d.Channel)
	raw = binary.AppendUvarint(raw, d.From)
	raw = binary.AppendUvarint(raw, d.To)
	raw = binary.AppendUvarint(raw, uint64(d.FromRecords))
	raw = binary.AppendUvarint(raw, uint64(d.ToRecords))
	raw = append(raw, d.FromSHA256[:]...)
	raw = append(raw, d.ToSHA256[:]...)
	raw = binary.AppendUvarint(raw, uint64(len(d.Removed)))
	raw = binary.AppendUvarint(raw, uint64(len(d.Added)))
	raw = appendLines(raw, d.Removed)
	raw = appendLines(raw, d.Added)
	return compress(deltaEncoder(), raw)
}

// DecodeDelta decodes a delta blob and checks its structure (not that it
// applies to anything: see [Delta.Apply]). Every error wraps ErrDelta.
func DecodeDelta(blob []byte, maxDecoded int64) (*Delta, error) {
	raw, err := decompress(blob, maxDecoded)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDelta, err)
	}
	r := reader{b: raw}
	if string(r.next(4)) != magicDelta {
		return nil, fmt.Errorf("%w: not a delta blob", ErrDelta)
	}
	if f := r.byte(); f != blobFormat {
		return nil, fmt.Errorf("%w: delta format %d, want %d", ErrDelta, f, blobFormat)
	}
	d := &Delta{}
	d.Channel = r.string()
	d.From = r.uvarint()
	d.To = r.uvarint()
	d.FromRecords = r.count()
	d.ToRecords = r.count()
	copy(d.FromSHA256[:], r.next(32))
	copy(d.ToSHA256[:], r.next(32))
	nRemoved := r.count()
	nAdded := r.count()
	if r.err != nil {
		return nil, fmt.Errorf("%w: delta header: %v", ErrDelta, r.err)
	}
	if d.From >= d.To {
		return nil, fmt.Errorf("%w: delta from %d to %d does not go forward", ErrDelta, d.From, d.To)
	}
	if d.ToRecords != d.FromRecords-nRemoved+nAdded {
		return nil, fmt.Errorf("%w: delta counts disagree: %d - %d + %d != %d",
			ErrDelta, d.FromRecords, nRemoved, nAdded, d.ToRecords)
	}
	rest := r.b
	if d.Removed, rest, err = splitLines(rest, nRemoved); err != nil {
		return nil, fmt.Errorf("%w: removed records: %v", ErrDelta, err)
	}
	if d.Added, rest, err = splitLines(rest, nAdded); err != nil {
		return nil, fmt.Errorf("%w: added records: %v", ErrDelta, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrDelta, len(rest))
	}
	return d, nil
}

// Apply returns base with d applied. It checks that base is the content d
// was built from (hash and count) before, that every removed record is in
// base and no added one is, and that the result has d's target hash after.
// Every error wraps ErrDelta.
func (d *Delta) Apply(base Records) (Records, error) {
	if len(base) != d.FromRecords {
		return nil, fmt.Errorf("%w: base has %d records, delta expects %d", ErrDelta, len(base), d.FromRecords)
	}
	if ContentHash(base) != d.FromSHA256 {
		return nil, fmt.Errorf("%w: base content is not the version %d the delta starts from", ErrDelta, d.From)
	}
	out := make(Records, 0, d.ToRecords)
	rm, add := d.Removed, d.Added
	for _, line := range base {
		for len(add) > 0 {
			c := bytes.Compare(add[0], line)
			if c == 0 {
				return nil, fmt.Errorf("%w: added record already present", ErrDelta)
			}
			if c > 0 {
				break
			}
			out = append(out, add[0])
			add = add[1:]
		}
		if len(rm) > 0 {
			c := bytes.Compare(rm[0], line)
			if c < 0 {
				return nil, fmt.Errorf("%w: removed record not present", ErrDelta)
			}
			if c == 0 {
				rm = rm[1:]
				continue
			}
		}
		out = append(out, line)
	}
	if len(rm) > 0 {
		return nil, fmt.Errorf("%w: removed record not present", ErrDelta)
	}
	out = append(out, add...)
	if len(out) != d.ToRecords {
		return nil, fmt.Errorf("%w: result has %d records, delta promises %d", ErrDelta, len(out), d.ToRecords)
	}
	if ContentHash(out) != d.ToSHA256 {
		return nil, fmt.Errorf("%w: result does not hash to version %d's content", ErrDelta, d.To)
	}
	return out, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendLines(b []byte, recs Records) []byte {
	for _, r := range recs {
		b = append(b, r...)
		b = append(b, '\n')
	}
	return b
}

// splitLines takes n '\n'-terminated records from b; they must be
// non-empty and strictly ascending. The records alias b.
func splitLines(b []byte, n int) (Records, []byte, error) {
	// Each record needs at least two bytes, so n is bounded by the input
	// before it sizes an allocation.
	if n > len(b)/2 {
		return nil, nil, fmt.Errorf("%d records cannot fit in %d bytes", n, len(b))
	}
	recs := make(Records, 0, n)
	for range n {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, nil, fmt.Errorf("record %d of %d is not terminated", len(recs)+1, n)
		}
		if i == 0 {
			return nil, nil, fmt.Errorf("record %d is empty", len(recs)+1)
		}
		if i > MaxRecordLen {
			return nil, nil, fmt.Errorf("record %d is %d bytes, limit %d", len(recs)+1, i, MaxRecordLen)
		}
		line := b[:i:i]
		if len(recs) > 0 && bytes.Compare(recs[len(recs)-1], line) >= 0 {
			return nil, nil, fmt.Errorf("record %d is out of order or duplicated", len(recs)+1)
		}
		recs = append(recs, line)
		b = b[i+1:]
	}
	return recs, b, nil
}

// reader parses the binary header; the first error sticks so the header can
// be read straight through and checked once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errors.New("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.next(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a record count, bounded so it converts to int safely.
func (r *reader) count() int {
	v := r.uvarint()
	if v > 1<<40 {
		r.err = errors.New("count out of range")
		return 0
	}
	return int(v)
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > maxChannelLen {
		if r.err == nil {
			r.err = errors.New("channel name too long")
		}
		return ""
	}
	return string(r.next(int(n)))
}
