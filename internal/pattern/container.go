package pattern

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

type containerType uint8

const (
	ctNone containerType = iota
	ctZip
	ctGzip
	ctBzip2
	ctZstd
	ctTar
	ctMail
	ctMbox
)

func sniffContainer(h []byte) containerType {
	switch {
	case bytes.HasPrefix(h, []byte("PK\x03\x04")), bytes.HasPrefix(h, []byte("PK\x05\x06")):
		return ctZip
	case bytes.HasPrefix(h, []byte{0x1f, 0x8b, 0x08}):
		return ctGzip
	case len(h) >= 10 && bytes.HasPrefix(h, []byte("BZh")) && h[3] >= '1' && h[3] <= '9' &&
		(string(h[4:10]) == "1AY&SY" || string(h[4:10]) == "\x17\x72\x45\x38\x50\x90"):
		return ctBzip2
	case bytes.HasPrefix(h, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ctZstd
	case len(h) >= 8 && binary.LittleEndian.Uint32(h)&^0xf == 0x184d2a50 &&
		int64(binary.LittleEndian.Uint32(h[4:]))+8+4 <= int64(len(h)) &&
		bytes.HasPrefix(h[8+binary.LittleEndian.Uint32(h[4:]):], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// A skippable frame followed by a zstd frame.
		return ctZstd
	case isTar(h):
		return ctTar
	}
	return sniffMail(h)
}

// isTar accepts a 512-byte header block whose checksum is right (POSIX,
// GNU and old V7 archives alike).
func isTar(h []byte) bool {
	if len(h) < 512 {
		return false
	}
	field := bytes.TrimRight(bytes.TrimLeft(h[148:156], " \x00"), " \x00")
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	var sum int64
	for i, c := range h[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	// An all-zero block sums to 256 (the blank checksum field): that is an
	// end-of-archive marker, not a header.
	return sum == want && sum != 256
}

// Member names are shown in container paths: "!" separates levels, so it
// is escaped inside names, as are '%' and control characters.
func memberName(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s) && i < 1024; i++ {
		c := s[i]
		if c == '!' || c == '%' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&sb, "%%%02X", c)
			continue
		}
		sb.WriteByte(c)
	}
	if sb.Len() == 0 {
		return "unnamed"
	}
	return sb.String()
}

// innerName names the output of a compression layer: the name stored in
// the stream when there is one, else the outer name without its suffix.
func innerName(top string, cpath []string, stored string, suffixes ...string) string {
	if stored != "" {
		return memberName(path.Base(strings.ReplaceAll(stored, "\\", "/")))
	}
	outer := memberName(path.Base(strings.ReplaceAll(top, "\\", "/")))
	if len(cpath) > 0 {
		outer = cpath[len(cpath)-1]
	} else if outer == "." || outer == "/" {
		outer = "data"
	}
	low := strings.ToLower(outer)
	for i := 0; i+1 < len(suffixes); i += 2 {
		if strings.HasSuffix(low, suffixes[i]) {
			return outer[:len(outer)-len(suffixes[i])] + suffixes[i+1]
		}
	}
	return outer + ".out"
}

// errLimit values travel through readers to stop extraction; the limit is
// reported where it happened.
var (
	errBudget = fmt.Errorf("%w: total extracted bytes", ErrLimit)
	errRatio  = fmt.Errorf("%w: compression ratio", ErrLimit)
)

// ratioSlack lets small streams expand freely: a ratio guard on the first
// MiB would only catch legitimate highly compressible files.
const ratioSlack = 1 << 20

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// guard charges extracted bytes to the job's budget and enforces the
// compression ratio against the input consumed so far (in) or a declared
// compressed size (inFixed).
type guard struct {
	j       *job
	r       io.Reader
	in      *countReader
	inFixed int64
	out     int64
	cpath   []string
	tripped bool
}

func (g *guard) Read(p []byte) (int, error) {
	if g.j.budget <= 0 {
		g.trip(LimitTotalBytes)
		return 0, errBudget
	}
	if int64(len(p)) > g.j.budget {
		p = p[:g.j.budget]
	}
	n, err := g.r.Read(p)
	g.j.budget -= int64(n)
	g.out += int64(n)
	if g.in != nil || g.inFixed > 0 {
		in := g.inFixed
		if g.in != nil {
			in = g.in.n
		}
		if g.out > ratioSlack && g.out/max(in, 1) > g.j.s.lim.MaxRatio {
			g.trip(LimitRatio)
			return n, errRatio
		}
	}
	return n, err
}

func (g *guard) trip(name string) {
	if !g.tripped {
		g.tripped = true
		g.j.limit(g.cpath, name)
	}
}

func child(cpath []string, name string) []string {
	c := make([]string, len(cpath)+1)
	copy(c, cpath)
	c[len(cpath)] = name
	return c
}

