package parse

import (
	"strings"

	"github.com/mamori-soc/mamori/internal/event"
)

// parseJSON flattens the JSON object j and maps it according to its
// flavour: Suricata EVE, Zeek, Windows events from internal/ingest/evtx
// ("winlog"), or generic JSON.
func (st *state) parseJSON(j string) (string, error) {
	js := &st.sc.json
	trailing, err := js.parseObject(j)
	if err != nil {
		js.reset()
		return "", err
	}
	if trailing > 0 {
		st.addErr("JSON: trailing data after the object at offset " + itoa(trailing) + " ignored")
	}
	var hasEventType, hasTS, hasUID, hasOrig, hasPath, hasWinlog, hasTimestamp bool
	for i := range js.leaves {
		k := js.key(&js.leaves[i])
		switch string(k) {
		case "event_type":
			hasEventType = true
		case "timestamp":
			hasTimestamp = true
		case "ts":
			hasTS = true
		case "uid":
			hasUID = true
		case "id.orig_h":
			hasOrig = true
		case "_path":
			hasPath = true
		default:
			if len(k) > 7 && string(k[:7]) == "winlog." {
				hasWinlog = true
			}
		}
	}
	switch {
	case hasEventType && hasTimestamp:
		st.mapEVE()
		return "suricata", nil
	case hasTS && (hasUID || hasOrig || hasPath):
		st.mapZeek()
		return "zeek", nil
	case hasWinlog:
		st.mapGenericJSON()
		return "winlog", nil
	}
	st.mapGenericJSON()
	return "json", nil
}

// eveDirect maps EVE keys to ECS fields whose value is copied as is.
var eveDirect = map[string]string{
	"src_ip":               event.FieldSourceIP,
	"dest_ip":              event.FieldDestIP,
	"src_port":             event.FieldSourcePort,
	"dest_port":            event.FieldDestPort,
	"app_proto":            event.FieldNetworkProtocol,
	"community_id":         event.FieldNetworkCommunityID,
	"host":                 event.FieldObserverHostname,
	"in_iface":             event.FieldObserverIngressIface,
	"alert.signature":      event.FieldRuleName,
	"alert.signature_id":   event.FieldRuleID,
	"alert.category":       event.FieldRuleCategory,
	"alert.severity":       event.FieldSeverity,
	"alert.action":         event.FieldAction,
	"dns.rrname":           event.FieldDNSQuestion,
	"dns.rrtype":           event.FieldDNSQuestionType,
	"dns.rcode":            event.FieldDNSResponseCode,
	"http.hostname":        event.FieldURLDomain,
	"http.http_method":     event.FieldHTTPMethod,
	"http.status":          event.FieldHTTPStatus,
	"http.http_user_agent": event.FieldUserAgent,
	"http.length":          event.FieldHTTPBytes,
	"http.http_refer":      event.FieldHTTPReferrer,
	"tls.sni":              event.FieldTLSServerName,
	"fileinfo.filename":    event.FieldFileName,
	"fileinfo.md5":         event.FieldFileMD5,
	"fileinfo.sha1":        event.FieldFileSHA1,
	"fileinfo.sha256":      event.FieldFileSHA256,
	"fileinfo.size":        event.FieldFileSize,
	"flow.bytes_toserver":  event.FieldSourceBytes,
	"flow.bytes_toclient":  event.FieldDestBytes,
	"flow.pkts_toserver":   event.FieldSourcePackets,
	"flow.pkts_toclient":   event.FieldDestPackets,
	"flow.start":           event.FieldEventStart,
	"flow.end":             event.FieldEventEnd,
	"ether.src_mac":        event.FieldSourceMAC,
	"ether.dest_mac":       event.FieldDestMAC,
	"email.subject":        event.FieldEmailSubject,
	"email.from":           event.FieldEmailFrom,
	"email.to":             event.FieldEmailTo,
	"smtp.mail_from":       event.FieldEmailFrom,
	"smtp.rcpt_to":         event.FieldEmailTo,
}

