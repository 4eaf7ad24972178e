package parse

import (
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// key=value lines (FortiGate and generic): space-separated pairs, values
// optionally in double quotes with \" and \\ escapes. A line is taken as
// key=value only when at least kvMinPairs pairs parse and they cover at
// least 80% of its non-blank bytes, so prose with an "a=b" is not.

const kvMinPairs = 3

// kvDirect maps key=value keys (FortiGate names and common aliases) to ECS
// fields copied as is.
var kvDirect = map[string]string{
	"srcip": event.FieldSourceIP, "src": event.FieldSourceIP, "src_ip": event.FieldSourceIP, "source_ip": event.FieldSourceIP,
	"dstip": event.FieldDestIP, "dst": event.FieldDestIP, "dst_ip": event.FieldDestIP, "dest_ip": event.FieldDestIP,
	"srcport": event.FieldSourcePort, "src_port": event.FieldSourcePort, "spt": event.FieldSourcePort, "sport": event.FieldSourcePort,
	"dstport": event.FieldDestPort, "dst_port": event.FieldDestPort, "dest_port": event.FieldDestPort, "dpt": event.FieldDestPort, "dport": event.FieldDestPort,
	"user": event.FieldUserName, "username": event.FieldUserName, "usr": event.FieldUserName,
	"srcmac":    event.FieldSourceMAC,
	"dstmac":    event.FieldDestMAC,
	"transip":   event.FieldSourceNatIP,
	"transport": event.FieldSourceNatPort,
	"tranip":    event.FieldDestNatIP,
	"tranport":  event.FieldDestNatPort,
	"sentbyte":  event.FieldSourceBytes,
	"rcvdbyte":  event.FieldDestBytes,
	"sentpkt":   event.FieldSourcePackets,
	"rcvdpkt":   event.FieldDestPackets,
	"filename":  event.FieldFileName,
	"msg":       event.FieldMessage, "message": event.FieldMessage,
	"policyid":   event.FieldRuleID,
	"policyname": event.FieldRuleName,
	"logid":      event.FieldEventCode,
	"level":      event.FieldLogLevel,
	"srcintf":    event.FieldObserverIngressIface,
	"agent":      event.FieldUserAgent,
	"md5":        event.FieldFileMD5,
	"sha1":       event.FieldFileSHA1,
	"sha256":     event.FieldFileSHA256,
}

// fortiDirect maps keys whose meaning is FortiGate's only.
var fortiDirect = map[string]string{
	"devname":  event.FieldObserverHostname,
	"devid":    event.FieldObserverSerial,
	"hostname": event.FieldURLDomain,
	"qname":    event.FieldDNSQuestion,
	"qtype":    event.FieldDNSQuestionType,
}

// kvTarget is where a key=value key goes; fortiOnly keys are mapped only
// in FortiGate logs.
type kvTarget struct {
	field     string
	fortiOnly bool
}

// kvTargets merges kvDirect and fortiDirect for a single lookup per key.
var kvTargets = func() map[string]kvTarget {
	m := make(map[string]kvTarget, len(kvDirect)+len(fortiDirect))
	for k, f := range kvDirect {
		m[k] = kvTarget{f, false}
	}
	for k, f := range fortiDirect {
		m[k] = kvTarget{f, true}
	}
	return m
}()

// looksFortiGate is a cheap test for FortiGate key=value logs.
func looksFortiGate(s string) bool {
	return strings.Contains(s, "devid=") || strings.Contains(s, "logid=") || strings.Contains(s, "devname=")
}

// kvKeyChar marks the bytes allowed in key=value keys: [A-Za-z0-9_.-].
var kvKeyChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return t
}()

func isKVKeyChar(c byte) bool { return kvKeyChar[c] }

// scanKV tokenizes s into pairs and counts the bytes inside pairs
// (covered) and outside (other), blanks excluded.
func scanKV(s string, pairs []kvPair) (_ []kvPair, covered, other int) {
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		ks := i
		for i < len(s) && isKVKeyChar(s[i]) {
			i++
		}
		if i == ks || i >= len(s) || s[i] != '=' {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' {
				i++
			}
			other += i - ks
			continue
		}
		key := s[ks:i]
		i++
		var v string
		if i < len(s) && s[i] == '"' {
			j := i + 1
			esc := false
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					esc = true
					j++
				}
				j++
			}
			if j >= len(s) { // unterminated: the rest of the line
				v = s[i+1:]
				i = len(s)
			} else {
				v = s[i+1 : j]
				i = j + 1
			}
			if esc {
				v = unescapeQuoted(v)
			}
			// Anything glued after the closing quote belongs to the token.
			for i < len(s) && s[i] != ' ' && s[i] != '\t' {
				i++
			}
		} else {
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				j++
			}
			v = s[i:j]
			i = j
		}
		pairs = append(pairs, kvPair{key, v})
		covered += i - ks
	}
	return pairs, covered, other
}

