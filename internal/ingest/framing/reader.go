package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Errors returned by Reader.Next. Callers count them by kind with errors.Is;
// the frame returned alongside ErrFrameTooLarge (line framing), ErrBadOctetCount
// and ErrTruncated holds bytes worth storing and flagging.
var (
	// ErrFrameTooLarge reports a frame longer than the Reader's maximum. For a
	// line-delimited frame it is recoverable (the first maxFrame bytes are
	// returned, the rest of the line is skipped); for an octet count larger than
	// the maximum it is also ErrUnrecoverable.
	ErrFrameTooLarge = errors.New("framing: frame exceeds maximum size")
	// ErrBadOctetCount reports a digit run followed by SP that is not a valid
	// RFC 6587 MSG-LEN (zero or leading zero). The frame is then read as a
	// line-delimited frame, header included.
	ErrBadOctetCount = errors.New("framing: invalid octet count")
	// ErrTruncated reports a stream that ended (EOF or read error) inside a
	// frame; the partial bytes are returned with it.
	ErrTruncated = errors.New("framing: stream ended inside a frame")
	// ErrUnrecoverable is wrapped by errors after which the stream cannot be
	// resynchronized: the caller must drop the connection. Next keeps returning
	// the same error.
	ErrUnrecoverable = errors.New("framing: stream cannot be resynchronized")
)

// DefaultMaxFrame is the maximum frame size used when NewReader is given a
// maxFrame <= 0 (64 KiB, syslog-ng's default log-msg-size).
const DefaultMaxFrame = 64 << 10

const (
	// maxCountDigits bounds the MSG-LEN digit run; a longer run of digits is
	// not a count and the frame is read as a line.
	maxCountDigits = 10
	minBufSize     = 64 << 10
	maxEmptyReads  = 100
)

var errBufferFull = errors.New("framing: internal buffer full")

// Reader reads syslog frames from a byte stream. It is not safe for
// concurrent use.
type Reader struct {
	src      io.Reader
	buf      []byte
	r, w     int // unread data is buf[r:w]
	maxFrame int

	rerr     error // sticky error from src, returned once the buffer is drained
	fatal    error // sticky unrecoverable error
	skipping bool  // discarding the rest of an oversized line
	counted  bool  // last frame returned was octet-counted
}

// NewReader returns a Reader that reads frames of at most maxFrame bytes from
// r (DefaultMaxFrame if maxFrame <= 0). It allocates one buffer of
// max(maxFrame+64, 64 KiB) bytes so that any acceptable frame can be returned
// without copying.
func NewReader(r io.Reader, maxFrame int) *Reader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	size := maxFrame + 64
	if size < minBufSize {
		size = minBufSize
	}
	return &Reader{src: r, buf: make([]byte, size), maxFrame: maxFrame}
}

// OctetCounted reports whether the frame last returned by Next was
// octet-counted (as opposed to line-delimited).
func (r *Reader) OctetCounted() bool { return r.counted }

// Next returns the next frame with its framing removed.
//
// The returned slice aliases the Reader's buffer and is valid only until the
// next call to Next; copy it to retain it.
//
// Framing is detected per frame. Bytes LF and NUL found where a frame would
// start are skipped (this swallows the stray LF some senders put after an
// octet-counted frame, outside the count, and blank lines). Then:
//
//   - A frame that starts with 1 to 10 ASCII digits followed by SP is
//     octet-counted: the digits give the number of bytes that follow the SP.
//     Exactly that many bytes are consumed, whatever they contain.
//   - Anything else is line-delimited: the frame ends at the first LF or NUL,
//     which is consumed and not returned.
//
// In both cases one trailing LF (octet-counted frames whose count includes it,
// as rsyslog and syslog-ng send) and then one trailing CR are trimmed, so the
// same message yields the same bytes whatever the sender's framing. Any other
// byte, including a UTF-8 BOM, is left for the parser. Next never returns an
// empty frame with a nil error: empty frames are skipped.
//
// Errors (the frame returned with a recoverable error may be stored, flagged):
//
//   - (nil, io.EOF) when the stream ends cleanly between frames; a read error
//     from the underlying reader between frames is returned as is. Both are
//     sticky.
//   - (first maxFrame bytes, ErrFrameTooLarge) for a line longer than maxFrame
//     bytes before its delimiter; the rest of the line, through the next LF or
//     NUL, is discarded by the following call. Recoverable.
//   - (nil, error wrapping ErrFrameTooLarge and ErrUnrecoverable) for an octet
//     count above maxFrame: the connection cannot be resynchronized, the caller
//     must drop it. Every later call returns the same error.
//   - (line, ErrBadOctetCount) for a count of zero or with a leading zero
//     ("0 ", "012 "): the frame is then read as a line, header included. If
//     that line is itself oversized or truncated the error wraps both kinds.
//     Recoverable.
//   - (partial bytes, ErrTruncated) when the stream ends inside a frame: inside
//     the digits of a count (the digits are returned), before the counted bytes
//     are all there (the bytes after the SP are returned, untrimmed), or on a
//     last line without delimiter (the line is returned, CR-trimmed; many tools
//     such as nc omit the final LF, so the content is usually complete). A read
//     error other than io.EOF is wrapped too. The next call returns io.EOF or
//     the read error.
func (r *Reader) Next() ([]byte, error) {
	if r.fatal != nil {
		return nil, r.fatal
	}
	for {
		if r.skipping {
			if err := r.skipLine(); err != nil {
				return nil, err
			}
		}
		// Skip delimiters where a frame would start.
		for {
			for r.r < r.w && (r.buf[r.r] == '\n' || r.buf[r.r] == 0) {
				r.r++
			}
			if r.r < r.w {
				break
			}
			if err := r.fill(); err != nil {
				return nil, err
			}
		}
		var (
			frame []byte
			err   error
			ok    bool
		)
		if c := r.buf[r.r]; c >= '0' && c <= '9' {
			frame, err, ok = r.readCounted()
		}
		if !ok {
			r.counted = false
			frame, err = r.readLine()
		}
		if len(frame) == 0 && err == nil {
			continue
		}
		return frame, err
	}
}

