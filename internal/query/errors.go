package query

import (
	"errors"
	"fmt"
)

// ErrInvalid is the sentinel every error of this package wraps:
// errors.Is(err, ErrInvalid) tells "the query is bad" apart from other
// failures a caller may meet around it.
var ErrInvalid = errors.New("invalid query")

// Error is a query error with the position it was found at.
//
// Pos is a 0-based byte offset into the query string as given (a UI that
// works in UTF-16 or runes must convert). For Translate it is exact; for
// ValidateLogsQL it is exact for the expert-mode restrictions and best effort
// for LogsQL syntax errors (VictoriaLogs reports a context, not an offset; 0
// when it cannot be located).
type Error struct {
	Pos int
	Msg string
}

// Error implements error: "position 12: expected ')'".
func (e *Error) Error() string {
	return fmt.Sprintf("position %d: %s", e.Pos, e.Msg)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

func errorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}
