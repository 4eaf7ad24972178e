package parse

import (
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/mamori-soc/mamori/internal/event"
)

// The syslog envelope is read in up to three steps:
//
//  1. a strict, allocation-free fast path (parse5424Fast, parseBSD in strict
//     mode) that accepts only well-formed headers; the differential test
//     TestFastPathMatchesGoSyslog checks it agrees with go-syslog;
//  2. go-syslog's machines in best-effort mode for anything the fast path
//     refused, so partial headers still yield fields;
//  3. for RFC 3164 layouts go-syslog does not know (Cisco counters, a year in
//     the stamp, no hostname, ...), parseBSD in loose mode.

// envelope is what the syslog header said.
type envelope struct {
	format  string // "rfc5424", "rfc3164"; "" when there is no envelope
	pri     int    // -1 when absent
	version string
	ts      time.Time
	host    string
	app     string
	procid  string
	msgid   string
	sd      []sdParam
	msg     string
	err     string // why go-syslog stopped early, when it did
}

// sdParam is one RFC 5424 structured-data parameter.
type sdParam struct{ id, name, value string }

var (
	pool5424 = sync.Pool{New: func() any {
		return rfc5424.NewMachine(rfc5424.WithBestEffort())
	}}
	pool3164 = sync.Pool{New: func() any {
		return rfc3164.NewMachine(rfc3164.WithBestEffort(), rfc3164.WithRFC3339(),
			rfc3164.WithLenientDay(), rfc3164.WithSecondFractions(), rfc3164.WithEmbeddedNewlines())
	}}
)

// bytesOf returns the bytes of s without copying. The go-syslog machines
// only read their input and copy what they keep.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// priPrefix parses "<PRI>" at the start of s (PRI 0..191, at most 3 digits,
// no leading zeros beyond "0").
func priPrefix(s string) (pri, n int, ok bool) {
	if len(s) < 3 || s[0] != '<' {
		return 0, 0, false
	}
	i := 1
	for i < len(s) && i <= 4 && s[i] >= '0' && s[i] <= '9' {
		pri = pri*10 + int(s[i]-'0')
		i++
	}
	if i == 1 || i > 4 || i >= len(s) || s[i] != '>' || pri > 191 || (s[1] == '0' && i > 2) {
		return 0, 0, false
	}
	return pri, i + 1, true
}

// isVersion5424 reports whether s starts with an RFC 5424 VERSION (1-3
// digits, no leading zero) followed by a space ("1 ").
func isVersion5424(s string) bool {
	if len(s) < 2 || s[0] < '1' || s[0] > '9' {
		return false
	}
	i := 1
	for i < len(s) && i < 3 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i < len(s) && s[i] == ' '
}

// rfc3339Strict reports whether the k bytes of s that parseISO consumed
// are YYYY-MM-DDThh:mm:ss[.d{1,6}](Z|+hh:mm|-hh:mm), the form go-syslog
// accepts.
func rfc3339Strict(s string, k int) bool {
	if k < 20 || s[10] != 'T' {
		return false
	}
	i := 19
	if s[i] == '.' {
		j := i + 1
		for j < k && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n := j - i - 1; n < 1 || n > 6 {
			return false
		}
		i = j
	}
	if i >= k {
		return false
	}
	switch s[i] {
	case 'Z':
		return i+1 == k
	case '+', '-':
		return k-i == 6 && s[i+3] == ':'
	}
	return false
}

// mayHaveStamp reports whether s (after <PRI>) can start with a timestamp
// go-syslog's rfc3164 machine reads; when not, running it is pointless.
func mayHaveStamp(s string) bool {
	s = trimSP(s)
	if monthIndex(s) != 0 {
		return true
	}
	return len(s) > 4 && s[4] == '-' && s[0] >= '0' && s[0] <= '9'
}

