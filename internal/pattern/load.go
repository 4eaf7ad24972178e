package pattern

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Format is a signature file format, chosen by file extension.
type Format string

const (
	FormatHDB  Format = "hdb"  // .hdb, .hdu: "<hash>:<size>:<name>[:<flevel>]"
	FormatHSB  Format = "hsb"  // .hsb, .hsu: same, size may be "*"
	FormatNDB  Format = "ndb"  // .ndb, .ndu: body signatures
	FormatLDB  Format = "ldb"  // .ldb, .ldu: logical signatures
	FormatYAML Format = "yaml" // Mamori authoring form (see package doc)
	FormatYARA Format = "yara" // .yar, .yara: recognised, not evaluated here
)

// maxLineLen bounds one signature line (and one record's data). ClamAV's
// longest logical signatures are far below it.
const maxLineLen = 1 << 20

// maxYAMLSize bounds an authoring-form file, which is parsed as a whole.
const maxYAMLSize = 64 << 20

// clamUnsupported lists ClamAV database extensions this engine recognises
// but does not evaluate, with what they hold.
var clamUnsupported = map[string]string{
	".mdb": "PE section hashes", ".mdu": "PE section hashes",
	".msb": "PE section hashes", ".msu": "PE section hashes",
	".imp": "PE import table hashes", ".idb": "icon signatures",
	".cbc": "bytecode signatures", ".crb": "certificate trust/block rules",
	".cdb": "container metadata signatures", ".cat": "catalogue certificates",
	".pdb": "phishing domain lists", ".gdb": "safe-browsing hashes", ".wdb": "phishing allow lists",
	".ftm": "file type magic", ".fp": "false-positive hashes", ".sfp": "false-positive hashes",
	".ign": "ignore lists", ".ign2": "ignore lists", ".info": "database manifests",
	".cfg": "engine configuration", ".pwdb": "archive passwords",
	".zmd": "zip metadata signatures", ".rmd": "rar metadata signatures",
	".cvd": "packed databases (unpack with sigtool)", ".cld": "packed databases (unpack with sigtool)",
	".cud": "packed databases (unpack with sigtool)", ".cdiff": "database patches", ".sign": "detached signatures",
}

// FormatOf returns the format for a file name. In directories only the
// distinctive YAML suffixes ".patterns.yaml"/".patterns.yml" are taken as
// signature files; a path given explicitly may end in plain ".yaml"/".yml".
func FormatOf(path string, explicit bool) (Format, bool) {
	base := strings.ToLower(filepath.Base(path))
	switch filepath.Ext(base) {
	case ".hdb", ".hdu":
		return FormatHDB, true
	case ".hsb", ".hsu":
		return FormatHSB, true
	case ".ndb", ".ndu":
		return FormatNDB, true
	case ".ldb", ".ldu":
		return FormatLDB, true
	case ".yar", ".yara":
		return FormatYARA, true
	case ".yaml", ".yml":
		if explicit || strings.HasSuffix(base, ".patterns.yaml") || strings.HasSuffix(base, ".patterns.yml") {
			return FormatYAML, true
		}
	}
	return "", false
}

// Load parses every signature file named (directories are walked, in
// lexical order) and compiles the result. Warnings cover skipped
// signatures and files; the error is for files that could not be read.
func Load(paths ...string) (*Set, []Warning, error) {
	var (
		recs  []Record
		warns []Warning
	)
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, warns, fmt.Errorf("pattern: load: %w", err)
		}
		if !st.IsDir() {
			r, w, err := ParseFile(p)
			warns = append(warns, w...)
			if err != nil {
				return nil, warns, err
			}
			recs = append(recs, r...)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			if _, ok := FormatOf(path, false); !ok {
				if what, known := clamUnsupported[strings.ToLower(filepath.Ext(path))]; known {
					warns = append(warns, Warning{File: path, Err: unsupportedf("ClamAV %s file (%s) is not evaluated by this engine", filepath.Ext(path), what)})
				}
				return nil
			}
			r, w, err := ParseFile(path)
			warns = append(warns, w...)
			recs = append(recs, r...)
			return err
		})
		if err != nil {
			return nil, warns, fmt.Errorf("pattern: load %s: %w", p, err)
		}
	}
	set, w, err := Compile(recs)
	return set, append(warns, w...), err
}

