package pattern

import (
	"strconv"
	"strings"
)

// FLevel is the ClamAV functionality level whose signature syntax this
// engine follows (ClamAV 1.4). Signatures whose minimum level is higher, or
// whose maximum level is lower, are skipped at load time as ClamAV would;
// records hold only signatures that passed this gate.
const FLevel = 210

func parseFLevel(s string) (int, error) {
	if s == "" || len(s) > 6 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, syntaxf("functionality level %q is not a number", trunc(s))
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

func checkMinFLevel(s string) error {
	if s == "" {
		return nil
	}
	n, err := parseFLevel(s)
	if err != nil {
		return err
	}
	if n > FLevel {
		return unsupportedf("needs functionality level %d (engine has %d)", n, FLevel)
	}
	return nil
}

func checkMaxFLevel(s string) error {
	if s == "" {
		return nil
	}
	n, err := parseFLevel(s)
	if err != nil {
		return err
	}
	if n < FLevel {
		return unsupportedf("retired at functionality level %d (engine has %d)", n, FLevel)
	}
	return nil
}

// parseTarget maps a ClamAV target type to the file types this engine can
// tell apart.
func parseTarget(s string) (fileType, error) {
	if s == "" || len(s) > 3 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, syntaxf("target %q is not a number", trunc(s))
	}
	n, _ := strconv.Atoi(s)
	switch n {
	case 0:
		return typeOther, nil
	case 1:
		return typePE, nil
	case 6:
		return typeELF, nil
	case 9:
		return typeMachO, nil
	case 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14:
		return 0, unsupportedf("target type %d (%s) is not evaluated", n, targetNames[n])
	}
	return 0, syntaxf("unknown target type %d", n)
}

var targetNames = map[int]string{
	2: "OLE2", 3: "normalised HTML", 4: "mail", 5: "graphics", 7: "normalised text",
	8: "unused", 10: "PDF", 11: "Flash", 12: "Java class", 13: "internal", 14: "other",
}

func checkOffsetTarget(o offset, t fileType) error {
	if o.kind == offEOF && o.n > maxEOFTail {
		return limitf("EOF-%d: offsets more than %d bytes before the end are not evaluated", o.n, maxEOFTail)
	}
	if !o.peRelative() || t == typePE {
		return nil
	}
	if t == typeOther {
		return syntaxf("offset %s needs target 1 (PE)", o)
	}
	return unsupportedf("offset %s: ELF and Mach-O entry points and sections are not evaluated", o)
}

// parseNDBLine parses "name:target:offset:hexsig[:minflevel[:maxflevel]]".
func parseNDBLine(line string) (Record, error) {
	f := strings.Split(line, ":")
	if len(f) < 4 || len(f) > 6 {
		return Record{}, syntaxf("body signature needs 4 to 6 ':'-separated fields, has %d", len(f))
	}
	r := Record{Kind: KindBody, Name: f[0]}
	if err := validName(f[0]); err != nil {
		return r, err
	}
	if len(f) >= 5 {
		if err := checkMinFLevel(f[4]); err != nil {
			return r, err
		}
	}
	if len(f) == 6 {
		if err := checkMaxFLevel(f[5]); err != nil {
			return r, err
		}
	}
	data, err := normalizeBody(f[1] + ":" + f[2] + ":" + f[3])
	r.Data = data
	return r, err
}

type bodyDef struct {
	target fileType
	off    offset
	toks   []tok
}

func parseBodyData(data string) (bodyDef, error) {
	var d bodyDef
	f := strings.SplitN(data, ":", 3)
	if len(f) != 3 {
		return d, syntaxf("body data needs \"<target>:<offset>:<hexsig>\"")
	}
	var err error
	if d.target, err = parseTarget(f[0]); err != nil {
		return d, err
	}
	if d.off, err = parseOffset(f[1]); err != nil {
		return d, err
	}
	if err = checkOffsetTarget(d.off, d.target); err != nil {
		return d, err
	}
	if d.toks, err = parseHexSig(f[2]); err != nil {
		return d, err
	}
	return d, nil
}

func targetNumber(t fileType) int { return int(t) }

func (d bodyDef) String() string {
	return strconv.Itoa(targetNumber(d.target)) + ":" + d.off.String() + ":" + formatHexSig(d.toks)
}

// compile builds the pattern; owner and sub are filled in by the caller.
func (d bodyDef) compile(m bodyMods) (bodyPat, error) {
	segs, sep, err := compileTokens(d.toks, m)
	if err != nil {
		return bodyPat{}, err
	}
	return bodyPat{segs: segs, sepMin: sep, off: d.off, target: d.target, fullword: m.fullword, eof: d.off.kind == offEOF, sub: -1}, nil
}

// normalizeBody validates body data fully (including that it can be
// compiled) and returns its canonical text.
func normalizeBody(data string) (string, error) {
	d, err := parseBodyData(data)
	if err != nil {
		return "", err
	}
	if _, err := d.compile(bodyMods{}); err != nil {
		return "", err
	}
	return d.String(), nil
}
