// Package yara is Mamori's optional YARA engine. It compiles YARA rule
// files (.yar, .yara) with a time budget and scans files and byte slices,
// returning pattern.Detection values (Kind "yara", Signature the rule
// name), so callers merge them with the pure-Go engine's results.
//
// The engine is libyara (bundled C sources through
// github.com/Velocidex/go-yara) and is built only with the yara build tag
// and cgo: `go build -tags yara ./cmd/mamori`. Without them the same API
// exists and returns ErrNotBuilt, so callers need no build tags of their
// own; the pattern package itself stays pure Go and reports .yar files
// with pattern.ErrNeedsYARA.
//
// The bundled libyara is 3.8.1, built without OpenSSL and with the
// modules pe, elf, math and time only: rules using pe.imphash,
// pe.number_of_signatures, the hash, dotnet or magic modules, or YARA 4
// syntax (base64 strings, xor ranges) do not compile, and such files are
// skipped with a warning. YARA rules see a file's own bytes only (not the
// members of zip, gzip, tar or mail containers the pure-Go engine
// unpacks), and external variables are defined once for all scans (empty
// by default), so rules testing filename or filepath do not see the
// scanned file's name.
package yara

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// Kind is the Detection kind of a YARA rule match.
const Kind pattern.Kind = "yara"

// LimitTimeout names the limit Detection (pattern.KindLimit) reported when
// a file's YARA scan ran out of time: the file was not fully evaluated.
const LimitTimeout = "Mamori.Limit.YARATimeout"

// Sentinel errors.
var (
	// ErrNotBuilt: this binary was built without the YARA engine.
	ErrNotBuilt = errors.New("yara: the YARA engine is not built into this binary; rebuild with `go build -tags yara` (needs cgo and a C compiler)")
	// ErrCompile: a rule file does not compile (see CompileError).
	ErrCompile = errors.New("yara: rules do not compile")
	// ErrTimeout: compiling took longer than Options.CompileTimeout.
	ErrTimeout = errors.New("yara: time budget exceeded")
)

// Options configure Compile and the scans of the compiled Rules. Zero
// fields take the defaults.
type Options struct {
	// CompileTimeout bounds Compile (default 30 s, the budget the agent
	// gives a pattern set). libyara cannot be interrupted inside one file,
	// so Compile returns at the deadline and the file in progress is
	// finished and freed in the background.
	CompileTimeout time.Duration
	// ScanTimeout bounds the scan of one file or buffer (default 60 s;
	// libyara counts whole seconds). A scan that runs out is reported as a
	// LimitTimeout detection, never as clean.
	ScanTimeout time.Duration
	// MaxFileSize: larger files are not scanned (libyara maps the whole
	// file) and a pattern.LimitScanBytes detection says so. Default 1 GiB.
	MaxFileSize int64
	// Strict makes Compile fail on the first file that does not compile.
	// Otherwise such files are skipped with a warning and the rest is used,
	// as pattern.Load does with signatures it cannot use.
	Strict bool
	// Externals are the external variables every rule may use, with their
	// values for all scans. Default: the names signature-base uses
	// (filename, filepath, extension, filetype, owner) as empty strings,
	// so those rules compile.
	Externals map[string]any
}

func (o Options) withDefaults() Options {
	if o.CompileTimeout <= 0 {
		o.CompileTimeout = 30 * time.Second
	}
	if o.ScanTimeout <= 0 {
		o.ScanTimeout = 60 * time.Second
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 1 << 30
	}
	if o.Externals == nil {
		o.Externals = map[string]any{"filename": "", "filepath": "", "extension": "", "filetype": "", "owner": ""}
	}
	return o
}

