package parse

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON reader that flattens one object into (dotted key, string
// value) leaves in one pass, without building maps or interfaces. String
// values without escapes are substrings of the input (no copy); keys are
// collected in one byte buffer.
//
// Flattening rules: nested objects give dotted keys ("a":{"b":1} -> a.b);
// an array of scalars becomes its values joined with ","; an array holding
// objects or arrays is kept as its JSON text; numbers keep their JSON text;
// booleans are "true"/"false"; null and "" are dropped (unset).

const (
	maxFlattenDepth = 32  // deeper objects are kept as JSON text
	maxJSONDepth    = 512 // deeper nesting is refused as invalid
)

// jleaf is one flattened value.
type jleaf struct {
	k0, k1 int // key in jsonScratch.keys
	val    string
	kind   byte // 's' string, 'n' number, 'b' bool, 'a' joined scalars, 'r' JSON text
}

// jsonScratch holds the reader's reusable buffers.
type jsonScratch struct {
	keys   []byte
	leaves []jleaf
	path   []byte
	join   []byte
	esc    []byte
}

func (js *jsonScratch) reset() {
	clear(js.leaves)
	if cap(js.keys) > maxScratch {
		js.keys = nil
	}
	if cap(js.leaves) > 4096 {
		js.leaves = nil
	}
	if cap(js.join) > maxScratch {
		js.join = nil
	}
	if cap(js.esc) > maxScratch {
		js.esc = nil
	}
	js.keys, js.leaves, js.path, js.join, js.esc = js.keys[:0], js.leaves[:0], js.path[:0], js.join[:0], js.esc[:0]
}

// key returns the key bytes of leaf l.
func (js *jsonScratch) key(l *jleaf) []byte { return js.keys[l.k0:l.k1] }

// jsonError is a syntax error with its byte offset.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg) }

type jsonReader struct {
	s  string
	i  int
	js *jsonScratch
}

func (r *jsonReader) fail(msg string) error { return &jsonError{r.i, msg} }

func (r *jsonReader) ws() {
	for r.i < len(r.s) {
		switch r.s[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// parseObject flattens the JSON object s into js. It returns the offset of
// trailing non-blank data after the object (0 when none).
func (js *jsonScratch) parseObject(s string) (trailing int, err error) {
	r := jsonReader{s: s, js: js}
	r.ws()
	if r.i >= len(s) || s[r.i] != '{' {
		return 0, r.fail("expected '{'")
	}
	if err := r.object(0); err != nil {
		return 0, err
	}
	r.ws()
	if r.i < len(s) {
		return r.i, nil
	}
	return 0, nil
}

func (r *jsonReader) leaf(val string, kind byte) {
	if val == "" {
		return
	}
	js := r.js
	k0 := len(js.keys)
	js.keys = append(js.keys, js.path...)
	js.leaves = append(js.leaves, jleaf{k0, len(js.keys), val, kind})
}

func (r *jsonReader) object(depth int) error {
	r.i++ // '{'
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == '}' {
		r.i++
		return nil
	}
	js := r.js
	base := len(js.path)
	for {
		r.ws()
		if r.i >= len(r.s) || r.s[r.i] != '"' {
			return r.fail("expected a string key")
		}
		js.path = js.path[:base]
		if base > 0 {
			js.path = append(js.path, '.')
		}
		var err error
		if js.path, err = r.appendString(js.path); err != nil {
			return err
		}
		r.ws()
		if r.i >= len(r.s) || r.s[r.i] != ':' {
			return r.fail("expected ':' after object key")
		}
		r.i++
		r.ws()
		if err := r.value(depth); err != nil {
			return err
		}
		r.ws()
		if r.i >= len(r.s) {
			return r.fail("unterminated object")
		}
		switch r.s[r.i] {
		case ',':
			r.i++
		case '}':
			r.i++
			js.path = js.path[:base]
			return nil
		default:
			return r.fail("expected ',' or '}' in object")
		}
	}
}

func (r *jsonReader) value(depth int) error {
	if r.i >= len(r.s) {
		return r.fail("unexpected end of input, expected a value")
	}
	switch c := r.s[r.i]; c {
	case '{':
		if depth+1 >= maxFlattenDepth {
			start := r.i
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			r.leaf(r.s[start:r.i], 'r')
			return nil
		}
		return r.object(depth + 1)
	case '[':
		v, kind, err := r.array(depth + 1)
		if err != nil {
			return err
		}
		r.leaf(v, kind)
		return nil
	case '"':
		v, err := r.str()
		if err != nil {
			return err
		}
		r.leaf(v, 's')
		return nil
	default:
		v, kind, err := r.scalar()
		if err != nil {
			return err
		}
		r.leaf(v, kind)
		return nil
	}
}

// scalar reads a number, true, false or null ("" for null).
func (r *jsonReader) scalar() (string, byte, error) {
	s := r.s
	switch s[r.i] {
	case 't':
		if len(s)-r.i >= 4 && s[r.i:r.i+4] == "true" {
			r.i += 4
			return "true", 'b', nil
		}
	case 'f':
		if len(s)-r.i >= 5 && s[r.i:r.i+5] == "false" {
			r.i += 5
			return "false", 'b', nil
		}
	case 'n':
		if len(s)-r.i >= 4 && s[r.i:r.i+4] == "null" {
			r.i += 4
			return "", 'n', nil
		}
	default:
		return r.number()
	}
	return "", 0, r.fail("invalid literal")
}

// number reads a JSON number and returns its text.
func (r *jsonReader) number() (string, byte, error) {
	s := r.s
	start := r.i
	i := r.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return "", 0, r.fail("invalid value")
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == j {
			r.i = i
			return "", 0, r.fail("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == j {
			r.i = i
			return "", 0, r.fail("invalid number")
		}
	}
	r.i = i
	return s[start:i], 'n', nil
}

// str reads a string value; without escapes it is a substring of the input.
func (r *jsonReader) str() (string, error) {
	s := r.s
	i := r.i + 1
	q := strings.IndexByte(s[i:], '"')
	if q < 0 {
		r.i = len(s)
		return "", r.fail("unterminated string")
	}
	if strings.IndexByte(s[i:i+q], '\\') < 0 {
		r.i = i + q + 1
		return s[i : i+q], nil
	}
	js := r.js
	b, err := r.appendString(js.esc[:0])
	js.esc = b[:0]
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendString decodes the string at r.i (which is '"') onto dst.
func (r *jsonReader) appendString(dst []byte) ([]byte, error) {
	s := r.s
	i := r.i + 1
	if q := strings.IndexByte(s[i:], '"'); q >= 0 && strings.IndexByte(s[i:i+q], '\\') < 0 {
		r.i = i + q + 1
		return append(dst, s[i:i+q]...), nil
	}
	for {
		j := i
		for j < len(s) && s[j] != '"' && s[j] != '\\' {
			j++
		}
		dst = append(dst, s[i:j]...)
		if j >= len(s) {
			r.i = j
			return dst, r.fail("unterminated string")
		}
		if s[j] == '"' {
			r.i = j + 1
			return dst, nil
		}
		// escape
		if j+1 >= len(s) {
			r.i = j
			return dst, r.fail("unterminated string")
		}
		switch c := s[j+1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
			i = j + 2
		case 'b':
			dst = append(dst, '\b')
			i = j + 2
		case 'f':
			dst = append(dst, '\f')
			i = j + 2
		case 'n':
			dst = append(dst, '\n')
			i = j + 2
		case 'r':
			dst = append(dst, '\r')
			i = j + 2
		case 't':
			dst = append(dst, '\t')
			i = j + 2
		case 'u':
			c1, ok := hex4(s, j+2)
			if !ok {
				r.i = j
				return dst, r.fail("invalid \\u escape")
			}
			i = j + 6
			ru := rune(c1)
			if utf16.IsSurrogate(ru) {
				ru = utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if c2, ok := hex4(s, i+2); ok {
						if d := utf16.DecodeRune(rune(c1), rune(c2)); d != utf8.RuneError {
							ru = d
							i += 6
						}
					}
				}
			}
			dst = utf8.AppendRune(dst, ru)
		default:
			r.i = j
			return dst, r.fail("invalid escape in string")
		}
	}
}

func hex4(s string, i int) (int, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v := 0
	for k := i; k < i+4; k++ {
		c := s[k]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// array reads an array: scalars are joined with ","; an array holding
// objects or arrays is returned as its JSON text.
func (r *jsonReader) array(depth int) (string, byte, error) {
	if depth >= maxJSONDepth {
		return "", 0, r.fail("nesting too deep")
	}
	start := r.i
	r.i++ // '['
	r.ws()
	if r.i < len(r.s) && r.s[r.i] == ']' {
		r.i++
		return "", 'a', nil
	}
	js := r.js
	j0 := len(js.join)
	complex := false
	n := 0
	var first string
	for {
		r.ws()
		if r.i >= len(r.s) {
			return "", 0, r.fail("unterminated array")
		}
		switch c := r.s[r.i]; c {
		case '{', '[':
			complex = true
			if err := r.skip(depth + 1); err != nil {
				return "", 0, err
			}
		default:
			var v string
			var err error
			if c == '"' {
				v, err = r.str()
			} else {
				v, _, err = r.scalar()
			}
			if err != nil {
				return "", 0, err
			}
			if !complex && v != "" {
				switch n {
				case 0:
					first = v
				case 1:
					js.join = append(js.join, first...)
					fallthrough
				default:
					js.join = append(js.join, ',')
					js.join = append(js.join, v...)
				}
				n++
			}
		}
		r.ws()
		if r.i >= len(r.s) {
			return "", 0, r.fail("unterminated array")
		}
		if r.s[r.i] == ',' {
			r.i++
			continue
		}
		if r.s[r.i] == ']' {
			r.i++
			break
		}
		return "", 0, r.fail("expected ',' or ']' in array")
	}
	if complex {
		js.join = js.join[:j0]
		return r.s[start:r.i], 'r', nil
	}
	if n <= 1 {
		return first, 'a', nil
	}
	v := string(js.join[j0:])
	js.join = js.join[:j0]
	return v, 'a', nil
}

// skip validates and steps over one value.
func (r *jsonReader) skip(depth int) error {
	if depth >= maxJSONDepth {
		return r.fail("nesting too deep")
	}
	if r.i >= len(r.s) {
		return r.fail("unexpected end of input, expected a value")
	}
	switch r.s[r.i] {
	case '{':
		r.i++
		r.ws()
		if r.i < len(r.s) && r.s[r.i] == '}' {
			r.i++
			return nil
		}
		for {
			r.ws()
			if r.i >= len(r.s) || r.s[r.i] != '"' {
				return r.fail("expected a string key")
			}
			if err := r.skipString(); err != nil {
				return err
			}
			r.ws()
			if r.i >= len(r.s) || r.s[r.i] != ':' {
				return r.fail("expected ':' after object key")
			}
			r.i++
			r.ws()
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			r.ws()
			if r.i >= len(r.s) {
				return r.fail("unterminated object")
			}
			if r.s[r.i] == ',' {
				r.i++
				continue
			}
			if r.s[r.i] == '}' {
				r.i++
				return nil
			}
			return r.fail("expected ',' or '}' in object")
		}
	case '[':
		r.i++
		r.ws()
		if r.i < len(r.s) && r.s[r.i] == ']' {
			r.i++
			return nil
		}
		for {
			r.ws()
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			r.ws()
			if r.i >= len(r.s) {
				return r.fail("unterminated array")
			}
			if r.s[r.i] == ',' {
				r.i++
				continue
			}
			if r.s[r.i] == ']' {
				r.i++
				return nil
			}
			return r.fail("expected ',' or ']' in array")
		}
	case '"':
		return r.skipString()
	default:
		_, _, err := r.scalar()
		return err
	}
}

// skipString validates and steps over a string.
func (r *jsonReader) skipString() error {
	s := r.s
	i := r.i + 1
	for i < len(s) {
		switch s[i] {
		case '"':
			r.i = i + 1
			return nil
		case '\\':
			if i+1 >= len(s) {
				r.i = i
				return r.fail("unterminated string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(s, i+2); !ok {
					r.i = i
					return r.fail("invalid \\u escape")
				}
				i += 6
			default:
				r.i = i
				return r.fail("invalid escape in string")
			}
			continue
		}
		i++
	}
	r.i = i
	return r.fail("unterminated string")
}

// jsonScalarKind reports what whole-text JSON value s is when it is valid
// JSON but not an object ("array", "string", "number", "boolean", "null"),
// else "".
func jsonScalarKind(s string) string {
	var js jsonScratch
	r := jsonReader{s: s, js: &js}
	r.ws()
	if r.i >= len(s) {
		return ""
	}
	var kind string
	switch c := s[r.i]; {
	case c == '[':
		kind = "array"
	case c == '"':
		kind = "string"
	case c == 't' || c == 'f':
		kind = "boolean"
	case c == 'n':
		kind = "null"
	case c == '-' || isDigit(c):
		kind = "number"
	default:
		return ""
	}
	if r.skip(0) != nil {
		return ""
	}
	r.ws()
	if r.i != len(s) {
		return ""
	}
	return kind
}
