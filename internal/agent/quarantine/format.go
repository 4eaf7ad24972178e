package quarantine

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// An entry file is
//
//	magic      8 bytes  "MMRQ" 0 1 '\r' '\n' (format version 1)
//	salt      32 bytes  random; the entry key is HKDF-SHA256(store key, salt)
//	chunk      4 bytes  plaintext bytes per body chunk, big-endian
//	meta len   4 bytes  length of the sealed metadata, big-endian
//	meta       sealed JSON of Entry; additional data: the 48 header bytes above
//	body       the plaintext in chunks, each sealed separately; additional
//	           data: sha256 of the metadata JSON
//
// A key per entry makes nonces unique by construction (a counter), however
// many entries the store sees, and keeps one entry's chunks from decrypting
// inside another. The body's additional data binds it to exactly this
// metadata, so neither can be edited or swapped without Open failing.
// Chunks bound memory (a 256 MiB file is never held whole) and let Open
// stream; the last chunk carries its own nonce flag so a truncated body is
// detected, not silently shortened.
const (
	magic        = "MMRQ\x00\x01\r\n"
	saltLen      = 32
	headerLen    = len(magic) + saltLen + 4 + 4
	keyLen       = 32
	defaultChunk = 64 << 10
	maxChunk     = 1 << 20
	maxMetaLen   = 64 << 10
	keyInfo      = "mamori quarantine entry v1"
)

// Nonce flags: the last byte of every nonce says what it seals, so the
// metadata and the body chunks never share a nonce under one key.
const (
	flagChunk byte = 0
	flagLast  byte = 1
	flagMeta  byte = 2
)

func nonce(i uint64, flag byte) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n, i)
	n[11] = flag
	return n
}

func entryAEAD(master, salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, master, salt, keyInfo, keyLen)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// chunks is how many body chunks an entry of size bytes has: at least one,
// so that even an empty file ends with an authenticated last chunk.
func chunks(size int64, chunk int) uint64 {
	n := (size + int64(chunk) - 1) / int64(chunk)
	if n == 0 {
		n = 1
	}
	return uint64(n)
}

// sealEntry writes the entry file for e to w, encrypting what src yields.
// src must yield exactly e.Size bytes whose sha256 is e.SHA256; otherwise
// the file changed since it was hashed and sealEntry fails with ErrChanged.
func sealEntry(ctx context.Context, w io.Writer, master []byte, chunk int, e Entry, src io.Reader) error {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	aead, err := entryAEAD(master, salt)
	if err != nil {
		return err
	}
	meta, err := json.Marshal(e)
	if err != nil {
		return err
	}
	hdr := make([]byte, 0, headerLen)
	hdr = append(hdr, magic...)
	hdr = append(hdr, salt...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(chunk))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(meta)+aead.Overhead()))
	sealedMeta := aead.Seal(nil, nonce(0, flagMeta), meta, hdr)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(sealedMeta); err != nil {
		return err
	}

	ad := sha256.Sum256(meta)
	h := sha256.New()
	n := chunks(e.Size, chunk)
	buf := make([]byte, chunk+aead.Overhead())
	left := e.Size
	for i := uint64(0); i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		want := int64(chunk)
		if left < want {
			want = left
		}
		p := buf[:want]
		if _, err := io.ReadFull(src, p); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: shorter than the %d bytes hashed", ErrChanged, e.Size)
			}
			return err
		}
		left -= want
		h.Write(p)
		flag := flagChunk
		if i == n-1 {
			flag = flagLast
		}
		if _, err := w.Write(aead.Seal(p[:0], nonce(i, flag), p, ad[:])); err != nil {
			return err
		}
	}
	var one [1]byte
	if k, _ := src.Read(one[:]); k > 0 {
		return fmt.Errorf("%w: grew beyond the %d bytes hashed", ErrChanged, e.Size)
	}
	if hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
		return fmt.Errorf("%w: content differs from what was hashed", ErrChanged)
	}
	return nil
}

