package pattern

import (
	"errors"
	"fmt"
)

// Sentinel errors. Warnings and returned errors wrap exactly one of them, so
// callers can tell a broken signature (ErrSyntax) from one this engine does
// not implement (ErrUnsupported) or refuses for cost reasons (ErrLimit).
var (
	// ErrSyntax: the signature or record text is malformed.
	ErrSyntax = errors.New("pattern: syntax error")
	// ErrUnsupported: well-formed, but uses a feature this engine does not
	// evaluate (PCRE, byte-compare, icon groups, non-file targets, ...).
	// Such a signature is skipped rather than evaluated partially, because
	// dropping a condition would make it match more than its author meant.
	ErrUnsupported = errors.New("pattern: unsupported signature feature")
	// ErrNeedsYARA: a YARA rule file; YARA is evaluated by the engine built
	// with the yara build tag, not by this package.
	ErrNeedsYARA = errors.New("pattern: YARA rules need the engine built with the yara tag")
	// ErrLimit: a compile-time or scan-time resource limit was exceeded.
	ErrLimit = errors.New("pattern: limit exceeded")
)

// Warning describes one signature (or one file) that was skipped while
// loading or compiling. The rest of the input is still used.
type Warning struct {
	File string // signature file, "" for records built in memory
	Line int    // 1-based line, 0 when not tied to a line
	Name string // signature name when it could be read
	Err  error  // wraps one of the sentinel errors; its text is the reason
}

func (w Warning) Error() string {
	loc := w.File
	if loc == "" {
		loc = "<records>"
	}
	if w.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, w.Line)
	}
	if w.Name != "" {
		return fmt.Sprintf("%s: %s: %v", loc, w.Name, w.Err)
	}
	return fmt.Sprintf("%s: %v", loc, w.Err)
}

func (w Warning) Unwrap() error { return w.Err }

func syntaxf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
}

func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

func limitf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLimit}, args...)...)
}

// warningAt places a parse error at a location; errors that are not yet
// classified count as syntax errors.
func warningAt(file string, line int, name string, err error) Warning {
	if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrNeedsYARA) {
		err = fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return Warning{File: file, Line: line, Name: name, Err: err}
}
