package vendor

import (
	"strings"
	"time"
)

// panos: Palo Alto Networks PAN-OS TRAFFIC and THREAT logs in the default
// CSV syslog format (PAN-OS 9.1–11.x field order):
//
//	FUTURE_USE, Receive Time, Serial Number, Type, Threat/Content Type, FUTURE_USE (config version),
//	Generated Time, Source Address, Destination Address, NAT Source IP, NAT Destination IP, Rule Name,
//	Source User, Destination User, Application, Virtual System, Source Zone, Destination Zone,
//	Inbound Interface, Outbound Interface, Log Action, FUTURE_USE (time logged), Session ID,
//	Repeat Count, Source Port, Destination Port, NAT Source Port, NAT Destination Port, Flags,
//	Protocol, Action, …
//
// TRAFFIC continues with Bytes, Bytes Sent, Bytes Received, Packets, Start
// Time, Elapsed Time, Category, FUTURE_USE, Sequence Number, Action Flags,
// Source Location, Destination Location, FUTURE_USE, Packets Sent, Packets
// Received, Session End Reason, DG levels 1-4, Virtual System Name, Device
// Name, Action Source, … Rule UUID (65).
//
// THREAT continues with URL/Filename, Threat ID, Category, Severity,
// Direction, Sequence Number, Action Flags, Source Location, Destination
// Location, FUTURE_USE, Content Type, PCAP_ID, File Digest, Cloud, URL Index,
// User Agent, File Type, X-Forwarded-For, Referer, Sender, Subject,
// Recipient, Report ID, DG levels 1-4, Virtual System Name, Device Name,
// FUTURE_USE, Source VM UUID, Destination VM UUID, HTTP Method, Tunnel
// ID/IMSI, Monitor Tag/IMEI, Parent Session ID, Parent Start Time, Tunnel
// Type, Threat Category, Content Version, FUTURE_USE, SCTP Association ID,
// Payload Protocol ID, HTTP Headers, URL Category List, Rule UUID (76).

// Field indexes shared by TRAFFIC and THREAT.
const (
	panReceiveTime = 1
	panSerial      = 2
	panType        = 3
	panSubtype     = 4
	panGenTime     = 6
	panSrc         = 7
	panDst         = 8
	panNatSrc      = 9
	panNatDst      = 10
	panRule        = 11
	panSrcUser     = 12
	panDstUser     = 13
	panApp         = 14
	panVsys        = 15
	panFromZone    = 16
	panToZone      = 17
	panInIface     = 18
	panOutIface    = 19
	panLogAction   = 20
	panSessionID   = 22
	panRepeat      = 23
	panSport       = 24
	panDport       = 25
	panNatSport    = 26
	panNatDport    = 27
	panFlags       = 28
	panProto       = 29
	panAction      = 30
)

