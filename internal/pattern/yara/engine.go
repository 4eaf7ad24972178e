//go:build yara && cgo

package yara

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	libyara "github.com/Velocidex/go-yara"

	"github.com/mamori-soc/mamori/internal/pattern"
)

// Built reports whether this binary holds the YARA engine.
const Built = true

// maxScans bounds concurrent scans of one Rules: libyara allows at most 32
// threads per rule set (YR_MAX_THREADS) and go-yara's callback table holds
// 256 entries shared by everything.
const maxScans = 16

// Rules is a compiled YARA rule set. Scans are safe for concurrent use;
// Close must not be called while a scan runs.
type Rules struct {
	rules *libyara.Rules
	n     int
	opts  Options
	sem   chan struct{}
}

// Compile compiles files (see RuleFiles) into one rule set, in the default
// namespace, as the yara command line does. Files that do not compile are
// skipped with a warning (or, with Options.Strict, fail the compile with a
// *CompileError). It returns ErrTimeout when Options.CompileTimeout
// passes first.
func Compile(ctx context.Context, files []string, opts Options) (*Rules, []pattern.Warning, error) {
	opts = opts.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, opts.CompileTimeout)
	defer cancel()
	type result struct {
		r     *Rules
		warns []pattern.Warning
		err   error
	}
	done := make(chan result, 1)
	var stop atomic.Bool
	start := time.Now()
	go func() {
		r, w, err := compile(files, opts, &stop)
		done <- result{r, w, err}
	}()
	select {
	case res := <-done:
		return res.r, res.warns, res.err
	case <-tctx.Done():
		stop.Store(true)
		// libyara cannot be interrupted within a file: free what the
		// compile goroutine ends up with once it returns.
		go func() {
			if res := <-done; res.r != nil {
				res.r.Close()
			}
		}()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: compiling %d rule files took longer than %s (%s so far); remove slow or large rule files or raise the budget",
			ErrTimeout, len(files), opts.CompileTimeout, time.Since(start).Round(time.Millisecond))
	}
}

var errStopped = errors.New("yara: compile abandoned")

// compile adds the files in order to one compiler, so a file may use the
// (private) rules of an earlier one, as with the yara command line. A
// compiler that reported an error cannot be used again: the broken file is
// skipped and the compiler rebuilt from the files that compiled. Rebuilds
// cost a full compile each, so after the first broken file every further
// file is first compiled on its own and skipped at once when it fails for
// a reason other than a rule it uses from another file.
func compile(files []string, opts Options, stop *atomic.Bool) (*Rules, []pattern.Warning, error) {
	var warns []pattern.Warning
	var good []string
	c, err := newCompiler(opts)
	if err != nil {
		return nil, nil, err
	}
	defer func() { c.destroy() }()
	precheck := false
	for _, f := range files {
		if stop.Load() {
			return nil, nil, errStopped
		}
		if precheck {
			ce, err := compileAlone(f, opts)
			if err != nil {
				return nil, warns, err
			}
			if ce != nil && !strings.Contains(ce.Msg, "undefined identifier") {
				warns = append(warns, ce.asWarning())
				continue
			}
		}
		ce, err := c.addFile(f)
		if err != nil {
			return nil, warns, err
		}
		if ce == nil {
			good = append(good, f)
			continue
		}
		if opts.Strict {
			return nil, warns, ce
		}
		warns = append(warns, ce.asWarning())
		precheck = true
		c.destroy()
		if c, err = newCompiler(opts); err != nil {
			return nil, warns, err
		}
		for _, g := range good {
			if stop.Load() {
				return nil, nil, errStopped
			}
			if ce, err := c.addFile(g); err != nil || ce != nil {
				return nil, warns, fmt.Errorf("yara: %s compiled before and not now: %v %v", g, err, ce)
			}
		}
	}
	yr, err := c.rules()
	if err != nil {
		return nil, warns, err
	}
	return &Rules{rules: yr, n: len(yr.GetRules()), opts: opts, sem: make(chan struct{}, maxScans)}, warns, nil
}

func compileAlone(f string, opts Options) (*CompileError, error) {
	c, err := newCompiler(opts)
	if err != nil {
		return nil, err
	}
	defer c.destroy()
	return c.addFile(f)
}

// Len is the number of rules (private and global ones included); 0 for
// nil Rules.
func (r *Rules) Len() int {
	if r == nil {
		return 0
	}
	return r.n
}

// Close frees the compiled rules now rather than at garbage collection.
func (r *Rules) Close() {
	if r != nil && r.rules != nil {
		r.rules.Destroy()
		r.rules = nil
	}
}

// ScanFile scans the file at path (its own bytes, not container members).
func (r *Rules) ScanFile(ctx context.Context, path string) ([]pattern.Detection, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("yara: scan: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", pattern.ErrNotRegular, path)
	}
	if st.Size() > r.opts.MaxFileSize {
		return []pattern.Detection{{Path: path, Signature: pattern.LimitScanBytes, Kind: pattern.KindLimit, Offset: -1}}, nil
	}
	if st.Size() == 0 {
		// libyara maps files and cannot map an empty one; rules such as
		// "filesize == 0" still deserve an answer.
		return r.ScanBytes(ctx, path, nil)
	}
	return r.scan(ctx, path, func(flags libyara.ScanFlags, timeout time.Duration) ([]libyara.MatchRule, error) {
		return r.rules.ScanFile(path, flags, timeout)
	})
}

// ScanBytes scans data; name is used as Detection.Path.
func (r *Rules) ScanBytes(ctx context.Context, name string, data []byte) ([]pattern.Detection, error) {
	if int64(len(data)) > r.opts.MaxFileSize {
		return []pattern.Detection{{Path: name, Signature: pattern.LimitScanBytes, Kind: pattern.KindLimit, Offset: -1}}, nil
	}
	return r.scan(ctx, name, func(flags libyara.ScanFlags, timeout time.Duration) ([]libyara.MatchRule, error) {
		return r.rules.ScanMem(data, flags, timeout)
	})
}

func (r *Rules) scan(ctx context.Context, name string, run func(libyara.ScanFlags, time.Duration) ([]libyara.MatchRule, error)) ([]pattern.Detection, error) {
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// libyara cannot be cancelled, only given a timeout in whole seconds:
	// take the context's deadline if it is nearer.
	timeout := r.opts.ScanTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	timeout = max(timeout.Round(time.Second), time.Second)
	matches, err := run(libyara.ScanFlagsFastMode, timeout)
	var dets []pattern.Detection
	for _, m := range matches {
		off := int64(-1)
		for _, s := range m.Strings {
			if off < 0 || int64(s.Offset) < off {
				off = int64(s.Offset)
			}
		}
		dets = append(dets, pattern.Detection{Path: name, Signature: m.Rule, Kind: Kind, Offset: off})
	}
	if err != nil {
		// go-yara returns libyara's error text only.
		if strings.Contains(err.Error(), "timeout") {
			return append(dets, pattern.Detection{Path: name, Signature: LimitTimeout, Kind: pattern.KindLimit, Offset: -1}), nil
		}
		return dets, fmt.Errorf("yara: scan %s: %w", name, err)
	}
	return dets, ctx.Err()
}
