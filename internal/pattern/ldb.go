package pattern

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// Logical signatures (.ldb): name;TargetDescriptionBlock;Expression;Subsig0;...

// maxSubsigs is ClamAV's limit (subsignature sets are 64-bit masks there
// and here).
const maxSubsigs = 64

// tdb is the part of a target description block this engine evaluates.
type tdb struct {
	target       fileType
	fileSize     [2]int64
	entryPoint   [2]int64
	nsections    [2]int64
	hasFS, hasEP bool
	hasNS        bool
}

func parseRangeVal(s string) ([2]int64, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err := parseOffNum(lo)
	if err != nil {
		return [2]int64{}, err
	}
	if !ok {
		return [2]int64{a, a}, nil
	}
	b, err := parseOffNum(hi)
	if err != nil {
		return [2]int64{}, err
	}
	if b < a {
		return [2]int64{}, syntaxf("range %q has max < min", s)
	}
	return [2]int64{a, b}, nil
}

func parseTDB(s string) (tdb, error) {
	var t tdb
	hasTarget := false
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return t, syntaxf("target description %q is not Key:Value", trunc(kv))
		}
		var err error
		switch k {
		case "Engine":
			r, e := parseRangeVal(v)
			switch {
			case e != nil:
				err = e
			case r[0] > FLevel:
				err = unsupportedf("needs functionality level %d (engine has %d)", r[0], FLevel)
			case r[1] < FLevel:
				err = unsupportedf("retired at functionality level %d (engine has %d)", r[1], FLevel)
			}
		case "Target":
			t.target, err = parseTarget(v)
			hasTarget = true
		case "FileSize":
			t.fileSize, err = parseRangeVal(v)
			t.hasFS = true
		case "EntryPoint":
			t.entryPoint, err = parseRangeVal(v)
			t.hasEP = true
		case "NumberOfSections":
			t.nsections, err = parseRangeVal(v)
			t.hasNS = true
		case "Container", "Intermediates", "IconGroup1", "IconGroup2", "HandlerType":
			err = unsupportedf("target description %s is not evaluated", k)
		default:
			err = syntaxf("unknown target description key %q", trunc(k))
		}
		if err != nil {
			return t, err
		}
	}
	if !hasTarget {
		return t, syntaxf("target description has no Target")
	}
	if (t.hasEP || t.hasNS) && t.target != typePE {
		return t, unsupportedf("EntryPoint/NumberOfSections are only evaluated for Target:1 (PE)")
	}
	return t, nil
}

func fmtRange(r [2]int64) string {
	if r[0] == r[1] {
		return strconv.FormatInt(r[0], 10)
	}
	return strconv.FormatInt(r[0], 10) + "-" + strconv.FormatInt(r[1], 10)
}

func (t tdb) String() string {
	s := "Target:" + strconv.Itoa(targetNumber(t.target))
	if t.hasFS {
		s += ",FileSize:" + fmtRange(t.fileSize)
	}
	if t.hasEP {
		s += ",EntryPoint:" + fmtRange(t.entryPoint)
	}
	if t.hasNS {
		s += ",NumberOfSections:" + fmtRange(t.nsections)
	}
	return s
}

func inRange(v int64, r [2]int64) bool { return v >= r[0] && v <= r[1] }

// accepts checks the conditions that depend on the whole object.
func (t *tdb) accepts(obj *objInfo) bool {
	if t.target != typeOther && t.target != obj.ftype {
		return false
	}
	if t.hasFS && !inRange(obj.size, t.fileSize) {
		return false
	}
	if t.hasEP && (obj.pe == nil || !obj.pe.epOK || !inRange(obj.pe.ep, t.entryPoint)) {
		return false
	}
	if t.hasNS && (obj.pe == nil || !inRange(int64(len(obj.pe.sections)), t.nsections)) {
		return false
	}
	return true
}

