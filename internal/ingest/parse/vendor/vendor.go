package vendor

import (
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// Format names returned by Parse.
const (
	FormatIptables = "iptables"
	FormatPfsense  = "pfsense"
	FormatASA      = "cisco_asa"
	FormatPanos    = "panos"
	FormatPostfix  = "postfix"
	FormatSSHD     = "sshd"
	FormatSquid    = "squid"
	FormatApache   = "apache_access"
	FormatNginx    = "nginx_access"
)

// now is the clock used to give a year to classic syslog timestamps; tests
// replace it.
var now = time.Now

// Parse tries the line parsers. app is the syslog APP-NAME/TAG ("" when none,
// e.g. a plain file line), msg is the message body (syslog header already
// removed; for file lines, the whole line — which may still start with a
// classic "Mmm dd hh:mm:ss host " prefix or not). It returns the format name
// and true when one matched, having set ECS fields on e (empty values are
// never set; a field e already holds is replaced, except host.name, which a
// file-line prefix only fills in).
//
// The app name picks the parser when it is a known one; otherwise cheap
// substring checks on msg choose. Parsers write into a stack-local buffer
// that is committed only on a match, so a non-match leaves e untouched.
// When a format carries its own event time (squid, access logs, PAN-OS) it
// sets e.Timestamp; a file-line prefix sets it only when still zero. Parse
// never panics.
func Parse(app, msg string, e *event.Event) (format string, ok bool) {
	var h header
	pid := ""
	if app == "" {
		h = splitFileLine(msg)
		app, pid, msg = h.app, h.pid, h.body
	} else if i := strings.IndexByte(app, '['); i > 0 {
		pid = strings.TrimSuffix(app[i+1:], "]")
		app = app[:i]
	}
	var o out
	format, ok = dispatch(app, pid, msg, &o)
	if !ok {
		return "", false
	}
	if h.prefixed && h.host != "" && !o.has(fHostName) {
		if _, set := e.Get(event.FieldHostName); !set {
			o.set(fHostName, h.host)
		}
	}
	o.commit(e)
	if h.prefixed && e.Timestamp.IsZero() && !h.ts.IsZero() {
		e.Timestamp = h.ts
	}
	return format, true
}

func dispatch(app, pid, msg string, o *out) (string, bool) {
	switch app {
	case "":
	case "kernel":
		if parseIptables(msg, o) {
			return FormatIptables, true
		}
		return "", false
	case "filterlog":
		if parsePfsense(msg, o) {
			return FormatPfsense, true
		}
		return "", false
	case "sshd", "sshd-session", "sshd-auth":
		if parseSSHD(app, pid, msg, o) {
			return FormatSSHD, true
		}
		return "", false
	case "squid", "(squid-1)", "squid-1":
		if parseSquid(msg, o) {
			return FormatSquid, true
		}
		return "", false
	default:
		if strings.HasPrefix(app, "postfix") {
			if parsePostfix(app, pid, msg, o) {
				return FormatPostfix, true
			}
			return "", false
		}
		if len(app) > 5 && app[0] == '%' && (app[1:5] == "ASA-" || app[1:5] == "FTD-") {
			if parseASAHeader(app, msg, o) {
				return FormatASA, true
			}
		}
	}
	return sniff(app, msg, o)
}

// sniff picks a parser from the content when the app name did not.
func sniff(app, msg string, o *out) (string, bool) {
	if len(msg) < 8 {
		return "", false
	}
	if i := indexASA(msg); i >= 0 {
		if parseASA(msg[i:], o) {
			return FormatASA, true
		}
	}
	if i, _ := findPanType(msg); i >= 0 {
		if parsePanos(msg, o) {
			return FormatPanos, true
		}
	}
	if strings.Contains(msg, "IN=") {
		if parseIptables(msg, o) {
			return FormatIptables, true
		}
	}
	if isDigit(msg[0]) {
		if parseSquid(msg, o) {
			return FormatSquid, true
		}
		if strings.Contains(msg, ",in,") || strings.Contains(msg, ",out,") {
			if parsePfsense(msg, o) {
				return FormatPfsense, true
			}
		}
	}
	if f, ok := parseAccess(app, msg, o); ok {
		return f, true
	}
	// A program tag somewhere in the line ("... sshd[123]: ...") after a
	// prefix we do not know.
	if tag, pid, body, ok := findTag(msg); ok {
		switch {
		case tag == "sshd" || tag == "sshd-session" || tag == "sshd-auth":
			if parseSSHD(tag, pid, body, o) {
				return FormatSSHD, true
			}
		case strings.HasPrefix(tag, "postfix"):
			if parsePostfix(tag, pid, body, o) {
				return FormatPostfix, true
			}
		case tag == "filterlog":
			if parsePfsense(body, o) {
				return FormatPfsense, true
			}
		}
	}
	return "", false
}

// indexASA finds "%ASA-" or "%FTD-".
func indexASA(s string) int {
	off := 0
	for {
		i := strings.IndexByte(s[off:], '%')
		if i < 0 {
			return -1
		}
		j := off + i
		if j+5 <= len(s) {
			if t := s[j+1 : j+5]; t == "ASA-" || t == "FTD-" {
				return j
			}
		}
		off = j + 1
	}
}