// readCounted reads an octet-counted frame starting at r.r (a digit). ok is
// false when the header turns out not to be "digits SP": nothing was consumed
// and the caller reads a line instead.
func (r *Reader) readCounted() (frame []byte, err error, ok bool) {
	// Find the end of the digit run, reading more as needed.
	off := 0 // offset of the first unexamined byte from r.r
	for {
		for r.r+off < r.w && off <= maxCountDigits && isDigit(r.buf[r.r+off]) {
			off++
		}
		if off > maxCountDigits {
			return nil, nil, false
		}
		if r.r+off < r.w {
			break
		}
		if ferr := r.fill(); ferr != nil {
			frame = r.buf[r.r:r.w]
			r.r = r.w
			r.counted = true
			return frame, truncated(ferr), true
		}
	}
	if r.buf[r.r+off] != ' ' {
		return nil, nil, false
	}
	digits := r.buf[r.r : r.r+off]
	if digits[0] == '0' {
		r.counted = false
		frame, err = r.readLine()
		if err != nil {
			return frame, fmt.Errorf("%w: %w", ErrBadOctetCount, err), true
		}
		return frame, ErrBadOctetCount, true
	}
	var n int64
	for _, d := range digits {
		n = n*10 + int64(d-'0')
	}
	if n > int64(r.maxFrame) {
		r.fatal = fmt.Errorf("%w (%w): octet count %d exceeds the maximum of %d bytes",
			ErrFrameTooLarge, ErrUnrecoverable, n, r.maxFrame)
		return nil, r.fatal, true
	}
	r.counted = true
	start := off + 1
	end := start + int(n)
	for r.w-r.r < end {
		if ferr := r.fill(); ferr != nil {
			frame = r.buf[r.r+start : r.w]
			r.r = r.w
			return frame, truncated(ferr), true
		}
	}
	frame = r.buf[r.r+start : r.r+end]
	r.r += end
	return trimEOL(frame), nil, true
}

// readLine reads a frame delimited by LF or NUL starting at r.r.
func (r *Reader) readLine() ([]byte, error) {
	scanned := 0 // bytes from r.r known to hold no delimiter
	for {
		end := r.w
		if lim := r.r + r.maxFrame + 1; end > lim {
			end = lim
		}
		region := r.buf[r.r+scanned : end]
		i := bytes.IndexByte(region, '\n')
		nulIn := region
		if i >= 0 {
			nulIn = region[:i]
		}
		if z := bytes.IndexByte(nulIn, 0); z >= 0 {
			i = z
		}
		if i >= 0 {
			n := scanned + i
			frame := r.buf[r.r : r.r+n]
			r.r += n + 1
			return trimEOL(frame), nil
		}
		scanned = end - r.r
		if scanned > r.maxFrame {
			frame := r.buf[r.r : r.r+r.maxFrame]
			r.r += r.maxFrame
			r.skipping = true
			return frame, ErrFrameTooLarge
		}
		if err := r.fill(); err != nil {
			frame := r.buf[r.r:r.w]
			r.r = r.w
			return trimEOL(frame), truncated(err)
		}
	}
}

// skipLine discards bytes through the next LF or NUL.
func (r *Reader) skipLine() error {
	for {
		region := r.buf[r.r:r.w]
		i := bytes.IndexByte(region, '\n')
		nulIn := region
		if i >= 0 {
			nulIn = region[:i]
		}
		if z := bytes.IndexByte(nulIn, 0); z >= 0 {
			i = z
		}
		if i >= 0 {
			r.r += i + 1
			r.skipping = false
			return nil
		}
		r.r = r.w
		if err := r.fill(); err != nil {
			r.skipping = false
			return err
		}
	}
}

// fill reads more data into the buffer, compacting it first when it is full.
// It returns nil if at least one byte was added, else the (sticky) read error.
// It invalidates slices previously returned by Next.
func (r *Reader) fill() error {
	if r.rerr != nil {
		return r.rerr
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
	} else if r.w == len(r.buf) {
		if r.r == 0 {
			// Cannot happen: no frame needs more than the buffer.
			r.rerr = errBufferFull
			return r.rerr
		}
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for range maxEmptyReads {
		n, err := r.src.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.rerr = fmt.Errorf("framing: reader returned invalid count %d", n)
			return r.rerr
		}
		r.w += n
		if err != nil {
			r.rerr = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	r.rerr = io.ErrNoProgress
	return r.rerr
}

func truncated(err error) error {
	if err == io.EOF {
		return ErrTruncated
	}
	return fmt.Errorf("%w: %w", ErrTruncated, err)
}

// trimEOL removes one trailing LF, then one trailing CR.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