// parseSyslog reads the envelope of a message that starts with <PRI>.
func (p *Parser) parseSyslog(text string, pri, n int, ref time.Time, env *envelope) {
	rest := text[n:]
	if isVersion5424(rest) {
		env.format = "rfc5424"
		if parse5424Fast(text, n, env) {
			env.pri = pri
			return
		}
		*env = envelope{format: "rfc5424"}
		parse5424Machine(text, n, env)
		env.pri = pri
		return
	}
	env.format = "rfc3164"
	env.pri = pri
	if parseBSD(rest, true, ref, p.loc(), env) {
		return
	}
	if mayHaveStamp(rest) && parse3164Machine(text, ref, p.loc(), env) {
		// rsyslog's RSYSLOG_ForwardFormat writes the tag of an RFC 5424
		// input as "app[pid]" with no colon; go-syslog leaves it in the message.
		if env.app == "" {
			tok, after, _ := strings.Cut(env.msg, " ")
			if app, pid, ok := bareTag(tok); ok && after != "" {
				env.app, env.procid, env.msg = app, pid, trimSP(after)
			}
		}
		return
	}
	var loose envelope
	if parseBSD(rest, false, ref, p.loc(), &loose) {
		loose.format, loose.pri = "rfc3164", pri
		*env = loose
		return
	}
	// Only the PRI is usable: everything after it is the message.
	env.msg = rest
	env.err = ""
}

func isPrintUS(c byte) bool { return c >= 33 && c <= 126 }

// header5424Field reads one SP-terminated RFC 5424 header field of 1..max
// PRINTUSASCII at s[i:]; "-" is the nil value.
func header5424Field(s string, i, max int) (string, int, bool) {
	j := i
	for j < len(s) && isPrintUS(s[j]) {
		j++
	}
	if j == i || j-i > max || j >= len(s) || s[j] != ' ' {
		return "", 0, false
	}
	v := s[i:j]
	if v == "-" {
		v = ""
	}
	return v, j + 1, true
}

func isSDName(c byte) bool { return isPrintUS(c) && c != '=' && c != ']' && c != '"' }

// parse5424Fast parses a well-formed RFC 5424 message (PRI already checked,
// n is the index after '>'). It refuses anything unusual so go-syslog can
// decide; on success every field is a substring of s (no copies).
func parse5424Fast(s string, n int, env *envelope) bool {
	j := n
	for j < len(s) && s[j] != ' ' {
		j++
	}
	env.version = s[n:j]
	j++
	if j >= len(s) {
		return false
	}
	if s[j] == '-' {
		j++
	} else {
		// RFC3339 with 'T', 1-6 fraction digits and a mandatory offset.
		t, k, ok := parseISO(s[j:], false, time.UTC)
		if !ok || !rfc3339Strict(s[j:], k) {
			return false
		}
		env.ts = t
		j += k
	}
	if j >= len(s) || s[j] != ' ' {
		return false
	}
	var ok bool
	if env.host, j, ok = header5424Field(s, j+1, 255); !ok {
		return false
	}
	if env.app, j, ok = header5424Field(s, j, 48); !ok {
		return false
	}
	if env.procid, j, ok = header5424Field(s, j, 128); !ok {
		return false
	}
	if env.msgid, j, ok = header5424Field(s, j, 32); !ok {
		return false
	}
	if j >= len(s) {
		return false
	}
	if s[j] == '-' {
		j++
	} else {
		sdStart := len(env.sd)
		for j < len(s) && s[j] == '[' {
			j++
			k := j
			for j < len(s) && isSDName(s[j]) {
				j++
			}
			if j == k || j-k > 32 {
				return false
			}
			id := s[k:j]
			for _, q := range env.sd[sdStart:] {
				if q.id == id {
					return false // duplicate SD-ID: let go-syslog decide
				}
			}
			nparams := 0
			for j < len(s) && s[j] == ' ' {
				j++
				k = j
				for j < len(s) && isSDName(s[j]) {
					j++
				}
				if j == k || j-k > 32 || j+1 >= len(s) || s[j] != '=' || s[j+1] != '"' {
					return false
				}
				name := s[k:j]
				j += 2
				k = j
				esc := false
				for j < len(s) && s[j] != '"' {
					switch s[j] {
					case '\\':
						if j+1 < len(s) && (s[j+1] == '"' || s[j+1] == '\\' || s[j+1] == ']') {
							esc = true
							j += 2
							continue
						}
						return false // go-syslog refuses other escapes
					case ']':
						return false
					}
					j++
				}
				if j >= len(s) {
					return false
				}
				v := s[k:j]
				if esc {
					v = unescapeSD(v)
				}
				j++
				env.sd = append(env.sd, sdParam{id, name, v})
				nparams++
			}
			if j >= len(s) || s[j] != ']' {
				return false
			}
			if nparams == 0 {
				env.sd = append(env.sd, sdParam{id: id})
			}
			j++
		}
		if len(env.sd) == sdStart {
			return false
		}
	}
	if j == len(s) {
		return true
	}
	if s[j] != ' ' {
		return false
	}
	env.msg = s[j+1:]
	return true
}