func parsePanos(msg string, o *out) bool {
	i, typ := findPanType(msg)
	if i < 0 {
		return false
	}
	// Back up over Serial Number and Receive Time to the comma that ends
	// field 0 (whatever precedes it is syslog header or FUTURE_USE).
	c1 := strings.LastIndexByte(msg[:i], ',')
	if c1 < 0 {
		return false
	}
	c0 := strings.LastIndexByte(msg[:c1], ',')
	if c0 < 0 {
		return false
	}
	var f [80]string
	n := 1 + splitCSV(msg[c0+1:], f[1:])
	if n <= panAction || f[panType] != typ {
		return false
	}
	if !isIP(f[panSrc]) || !isIP(f[panDst]) {
		return false
	}
	get := func(k int) string {
		if k < n {
			return f[k]
		}
		return ""
	}
	if t, ok := panTime(f[panGenTime]); ok {
		o.setTime(t)
	} else if t, ok := panTime(f[panReceiveTime]); ok {
		o.setTime(t)
	}

	sub := f[panSubtype]
	action := f[panAction]
	o.set(fEventModule, "panos")
	o.set(fObserverProduct, "PAN-OS")
	o.set(fObserverType, "firewall")
	o.set(fObserverVendor, "Palo Alto Networks")
	o.set(fObserverSerial, f[panSerial])
	o.set(fAction, action)
	o.set(fSourceIP, f[panSrc])
	o.set(fDestIP, f[panDst])
	o.set(fSourcePort, port(f[panSport]))
	o.set(fDestPort, port(f[panDport]))
	// NAT fields are "0.0.0.0" without NAT and repeat the original address
	// when only the other side is translated.
	if nat, np := f[panNatSrc], f[panNatSport]; nat != "0.0.0.0" && nat != "::" && isIP(nat) && (nat != f[panSrc] || np != f[panSport]) {
		o.set(fSourceNatIP, nat)
		o.set(fSourceNatPort, nonZero(port(np)))
	}
	if nat, np := f[panNatDst], f[panNatDport]; nat != "0.0.0.0" && nat != "::" && isIP(nat) && (nat != f[panDst] || np != f[panDport]) {
		o.set(fDestNatIP, nat)
		o.set(fDestNatPort, nonZero(port(np)))
	}
	o.set(fRuleName, f[panRule])
	setDomainUser(o, f[panSrcUser])
	o.set(fDestUserName, f[panDstUser])
	o.set(fNetworkApplication, f[panApp])
	o.set(fNetworkTransport, transport(f[panProto]))
	o.set(fObserverIngressZone, f[panFromZone])
	o.set(fObserverEgressZone, f[panToZone])
	o.set(fObserverIngressIface, f[panInIface])
	o.set(fObserverEgressIface, f[panOutIface])
	o.set(fPanosFlags, f[panFlags])
	o.set(fPanosLogAction, f[panLogAction])
	o.set(fPanosRepeatCount, f[panRepeat])
	o.set(fPanosRule, f[panRule])
	o.set(fPanosSessionId, f[panSessionID])
	o.set(fPanosSubtype, sub)
	o.set(fPanosType, typ)
	o.set(fPanosVsys, f[panVsys])

	if typ == "TRAFFIC" {
		o.set(fEventDataset, "panos.traffic")
		o.set(fCategory, "network")
		switch {
		case allowDeny(action) == "denied" || sub == "deny" || sub == "drop":
			o.set(fType, "denied")
		case sub == "start":
			o.set(fType, "start")
		case sub == "end":
			o.set(fType, "end")
		default:
			o.set(fType, "connection")
		}
		o.set(fNetworkBytes, get(31))
		o.set(fSourceBytes, get(32))
		o.set(fDestBytes, get(33))
		o.set(fNetworkPackets, get(34))
		o.set(fPanosStartTime, get(35))
		o.set(fEventDuration, durationNS(get(36), 1_000_000_000))
		o.set(fPanosUrlCategory, get(37))
		o.set(fPanosSequenceNumber, get(39))
		o.set(fPanosActionFlags, get(40))
		o.set(fPanosSourceLocation, get(41))
		o.set(fPanosDestinationLocation, get(42))
		o.set(fSourcePackets, get(44))
		o.set(fDestPackets, get(45))
		o.set(fEventReason, get(46))
		o.set(fPanosSessionEndReason, get(46))
		o.set(fObserverHostname, get(52))
		o.set(fPanosActionSource, get(53))
		o.set(fRuleUUID, uuidOnly(get(65)))
		return true
	}

	// THREAT
	o.set(fEventDataset, "panos.threat")
	o.set(fType, "indicator")
	if t := allowDeny(action); t != "" {
		o.set(fType, t)
	}
	misc := get(31)
	switch sub {
	case "url":
		o.set(fCategory, "web")
		if misc != "" && !strings.Contains(misc, "://") {
			o.set(fURLOriginal, misc)
			if d, _, _ := strings.Cut(misc, "/"); d != "" {
				host, p := splitHostPort(d)
				o.set(fURLDomain, host)
				o.set(fURLPort, port(p))
			}
			if j := strings.IndexByte(misc, '/'); j >= 0 {
				path := misc[j:]
				if q := strings.IndexByte(path, '?'); q >= 0 {
					o.set(fURLQuery, path[q+1:])
					path = path[:q]
				}
				o.set(fURLPath, path)
			}
		} else {
			setURL(o, misc)
		}
	case "virus", "wildfire-virus", "wildfire", "ml-virus":
		o.set(fCategory, "malware")
		o.set(fFileName, misc)
	case "file", "data":
		o.set(fCategory, "file")
		o.set(fFileName, misc)
	default:
		o.set(fCategory, "intrusion_detection")
		o.set(fPanosMisc, misc)
	}
	threat := get(32)
	if op := strings.LastIndexByte(threat, '('); op >= 0 && strings.HasSuffix(threat, ")") {
		o.set(fPanosThreatId, threat[op+1:len(threat)-1])
		threat = trimSpace(threat[:op])
	}
	o.set(fPanosThreatName, threat)
	if sub == "url" {
		o.set(fPanosUrlCategory, get(33))
	} else {
		o.set(fPanosThreatCategory, get(33))
	}
	sev := get(34)
	o.set(fLogLevel, sev)
	o.set(fPanosSeverity, sev)
	o.set(fSeverity, panSeverity(sev))
	o.set(fPanosDirection, get(35))
	o.set(fPanosSequenceNumber, get(36))
	o.set(fPanosActionFlags, get(37))
	o.set(fPanosSourceLocation, get(38))
	o.set(fPanosDestinationLocation, get(39))
	o.set(fHTTPMimeType, get(41))
	if d := get(43); len(d) == 64 {
		o.set(fFileSHA256, d)
	}
	o.set(fUserAgent, get(46))
	o.set(fPanosFileType, get(47))
	o.set(fPanosXff, get(48))
	o.set(fHTTPReferrer, get(49))
	o.set(fEmailFrom, get(50))
	o.set(fEmailSubject, get(51))
	o.set(fEmailTo, get(52))
	o.set(fObserverHostname, get(59))
	if m := get(63); isLowerWord(m) {
		o.set(fHTTPMethod, m)
	}
	o.set(fPanosThreatSubcategory, get(69))
	o.set(fRuleUUID, uuidOnly(get(76)))
	return true
}

