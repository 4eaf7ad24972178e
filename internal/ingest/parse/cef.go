package parse

import (
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// CEF: "CEF:Version|Device Vendor|Device Product|Device Version|Signature
// ID|Name|Severity|Extension". In the header "\|" and "\\" are escapes; the
// extension is space-separated key=value pairs where a value runs until the
// next " key=" and "\=", "\\", "\n", "\r" are escapes.

// cefDirect maps CEF extension keys (short and full names) to ECS fields
// whose value is copied as is.
var cefDirect = map[string]string{
	"src": event.FieldSourceIP, "sourceAddress": event.FieldSourceIP,
	"dst": event.FieldDestIP, "destinationAddress": event.FieldDestIP,
	"spt": event.FieldSourcePort, "sourcePort": event.FieldSourcePort,
	"dpt": event.FieldDestPort, "destinationPort": event.FieldDestPort,
	"shost": event.FieldSourceDomain, "sourceHostName": event.FieldSourceDomain,
	"dhost": event.FieldDestDomain, "destinationHostName": event.FieldDestDomain,
	"smac": event.FieldSourceMAC, "sourceMacAddress": event.FieldSourceMAC,
	"dmac": event.FieldDestMAC, "destinationMacAddress": event.FieldDestMAC,
	"suser": event.FieldSourceUserName, "sourceUserName": event.FieldSourceUserName,
	"duser": event.FieldDestUserName, "destinationUserName": event.FieldDestUserName,
	"act": event.FieldAction, "deviceAction": event.FieldAction,
	"app": event.FieldNetworkProtocol, "applicationProtocol": event.FieldNetworkProtocol,
	"requestMethod":            event.FieldHTTPMethod,
	"requestClientApplication": event.FieldUserAgent,
	"fname":                    event.FieldFileName, "fileName": event.FieldFileName,
	"filePath": event.FieldFilePath,
	"fsize":    event.FieldFileSize, "fileSize": event.FieldFileSize,
	"msg": event.FieldMessage, "message": event.FieldMessage,
	"in": event.FieldSourceBytes, "bytesIn": event.FieldSourceBytes,
	"out": event.FieldDestBytes, "bytesOut": event.FieldDestBytes,
	"dvc": event.FieldObserverIP, "deviceAddress": event.FieldObserverIP,
	"dvchost": event.FieldObserverHostname, "deviceHostName": event.FieldObserverHostname,
	"sourceTranslatedAddress":      event.FieldSourceNatIP,
	"sourceTranslatedPort":         event.FieldSourceNatPort,
	"destinationTranslatedAddress": event.FieldDestNatIP,
	"destinationTranslatedPort":    event.FieldDestNatPort,
	"sntdom":                       event.FieldUserDomain, "sourceNtDomain": event.FieldUserDomain,
	"sproc": event.FieldProcessName, "sourceProcessName": event.FieldProcessName,
	"spid": event.FieldProcessPID, "sourceProcessId": event.FieldProcessPID,
}

// parseCEF parses s, which starts with "CEF:". It returns false when s is
// not a CEF record (bad version or fewer than 6 header separators).
func (st *state) parseCEF(s string) bool {
	var hdr [7]string
	i, n, start := 4, 0, 4
	esc := false
	for i < len(s) && n < 7 {
		switch s[i] {
		case '\\':
			esc = true
			i += 2
			continue
		case '|':
			hdr[n] = cefHeaderField(s[start:i], esc)
			n++
			start, esc = i+1, false
		}
		i++
	}
	ext := ""
	switch {
	case n == 7:
		ext = s[min(start, len(s)):]
	case n == 6:
		hdr[6] = cefHeaderField(s[min(start, len(s)):], esc)
	default:
		return false
	}
	if !isDigits(hdr[0]) || len(hdr[0]) > 2 {
		return false
	}
	e := st.e
	pairs := scanCEFExt(ext, st.sc.pairs[:0])
	st.sc.pairs = pairs

	add(e, "cef.version", hdr[0])
	add(e, event.FieldObserverVendor, hdr[1])
	add(e, event.FieldObserverProduct, hdr[2])
	add(e, event.FieldObserverVersion, hdr[3])
	add(e, event.FieldEventCode, hdr[4])
	add(e, "cef.name", hdr[5])
	add(e, "cef.severity", hdr[6])
	add(e, event.FieldSeverity, cefSeverity(hdr[6]))

	loc := st.p.loc()
	nm := &st.sc.names
	var msg, suser, duser, act string
	for _, p := range pairs {
		k, v := p.key, p.val
		switch k {
		case "rt", "deviceReceiptTime":
			if t, ok := parseCEFTime(v, st.ref, loc); ok {
				st.ts = t
				continue
			}
		case "start", "startTime":
			if t, ok := parseCEFTime(v, st.ref, loc); ok {
				add(e, event.FieldEventStart, t.Format(time.RFC3339Nano))
				continue
			}
		case "end", "endTime":
			if t, ok := parseCEFTime(v, st.ref, loc); ok {
				add(e, event.FieldEventEnd, t.Format(time.RFC3339Nano))
				continue
			}
		case "proto", "transportProtocol":
			add(e, event.FieldNetworkTransport, transportName(v))
			continue
		case "request", "requestUrl":
			setURL(e, v)
			continue
		case "outcome", "eventOutcome":
			add(e, event.FieldOutcome, normOutcome(v))
			add(e, "cef.outcome", v)
			continue
		case "fileHash":
			if f := hashField(v); f != "" {
				add(e, f, v)
				continue
			}
		case "deviceDirection":
			switch v {
			case "0":
				add(e, event.FieldNetworkDirection, "inbound")
			case "1":
				add(e, event.FieldNetworkDirection, "outbound")
			}
		case "msg", "message":
			msg = v
		case "suser", "sourceUserName":
			suser = v
		case "duser", "destinationUserName":
			duser = v
		case "act", "deviceAction":
			act = v
		}
		if f, ok := cefDirect[k]; ok {
			add(e, f, v)
			continue
		}
		if strings.HasSuffix(k, "Label") && labelled(pairs, k[:len(k)-5]) {
			continue // used as the name of its value
		}
		if lastIsDigit(k) {
			if label := findLabel(pairs, k); label != "" {
				nm.addLabel("cef.", label, v)
				continue
			}
		}
		nm.add("cef.", k, v)
	}
	nm.flush(e)
	if msg == "" {
		add(e, event.FieldMessage, hdr[5])
	}
	if suser != "" {
		add(e, event.FieldUserName, suser)
	} else {
		add(e, event.FieldUserName, duser)
	}
	if act != "" {
		_, typ := actionOutcome(act)
		add(e, event.FieldType, typ)
	}
	return true
}

// cefHeaderField unescapes "\|" and "\\" when esc says there are escapes.
func cefHeaderField(v string, esc bool) string {
	if !esc {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '|' || v[i+1] == '\\') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// cefKeyChar marks the bytes allowed in CEF/LEEF extension keys:
// [A-Za-z0-9_.-] plus '[' and ']' (some vendors use them).
var cefKeyChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '[' || c == ']'
	}
	return t
}()