// unescapeSD removes the backslash of \" \\ \] in an SD PARAM-VALUE.
func unescapeSD(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parse5424Machine runs go-syslog's RFC 5424 machine in best-effort mode.
func parse5424Machine(text string, n int, env *envelope) {
	m := pool5424.Get().(syslog.Machine)
	msg, err := m.Parse(bytesOf(text))
	pool5424.Put(m)
	sm, _ := msg.(*rfc5424.SyslogMessage)
	if sm == nil {
		env.msg = text[n:]
		if err != nil {
			env.err = "syslog: " + err.Error()
		}
		return
	}
	if sm.Version != 0 {
		env.version = strconv.Itoa(int(sm.Version))
	}
	if sm.Timestamp != nil {
		env.ts = sm.Timestamp.UTC()
	}
	env.host, env.app, env.procid, env.msgid = deref(sm.Hostname), deref(sm.Appname), deref(sm.ProcID), deref(sm.MsgID)
	if sm.StructuredData != nil {
		for id, params := range *sm.StructuredData {
			if len(params) == 0 {
				env.sd = append(env.sd, sdParam{id: id})
			}
			for k, v := range params {
				env.sd = append(env.sd, sdParam{id, k, v})
			}
		}
	}
	if sm.Message != nil {
		env.msg = *sm.Message
	}
	if err != nil {
		env.err = "syslog: " + err.Error()
		if sm.Message == nil {
			// The header stopped early: keep everything after <PRI> as the
			// message so nothing is lost.
			env.msg = text[n:]
		}
	}
}

// parse3164Machine runs go-syslog's RFC 3164 machine. It returns false when
// the result lacks a timestamp (the loose parser may do better).
func parse3164Machine(text string, ref time.Time, loc *time.Location, env *envelope) bool {
	m := pool3164.Get().(syslog.Machine)
	msg, err := m.Parse(bytesOf(text))
	pool3164.Put(m)
	sm, _ := msg.(*rfc3164.SyslogMessage)
	if sm == nil || sm.Timestamp == nil || err != nil && sm.Message == nil {
		return false
	}
	t := *sm.Timestamp
	if _, n, _ := priPrefix(text); t.Year() == 0 && !strings.HasPrefix(trimSP(text[n:]), "0000-") {
		// A BSD stamp has no year (an RFC 3339 one may say 0000).
		st := bsdStamp{0, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()}
		env.ts = yearFor(st, ref, loc)
	} else {
		env.ts = t.UTC()
	}
	env.host, env.app, env.procid = deref(sm.Hostname), deref(sm.Appname), deref(sm.ProcID)
	env.msg = deref(sm.Message)
	if p := env.procid; p != "" && len(env.msg) > len(p) && strings.HasPrefix(env.msg, p) && env.msg[len(p)] == ']' {
		// "tag[pid] text" without ':': go-syslog cut "tag[" off the message.
		if k := len(text) - len(env.msg) - len(env.app) - 1; k >= 0 && text[k+len(env.app)] == '[' && text[k:k+len(env.app)] == env.app {
			env.msg = text[k:]
		}
		env.app, env.procid = "", ""
	}
	if env.app != "" && !tagBefore(text, env.msg, env.app, env.procid) {
		// go-syslog keeps a tag candidate it then rejected (no ": " after
		// it) while the message starts at the candidate.
		env.app, env.procid = "", ""
	}
	if err != nil {
		env.err = "syslog: " + err.Error()
	}
	return true
}

// tagBefore reports whether text, which ends with msg, has "app: " or
// "app[pid]: " right before msg.
func tagBefore(text, msg, app, pid string) bool {
	if len(msg) > len(text) || text[len(text)-len(msg):] != msg {
		return false
	}
	pre, ok := strings.CutSuffix(text[:len(text)-len(msg)], ": ")
	if !ok {
		return false
	}
	if pid == "" && strings.HasSuffix(pre, app) {
		return true
	}
	if p, ok := strings.CutSuffix(pre, "]"); ok {
		if p, ok = strings.CutSuffix(p, pid); ok {
			if p, ok = strings.CutSuffix(p, "["); ok {
				return strings.HasSuffix(p, app)
			}
		}
	}
	return false
}

// parseBSD parses an RFC 3164 style header "TIMESTAMP HOST TAG[PID]: MSG"
// (s starts after <PRI>, or is a whole line read from a file).
//
// strict accepts only what go-syslog's rfc3164 machine accepts in the same
// way (plain "Mmm dd hh:mm:ss" or RFC 3339 stamp, a hostname and a tag): it
// is the fast path. Loose mode also takes a Cisco counter/sequence prefix,
// '*' before the stamp, a year in the stamp, ISO stamps with a space or
// without an offset, a ':' after the stamp and a missing hostname.
func parseBSD(s string, strict bool, ref time.Time, loc *time.Location, env *envelope) bool {
	i := 0
	if !strict {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		// Cisco "123: " message counter / "000123: " sequence number.
		for k := 0; k < 2; k++ {
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j > i && j+1 < len(s) && s[j] == ':' && s[j+1] == ' ' {
				i = j + 2
				for i < len(s) && s[i] == ' ' {
					i++
				}
			} else {
				break
			}
		}
		if i < len(s) && (s[i] == '*' || s[i] == '.') {
			i++
		}
	}
	if i >= len(s) {
		return false
	}
	var ts time.Time
	if s[i] >= '0' && s[i] <= '9' {
		t, k, ok := parseISO(s[i:], !strict, loc)
		if !ok {
			return false
		}
		if strict && !rfc3339Strict(s[i:], k) {
			return false
		}
		ts = t
		i += k
	} else {
		st, k, ok := parseBSDStamp(s[i:])
		if !ok {
			return false
		}
		if strict {
			// "Mmm dd hh:mm:ss": month as spelled in time.Stamp, day field
			// exactly 2 chars, no year, fraction of 1-6 digits.
			if s[i:i+3] != time.Month(st.month).String()[:3] || st.year != 0 || s[i+4] == ' ' && (s[i+5] < '1' || s[i+5] > '9') || s[i+6] != ' ' {
				return false
			}
			if k > 15 && (s[i+15] != '.' || k-16 > 6) {
				return false
			}
		}
		ts = stampTime(st, ref, loc)
		i += k
	}
	if !strict && i < len(s) && s[i] == ':' {
		i++
	}
	if i < len(s) && s[i] != ' ' {
		return false
	}
	for i < len(s) && s[i] == ' ' {
		i++
		if strict {
			break
		}
	}
	env.ts = ts
	if i >= len(s) {
		if strict {
			return false
		}
		env.msg = ""
		return true
	}
	// First token: hostname, unless it is already the tag.
	j := i
	for j < len(s) && s[j] != ' ' {
		j++
	}
	tok := s[i:j]
	if app, pid, ok := bsdTag(tok); ok && !strict {
		env.app, env.procid = app, pid
		env.msg = trimSP(s[j:])
		return true
	}
	if !validHost(tok, strict) || j >= len(s) {
		if strict {
			return false
		}
		env.msg = s[i:]
		return true
	}
	env.host = tok
	i = j + 1
	if strict && (i >= len(s) || s[i] == ' ') {
		return false
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if !strict && strings.HasPrefix(s[i:], ": ") {
		// "host : tag: msg" (Cisco ASA with device-id)
		i += 2
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	j = i
	for j < len(s) && s[j] != ' ' {
		j++
	}
	if app, pid, ok := bsdTag(s[i:j]); ok {
		if strict && (j+1 >= len(s) || s[j+1] == '\n' || s[j+1] == '\r' || len(app) > 48 || !printASCII(pid)) {
			return false
		}
		env.app, env.procid = app, pid
		if j+1 <= len(s) {
			env.msg = s[min(j+1, len(s)):]
		}
		if !strict {
			env.msg = trimSP(env.msg)
		}
		return true
	}
	if strict && (i >= len(s) || strings.IndexByte(s[i:j], '[') >= 0) {
		return false // an odd tag: let go-syslog decide
	}
	env.msg = s[i:]
	return true
}

// printASCII reports whether s is printable ASCII without spaces.
func printASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isPrintUS(s[i]) {
			return false
		}
	}
	return true
}

func trimSP(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

// bsdTag reports whether tok is "tag:" or "tag[pid]:" and splits it.
func bsdTag(tok string) (app, pid string, ok bool) {
	if len(tok) < 2 || tok[len(tok)-1] != ':' {
		return "", "", false
	}
	t := tok[:len(tok)-1]
	if k := strings.IndexByte(t, '['); k >= 0 {
		if k == 0 || t[len(t)-1] != ']' {
			return "", "", false
		}
		pid = t[k+1 : len(t)-1]
		if strings.IndexByte(pid, '[') >= 0 || strings.IndexByte(pid, ']') >= 0 {
			return "", "", false
		}
		t = t[:k]
	}
	if len(t) == 0 || len(t) > 48 {
		return "", "", false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < 33 || c > 126 || c == ':' || c == '[' {
			return "", "", false
		}
	}
	return t, pid, true
}

// bareTag reports whether tok is "app[pid]" with a numeric pid and no
// trailing colon, and splits it.
func bareTag(tok string) (app, pid string, ok bool) {
	k := strings.IndexByte(tok, '[')
	if k <= 0 || len(tok) < k+3 || tok[len(tok)-1] != ']' {
		return "", "", false
	}
	pid = tok[k+1 : len(tok)-1]
	for i := 0; i < len(pid); i++ {
		if pid[i] < '0' || pid[i] > '9' {
			return "", "", false
		}
	}
	app, _, ok = bsdTag(tok[:k] + ":")
	return app, pid, ok
}

// validHost reports whether tok can be a syslog HOSTNAME. go-syslog refuses
// ':' (so strict does too); loose mode allows it for IPv6 addresses unless
// the token ends with ':' (then it is a tag).
func validHost(tok string, strict bool) bool {
	if len(tok) == 0 || len(tok) > 255 || tok[len(tok)-1] == ':' {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 33 || c > 126 || (strict && c == ':') || c == '[' || c == '{' || c == '"' || c == '=' || c == '|' {
			return false
		}
	}
	return true
}

// Severity keywords for the PRI value (log.level).
var (
	severityNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}
	smallInts     [1000]string
)

func init() {
	for i := range smallInts {
		smallInts[i] = strconv.Itoa(i)
	}
}

// itoa returns the decimal form of a small non-negative int without
// allocating.
func itoa(i int) string {
	if i >= 0 && i < len(smallInts) {
		return smallInts[i]
	}
	return strconv.Itoa(i)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// applyEnvelope writes the envelope fields. Every stored field costs parse,
// bus, index and disk time on every event, so values derivable from others
// are not stored twice: the PRI (facility×8 + severity, both stored as
// codes), the RFC 5424 version (the format), the severity name (log.level
// holds it), the facility name, and a numeric PROCID (process.pid holds it).
func (st *state) applyEnvelope(env *envelope) {
	e := st.e
	if env.pri >= 0 {
		fac, sev := env.pri/8, env.pri%8
		add(e, event.FieldLogSyslogFacility, itoa(fac))
		add(e, event.FieldLogSyslogSeverity, itoa(sev))
		add(e, event.FieldLogLevel, severityNames[sev])
	}
	add(e, event.FieldHostName, env.host)
	add(e, event.FieldLogSyslogAppName, env.app)
	add(e, event.FieldProcessName, env.app)
	if isDigits(env.procid) {
		add(e, event.FieldProcessPID, env.procid)
	} else {
		add(e, event.FieldLogSyslogProcID, env.procid)
	}
	add(e, event.FieldLogSyslogMsgID, env.msgid)
	if len(env.sd) > 0 {
		nm := &st.sc.names
		for _, q := range env.sd {
			if q.name == "" {
				continue
			}
			nm.add3(event.FieldLogSyslogSD+".", q.id, ".", q.name, q.value)
		}
		nm.flush(e)
	}
	if env.err != "" {
		st.addErr(env.err)
	}
}