// CompileError locates the first compiler error of a rule file.
type CompileError struct {
	File string // the file holding the error (may be one included by the file compiled)
	Line int
	Msg  string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("yara: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Unwrap makes a CompileError both ErrCompile and pattern.ErrSyntax.
func (e *CompileError) Unwrap() []error { return []error{ErrCompile, pattern.ErrSyntax} }

// ruleError is the reason of a pattern.Warning for a skipped rule file; the
// warning itself carries file and line.
type ruleError struct{ msg string }

func (e *ruleError) Error() string   { return "YARA rules do not compile (file skipped): " + e.msg }
func (e *ruleError) Unwrap() []error { return []error{ErrCompile, pattern.ErrSyntax} }

func (e *CompileError) asWarning() pattern.Warning {
	return pattern.Warning{File: e.File, Line: e.Line, Err: &ruleError{e.Msg}}
}

// maxRuleFile bounds how much of a rule file is read when looking for
// include statements.
const maxRuleFile = 64 << 20

var (
	includeRE = regexp.MustCompile(`(?m)^[ \t]*include[ \t]+"([^"\n]+)"[ \t]*$`)
	commentRE = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
)

// RuleFiles returns the YARA rule files named by paths, in the order they
// should be compiled: files given explicitly, and in directories (walked
// in lexical order) every file ending in .yar or .yara. Rule collections
// ship index files that include all the others; compiling both would
// define every rule twice, and one broken member would take the whole
// index down. So an index (a file of nothing but include statements) is
// replaced by the files it includes, and a file that another rule file
// includes is left to that file.
func RuleFiles(paths ...string) ([]string, error) {
	var cands []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("yara: %w", err)
		}
		if !st.IsDir() {
			if f, ok := pattern.FormatOf(p, true); ok && f == pattern.FormatYARA {
				cands = append(cands, p)
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				if f, ok := pattern.FormatOf(path, false); ok && f == pattern.FormatYARA {
					cands = append(cands, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("yara: %w", err)
		}
	}
	infos := map[string]*ruleFile{}
	info := func(f string) (*ruleFile, error) {
		k := key(f)
		if rf, ok := infos[k]; ok {
			return rf, nil
		}
		rf, err := readRuleFile(f)
		if err != nil {
			return nil, err
		}
		infos[k] = rf
		return rf, nil
	}
	// Expand indexes depth first, in include order.
	var expanded []string
	var expand func(f string, depth int) error
	expand = func(f string, depth int) error {
		rf, err := info(f)
		if err != nil {
			return err
		}
		if !rf.index || depth > 16 {
			expanded = append(expanded, f)
			return nil
		}
		for _, inc := range rf.includes {
			if _, err := os.Stat(inc); err != nil {
				// Let the compiler report the missing file, in place.
				expanded = append(expanded, f)
				return nil
			}
		}
		for _, inc := range rf.includes {
			if err := expand(inc, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range cands {
		if err := expand(f, 0); err != nil {
			return nil, err
		}
	}
	includedByRules := map[string]bool{}
	for _, f := range expanded {
		rf, _ := info(f)
		for _, inc := range rf.includes {
			includedByRules[key(inc)] = true
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range expanded {
		k := key(f)
		if !includedByRules[k] && !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// ruleFile is what RuleFiles needs to know of a rule file.
type ruleFile struct {
	includes []string // resolved as libyara does: relative to the including file
	index    bool     // nothing but include statements (and comments)
}

func readRuleFile(f string) (*ruleFile, error) {
	fh, err := os.Open(f)
	if err != nil {
		return nil, fmt.Errorf("yara: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxRuleFile))
	if err != nil {
		return nil, fmt.Errorf("yara: read %s: %w", f, err)
	}
	b = commentRE.ReplaceAll(b, nil)
	rf := &ruleFile{}
	for _, m := range includeRE.FindAllSubmatch(b, -1) {
		name := string(m[1])
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(f), name)
		}
		rf.includes = append(rf.includes, name)
	}
	rf.index = len(rf.includes) > 0 && len(bytes.TrimSpace(includeRE.ReplaceAll(b, nil))) == 0
	return rf, nil
}

// key identifies a file independently of how its path was spelt.
func key(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}