func isCEFKeyChar(c byte) bool { return cefKeyChar[c] }

// scanCEFExt splits a CEF (or space-delimited LEEF) extension into pairs.
// A value runs until the last space before the next unescaped "key=".
func scanCEFExt(ext string, pairs []kvPair) []kvPair {
	i := 0
	for i < len(ext) && (ext[i] == ' ' || ext[i] == '\t') {
		i++
	}
	for i < len(ext) {
		ks := i
		for i < len(ext) && isCEFKeyChar(ext[i]) {
			i++
		}
		if i == ks || i >= len(ext) || ext[i] != '=' {
			// Not a key: skip this word.
			for i < len(ext) && ext[i] != ' ' {
				i++
			}
			for i < len(ext) && ext[i] == ' ' {
				i++
			}
			continue
		}
		key := ext[ks:i]
		i++
		vs, ve, next := i, len(ext), len(ext)
		for j := vs; j < len(ext); {
			q := strings.IndexByte(ext[j:], '=')
			if q < 0 {
				break
			}
			q += j
			j = q + 1
			// An '=' after an odd number of backslashes is escaped.
			bs := 0
			for k := q - 1; k >= vs && ext[k] == '\\'; k-- {
				bs++
			}
			if bs%2 == 1 {
				continue
			}
			k := q
			for k > vs && isCEFKeyChar(ext[k-1]) {
				k--
			}
			if k < q && k > vs && (ext[k-1] == ' ' || ext[k-1] == '\t') {
				ve, next = k-1, k
				break
			}
		}
		v := ext[vs:ve]
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		if strings.IndexByte(v, '\\') >= 0 {
			v = unescapeCEFValue(v)
		}
		pairs = append(pairs, kvPair{key, v})
		i = next
	}
	return pairs
}