// lnode is a node of a logical expression.
type lnode struct {
	op     byte // 0: leaf; '&' or '|': binary
	id     int
	l, r   *lnode
	mod    byte // 0, '=', '<' or '>'
	v1, v2 int
}

const maxExprDepth = 64

// parseLExpr parses a logical expression with ClamAV's grouping rules: at
// the top level the first operator splits the expression; inside a
// parenthesised block the last one does. The canonical text written by
// String parenthesises every nested operation, so it reads the same under
// both rules.
func parseLExpr(s string) (*lnode, error) {
	if len(s) > 1<<16 {
		return nil, limitf("logical expression longer than 64 KiB")
	}
	return parseLExprAt(s, false, 0)
}

func parseLExprAt(s string, inBlock bool, depth int) (*lnode, error) {
	if depth > maxExprDepth {
		return nil, syntaxf("logical expression nested deeper than %d", maxExprDepth)
	}
	if s == "" {
		return nil, syntaxf("empty logical (sub)expression")
	}
	pth, split := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			pth++
		case ')':
			pth--
			if pth < 0 {
				return nil, syntaxf("unbalanced ')' in logical expression")
			}
		case '&', '|':
			if pth == 0 && (split < 0 || inBlock) {
				split = i
			}
		}
	}
	if pth != 0 {
		return nil, syntaxf("unbalanced '(' in logical expression")
	}
	if split >= 0 {
		l, err := parseLExprAt(s[:split], false, depth+1)
		if err != nil {
			return nil, err
		}
		r, err := parseLExprAt(s[split+1:], false, depth+1)
		if err != nil {
			return nil, err
		}
		return &lnode{op: s[split], l: l, r: r}, nil
	}
	if s[0] == '(' {
		pth, end := 0, -1
		for i := 0; i < len(s) && end < 0; i++ {
			switch s[i] {
			case '(':
				pth++
			case ')':
				if pth--; pth == 0 {
					end = i
				}
			}
		}
		inner, err := parseLExprAt(s[1:end], true, depth+1)
		if err != nil {
			return nil, err
		}
		rest := s[end+1:]
		if rest == "" {
			return inner, nil
		}
		// A counted block: (expr)=n, (expr)>n,m ...
		blk := &lnode{op: '(', l: inner}
		if err := parseMod(blk, rest, true); err != nil {
			return nil, err
		}
		return blk, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return nil, syntaxf("unexpected %q in logical expression", trunc(s))
	}
	id, err := strconv.Atoi(s[:i])
	if err != nil || id >= maxSubsigs {
		return nil, syntaxf("subsignature index %q out of range", s[:i])
	}
	n := &lnode{id: id}
	if i < len(s) {
		if err := parseMod(n, s[i:], false); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func parseMod(n *lnode, s string, block bool) error {
	if s[0] != '=' && s[0] != '<' && s[0] != '>' {
		return syntaxf("unexpected %q in logical expression", trunc(s))
	}
	n.mod = s[0]
	a, b, two := strings.Cut(s[1:], ",")
	v, err := strconv.ParseUint(a, 10, 16)
	if err != nil || strings.TrimLeft(a, "0123456789") != "" {
		return syntaxf("bad count %q after %c", trunc(a), s[0])
	}
	n.v1 = int(v)
	if two {
		if !block {
			return syntaxf("\",n\" distinct-count only applies to a parenthesised group")
		}
		v, err := strconv.ParseUint(b, 10, 16)
		if err != nil || strings.TrimLeft(b, "0123456789") != "" || v == 0 {
			return syntaxf("bad distinct count %q", trunc(b))
		}
		n.v2 = int(v)
	}
	return nil
}

func (n *lnode) String() string {
	var sb strings.Builder
	n.write(&sb)
	return sb.String()
}

func (n *lnode) write(sb *strings.Builder) {
	switch n.op {
	case 0:
		sb.WriteString(strconv.Itoa(n.id))
	case '(':
		sb.WriteByte('(')
		n.l.write(sb)
		sb.WriteByte(')')
	default:
		for i, c := range []*lnode{n.l, n.r} {
			if i == 1 {
				sb.WriteByte(n.op)
			}
			if c.op == '&' || c.op == '|' {
				sb.WriteByte('(')
				c.write(sb)
				sb.WriteByte(')')
			} else {
				c.write(sb)
			}
		}
	}
	if n.mod != 0 {
		sb.WriteByte(n.mod)
		sb.WriteString(strconv.Itoa(n.v1))
		if n.v2 > 0 {
			sb.WriteByte(',')
			sb.WriteString(strconv.Itoa(n.v2))
		}
	}
}

func cmpMod(mod byte, val, want int) bool {
	switch mod {
	case '=':
		return val == want
	case '<':
		return val < want
	case '>':
		return val > want
	}
	return val > 0
}

// eval follows ClamAV's cli_ac_chklsig: a node yields whether it holds,
// the summed match count of the subsignatures that made it hold, and
// their set.
func (n *lnode) eval(counts []uint16) (ok bool, cnt int, ids uint64) {
	switch n.op {
	case 0:
		v := int(counts[n.id])
		if !cmpMod(n.mod, v, n.v1) {
			return false, 0, 0
		}
		return true, v, 1 << uint(n.id)
	case '(':
		iok, icnt, iids := n.l.eval(counts)
		if !iok {
			icnt, iids = 0, 0
		}
		if !cmpMod(n.mod, icnt, n.v1) {
			return false, 0, 0
		}
		if n.v2 > 0 && bits.OnesCount64(iids) < n.v2 {
			return false, 0, 0
		}
		return true, icnt, 0
	}
	lok, lc, li := n.l.eval(counts)
	rok, rc, ri := n.r.eval(counts)
	if n.op == '&' {
		ok = lok && rok
	} else {
		ok = lok || rok
	}
	if !ok {
		return false, 0, 0
	}
	return true, lc + rc, li | ri
}

// walk visits every node.
func (n *lnode) walk(fn func(*lnode)) {
	fn(n)
	if n.l != nil {
		n.l.walk(fn)
	}
	if n.r != nil {
		n.r.walk(fn)
	}
}

// subsig is one parsed .ldb subsignature.
type subsig struct {
	body bodyDef
	mods string // sorted subset of "afiw"
}

func parseSubsig(s string, target fileType) (subsig, error) {
	var ss subsig
	switch {
	case strings.Contains(s, "/"):
		return ss, unsupportedf("PCRE subsignatures are not evaluated")
	case strings.HasPrefix(s, "fuzzy_img#"):
		return ss, unsupportedf("image fuzzy-hash subsignatures are not evaluated")
	case strings.Contains(s, "#"):
		return ss, unsupportedf("byte-compare subsignatures are not evaluated")
	case strings.Contains(s, "$"):
		return ss, unsupportedf("macro subsignatures are not evaluated")
	}
	body, mods, hasMods := strings.Cut(s, "::")
	if hasMods {
		if mods == "" {
			return ss, syntaxf("empty subsignature modifier list")
		}
		var m []byte
		for i := 0; i < len(mods); i++ {
			switch mods[i] {
			case 'a', 'f', 'i', 'w':
				m = append(m, mods[i])
			default:
				return ss, syntaxf("unknown subsignature modifier %q", mods[i])
			}
		}
		slices.Sort(m)
		ss.mods = string(slices.Compact(m))
	}
	off, hexsig := "*", body
	if o, h, ok := strings.Cut(body, ":"); ok {
		off, hexsig = o, h
	}
	d, err := parseBodyData(strconv.Itoa(targetNumber(target)) + ":" + off + ":" + hexsig)
	if err != nil {
		return ss, err
	}
	ss.body = d
	for _, m := range ss.modSets() {
		if _, err := d.compile(m); err != nil {
			return ss, err
		}
	}
	return ss, nil
}

// modSets lists the pattern variants a subsignature compiles to: the wide
// form, the ascii form, or both.
func (ss subsig) modSets() []bodyMods {
	base := bodyMods{nocase: strings.Contains(ss.mods, "i"), fullword: strings.Contains(ss.mods, "f")}
	if !strings.Contains(ss.mods, "w") {
		return []bodyMods{base}
	}
	wide := base
	wide.wide = true
	if strings.Contains(ss.mods, "a") {
		return []bodyMods{base, wide}
	}
	return []bodyMods{wide}
}

func (ss subsig) String() string {
	s := formatHexSig(ss.body.toks)
	if ss.body.off.kind != offAny {
		s = ss.body.off.String() + ":" + s
	}
	if ss.mods != "" {
		s += "::" + ss.mods
	}
	return s
}

// ldbDef is a parsed logical signature (without its name).
type ldbDef struct {
	tdb  tdb
	expr *lnode
	subs []subsig
}

func (l ldbDef) String() string {
	parts := make([]string, 0, 2+len(l.subs))
	parts = append(parts, l.tdb.String(), l.expr.String())
	for _, s := range l.subs {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, ";")
}

// parseLogicalData parses "<tdb>;<expression>;<subsig>..." (an .ldb line
// without its name).
func parseLogicalData(data string) (ldbDef, error) {
	var l ldbDef
	f := strings.Split(data, ";")
	if len(f) < 3 {
		return l, syntaxf("logical signature needs a target description, an expression and at least one subsignature")
	}
	if len(f)-2 > maxSubsigs {
		return l, unsupportedf("%d subsignatures (max %d)", len(f)-2, maxSubsigs)
	}
	var err error
	if l.tdb, err = parseTDB(f[0]); err != nil {
		return l, err
	}
	if l.expr, err = parseLExpr(f[1]); err != nil {
		return l, err
	}
	nsub := len(f) - 2
	var bad error
	l.expr.walk(func(n *lnode) {
		if n.op == 0 && n.id >= nsub && bad == nil {
			bad = syntaxf("expression uses subsignature %d but only %d are given", n.id, nsub)
		}
	})
	if bad != nil {
		return l, bad
	}
	if ok, _, _ := l.expr.eval(make([]uint16, maxSubsigs)); ok {
		return l, unsupportedf("expression %s holds when nothing matches: it would alert on every file", l.expr)
	}
	for i, s := range f[2:] {
		ss, err := parseSubsig(s, l.tdb.target)
		if err != nil {
			return l, wrapSub(i, err)
		}
		l.subs = append(l.subs, ss)
	}
	return l, nil
}

func wrapSub(i int, err error) error {
	return &subErr{i: i, err: err}
}

type subErr struct {
	i   int
	err error
}

func (e *subErr) Error() string { return "subsignature " + strconv.Itoa(e.i) + ": " + e.err.Error() }
func (e *subErr) Unwrap() error { return e.err }

// countCap is how far subsignature matches must be counted for every
// comparison in the expression to come out as with exact counts.
func (l ldbDef) countCap() uint16 {
	c := 1
	l.expr.walk(func(n *lnode) {
		if n.mod != 0 {
			c = max(c, n.v1+1)
		}
	})
	return uint16(min(c, 1<<16-1))
}

// monotone reports whether seeing more of an object can only keep the
// expression true: no "=n"/"<n" comparison and no file-size condition.
func (l ldbDef) monotone() bool {
	ok := !l.tdb.hasFS
	l.expr.walk(func(n *lnode) {
		if n.mod == '=' || n.mod == '<' {
			ok = false
		}
	})
	return ok
}

// parseLDBLine parses one .ldb line into a record.
func parseLDBLine(line string) (Record, error) {
	name, data, ok := strings.Cut(line, ";")
	r := Record{Kind: KindLogical, Name: name}
	if !ok {
		return r, syntaxf("logical signature has no ';'")
	}
	if err := validName(name); err != nil {
		return r, err
	}
	l, err := parseLogicalData(data)
	if err != nil {
		return r, err
	}
	r.Data = l.String()
	return r, nil
}
