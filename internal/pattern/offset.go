package pattern

import (
	"strconv"
	"strings"
)

// offKind is the reference point of a ClamAV signature offset.
type offKind uint8

const (
	offAny  offKind = iota // *
	offAbs                 // n
	offEOF                 // EOF-n
	offEP                  // EP+n, EP-n (PE entry point, as a file offset)
	offSect                // Sx+n (start of PE section x's raw data)
	offLast                // SL+n (start of the last PE section's raw data)
)

// offset is a parsed ClamAV offset: the first byte of a match must lie in
// [ref+n, ref+n+shift].
type offset struct {
	kind  offKind
	n     int64
	sect  int
	shift int64
}

// maxOffset bounds offsets and shifts; ClamAV stores them in 32 bits.
const maxOffset = 1<<32 - 1

func parseOffNum(s string) (int64, error) {
	if s == "" {
		return 0, syntaxf("missing number in offset")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, syntaxf("bad number %q in offset", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxOffset {
		return 0, syntaxf("offset number %q out of range", s)
	}
	return n, nil
}

// parseOffset parses a ClamAV offset. Forms this engine cannot evaluate
// (SEx, VI, macros) are reported as ErrUnsupported.
func parseOffset(s string) (offset, error) {
	if s == "*" {
		return offset{kind: offAny}, nil
	}
	base, shiftText, hasShift := strings.Cut(s, ",")
	var o offset
	if hasShift {
		sh, err := parseOffNum(shiftText)
		if err != nil {
			return o, err
		}
		o.shift = sh
	}
	var err error
	switch {
	case base == "":
		return o, syntaxf("empty offset")
	case base[0] >= '0' && base[0] <= '9':
		o.kind = offAbs
		o.n, err = parseOffNum(base)
	case strings.HasPrefix(base, "EOF-"):
		o.kind = offEOF
		o.n, err = parseOffNum(base[4:])
	case strings.HasPrefix(base, "EP+"), strings.HasPrefix(base, "EP-"):
		o.kind = offEP
		o.n, err = parseOffNum(base[3:])
		if base[2] == '-' {
			o.n = -o.n
		}
	case strings.HasPrefix(base, "SL+"):
		o.kind = offLast
		o.n, err = parseOffNum(base[3:])
	case strings.HasPrefix(base, "SE"):
		return o, unsupportedf("offset %q: whole-section (SEx) offsets are not evaluated", s)
	case base[0] == 'S':
		sect, n, ok := strings.Cut(base[1:], "+")
		if !ok {
			return o, syntaxf("bad section offset %q", s)
		}
		o.kind = offSect
		var x int64
		if x, err = parseOffNum(sect); err == nil && x > 95 {
			err = syntaxf("section index %d out of range (PE allows 96 sections)", x)
		}
		o.sect = int(x)
		if err == nil {
			o.n, err = parseOffNum(n)
		}
	case base == "VI":
		return o, unsupportedf("offset VI (PE version information) is not evaluated")
	case base[0] == '$':
		return o, unsupportedf("offset macro %q", s)
	default:
		return o, syntaxf("bad offset %q", s)
	}
	return o, err
}

func (o offset) peRelative() bool {
	return o.kind == offEP || o.kind == offSect || o.kind == offLast
}

func (o offset) String() string {
	var s string
	switch o.kind {
	case offAny:
		return "*"
	case offAbs:
		s = strconv.FormatInt(o.n, 10)
	case offEOF:
		s = "EOF-" + strconv.FormatInt(o.n, 10)
	case offEP:
		if o.n < 0 {
			s = "EP-" + strconv.FormatInt(-o.n, 10)
		} else {
			s = "EP+" + strconv.FormatInt(o.n, 10)
		}
	case offSect:
		s = "S" + strconv.Itoa(o.sect) + "+" + strconv.FormatInt(o.n, 10)
	case offLast:
		s = "SL+" + strconv.FormatInt(o.n, 10)
	}
	if o.shift > 0 {
		s += "," + strconv.FormatInt(o.shift, 10)
	}
	return s
}

// resolve returns the range the match start must lie in for this object,
// or ok=false when the reference point does not exist (not a PE, section
// missing, EOF offset before the start of the object).
func (o offset) resolve(obj *objInfo) (lo, hi int64, ok bool) {
	var ref int64
	switch o.kind {
	case offAny:
		return 0, 1<<62 - 1, true
	case offAbs:
		ref = 0
	case offEOF:
		if obj.size < 0 {
			return 0, 0, false
		}
		ref = obj.size
		lo, hi = ref-o.n, ref-o.n+o.shift
		if hi < 0 {
			return 0, 0, false
		}
		return max(lo, 0), hi, true
	case offEP:
		if obj.pe == nil || !obj.pe.epOK {
			return 0, 0, false
		}
		ref = obj.pe.ep
	case offSect:
		if obj.pe == nil || o.sect >= len(obj.pe.sections) {
			return 0, 0, false
		}
		ref = obj.pe.sections[o.sect].raw
	case offLast:
		if obj.pe == nil || len(obj.pe.sections) == 0 {
			return 0, 0, false
		}
		ref = obj.pe.sections[len(obj.pe.sections)-1].raw
	}
	lo, hi = ref+o.n, ref+o.n+o.shift
	if hi < 0 {
		return 0, 0, false
	}
	return max(lo, 0), hi, true
}
