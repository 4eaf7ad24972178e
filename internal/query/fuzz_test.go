package query

import (
	"errors"
	"testing"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// FuzzTranslate: Translate never panics; an error is a positioned *Error
// inside the input; a translation is accepted by logstorage.ParseQuery and by
// the expert-mode checks (so no input can smuggle options, subqueries or
// other pipes into the LogsQL).
func FuzzTranslate(f *testing.F) {
	for _, tc := range translateCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := Translate(q)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Translate(%q): error %v is not a *Error", q, err)
			}
			if qe.Pos < 0 || qe.Pos > len(q) && qe.Pos != MaxQueryLen {
				t.Fatalf("Translate(%q): error position %d outside the input", q, qe.Pos)
			}
			return
		}
		if _, perr := logstorage.ParseQuery(out); perr != nil {
			t.Fatalf("Translate(%q) = %s: ParseQuery: %v", q, out, perr)
		}
		if verr := ValidateLogsQL(out); verr != nil {
			t.Fatalf("Translate(%q) = %s: ValidateLogsQL: %v", q, out, verr)
		}
	})
}

// FuzzValidateLogsQL: never panics, and anything it accepts parses.
func FuzzValidateLogsQL(f *testing.F) {
	for _, s := range []string{
		`error`, `options(ignore_global_time_filter=true) x`, `x | union (y)`, `x:in(y | fields x)`,
		"'a\\'b' `c` \"d\" # e\n| stats count()", `x | stream_context before 5`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if err := ValidateLogsQL(q); err == nil {
			if _, perr := logstorage.ParseQuery(q); perr != nil {
				t.Fatalf("ValidateLogsQL accepted %q but ParseQuery: %v", q, perr)
			}
		}
	})
}
