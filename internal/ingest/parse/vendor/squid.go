package vendor

import (
	"strings"
	"time"
)

// squid: the native access.log format ("logformat squid"):
//
//	time.ms elapsed-ms client result-code/status bytes method URL user hierarchy/peer mime-type
//	1732521600.123     45 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html
//
// CONNECT lines carry "host:port" as the URL.

func parseSquid(msg string, o *out) bool {
	var w [11]string
	n := fields(msg, w[:])
	if n < 7 {
		return false
	}
	ts, elapsed, client, code, bytes, method, u := w[0], w[1], w[2], w[3], w[4], w[5], w[6]
	dot := strings.IndexByte(ts, '.')
	if dot < 9 || dot > 11 || len(ts)-dot-1 != 3 || !isDigits(ts[:dot]) || !isDigits(ts[dot+1:]) {
		return false
	}
	if !isDigits(elapsed) || !isDigits(bytes) {
		return false
	}
	slash := strings.IndexByte(code, '/')
	if slash <= 0 || !isSquidCode(code[:slash]) {
		return false
	}
	status := code[slash+1:]
	if len(status) != 3 || !isDigits(status) {
		if status != "-" {
			return false
		}
		status = ""
	}
	if !isUpperWord(method) && method != "-" {
		return false
	}
	sec, _ := atoi(ts[:dot])
	ms, _ := atoi(ts[dot+1:])
	o.setTime(time.Unix(sec, ms*1_000_000).UTC())

	result := code[:slash]
	o.set(fCategory, "web")
	o.set(fEventDataset, "squid.access")
	o.set(fEventModule, "squid")
	o.set(fType, "access")
	o.set(fObserverProduct, "Squid")
	o.set(fObserverType, "proxy")
	o.set(fObserverVendor, "Squid")
	o.set(fEventDuration, durationNS(elapsed, 1_000_000))
	if isIP(client) {
		o.set(fSourceIP, client)
	} else {
		o.set(fSourceDomain, dash(client))
	}
	o.set(fSquidResultCode, result)
	if status != "000" {
		o.set(fHTTPStatus, status)
	}
	switch {
	case strings.Contains(result, "DENIED"):
		o.set(fOutcome, "failure")
		o.set(fAction, "denied")
	case status == "" || status == "000":
	case status[0] >= '4':
		o.set(fOutcome, "failure")
	default:
		o.set(fOutcome, "success")
	}
	o.set(fHTTPResponseBytes, bytes)
	o.set(fDestBytes, bytes)
	o.set(fHTTPMethod, dash(method))
	if method == "CONNECT" && !strings.Contains(u, "://") {
		o.set(fURLOriginal, u)
		host, p := splitHostPort(u)
		o.set(fURLDomain, host)
		o.set(fURLPort, port(p))
		o.set(fDestPort, port(p))
	} else if u != "-" && !strings.HasPrefix(u, "error:") {
		setURL(o, u)
	} else {
		o.set(fSquidUrl, u)
	}
	if n > 7 {
		o.set(fUserName, dash(w[7]))
	}
	if n > 8 {
		hier, peer, _ := strings.Cut(w[8], "/")
		o.set(fSquidHierarchyCode, hier)
		if isIP(peer) {
			o.set(fDestIP, peer)
		} else {
			o.set(fDestDomain, dash(peer))
		}
	}
	if n > 9 {
		o.set(fHTTPMimeType, dash(w[9]))
	}
	return true
}

// isSquidCode accepts result codes like TCP_MISS, TCP_DENIED_REPLY, NONE_NONE.
func isSquidCode(s string) bool {
	if len(s) < 3 || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || isDigit(c)) {
			return false
		}
	}
	return true
}

func isUpperWord(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