// transportName maps protocol names and IANA numbers to ECS
// network.transport values (lower case) without allocating.
func transportName(v string) string {
	switch v {
	case "6", "TCP", "tcp", "Tcp":
		return "tcp"
	case "17", "UDP", "udp", "Udp":
		return "udp"
	case "1", "ICMP", "icmp", "Icmp":
		return "icmp"
	case "58", "IPV6-ICMP", "ipv6-icmp", "ICMPv6", "icmpv6", "ICMPV6":
		return "ipv6-icmp"
	case "2", "IGMP", "igmp":
		return "igmp"
	case "47", "GRE", "gre":
		return "gre"
	case "50", "ESP", "esp":
		return "esp"
	case "51", "AH", "ah":
		return "ah"
	case "132", "SCTP", "sctp":
		return "sctp"
	case "41", "IPV6", "ipv6":
		return "ipv6"
	case "4", "IPIP", "ipip":
		return "ipip"
	case "0":
		return "hopopt"
	}
	if isDigits(v) {
		return v
	}
	return strings.ToLower(v)
}

// setURL sets url.original, url.path and url.query from a request target.
func setURL(e *event.Event, u string) {
	if u == "" {
		return
	}
	add(e, event.FieldURLOriginal, u)
	path := u
	if i := strings.Index(path, "://"); i > 0 && i < 10 {
		rest := path[i+3:]
		k := strings.IndexAny(rest, "/?#")
		if k < 0 {
			add(e, event.FieldURLDomain, rest)
			return
		}
		add(e, event.FieldURLDomain, rest[:k])
		path = rest[k:]
	}
	if k := strings.IndexByte(path, '#'); k >= 0 {
		path = path[:k]
	}
	if k := strings.IndexByte(path, '?'); k >= 0 {
		add(e, event.FieldURLQuery, path[k+1:])
		path = path[:k]
	}
	add(e, event.FieldURLPath, path)
}

// stripAngle turns "<a@b>" into "a@b".
func stripAngle(v string) string {
	if len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>' {
		return v[1 : len(v)-1]
	}
	return v
}

// firstJSONField returns the string value of key in the first object of
// the JSON array text raw ("" when absent).
func firstJSONField(raw, key string) string {
	var js jsonScratch
	r := jsonReader{s: raw, js: &js}
	r.ws()
	if r.i >= len(raw) || raw[r.i] != '[' {
		return ""
	}
	r.i++
	r.ws()
	if r.i >= len(raw) || raw[r.i] != '{' {
		return ""
	}
	if r.object(maxFlattenDepth-2) != nil {
		return ""
	}
	for i := range js.leaves {
		if string(js.key(&js.leaves[i])) == key {
			return js.leaves[i].val
		}
	}
	return ""
}

// mapEVE maps a Suricata EVE record: ECS for the known keys, the rest under
// suricata.<path>.
func (st *state) mapEVE() {
	e, js, nm := st.e, &st.sc.json, &st.sc.names
	var evType, action string
	for i := range js.leaves {
		l := &js.leaves[i]
		k := js.key(l)
		switch string(k) {
		case "timestamp":
			if t, n, ok := parseISO(l.val, true, st.p.loc()); ok && n == len(l.val) {
				st.ts = t
				continue
			}
		case "event_type":
			evType = l.val
		case "proto":
			add(e, event.FieldNetworkTransport, transportName(l.val))
			continue
		case "http.url":
			setURL(e, l.val)
			continue
		case "smtp.mail_from":
			add(e, event.FieldEmailFrom, stripAngle(l.val))
			continue
		case "alert.action":
			action = l.val
		case "dns.queries", "dns.query":
			if l.kind == 'r' {
				add(e, event.FieldDNSQuestion, firstJSONField(l.val, "rrname"))
				add(e, event.FieldDNSQuestionType, firstJSONField(l.val, "rrtype"))
			}
		}
		if f, ok := eveDirect[string(k)]; ok {
			add(e, f, l.val)
			continue
		}
		nm.addBytes("suricata.", k, l.val)
	}
	nm.flush(e)
	add(e, event.FieldObserverVendor, "OISF")
	add(e, event.FieldObserverProduct, "Suricata")
	add(e, event.FieldObserverType, "ids")
	add(e, event.FieldEventModule, "suricata")
	cat, typ := "network", "protocol"
	switch evType {
	case "alert":
		add(e, event.FieldKind, event.KindAlert)
		cat = "intrusion_detection"
		switch action {
		case "allowed":
			typ = "allowed"
		case "blocked":
			typ = "denied"
		default:
			typ = "info"
		}
	case "flow", "netflow":
		typ = "connection"
	case "http":
		cat = "web"
	case "fileinfo":
		cat, typ = "file", "info"
	case "smtp":
		cat = "email"
	case "anomaly":
		typ = "info"
	case "stats":
		add(e, event.FieldKind, "metric")
		cat, typ = "", ""
	}
	add(e, event.FieldCategory, cat)
	add(e, event.FieldType, typ)
}