// unescapeCEFValue resolves \= \\ \| \n \r in an extension value; other
// backslashes are kept.
func unescapeCEFValue(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '=', '\\', '|':
				c = v[i+1]
				i++
			case 'n':
				c = '\n'
				i++
			case 'r':
				c = '\r'
				i++
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func lastIsDigit(k string) bool { return len(k) > 0 && isDigit(k[len(k)-1]) }

// findLabel returns the value of key+"Label" among pairs.
func findLabel(pairs []kvPair, key string) string {
	for _, p := range pairs {
		if len(p.key) == len(key)+5 && strings.HasPrefix(p.key, key) && strings.HasSuffix(p.key, "Label") {
			return p.val
		}
	}
	return ""
}

// labelled reports whether key (the part before "Label") has a value.
func labelled(pairs []kvPair, key string) bool {
	if !lastIsDigit(key) {
		return false
	}
	for _, p := range pairs {
		if p.key == key {
			return true
		}
	}
	return false
}

// addLabel queues prefix+label with label reduced to [A-Za-z0-9_.-]
// (others become '_').
func (n *names) addLabel(prefix, label, val string) {
	if val == "" {
		return
	}
	n0 := len(n.buf)
	n.buf = append(n.buf, prefix...)
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !isCEFKeyChar(c) || c == '[' || c == ']' {
			c = '_'
		}
		n.buf = append(n.buf, c)
	}
	n.refs = append(n.refs, nameRef{n0, len(n.buf), val})
}

// cefSeverity maps the CEF severity (0-10 or Low/Medium/High/Very-High)
// to a 0-10 number.
func cefSeverity(v string) string {
	if isDigits(v) {
		if len(v) > 2 {
			return "10"
		}
		return v
	}
	switch strings.ToLower(v) {
	case "unknown":
		return "0"
	case "low":
		return "3"
	case "medium":
		return "6"
	case "high":
		return "8"
	case "very-high", "very high", "veryhigh", "critical":
		return "10"
	}
	return ""
}

// hashField picks file.hash.* from the length of a hex digest.
func hashField(v string) string {
	for i := 0; i < len(v); i++ {
		c := v[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	switch len(v) {
	case 32:
		return event.FieldFileMD5
	case 40:
		return event.FieldFileSHA1
	case 64:
		return event.FieldFileSHA256
	case 128:
		return event.FieldFileSHA512
	}
	return ""
}

// normOutcome maps an outcome word to ECS success/failure/unknown.
func normOutcome(v string) string {
	switch strings.ToLower(v) {
	case "success", "succeeded", "successful", "ok", "allowed", "allow", "accept", "accepted", "pass", "passed", "true":
		return "success"
	case "failure", "failed", "fail", "false", "denied", "deny", "blocked", "block", "rejected", "error":
		return "failure"
	}
	return "unknown"
}

// actionOutcome maps a firewall-style action to event.outcome and
// event.type ("", "" when the action says neither).
func actionOutcome(a string) (outcome, typ string) {
	switch strings.ToLower(a) {
	case "deny", "denied", "block", "blocked", "drop", "dropped", "reject", "rejected", "prevented",
		"quarantined", "quarantine", "reset", "reset-both", "reset-client", "reset-server", "fail", "failed", "failure":
		return "failure", "denied"
	case "accept", "accepted", "allow", "allowed", "pass", "passed", "passthrough", "permit", "permitted",
		"close", "start", "success", "succeeded", "monitored":
		return "success", "allowed"
	}
	return "", ""
}