// unescapeQuoted resolves \" and \\.
func unescapeQuoted(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// parseKV parses a key=value line. It returns "fortigate" or "kv", or ""
// when s is not key=value text (then nothing was written).
func (st *state) parseKV(s string, fortiHint bool) string {
	pairs, covered, other := scanKV(s, st.sc.pairs[:0])
	st.sc.pairs = pairs
	if len(pairs) < kvMinPairs || covered*5 < (covered+other)*4 {
		return ""
	}
	forti := false
	if fortiHint {
		for _, p := range pairs {
			if p.key == "devid" || p.key == "devname" || p.key == "logid" {
				forti = true
				break
			}
		}
	}
	prefix, format := "kv.", "kv"
	if forti {
		prefix, format = "fortigate.", "fortigate"
	}
	e, nm := st.e, &st.sc.names
	var date, tod, tz, eventtime, tsAlt, action, status, typ, subtype string
	hasMsg := false
	for _, p := range pairs {
		k, v := p.key, p.val
		switch k {
		case "date":
			date = v
			continue
		case "time":
			tod = v
			continue
		case "tz":
			tz = v
			continue
		case "eventtime":
			eventtime = v
		case "timestamp", "ts":
			tsAlt = v
		case "action":
			action = v
			add(e, event.FieldAction, v)
			continue
		case "msg", "message":
			hasMsg = hasMsg || v != ""
		case "status":
			status = v
		case "type":
			typ = v
		case "subtype":
			subtype = v
		case "proto", "protocol":
			if v != "" {
				add(e, event.FieldNetworkTransport, transportName(v))
				continue
			}
		case "url":
			if forti {
				setURL(e, v)
				continue
			}
		}
		if t, ok := kvTargets[k]; ok && (forti || !t.fortiOnly) {
			add(e, t.field, v)
			continue
		}
		nm.add(prefix, k, v)
	}
	// Time: date + time (+ tz), else eventtime, else timestamp/ts.
	loc := st.p.loc()
	if t, ok := kvDateTime(date, tod, tz, loc); ok {
		st.ts = t
	} else {
		nm.add(prefix, "date", date)
		nm.add(prefix, "time", tod)
		nm.add(prefix, "tz", tz)
		if t, ok := parseEpoch(eventtime); ok {
			st.ts = t
		} else if t, ok := parseAnyTime(tsAlt, st.ref, loc); ok {
			st.ts = t
		}
	}
	nm.flush(e)

	outcome, etype := actionOutcome(action)
	if outcome == "" && status != "" {
		outcome = normOutcome(status)
		if outcome == "unknown" {
			outcome = ""
		}
	}
	add(e, event.FieldOutcome, outcome)
	if forti {
		add(e, event.FieldObserverVendor, "Fortinet")
		add(e, event.FieldObserverProduct, "FortiGate")
		add(e, event.FieldObserverType, "firewall")
		add(e, event.FieldEventModule, "fortinet")
		cat, ctype := "", ""
		switch typ {
		case "traffic":
			cat, ctype = "network", "connection"
		case "utm":
			switch subtype {
			case "virus":
				cat, ctype = "malware", "info"
				add(e, event.FieldKind, event.KindAlert)
			case "ips", "anomaly":
				cat, ctype = "intrusion_detection", "info"
				add(e, event.FieldKind, event.KindAlert)
			case "webfilter":
				cat, ctype = "web", "access"
			case "dns", "app-ctrl", "ssl", "file-filter":
				cat, ctype = "network", "protocol"
			case "emailfilter":
				cat, ctype = "email", "info"
			}
		case "event":
			switch subtype {
			case "user", "vpn":
				cat, ctype = "authentication", "info"
			case "system":
				cat, ctype = "host", "info"
			}
		}
		if etype != "" {
			ctype = etype // allowed/denied is the most specific type
		}
		add(e, event.FieldCategory, cat)
		add(e, event.FieldType, ctype)
	} else {
		add(e, event.FieldType, etype)
		if !hasMsg {
			// Generic key=value text may hold words between the pairs:
			// keep the text searchable.
			add(e, event.FieldMessage, s)
		}
	}
	return format
}

// kvDateTime builds the time from FortiGate-style date=YYYY-MM-DD (or
// YYYY/MM/DD) time=hh:mm:ss[.frac] and optional tz="+hhmm"/"UTC".
func kvDateTime(date, tod, tz string, loc *time.Location) (time.Time, bool) {
	if len(date) != 10 || len(tod) < 8 || (date[4] != '-' && date[4] != '/') || date[7] != date[4] || tod[2] != ':' || tod[5] != ':' {
		return time.Time{}, false
	}
	y, ok1 := digits(date, 0, 4)
	mo, ok2 := digits(date, 5, 2)
	d, ok3 := digits(date, 8, 2)
	h, ok4 := digits(tod, 0, 2)
	mi, ok5 := digits(tod, 3, 2)
	sec, ok6 := digits(tod, 6, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validDate(y, mo, d, h, mi, sec) {
		return time.Time{}, false
	}
	ns, i := fraction(tod, 8)
	if i != len(tod) {
		return time.Time{}, false
	}
	off, hasOff := 0, false
	switch tz {
	case "":
	case "UTC", "GMT", "Z", "utc", "gmt":
		hasOff = true
	default:
		if o, j, ok := zoneOffset(tz, 0); ok && j == len(tz) {
			off, hasOff = o, true
		}
	}
	return mkTime(y, mo, d, h, mi, sec, ns, off, hasOff, loc), true
}