// zeekDirect maps Zeek keys valid in every log.
var zeekDirect = map[string]string{
	"id.orig_h":    event.FieldSourceIP,
	"id.orig_p":    event.FieldSourcePort,
	"id.resp_h":    event.FieldDestIP,
	"id.resp_p":    event.FieldDestPort,
	"service":      event.FieldNetworkProtocol,
	"orig_bytes":   event.FieldSourceBytes,
	"resp_bytes":   event.FieldDestBytes,
	"orig_pkts":    event.FieldSourcePackets,
	"resp_pkts":    event.FieldDestPackets,
	"community_id": event.FieldNetworkCommunityID,
	"uid":          event.FieldEventID,
	"md5":          event.FieldFileMD5,
	"sha1":         event.FieldFileSHA1,
	"sha256":       event.FieldFileSHA256,
}

// zeekByLog maps Zeek keys whose meaning depends on the log (_path).
var zeekByLog = map[string]map[string]string{
	"dns": {"query": event.FieldDNSQuestion, "qtype_name": event.FieldDNSQuestionType, "rcode_name": event.FieldDNSResponseCode},
	"http": {"host": event.FieldURLDomain, "method": event.FieldHTTPMethod, "status_code": event.FieldHTTPStatus,
		"user_agent": event.FieldUserAgent, "referrer": event.FieldHTTPReferrer, "response_body_len": event.FieldHTTPBytes},
	"ssl":    {"server_name": event.FieldTLSServerName},
	"notice": {"note": event.FieldRuleName, "msg": event.FieldMessage, "src": event.FieldSourceIP, "dst": event.FieldDestIP},
	"smtp":   {"mailfrom": event.FieldEmailFrom, "rcptto": event.FieldEmailTo, "subject": event.FieldEmailSubject, "msg_id": event.FieldEmailMessageID},
	"ntlm":   {"username": event.FieldUserName, "domainname": event.FieldUserDomain},
	"files":  {"filename": event.FieldFileName, "total_bytes": event.FieldFileSize},
	"syslog": {"message": event.FieldMessage},
	"ssh":    {},
}