// findPanType finds ",TRAFFIC," or ",THREAT," near the start of msg (the type
// is the fourth field, after a receive time and a serial number) and
// returns the index of its leading comma.
func findPanType(msg string) (int, string) {
	head := msg
	if len(head) > 256 {
		head = head[:256]
	}
	for off := 0; ; {
		j := strings.IndexByte(head[off:], 'T')
		if j < 0 {
			return -1, ""
		}
		j += off
		if j > 0 && head[j-1] == ',' {
			rest := msg[j:]
			switch {
			case strings.HasPrefix(rest, "TRAFFIC,"):
				return j - 1, "TRAFFIC"
			case strings.HasPrefix(rest, "THREAT,"):
				return j - 1, "THREAT"
			}
		}
		off = j + 1
	}
}

// panSeverity maps PAN-OS severities to event.severity (higher is worse).
func panSeverity(s string) string {
	switch s {
	case "informational":
		return "1"
	case "low":
		return "2"
	case "medium":
		return "3"
	case "high":
		return "4"
	case "critical":
		return "5"
	}
	return ""
}

func nonZero(s string) string {
	if s == "0" {
		return ""
	}
	return s
}

// uuidOnly returns s when it looks like a UUID (guards against field shifts).
func uuidOnly(s string) string {
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		return s
	}
	return ""
}

// setDomainUser sets user.name (and user.domain from "DOMAIN\user").
func setDomainUser(o *out, u string) {
	if u == "" {
		return
	}
	if i := strings.IndexByte(u, '\\'); i > 0 && i < len(u)-1 {
		o.set(fUserDomain, u[:i])
		u = u[i+1:]
	}
	o.set(fUserName, u)
}

// panTime reads "2026/11/25 10:00:00" (firewall local time, taken as UTC).
func panTime(s string) (time.Time, bool) {
	if len(s) != 19 || s[4] != '/' || s[7] != '/' || s[10] != ' ' {
		return time.Time{}, false
	}
	y, ok := atoi(s[:4])
	if !ok {
		return time.Time{}, false
	}
	mo, ok1 := num2(s[5], s[6])
	d, ok2 := num2(s[8], s[9])
	h, m, sec, ok3 := hms(s[11:])
	if !ok1 || !ok2 || !ok3 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	return time.Date(int(y), time.Month(mo), d, h, m, sec, 0, time.UTC), true
}

func isLowerWord(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
