package vendor

import (
	"strings"
	"time"
)

// apache_access / nginx_access: the NCSA common and combined log formats
// shared by Apache httpd and nginx, with the optional "vhost[:port]" first
// field of Apache's vhost_combined:
//
//	[vhost:port ]client ident user [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326[ "referer" "user agent"]
//
// The app name decides between the two names ("nginx" in it → nginx_access);
// the default is apache_access. A malformed request line ("-", binary
// garbage) only leaves the http.request fields unset.

func parseAccess(app, msg string, o *out) (string, bool) {
	br := strings.Index(msg, " [")
	if br <= 0 || br > 512 {
		return "", false
	}
	var w [5]string
	n := fields(msg[:br], w[:])
	if n != 3 && n != 4 {
		return "", false
	}
	vhost := ""
	if n == 4 {
		vhost = w[0]
		copy(w[:3], w[1:4])
	}
	client, user := w[0], w[2]
	t := msg[br+2:]
	ts, ok := clfTime(t)
	if !ok {
		return "", false
	}
	rest := t[27:]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] != '"' {
		return "", false
	}
	req, rest, ok := clfQuoted(rest[1:])
	if !ok {
		return "", false
	}
	var sb [3]string
	nsb := fields(rest, sb[:])
	if nsb < 2 {
		return "", false
	}
	status, size := sb[0], sb[1]
	if !(len(status) == 3 && isDigits(status)) && status != "-" {
		return "", false
	}
	if !isDigits(size) && size != "-" {
		return "", false
	}
	var referrer, ua string
	if nsb == 3 && strings.HasPrefix(sb[2], `"`) {
		r := rest[strings.IndexByte(rest, '"'):]
		if v, r2, ok := clfQuoted(r); ok {
			referrer = v
			r2 = trimSpace(r2)
			if strings.HasPrefix(r2, `"`) {
				if v, _, ok := clfQuoted(r2); ok {
					ua = v
				}
			}
		}
	}

	format, module := FormatApache, "apache"
	if strings.Contains(app, "nginx") {
		format, module = FormatNginx, "nginx"
	}
	o.setTime(ts)
	o.set(fCategory, "web")
	o.set(fEventDataset, module+".access")
	o.set(fEventModule, module)
	o.set(fType, "access")
	if isIP(client) {
		o.set(fSourceIP, client)
	} else {
		o.set(fSourceDomain, dash(client))
	}
	o.set(fUserName, dash(user))
	if vhost != "" {
		host, p := splitHostPort(vhost)
		o.set(fDestDomain, dash(host))
		o.set(fDestPort, port(p))
	}
	// Request line: METHOD URI PROTOCOL (or METHOD URI for HTTP/0.9).
	var rw [4]string
	if nr := fields(req, rw[:]); (nr == 3 && strings.HasPrefix(rw[2], "HTTP/")) || nr == 2 {
		if isUpperWord(rw[0]) && rw[1] != "" && isPrintable(rw[1]) {
			o.set(fHTTPMethod, rw[0])
			setURL(o, rw[1])
			if nr == 3 {
				o.set(fHTTPVersion, rw[2][5:])
			}
		}
	}
	if status != "-" {
		o.set(fHTTPStatus, status)
		if status[0] >= '4' {
			o.set(fOutcome, "failure")
		} else {
			o.set(fOutcome, "success")
		}
	}
	o.set(fHTTPBytes, dash(size))
	o.set(fHTTPReferrer, dash(referrer))
	o.set(fUserAgent, dash(ua))
	return format, true
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// clfQuoted reads a double-quoted string at the start of s, where \" and
// \\ are escapes, and returns it (unescaped) and what follows.
func clfQuoted(s string) (v, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	esc := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			esc = true
			i++
		case '"':
			v = s[1:i]
			if esc {
				v = clfUnescape(v)
			}
			return v, s[i+1:], true
		}
	}
	return "", "", false
}

func clfUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// clfTime reads "10/Oct/2000:13:55:36 -0700]" at the start of s.
func clfTime(s string) (time.Time, bool) {
	if len(s) < 27 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[20] != ' ' || s[26] != ']' {
		return time.Time{}, false
	}
	d, ok := num2(s[0], s[1])
	mon := monthIndex(s[3:6])
	y, ok2 := atoi(s[7:11])
	h, m, sec, ok3 := hms(s[12:20])
	if !ok || !ok2 || !ok3 || mon == 0 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	sign := s[21]
	zh, ok4 := num2(s[22], s[23])
	zm, ok5 := num2(s[24], s[25])
	if !ok4 || !ok5 || (sign != '+' && sign != '-') {
		return time.Time{}, false
	}
	off := time.Duration(zh)*time.Hour + time.Duration(zm)*time.Minute
	t := time.Date(int(y), time.Month(mon), d, h, m, sec, 0, time.UTC)
	if sign == '+' {
		t = t.Add(-off)
	} else {
		t = t.Add(off)
	}
	return t, true
}
