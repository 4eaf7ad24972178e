package sigma

import (
	"errors"
	"fmt"
)

// Sentinel errors; a *LoadError wraps one of them (errors.Is works through it).
var (
	// ErrYAML: the document is not valid YAML or not a mapping.
	ErrYAML = errors.New("invalid YAML")
	// ErrRule: a required part of the rule is missing or has the wrong shape.
	ErrRule = errors.New("invalid rule")
	// ErrCondition: the condition does not parse or names unknown searches.
	ErrCondition = errors.New("invalid condition")
	// ErrModifier: an unknown modifier or a modifier applied to a value it
	// cannot take.
	ErrModifier = errors.New("invalid modifier")
	// ErrRegexp: a |re value Go's RE2 engine cannot compile (lookaround,
	// backreferences, possessive quantifiers).
	ErrRegexp = errors.New("unsupported regular expression")
	// ErrUnsupported: a valid Sigma construct this engine does not evaluate
	// (rule collections with action:, meta filters, aggregations in the
	// condition).
	ErrUnsupported = errors.New("unsupported Sigma feature")
	// ErrDuplicate: a rule id already loaded.
	ErrDuplicate = errors.New("duplicate rule id")
	// ErrRead: a file or directory could not be read.
	ErrRead = errors.New("cannot read")
)

// LoadError is a rule (or file) that could not be loaded. Loading goes on
// with the next rule.
type LoadError struct {
	Path   string
	Line   int // 1-based; 0 when unknown
	RuleID string
	Err    error
}

func (e *LoadError) Error() string {
	id := e.RuleID
	if id == "" {
		id = "-"
	}
	return fmt.Sprintf("%s:%d: rule %s: %v", e.Path, e.Line, id, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Warning is a problem that does not stop a rule from loading, e.g. an
// |expand placeholder without values (that value then matches nothing).
type Warning struct {
	Path   string
	Line   int
	RuleID string
	Msg    string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: rule %s: %s", w.Path, w.Line, w.RuleID, w.Msg)
}

// errAt is a compile error that knows the YAML line it comes from.
type errAt struct {
	line int
	err  error
}

func (e *errAt) Error() string { return e.err.Error() }
func (e *errAt) Unwrap() error { return e.err }

func failf(line int, sentinel error, format string, args ...any) error {
	return &errAt{line: line, err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