// openEntry reads and authenticates the header and metadata of an entry
// file; the returned reader yields the authenticated plaintext body.
func openEntry(ctx context.Context, r io.Reader, master []byte) (Entry, *bodyReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	hdr := make([]byte, headerLen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return Entry{}, nil, fmt.Errorf("%w: short header", ErrTampered)
	}
	if string(hdr[:len(magic)]) != magic {
		return Entry{}, nil, fmt.Errorf("%w: not a quarantine entry (bad magic)", ErrTampered)
	}
	salt := hdr[len(magic) : len(magic)+saltLen]
	chunk := int(binary.BigEndian.Uint32(hdr[len(magic)+saltLen:]))
	metaLen := int(binary.BigEndian.Uint32(hdr[len(magic)+saltLen+4:]))
	if chunk < 1 || chunk > maxChunk || metaLen < 1 || metaLen > maxMetaLen {
		return Entry{}, nil, fmt.Errorf("%w: header out of range", ErrTampered)
	}
	aead, err := entryAEAD(master, salt)
	if err != nil {
		return Entry{}, nil, err
	}
	sealed := make([]byte, metaLen)
	if _, err := io.ReadFull(br, sealed); err != nil {
		return Entry{}, nil, fmt.Errorf("%w: short metadata", ErrTampered)
	}
	meta, err := aead.Open(nil, nonce(0, flagMeta), sealed, hdr)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("%w: metadata does not authenticate", ErrTampered)
	}
	var e Entry
	if err := json.Unmarshal(meta, &e); err != nil || e.Size < 0 || len(e.SHA256) != 64 {
		return Entry{}, nil, fmt.Errorf("%w: metadata malformed", ErrTampered)
	}
	ad := sha256.Sum256(meta)
	return e, &bodyReader{
		ctx: ctx, aead: aead, r: br, ad: ad[:], chunk: chunk,
		n: chunks(e.Size, chunk), size: e.Size, want: e.SHA256, h: sha256.New(),
	}, nil
}

// bodyReader decrypts an entry's body chunk by chunk. Every byte it returns
// is authenticated; the final sha256 check is defence in depth against a
// bug in the framing, not the primary tamper check.
type bodyReader struct {
	ctx   context.Context
	aead  cipher.AEAD
	r     *bufio.Reader
	ad    []byte
	chunk int
	n     uint64 // chunks in the body
	i     uint64 // next chunk
	size  int64
	read  int64
	want  string
	h     hash.Hash
	buf   []byte
	plain []byte // decrypted, not yet returned
	err   error  // sticky
}

func (b *bodyReader) Read(p []byte) (int, error) {
	for len(b.plain) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		b.err = b.next()
	}
	n := copy(p, b.plain)
	b.plain = b.plain[n:]
	return n, nil
}

func (b *bodyReader) next() error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	if b.i == b.n {
		if _, err := b.r.ReadByte(); err == nil {
			return fmt.Errorf("%w: data after the last chunk", ErrTampered)
		}
		if hex.EncodeToString(b.h.Sum(nil)) != b.want {
			return fmt.Errorf("%w: sha256 of the decrypted bytes differs", ErrTampered)
		}
		return io.EOF
	}
	want := int64(b.chunk)
	if left := b.size - b.read; left < want {
		want = left
	}
	if b.buf == nil {
		b.buf = make([]byte, b.chunk+b.aead.Overhead())
	}
	ct := b.buf[:int(want)+b.aead.Overhead()]
	if _, err := io.ReadFull(b.r, ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: body truncated at chunk %d", ErrTampered, b.i)
		}
		return err
	}
	flag := flagChunk
	if b.i == b.n-1 {
		flag = flagLast
	}
	pt, err := b.aead.Open(ct[:0], nonce(b.i, flag), ct, b.ad)
	if err != nil {
		return fmt.Errorf("%w: chunk %d does not authenticate", ErrTampered, b.i)
	}
	b.i++
	b.read += int64(len(pt))
	b.h.Write(pt)
	b.plain = pt
	return nil
}