// mapZeek maps a Zeek JSON log record: ECS for the known keys, the rest
// under zeek.<key>.
func (st *state) mapZeek() {
	e, js, nm := st.e, &st.sc.json, &st.sc.names
	path := ""
	var hasQuery, hasURI, hasNote, hasSNI bool
	for i := range js.leaves {
		l := &js.leaves[i]
		switch string(js.key(l)) {
		case "_path":
			path = l.val
		case "qtype_name":
			hasQuery = true
		case "uri":
			hasURI = true
		case "note":
			hasNote = true
		case "server_name":
			hasSNI = true
		}
	}
	if path == "" { // guess the log from its keys
		switch {
		case hasQuery:
			path = "dns"
		case hasURI:
			path = "http"
		case hasNote:
			path = "notice"
		case hasSNI:
			path = "ssl"
		}
	}
	byLog := zeekByLog[path]
	for i := range js.leaves {
		l := &js.leaves[i]
		k := js.key(l)
		switch string(k) {
		case "ts":
			if t, ok := parseAnyTime(l.val, st.ref, st.p.loc()); ok {
				st.ts = t
				continue
			}
		case "_path":
			continue
		case "proto":
			add(e, event.FieldNetworkTransport, transportName(l.val))
			continue
		case "uri":
			if path == "http" {
				setURL(e, l.val)
				continue
			}
		case "auth_success", "success":
			switch l.val {
			case "true":
				add(e, event.FieldOutcome, "success")
			case "false":
				add(e, event.FieldOutcome, "failure")
			}
		}
		if f, ok := byLog[string(k)]; ok {
			add(e, f, l.val)
			continue
		}
		if f, ok := zeekDirect[string(k)]; ok {
			add(e, f, l.val)
			if string(k) != "uid" {
				continue
			}
		}
		nm.addBytes("zeek.", k, l.val)
	}
	if path != "" {
		add(e, event.FieldEventDataset, "zeek."+path)
	}
	nm.flush(e)
	add(e, event.FieldObserverProduct, "Zeek")
	add(e, event.FieldObserverType, "ids")
	add(e, event.FieldEventModule, "zeek")
	cat, typ := "network", "protocol"
	switch path {
	case "conn":
		typ = "connection"
	case "http":
		cat = "web"
	case "notice":
		add(e, event.FieldKind, event.KindAlert)
		cat, typ = "intrusion_detection", "info"
	case "ssh", "ntlm", "kerberos", "rdp", "radius":
		cat = "authentication"
	case "files", "pe", "x509":
		cat, typ = "file", "info"
	case "smtp":
		cat = "email"
	}
	add(e, event.FieldCategory, cat)
	add(e, event.FieldType, typ)
}

// mapGenericJSON keeps every flattened key as is (so ECS-shaped input and
// the winlog shape of internal/ingest/evtx pass through), takes the time
// from @timestamp, timestamp or time, and message from message or msg.
func (st *state) mapGenericJSON() {
	e, js, nm := st.e, &st.sc.json, &st.sc.names
	tsKey := -1
	tsRank := 0
	var hasMessage, hasLevel, hasHostName bool
	for i := range js.leaves {
		l := &js.leaves[i]
		switch string(js.key(l)) {
		case "@timestamp":
			if tsRank < 3 {
				tsKey, tsRank = i, 3
			}
		case "timestamp":
			if tsRank < 2 {
				tsKey, tsRank = i, 2
			}
		case "time":
			if tsRank < 1 {
				tsKey, tsRank = i, 1
			}
		case "message":
			hasMessage = true
		case "log.level":
			hasLevel = true
		case "host.name":
			hasHostName = true
		}
	}
	if tsKey >= 0 {
		if t, ok := parseAnyTime(js.leaves[tsKey].val, st.ref, st.p.loc()); ok {
			st.ts = t
		} else {
			tsKey = -1
		}
	}
	for i := range js.leaves {
		l := &js.leaves[i]
		if i == tsKey {
			continue
		}
		k := js.key(l)
		switch string(k) {
		case "message":
			add(e, event.FieldMessage, l.val)
			continue
		case "msg":
			if !hasMessage {
				add(e, event.FieldMessage, l.val)
				continue
			}
		case "level":
			if !hasLevel {
				add(e, event.FieldLogLevel, l.val)
				continue
			}
		case "host", "hostname":
			if !hasHostName && l.kind == 's' {
				add(e, event.FieldHostName, l.val)
				continue
			}
		case event.FieldOriginal, event.FieldOriginalBase64, "event.ingested", "@timestamp":
			nm.addBytes("json.", k, l.val)
			continue
		}
		nm.addBytes("", k, l.val)
	}
	nm.flush(e)
}
