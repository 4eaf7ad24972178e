package store

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mamori-soc/mamori/internal/event"
)

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. s must be valid UTF-8
// (rowFields guarantees it).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonLen is the length of appendJSONString's output without the quotes.
func jsonLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

// appendJSONLine appends one JSON line: {"_time":"…", fields…}\n.
func appendJSONLine(dst []byte, ts int64, fields []event.Field) []byte {
	dst = append(dst, `{"_time":"`...)
	dst = time.Unix(0, ts).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	for _, f := range fields {
		dst = append(dst, ',')
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = appendJSONString(dst, f.Value)
	}
	return append(dst, '}', '\n')
}

var errBadJSONRow = errors.New("not a flat JSON object of strings")

// parseJSONRow parses one line of /select/logsql/query output: a flat JSON
// object whose values are strings, keeping the field order. The returned
// strings share one allocation.
func parseJSONRow(line []byte) (Row, error) {
	s := string(line)
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil, errBadJSONRow
	}
	i = skipWS(s, i+1)
	row := make(Row, 0, 16)
	if i < len(s) && s[i] == '}' {
		return row, nil
	}
	for {
		name, j, err := parseJSONStr(s, i)
		if err != nil {
			return nil, err
		}
		j = skipWS(s, j)
		if j >= len(s) || s[j] != ':' {
			return nil, errBadJSONRow
		}
		j = skipWS(s, j+1)
		var value string
		switch {
		case j < len(s) && s[j] == '"':
			value, j, err = parseJSONStr(s, j)
			if err != nil {
				return nil, err
			}
		default:
			// Not expected from VictoriaLogs; accept bare scalars (numbers, true, null) verbatim.
			k := j
			for k < len(s) && s[k] != ',' && s[k] != '}' && s[k] != ' ' && s[k] != '\n' {
				k++
			}
			if k == j {
				return nil, errBadJSONRow
			}
			value = s[j:k]
			if value == "null" {
				value = ""
			}
			j = k
		}
		if value != "" {
			row = append(row, event.Field{Name: name, Value: value})
		}
		j = skipWS(s, j)
		if j >= len(s) {
			return nil, errBadJSONRow
		}
		if s[j] == '}' {
			return row, nil
		}
		if s[j] != ',' {
			return nil, errBadJSONRow
		}
		i = skipWS(s, j+1)
	}
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// parseJSONStr parses the string literal at s[i]; it returns the value and the index after it.
func parseJSONStr(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '"' {
		return "", i, errBadJSONRow
	}
	i++
	start := i
	for i < len(s) {
		switch s[i] {
		case '"':
			return s[start:i], i + 1, nil
		case '\\':
			return unescapeJSONStr(s, start)
		}
		i++
	}
	return "", i, errBadJSONRow
}

// unescapeJSONStr is the slow path of parseJSONStr for literals with escapes.
func unescapeJSONStr(s string, start int) (string, int, error) {
	b := make([]byte, 0, 32)
	i := start
	for i < len(s) {
		c := s[i]
		switch c {
		case '"':
			return string(b), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", i, errBadJSONRow
			}
			i++
			switch s[i] {
			case '"', '\\', '/':
				b = append(b, s[i])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, n, ok := parseU4(s, i+1)
				if !ok {
					return "", i, errBadJSONRow
				}
				i += n
				if utf16.IsSurrogate(r) {
					if r2, n2, ok2 := parseSurrogate(s, i+1); ok2 {
						r = utf16.DecodeRune(r, r2)
						i += n2
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", i, errBadJSONRow
			}
			i++
		default:
			b = append(b, c)
			i++
		}
	}
	return "", i, errBadJSONRow
}

func parseU4(s string, i int) (rune, int, bool) {
	if i+4 > len(s) {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, 0, false
	}
	return rune(v), 4, true
}

// parseSurrogate parses a `\uXXXX` low surrogate at s[i-1:] (i points after the preceding escape).
func parseSurrogate(s string, i int) (rune, int, bool) {
	if i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
		return 0, 0, false
	}
	r, n, ok := parseU4(s, i+2)
	if !ok {
		return 0, 0, false
	}
	return r, n + 2, true
}
