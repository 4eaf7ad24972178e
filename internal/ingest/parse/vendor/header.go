package vendor

import (
	"strings"
	"time"
)

// header is what splitFileLine found in front of a file line.
type header struct {
	prefixed bool // a timestamp and host were found
	ts       time.Time
	host     string
	app, pid string
	body     string
}

// splitFileLine removes a classic "Mmm dd hh:mm:ss host tag[pid]: " or an
// RFC 3339 "2006-01-02T15:04:05Z host tag[pid]: " prefix. body is the whole
// line when there is no prefix.
func splitFileLine(msg string) (h header) {
	h.body = msg
	rest := ""
	if ts, n, ok := classicStamp(msg); ok {
		h.ts, rest = ts, msg[n:]
	} else if ts, n, ok := isoStamp(msg); ok {
		h.ts, rest = ts, msg[n:]
	} else {
		if tag, pid, body, ok := cutTag(msg); ok {
			h.app, h.pid, h.body = tag, pid, body
		}
		return h
	}
	for rest != "" && rest[0] == ' ' {
		rest = rest[1:]
	}
	// The host is one token, unless it is missing and the tag follows.
	if tag, pid, body, ok := cutTag(rest); ok {
		h.prefixed = true
		h.app, h.pid, h.body = tag, pid, body
		return h
	}
	sp := strings.IndexByte(rest, ' ')
	if sp <= 0 {
		return h
	}
	h.prefixed = true
	h.host = rest[:sp]
	rest = rest[sp+1:]
	h.body = rest
	if tag, pid, body, ok := cutTag(rest); ok {
		h.app, h.pid, h.body = tag, pid, body
	}
	return h
}

func isTagByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '/' || c == '%' || c == '(' || c == ')'
}

// cutTag reads "tag[pid]: body" or "tag: body" at the start of s.
func cutTag(s string) (tag, pid, body string, ok bool) {
	i := 0
	for i < len(s) && i < 64 && isTagByte(s[i]) {
		i++
	}
	if i == 0 || i >= len(s) {
		return "", "", "", false
	}
	tag = s[:i]
	if s[i] == '[' {
		j := strings.IndexByte(s[i:], ']')
		if j < 0 {
			return "", "", "", false
		}
		pid = s[i+1 : i+j]
		if !isDigits(pid) {
			return "", "", "", false
		}
		i += j + 1
	}
	// "tag: body" (or a bare "tag:"); "host:443 …" is no tag.
	if i >= len(s) || s[i] != ':' || i+1 < len(s) && s[i+1] != ' ' {
		return "", "", "", false
	}
	i++
	if i < len(s) {
		i++
	}
	return tag, pid, s[i:], true
}

// findTag looks for the first "tag[pid]: " anywhere in s.
func findTag(s string) (tag, pid, body string, ok bool) {
	i := strings.Index(s, "]: ")
	if i < 0 {
		return "", "", "", false
	}
	open := strings.LastIndexByte(s[:i], '[')
	if open <= 0 {
		return "", "", "", false
	}
	pid = s[open+1 : i]
	if !isDigits(pid) {
		return "", "", "", false
	}
	start := open
	for start > 0 && isTagByte(s[start-1]) {
		start--
	}
	if start == open {
		return "", "", "", false
	}
	return s[start:open], pid, s[i+3:], true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func monthIndex(s string) int {
	for i, m := range months {
		if s == m {
			return i + 1
		}
	}
	return 0
}

// classicStamp reads "Mmm dd hh:mm:ss " (day may be space-padded). The year
// is the current one, or the previous one when that would put the time more
// than a month in the future. The zone is UTC.
func classicStamp(s string) (time.Time, int, bool) {
	if len(s) < 16 || s[3] != ' ' || s[6] != ' ' || s[15] != ' ' {
		return time.Time{}, 0, false
	}
	mon := monthIndex(s[:3])
	if mon == 0 {
		return time.Time{}, 0, false
	}
	d1 := s[4]
	if d1 == ' ' {
		d1 = '0'
	}
	day, ok := num2(d1, s[5])
	if !ok || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	hh, mm, ss, ok := hms(s[7:15])
	if !ok {
		return time.Time{}, 0, false
	}
	n := now().UTC()
	t := time.Date(n.Year(), time.Month(mon), day, hh, mm, ss, 0, time.UTC)
	if t.Sub(n) > 31*24*time.Hour {
		t = t.AddDate(-1, 0, 0)
	}
	return t, 16, true
}

// isoStamp reads an RFC 3339 timestamp followed by a space.
func isoStamp(s string) (time.Time, int, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || !isDigit(s[0]) {
		return time.Time{}, 0, false
	}
	sp := strings.IndexByte(s, ' ')
	if sp < 20 || sp > 40 {
		return time.Time{}, 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, s[:sp])
	if err != nil {
		return time.Time{}, 0, false
	}
	return t.UTC(), sp + 1, true
}

// hms reads "hh:mm:ss".
func hms(s string) (h, m, sec int, ok bool) {
	if len(s) != 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, false
	}
	var ok1, ok2, ok3 bool
	h, ok1 = num2(s[0], s[1])
	m, ok2 = num2(s[3], s[4])
	sec, ok3 = num2(s[6], s[7])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, false
	}
	return h, m, sec, true
}

func num2(a, b byte) (int, bool) {
	if !isDigit(a) || !isDigit(b) {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}