// extract opens a container and scans its members. Decoder panics on
// hostile input are turned into a stop of this container only.
func (j *job) extract(kind containerType, r io.Reader, size int64, ra io.ReaderAt, cpath []string, depth int) {
	defer func() {
		if p := recover(); p != nil {
			if j.s.repanic {
				panic(p)
			}
			// A decoder bug must not take the agent down: this container
			// stops, is reported, and its raw bytes are still scanned.
			j.limit(cpath, LimitDecoder)
		}
	}()
	switch kind {
	case ctGzip:
		cin := &countReader{r: r}
		zr, err := gzip.NewReader(cin)
		if err != nil {
			return
		}
		name := innerName(j.path, cpath, zr.Name, ".tgz", ".tar", ".gz", "", ".z", "")
		cp := child(cpath, name)
		j.scanObject(&guard{j: j, r: zr, in: cin, cpath: cp}, -1, nil, cp, depth+1)
	case ctBzip2:
		cin := &countReader{r: r}
		cp := child(cpath, innerName(j.path, cpath, "", ".tbz2", ".tar", ".tbz", ".tar", ".bz2", ""))
		j.scanObject(&guard{j: j, r: bzip2.NewReader(cin), in: cin, cpath: cp}, -1, nil, cp, depth+1)
	case ctZstd:
		cin := &countReader{r: r}
		zr, err := zstd.NewReader(cin,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(16<<20), // zstd -19 needs 8 MiB; --long/--ultra frames are not opened
			zstd.WithDecoderMaxMemory(uint64(max(j.budget, 1))))
		if err != nil {
			return
		}
		defer zr.Close()
		cp := child(cpath, innerName(j.path, cpath, "", ".tzst", ".tar", ".zst", "", ".zstd", ""))
		j.scanObject(&guard{j: j, r: zr, in: cin, cpath: cp}, -1, nil, cp, depth+1)
	case ctTar:
		j.extractTar(r, cpath, depth)
	case ctZip:
		j.extractZip(r, size, ra, cpath, depth)
	case ctMail, ctMbox:
		j.extractMail(kind, r, cpath, depth)
	}
}

func (j *job) extractTar(r io.Reader, cpath []string, depth int) {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err != nil {
			return
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeGNUSparse {
			continue
		}
		if n >= j.s.lim.MaxFiles {
			j.limit(cpath, LimitFiles)
			return
		}
		if j.ctx.Err() != nil {
			return
		}
		cp := child(cpath, memberName(hdr.Name))
		// Tar members are slices of the already-counted parent stream,
		// so they are not charged to the budget again; sparse members are
		// the exception, their holes are synthesised by the reader.
		if isSparse(hdr) {
			j.scanObject(&guard{j: j, r: tr, cpath: cp}, hdr.Size, nil, cp, depth+1)
			continue
		}
		j.scanObject(tr, hdr.Size, nil, cp, depth+1)
	}
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// maxZipDirectory bounds the central directory archive/zip reads into
// memory in one go (at most ~180k entries, tens of MB of headers).
const maxZipDirectory = 8 << 20

func (j *job) extractZip(r io.Reader, size int64, ra io.ReaderAt, cpath []string, depth int) {
	lim := j.s.lim
	if ra == nil || size < 0 {
		// Zip needs random access: hold the object in memory, bounded.
		buf, err := io.ReadAll(io.LimitReader(r, lim.MaxInMemory+1))
		if err != nil {
			return
		}
		if int64(len(buf)) > lim.MaxInMemory {
			j.limit(cpath, LimitInMemory)
			return
		}
		ra, size = bytes.NewReader(buf), int64(len(buf))
	} else {
		// The raw bytes are scanned as they stream past; the members are
		// read at random from ra afterwards.
		drain(r)
	}
	// archive/zip holds the whole central directory in memory; refuse
	// directories that could not be scanned within MaxFiles anyway.
	entries, dirSize, ok := zipDirectory(ra, size)
	if !ok {
		return
	}
	if entries > 4*uint64(lim.MaxFiles) || dirSize > maxZipDirectory {
		j.limit(cpath, LimitFiles)
		return
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return
	}
	for n, f := range zr.File {
		if j.ctx.Err() != nil {
			return
		}
		if n >= lim.MaxFiles {
			j.limit(cpath, LimitFiles)
			return
		}
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		cp := child(cpath, memberName(f.Name))
		if f.Flags&1 != 0 {
			j.limit(cp, LimitEncrypted)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			if errors.Is(err, zip.ErrAlgorithm) {
				j.limit(cp, LimitCompression)
			}
			continue
		}
		esize := int64(-1)
		if f.UncompressedSize64 < 1<<62 {
			esize = int64(f.UncompressedSize64)
		}
		g := &guard{j: j, r: rc, cpath: cp, inFixed: int64(min(f.CompressedSize64, 1<<62))}
		if f.Method == zip.Store {
			g.inFixed = 0 // stored data does not expand
		}
		j.scanObject(g, esize, nil, cp, depth+1)
		rc.Close()
	}
}

// zipDirectory reads the end-of-central-directory record (zip64 aware) to
// learn the entry count and directory size before archive/zip allocates
// for them.
func zipDirectory(ra io.ReaderAt, size int64) (entries, dirSize uint64, ok bool) {
	const eocdLen, maxComment = 22, 65535
	n := min(size, eocdLen+maxComment)
	if n < eocdLen {
		return 0, 0, false
	}
	buf := make([]byte, n)
	if _, err := ra.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, false
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || i+eocdLen > len(buf) {
		return 0, 0, false
	}
	e := buf[i:]
	entries = uint64(binary.LittleEndian.Uint16(e[10:]))
	dirSize = uint64(binary.LittleEndian.Uint32(e[12:]))
	// Zip64: the locator sits just before the EOCD record.
	if i >= 20 && string(buf[i-20:i-16]) == "PK\x06\x07" {
		off := int64(binary.LittleEndian.Uint64(buf[i-12:]))
		rec := make([]byte, 56)
		if off >= 0 && off < size {
			if _, err := ra.ReadAt(rec, off); err == nil && string(rec[:4]) == "PK\x06\x06" {
				entries = binary.LittleEndian.Uint64(rec[32:])
				dirSize = binary.LittleEndian.Uint64(rec[40:])
			}
		}
	}
	return entries, dirSize, true
}
