package query

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// deniedPipes are the LogsQL v1.52.1 pipes expert mode refuses:
//
//   - join, union: run a subquery, i.e. read data the outer filter did not select;
//   - stream_context: fetches the neighbours of each hit from its stream with a
//     query of its own, ignoring the query's filters and able to step outside
//     the time range;
//   - block_stats, blocks_count, query_stats: report on storage blocks and on
//     the work done, which covers more than the rows the filters let through.
var deniedPipes = map[string]bool{
	"join":           true,
	"union":          true,
	"stream_context": true,
	"block_stats":    true,
	"blocks_count":   true,
	"query_stats":    true,
}

// ValidateLogsQL checks a raw LogsQL query typed by an expert (lang=logsql):
// it must parse with logstorage.ParseQuery (v1.52.1) and must not contain a
// construct that could escape the tenant scoping or the time range the caller
// adds. Refused, wherever they appear:
//
//   - query options `options(...)`: ignore_global_time_filter drops the
//     caller's time range, time_offset shifts it; none of the others
//     (concurrency, parallel_readers, allow_partial_response, global_filter)
//     is needed by an analyst;
//   - subqueries: any pipe inside parentheses, i.e. in(<query>),
//     contains_any(<query>), contains_all(<query>), _stream_id:in(<query>);
//   - the pipes join, union, stream_context, block_stats, blocks_count,
//     query_stats.
//
// Everything else filters or reshapes the rows the outer filter selected and
// is allowed. The caller must still scope the parsed query itself: with
// Query.AddTimeFilter and Query.AddExtraFilters (or the VictoriaLogs tenant in
// QueryContext), never by pasting strings around the expert's text.
//
// Errors are *Error; errors.Is(err, ErrInvalid) holds.
func ValidateLogsQL(q string) error {
	if len(q) > MaxQueryLen {
		return errorf(MaxQueryLen, "query is longer than %d bytes", MaxQueryLen)
	}
	if strings.TrimSpace(q) == "" {
		return errorf(0, "empty query")
	}
	pq, err := logstorage.ParseQuery(q)
	if err != nil {
		return errorf(logsqlErrorPos(q, err.Error()), "invalid LogsQL: %s", err)
	}
	if e := checkLogsQLTokens(q); e != nil {
		return e
	}
	// Defense in depth: the canonical form VictoriaLogs itself prints must
	// pass the same checks.
	if e := checkLogsQLTokens(pq.String()); e != nil {
		return errorf(0, "%s", e.Msg)
	}
	return nil
}

var contextRe = regexp.MustCompile(`context: \[(.*?)\]`)

// logsqlErrorPos locates the "context: [...]" of a LogsQL error (the tail of
// the text consumed before the error) in q. Best effort, 0 if not found.
func logsqlErrorPos(q, msg string) int {
	m := contextRe.FindStringSubmatch(msg)
	if m == nil || m[1] == "" {
		return 0
	}
	if i := strings.Index(q, m[1]); i >= 0 {
		return i + len(m[1])
	}
	return 0
}

func checkLogsQLTokens(q string) *Error {
	toks := lexLogsQL(q)
	depth := 0
	for i, t := range toks {
		if t.quoted {
			continue
		}
		switch t.tok {
		case "(":
			depth++
		case ")":
			if depth > 0 {
				depth--
			}
		case "|":
			if depth > 0 {
				return errorf(t.pos, "subqueries are not allowed in expert mode")
			}
			if i+1 < len(toks) {
				n := toks[i+1]
				if name := strings.ToLower(n.tok); deniedPipes[name] {
					return errorf(n.pos, "the %s pipe is not allowed in expert mode", name)
				}
			}
		}
		if strings.EqualFold(t.tok, "options") && i+1 < len(toks) && !toks[i+1].quoted && toks[i+1].tok == "(" {
			return errorf(t.pos, "query options are not allowed in expert mode")
		}
	}
	return nil
}

// ---- LogsQL lexer ----
//
// A faithful copy of the token rules of lexer.nextToken in VictoriaLogs
// v1.52.1 lib/logstorage/parser.go (Apache License 2.0), so the checks above
// see exactly the tokens ParseQuery sees: '#' comments, "..." and `...`
// strings via strconv, '...' strings, word runs, and single-char tokens.

type logsqlToken struct {
	tok    string // unquoted
	quoted bool
	pos    int
}

func isLogsQLTokenRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'
}

func lexLogsQL(src string) []logsqlToken {
	var toks []logsqlToken
	s := src
	emit := func(tok string, quoted bool, rest string, raw string) {
		toks = append(toks, logsqlToken{tok: tok, quoted: quoted, pos: len(src) - len(rest) - len(raw)})
	}
	for len(s) > 0 {
	again:
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError {
			emit(s[:size], false, s[size:], s[:size])
			s = s[size:]
			continue
		}
		for unicode.IsSpace(r) {
			s = s[size:]
			r, size = utf8.DecodeRuneInString(s)
		}
		if r == '#' {
			n := strings.IndexByte(s, '\n')
			if n < 0 {
				s = ""
			} else {
				s = s[n+1:]
			}
			if len(s) == 0 {
				break
			}
			goto again
		}
		if len(s) == 0 {
			break
		}
		n := 0
		for isLogsQLTokenRune(r) {
			n += size
			r, size = utf8.DecodeRuneInString(s[n:])
		}
		if n > 0 {
			emit(s[:n], false, s[n:], s[:n])
			s = s[n:]
			continue
		}
		switch r {
		case '"', '`':
			prefix, err := strconv.QuotedPrefix(s)
			if err != nil {
				emit(s[:1], false, s[1:], s[:1])
				s = s[1:]
				continue
			}
			tok, err := strconv.Unquote(prefix)
			if err != nil {
				emit(s[:1], false, s[1:], s[:1])
				s = s[1:]
				continue
			}
			emit(tok, true, s[len(prefix):], prefix)
			s = s[len(prefix):]
			continue
		case '\'':
			var b []byte
			ok := true
			for !strings.HasPrefix(s[size:], "'") {
				ch, _, tail, err := strconv.UnquoteChar(s[size:], '\'')
				if err != nil {
					ok = false
					break
				}
				b = utf8.AppendRune(b, ch)
				size = len(s) - len(tail)
			}
			if !ok {
				emit(s[:1], false, s[1:], s[:1])
				s = s[1:]
				continue
			}
			size++
			emit(string(b), true, s[size:], s[:size])
			s = s[size:]
			continue
		case '=':
			if strings.HasPrefix(s[size:], "~") {
				size = 2
			}
		case '!':
			if strings.HasPrefix(s[size:], "~") || strings.HasPrefix(s[size:], "=") {
				size = 2
			}
		}
		emit(s[:size], false, s[size:], s[:size])
		s = s[size:]
	}
	return toks
}