// ParseFile reads one signature file into records.
func ParseFile(path string) ([]Record, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("pattern: %w", err)
	}
	defer f.Close()
	format, ok := FormatOf(path, true)
	if !ok {
		ext := strings.ToLower(filepath.Ext(path))
		if what, known := clamUnsupported[ext]; known {
			return nil, []Warning{{File: path, Err: unsupportedf("ClamAV %s file (%s) is not evaluated by this engine", ext, what)}}, nil
		}
		return nil, []Warning{{File: path, Err: unsupportedf("unknown signature file extension %q", ext)}}, nil
	}
	return Parse(f, path, format)
}

// Parse reads signatures of the given format from r; file names them in
// warnings and records. Malformed or unsupported signatures are skipped
// with a warning; the error is for read failures.
func Parse(r io.Reader, file string, format Format) ([]Record, []Warning, error) {
	var lineFn func(string) (Record, error)
	switch format {
	case FormatHDB, FormatHSB:
		lineFn = parseHashLine
	case FormatNDB:
		lineFn = parseNDBLine
	case FormatLDB:
		lineFn = parseLDBLine
	case FormatYAML:
		data, err := io.ReadAll(io.LimitReader(r, maxYAMLSize+1))
		if err != nil {
			return nil, nil, fmt.Errorf("pattern: read %s: %w", file, err)
		}
		if len(data) > maxYAMLSize {
			return nil, []Warning{{File: file, Err: limitf("YAML file larger than %d bytes", maxYAMLSize)}}, nil
		}
		recs, warns := parseYAML(data, file)
		return recs, warns, nil
	case FormatYARA:
		return nil, []Warning{{File: file, Err: ErrNeedsYARA}}, nil
	default:
		return nil, nil, fmt.Errorf("pattern: unknown format %q", format)
	}
	var (
		recs  []Record
		warns []Warning
	)
	lr := lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	for {
		line, n, tooLong, err := lr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return recs, warns, nil
			}
			return recs, warns, fmt.Errorf("pattern: read %s: %w", file, err)
		}
		if tooLong {
			warns = append(warns, Warning{File: file, Line: n, Err: limitf("line longer than %d bytes", maxLineLen)})
			continue
		}
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		rec, err := lineFn(line)
		if err != nil {
			warns = append(warns, warningAt(file, n, rec.Name, err))
			continue
		}
		rec.File, rec.Line = file, n
		recs = append(recs, rec)
	}
}

// lineReader yields lines of bounded length; longer lines are consumed and
// reported instead of growing a buffer without limit.
type lineReader struct {
	r    *bufio.Reader
	n    int
	done bool
	buf  []byte
}

func (lr *lineReader) next() (line string, n int, tooLong bool, err error) {
	if lr.done {
		return "", lr.n, false, io.EOF
	}
	buf := lr.buf[:0]
	defer func() { lr.buf = buf[:0] }()
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(buf)+len(chunk) <= maxLineLen+1 {
			buf = append(buf, chunk...)
		} else {
			tooLong = true
		}
		switch {
		case err == nil:
			lr.n++
			return string(bytes.TrimRight(buf, "\r\n")), lr.n, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			lr.done = true
			if len(buf) == 0 && !tooLong {
				return "", lr.n, false, io.EOF
			}
			lr.n++
			return string(bytes.TrimRight(buf, "\r\n")), lr.n, tooLong, nil
		default:
			return "", lr.n, false, err
		}
	}
}
