package vendor

import (
	"strings"
)

// cisco_asa: Cisco ASA and Firepower Threat Defense syslog messages,
// "%ASA-<severity>-<message id>: <text>" (the colon is optional). The common
// firewall, connection, AAA and login messages are read into ECS; every
// other id still yields asa.message_id, event.code and log.level.

var asaLevels = [...]string{"emergency", "alert", "critical", "error", "warning", "notification", "informational", "debugging"}

// parseASA reads "%ASA-6-302013: text" from the start of s.
func parseASA(s string, o *out) bool {
	if len(s) < 13 {
		return false
	}
	hdr := s
	body := ""
	if i := strings.IndexByte(s, ' '); i > 0 {
		hdr, body = s[:i], s[i+1:]
	}
	return parseASAHeader(hdr, body, o)
}

// parseASAHeader reads a "%ASA-6-302013" or "%ASA-6-302013:" tag and its text.
func parseASAHeader(hdr, body string, o *out) bool {
	hdr = strings.TrimSuffix(hdr, ":")
	// %ASA-6-302013
	if len(hdr) < 10 || hdr[0] != '%' || hdr[4] != '-' || hdr[6] != '-' || !isDigit(hdr[5]) {
		return false
	}
	product := hdr[1:4]
	if product != "ASA" && product != "FTD" {
		return false
	}
	id := hdr[7:]
	if len(id) != 6 || !isDigits(id) {
		return false
	}
	sev := hdr[5]
	body = trimSpace(body)

	// Fields shared by all messages.
	if product == "ASA" {
		o.set(fObserverProduct, "asa")
		o.set(fEventDataset, "cisco_asa.log")
	} else {
		o.set(fObserverProduct, "ftd")
		o.set(fEventDataset, "cisco_ftd.log")
	}
	o.set(fEventModule, "cisco")
	o.set(fObserverType, "firewall")
	o.set(fObserverVendor, "Cisco")
	o.set(fEventCode, id)
	o.set(fSeverity, digitStrings[sev-'0'])
	if sev <= '7' {
		o.set(fLogLevel, asaLevels[sev-'0'])
	}
	o.set(fAsaMessageId, id)

	var w [24]string
	n := fields(body, w[:])
	words := w[:n]
	switch id {
	case "302013", "302015", "302303": // Built {inbound|outbound} TCP|UDP connection
		asaBuilt(words, o)
	case "302014", "302016", "302304": // Teardown TCP|UDP connection
		asaTeardown(words, body, o)
	case "302020", "302021": // Built/Teardown ICMP connection for faddr … gaddr … laddr …
		asaICMPConn(id, words, o)
	case "106001", "106006", "106007", "106010", "106014", "106015", "106021", "106023", "313001", "313004":
		asaDeny(words, o)
	case "106100":
		asaACL(words, o)
	case "113004", "113005", "113008", "113012", "113015", "113021":
		asaAAA(body, o)
	case "605004", "605005":
		asaLogin(words, o)
	case "710002", "710003", "710005", "710006":
		asaAccess(words, o)
	case "611101", "611102":
		asaUserAuth(body, o)
	case "111008", "111010":
		asaCommand(body, o)
	case "305011", "305012":
		asaXlate(words, o)
	case "304001", "304002":
		asaURL(words, o)
	case "430001", "430002", "430003", "430004", "430005":
		asaFTDConnection(body, o)
	}
	if !o.has(fCategory) {
		o.set(fCategory, "network")
	}
	return true
}

// asaEndpoint reads "iface:ip/port", "iface:ip", "ip/port" or "ip".
func asaEndpoint(s string) (iface, addr, p string) {
	s = strings.TrimRight(s, ",:")
	if i := strings.IndexByte(s, '('); i > 0 {
		s = s[:i] // "ip/port(user)" idfw suffix
	}
	hostport := s
	if sl := strings.LastIndexByte(s, '/'); sl >= 0 {
		hostport, p = s[:sl], s[sl+1:]
	}
	if isIP(hostport) {
		return "", hostport, p
	}
	if c := strings.IndexByte(hostport, ':'); c > 0 {
		iface = hostport[:c]
		if isIP(hostport[c+1:]) {
			return iface, hostport[c+1:], p
		}
	}
	return "", "", ""
}

// asaMapped reads "(ip/port)" and an optional "(user)" glued after it.
func asaMapped(s string) (addr, p, user string) {
	if len(s) < 3 || s[0] != '(' {
		return "", "", ""
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return "", "", ""
	}
	_, addr, p = asaEndpoint(s[1:end])
	rest := s[end+1:]
	if len(rest) > 2 && rest[0] == '(' && rest[len(rest)-1] == ')' {
		user = rest[1 : len(rest)-1]
	}
	return addr, p, user
}

func setServicePort(o *out, field *fname, p string) {
	if pp := port(p); pp != "" {
		o.set(field, pp)
	} else if p != "" && len(p) < 32 {
		o.set(fNetworkProtocol, p)
	}
}

func setASAUser(o *out, u string) {
	u = strings.Trim(u, `"'`)
	if u == "" || u == "none" {
		return
	}
	if i := strings.IndexByte(u, '\\'); i > 0 && i < len(u)-1 {
		o.set(fUserDomain, u[:i])
		u = u[i+1:]
	}
	o.set(fUserName, u)
}

// Built inbound TCP connection 123 for outside:1.2.3.4/1234 (1.2.3.4/1234) to inside:10.0.0.5/22 (203.0.113.5/22) [(user)]
func asaBuilt(w []string, o *out) {
	if len(w) < 9 || w[0] != "Built" || w[3] != "connection" {
		return
	}
	dir, proto, conn := w[1], w[2], w[4]
	var fi, fa, fp, fma, fmp, fu, ti, ta, tp, tma, tmp, tu string
	for i := 5; i+1 < len(w); i++ {
		switch w[i] {
		case "for":
			fi, fa, fp = asaEndpoint(w[i+1])
			if i+2 < len(w) {
				fma, fmp, fu = asaMapped(w[i+2])
			}
		case "to":
			ti, ta, tp = asaEndpoint(w[i+1])
			if i+2 < len(w) {
				tma, tmp, tu = asaMapped(w[i+2])
			}
		}
	}
	o.set(fAction, "connection-built")
	o.set(fType, "start")
	o.set(fNetworkTransport, transport(proto))
	o.set(fAsaConnectionId, conn)
	// "for" is the foreign (outside) side, "to" the local side; the
	// initiator is the foreign side for inbound, the local side for outbound.
	if dir == "outbound" {
		o.set(fNetworkDirection, "outbound")
		fi, fa, fp, fma, fmp, fu, ti, ta, tp, tma, tmp, tu = ti, ta, tp, tma, tmp, tu, fi, fa, fp, fma, fmp, fu
	} else if dir == "inbound" {
		o.set(fNetworkDirection, "inbound")
	}
	setAsaPair(o, fi, fa, fp, ti, ta, tp)
	if fma != fa || fmp != fp {
		o.set(fSourceNatIP, fma)
		o.set(fSourceNatPort, port(fmp))
	}
	if tma != ta || tmp != tp {
		o.set(fDestNatIP, tma)
		o.set(fDestNatPort, port(tmp))
	}
	if fu != "" {
		setASAUser(o, fu)
	}
	o.set(fDestUserName, tu)
	if last := w[len(w)-1]; len(last) > 2 && last[0] == '(' && last[len(last)-1] == ')' && strings.IndexByte(last, '/') < 0 {
		setASAUser(o, last[1:len(last)-1])
	}
}

func setAsaPair(o *out, si, sa, sp, di, da, dp string) {
	o.set(fSourceIP, sa)
	o.set(fSourcePort, port(sp))
	o.set(fDestIP, da)
	o.set(fDestPort, port(dp))
	o.set(fObserverIngressIface, si)
	o.set(fObserverEgressIface, di)
	o.set(fAsaSourceInterface, si)
	o.set(fAsaDestinationInterface, di)
}

// Teardown TCP connection 123 for outside:1.2.3.4/1234 to inside:10.0.0.5/22 duration 0:00:05 bytes 1234 TCP FINs [(user)]
func asaTeardown(w []string, body string, o *out) {
	if len(w) < 7 || w[0] != "Teardown" || w[2] != "connection" {
		return
	}
	var si, sa, sp, di, da, dp string
	for i := 4; i+1 < len(w); i++ {
		switch w[i] {
		case "for":
			if sa == "" {
				si, sa, sp = asaEndpoint(w[i+1])
			}
		case "to":
			if da == "" {
				di, da, dp = asaEndpoint(w[i+1])
			}
		case "duration":
			o.set(fEventDuration, asaDuration(w[i+1]))
		case "bytes":
			if isDigits(w[i+1]) {
				o.set(fNetworkBytes, w[i+1])
				o.set(fEventReason, teardownReason(body))
			}
		}
	}
	o.set(fAction, "connection-teardown")
	o.set(fType, "end")
	o.set(fNetworkTransport, transport(w[1]))
	o.set(fAsaConnectionId, w[3])
	setAsaPair(o, si, sa, sp, di, da, dp)
	if last := w[len(w)-1]; len(last) > 2 && last[0] == '(' && last[len(last)-1] == ')' {
		setASAUser(o, last[1:len(last)-1])
	}
}

// teardownReason returns the text after "bytes N ": "TCP FINs", "SYN
// Timeout", "Flow closed by inspection"…, without a trailing "(user)" or
// "from <iface>".
func teardownReason(body string) string {
	i := strings.Index(body, " bytes ")
	if i < 0 {
		return ""
	}
	r := body[i+7:]
	sp := strings.IndexByte(r, ' ')
	if sp < 0 {
		return ""
	}
	r = trimSpace(r[sp+1:])
	if strings.HasSuffix(r, ")") {
		if j := strings.LastIndex(r, " ("); j >= 0 {
			r = r[:j]
		} else if r[0] == '(' {
			r = ""
		}
	}
	if j := strings.Index(r, " from "); j > 0 {
		r = r[:j]
	}
	return r
}

// asaDuration turns "h:mm:ss" into nanoseconds.
func asaDuration(s string) string {
	c2 := strings.LastIndexByte(s, ':')
	if c2 < 0 {
		return ""
	}
	c1 := strings.LastIndexByte(s[:c2], ':')
	if c1 < 0 {
		return ""
	}
	h, ok1 := atoi(s[:c1])
	m, ok2 := atoi(s[c1+1 : c2])
	sec, ok3 := atoi(s[c2+1:])
	if !ok1 || !ok2 || !ok3 || h > 1_000_000 {
		return ""
	}
	return itoa((h*3600 + m*60 + sec) * 1_000_000_000)
}

// Built inbound ICMP connection for faddr 1.2.3.4/0 gaddr 10.0.0.5/0 laddr 10.0.0.5/0 [type 8 code 0]
// Teardown ICMP connection for faddr 1.2.3.4/0 gaddr 10.0.0.5/0 laddr 10.0.0.5/0 [type 8 code 0]
func asaICMPConn(id string, w []string, o *out) {
	var fa, ga, la, typ, code, dir string
	for i := 0; i+1 < len(w); i++ {
		switch w[i] {
		case "faddr":
			_, fa, _ = asaEndpoint(w[i+1])
		case "gaddr":
			_, ga, _ = asaEndpoint(w[i+1])
		case "laddr":
			_, la, _ = asaEndpoint(w[i+1])
		case "type":
			typ = w[i+1]
		case "code":
			code = w[i+1]
		case "inbound", "outbound":
			dir = w[i]
		}
	}
	src, dst, nat := fa, la, ga
	if dir == "outbound" {
		src, dst = la, fa
		o.set(fSourceNatIP, differs(ga, la))
	} else {
		o.set(fDestNatIP, differs(nat, la))
	}
	if dir != "" {
		o.set(fNetworkDirection, dir)
	}
	if id == "302020" {
		o.set(fAction, "connection-built")
		o.set(fType, "start")
	} else {
		o.set(fAction, "connection-teardown")
		o.set(fType, "end")
	}
	o.set(fNetworkTransport, "icmp")
	o.set(fSourceIP, src)
	o.set(fDestIP, dst)
	o.set(fAsaIcmpType, typ)
	o.set(fAsaIcmpCode, code)
}

func differs(a, b string) string {
	if a == b {
		return ""
	}
	return a
}

// The deny family:
//
//	Deny tcp src outside:1.2.3.4/1234 dst inside:10.0.0.5/22 by access-group "outside_access_in" [0x0, 0x0]
//	Deny icmp src outside:1.2.3.4 dst inside:10.0.0.5 (type 8, code 0) by access-group "x" [0x0, 0x0]
//	Inbound TCP connection denied from 1.2.3.4/1234 to 10.0.0.5/22 flags SYN  on interface outside
//	Deny inbound UDP from 1.2.3.4/1234 to 10.0.0.5/53 on interface outside
//	Deny TCP (no connection) from 1.2.3.4/1234 to 10.0.0.5/80 flags RST  on interface outside
//	Deny inbound protocol 47 src outside:1.2.3.4 dst inside:10.0.0.5
//	Denied ICMP type=8, code=0 from 1.2.3.4 on interface outside
func asaDeny(w []string, o *out) {
	var si, sa, sp, di, da, dp, proto, rule, flags string
	seenSrc, seenDst := false, false
	for i := 0; i < len(w); i++ {
		word := w[i]
		next := ""
		if i+1 < len(w) {
			next = w[i+1]
		}
		switch word {
		case "src", "from":
			if next == "laddr" && i+2 < len(w) {
				i++
				next = w[i+1]
			}
			if !seenSrc && next != "" {
				seenSrc = true
				si, sa, sp = asaEndpoint(next)
				i++
			}
		case "dst", "to":
			if !seenDst && seenSrc && next != "" {
				seenDst = true
				di, da, dp = asaEndpoint(next)
				i++
			}
		case "interface":
			if si == "" {
				si = next
			}
		case "access-group":
			rule = strings.Trim(next, `"`)
		case "protocol":
			if proto == "" && isDigits(next) {
				proto = next
			}
		case "flags":
			flags = next
		case "tcp", "TCP", "udp", "UDP", "icmp", "ICMP", "icmp6", "ICMP6", "gre", "GRE", "esp", "ESP":
			if proto == "" && !seenSrc {
				proto = word
			}
		}
	}
	if sa == "" && da == "" {
		return
	}
	o.set(fAction, "deny")
	o.set(fType, "denied")
	if isDigits(proto) {
		o.set(fNetworkIANANumber, proto)
	} else {
		o.set(fNetworkTransport, transport(proto))
	}
	setAsaPair(o, si, sa, sp, di, da, dp)
	o.set(fRuleName, rule)
	o.set(fAsaTcpFlags, flags)
	if len(w) > 0 && (w[0] == "Deny" && len(w) > 1 && w[1] == "inbound" || w[0] == "Inbound") {
		o.set(fNetworkDirection, "inbound")
	}
}

// access-list outside_access_in denied tcp outside/1.2.3.4(1234) -> inside/10.0.0.5(22) hit-cnt 1 first hit [0x91c26a3, 0x0]
func asaACL(w []string, o *out) {
	if len(w) < 7 || w[0] != "access-list" || w[5] != "->" {
		return
	}
	si, sa, sp := aclEndpoint(w[4])
	di, da, dp := aclEndpoint(w[6])
	if sa == "" || da == "" {
		return
	}
	action := w[2]
	o.set(fAction, action)
	o.set(fType, allowDeny(action))
	o.set(fRuleName, w[1])
	if isDigits(w[3]) {
		o.set(fNetworkIANANumber, w[3])
	} else {
		o.set(fNetworkTransport, transport(w[3]))
	}
	setAsaPair(o, si, sa, sp, di, da, dp)
	for i := 7; i+1 < len(w); i++ {
		if w[i] == "hit-cnt" {
			o.set(fAsaHitCount, w[i+1])
		}
	}
}

// aclEndpoint reads "iface/ip(port)".
func aclEndpoint(s string) (iface, addr, p string) {
	sl := strings.IndexByte(s, '/')
	if sl <= 0 {
		return "", "", ""
	}
	iface, rest := s[:sl], s[sl+1:]
	if op := strings.IndexByte(rest, '('); op > 0 && strings.HasSuffix(rest, ")") {
		p = rest[op+1 : len(rest)-1]
		rest = rest[:op]
	}
	if !isIP(rest) {
		return "", "", ""
	}
	return iface, rest, p
}

// AAA user authentication Successful : server =  10.1.1.1 : user = alice
// AAA user authentication Rejected : reason = AAA failure : server = 10.1.1.1 : user = alice : user IP = 1.2.3.4
// AAA transaction status ACCEPT : user = alice
func asaAAA(body string, o *out) {
	o.set(fCategory, "authentication")
	o.set(fType, "info")
	o.set(fAction, "aaa-authentication")
	head, rest, _ := strings.Cut(body, " : ")
	switch {
	case strings.HasSuffix(head, "Successful"), strings.HasSuffix(head, "ACCEPT"):
		o.set(fOutcome, "success")
	case strings.HasSuffix(head, "Rejected"), strings.HasSuffix(head, "REJECT"), strings.Contains(head, "fail"):
		o.set(fOutcome, "failure")
	}
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, " : ")
		k, v, ok := strings.Cut(seg, " = ")
		if !ok {
			if seg == "local database" {
				o.set(fAsaAaaServer, "LOCAL")
			}
			continue
		}
		v = trimSpace(v)
		switch trimSpace(k) {
		case "user":
			setASAUser(o, v)
		case "user IP":
			o.set(fSourceIP, ip(v))
		case "server":
			o.set(fAsaAaaServer, v)
		case "reason":
			o.set(fEventReason, v)
		}
	}
}

// Login permitted from 1.2.3.4/1234 to inside:10.0.0.1/ssh for user "admin"
// Login denied from 1.2.3.4/1234 to outside:10.0.0.1/ssh for user "bob"
func asaLogin(w []string, o *out) {
	if len(w) < 6 || w[0] != "Login" || w[2] != "from" || w[4] != "to" {
		return
	}
	_, sa, sp := asaEndpoint(w[3])
	di, da, dp := asaEndpoint(w[5])
	o.set(fCategory, "authentication")
	o.set(fType, "start")
	o.set(fAction, "login")
	if w[1] == "permitted" {
		o.set(fOutcome, "success")
	} else {
		o.set(fOutcome, "failure")
	}
	o.set(fSourceIP, sa)
	o.set(fSourcePort, port(sp))
	o.set(fDestIP, da)
	setServicePort(o, fDestPort, dp)
	o.set(fObserverIngressIface, di)
	if len(w) >= 9 && w[6] == "for" && w[7] == "user" {
		setASAUser(o, strings.Join(w[8:], " "))
	}
}

// TCP access permitted from 1.2.3.4/1234 to inside:10.0.0.1/https
// TCP access denied by ACL from 1.2.3.4/1234 to outside:10.0.0.1/ssh
// UDP request discarded from 1.2.3.4/137 to outside:10.0.0.1/netbios-ns
func asaAccess(w []string, o *out) {
	var sa, sp, di, da, dp string
	for i := 0; i+1 < len(w); i++ {
		switch w[i] {
		case "from":
			_, sa, sp = asaEndpoint(w[i+1])
		case "to":
			di, da, dp = asaEndpoint(w[i+1])
		}
	}
	if sa == "" {
		return
	}
	action := "deny"
	if len(w) > 2 && w[2] == "permitted" {
		action = "allow"
	}
	o.set(fAction, action)
	o.set(fType, allowDeny(action))
	if len(w) > 0 {
		o.set(fNetworkTransport, transport(w[0]))
	}
	o.set(fSourceIP, sa)
	o.set(fSourcePort, port(sp))
	o.set(fDestIP, da)
	setServicePort(o, fDestPort, dp)
	o.set(fObserverIngressIface, di)
}

// User authentication succeeded: IP address: 10.0.0.2, Uname: admin
// User authentication failed: IP address: 10.0.0.2, Uname: admin
func asaUserAuth(body string, o *out) {
	o.set(fCategory, "authentication")
	o.set(fType, "info")
	o.set(fAction, "user-authentication")
	if strings.Contains(body, "succeeded") {
		o.set(fOutcome, "success")
	} else {
		o.set(fOutcome, "failure")
	}
	if i := strings.Index(body, "IP address: "); i >= 0 {
		v := body[i+12:]
		if j := strings.IndexAny(v, ", "); j >= 0 {
			v = v[:j]
		}
		o.set(fSourceIP, ip(v))
	}
	if i := strings.Index(body, "Uname: "); i >= 0 {
		setASAUser(o, trimSpace(body[i+7:]))
	}
}

// User 'enable_15' executed the 'configure terminal' command.
// User 'admin', running 'CLI' from IP 10.0.0.2, executed 'write memory'
func asaCommand(body string, o *out) {
	o.set(fCategory, "configuration")
	o.set(fType, "change")
	o.set(fAction, "command-executed")
	if u, ok := quoted(body, "User '"); ok {
		setASAUser(o, u)
	}
	if c, ok := quoted(body, "executed the '"); ok {
		o.set(fAsaCommand, c)
	} else if c, ok := quoted(body, "executed '"); ok {
		o.set(fAsaCommand, c)
	}
	if i := strings.Index(body, "from IP "); i >= 0 {
		v := body[i+8:]
		if j := strings.IndexAny(v, ", "); j >= 0 {
			v = v[:j]
		}
		o.set(fSourceIP, ip(v))
	}
}

// quoted returns the text after lead up to the next single quote.
func quoted(s, lead string) (string, bool) {
	i := strings.Index(s, lead)
	if i < 0 {
		return "", false
	}
	s = s[i+len(lead):]
	j := strings.IndexByte(s, '\'')
	if j < 0 {
		return "", false
	}
	return s[:j], true
}

// Built dynamic TCP translation from inside:10.0.0.5/51234 to outside:203.0.113.5/51234
// Teardown dynamic TCP translation from inside:10.0.0.5/51234 to outside:203.0.113.5/51234 duration 0:00:30
func asaXlate(w []string, o *out) {
	if len(w) < 8 || w[3] != "translation" || w[4] != "from" || w[6] != "to" {
		return
	}
	si, sa, sp := asaEndpoint(w[5])
	di, na, np := asaEndpoint(w[7])
	if w[0] == "Built" {
		o.set(fAction, "translation-built")
		o.set(fType, "start")
	} else {
		o.set(fAction, "translation-teardown")
		o.set(fType, "end")
	}
	o.set(fNetworkTransport, transport(w[2]))
	o.set(fSourceIP, sa)
	o.set(fSourcePort, port(sp))
	o.set(fSourceNatIP, na)
	o.set(fSourceNatPort, port(np))
	o.set(fObserverIngressIface, si)
	o.set(fObserverEgressIface, di)
	if len(w) > 9 && w[8] == "duration" {
		o.set(fEventDuration, asaDuration(w[9]))
	}
}

// 10.0.0.5 Accessed URL 93.184.216.34:http://example.com/path
// 10.0.0.5(alice) Accessed URL 93.184.216.34:http://example.com/path
// 10.0.0.5 Access denied URL http://example.com/path SRC 10.0.0.5 DEST 93.184.216.34 on interface inside
func asaURL(w []string, o *out) {
	if len(w) < 4 {
		return
	}
	src := w[0]
	if i := strings.IndexByte(src, '('); i > 0 && strings.HasSuffix(src, ")") {
		setASAUser(o, src[i+1:len(src)-1])
		src = src[:i]
	}
	o.set(fCategory, "web")
	o.set(fType, "access")
	o.set(fSourceIP, ip(src))
	if w[1] == "Accessed" && w[2] == "URL" {
		o.set(fAction, "url-accessed")
		o.set(fOutcome, "success")
		u := w[3]
		if i := strings.Index(u, "://"); i > 0 {
			if c := strings.LastIndexByte(u[:i], ':'); c > 0 {
				o.set(fDestIP, ip(u[:c]))
				u = u[c+1:]
			}
		}
		setURL(o, u)
		return
	}
	if w[1] == "Access" && w[2] == "denied" && len(w) > 4 {
		o.set(fAction, "url-denied")
		o.set(fOutcome, "failure")
		setURL(o, w[4])
		for i := 5; i+1 < len(w); i++ {
			if w[i] == "DEST" {
				o.set(fDestIP, ip(w[i+1]))
			}
		}
	}
}

// FTD connection events (430001-430005): "Key: value, Key: value, …".
func asaFTDConnection(body string, o *out) {
	rest := body
	var action string
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, ", ")
		k, v, ok := strings.Cut(seg, ": ")
		if !ok {
			continue
		}
		switch k {
		case "SrcIP":
			o.set(fSourceIP, ip(v))
		case "DstIP":
			o.set(fDestIP, ip(v))
		case "SrcPort":
			o.set(fSourcePort, port(v))
		case "DstPort":
			o.set(fDestPort, port(v))
		case "Protocol":
			o.set(fNetworkTransport, transport(v))
		case "IngressInterface":
			o.set(fObserverIngressIface, v)
		case "EgressInterface":
			o.set(fObserverEgressIface, v)
		case "IngressZone":
			o.set(fObserverIngressZone, v)
		case "EgressZone":
			o.set(fObserverEgressZone, v)
		case "AccessControlRuleAction":
			action = v
		case "AccessControlRuleName":
			o.set(fRuleName, v)
		case "ACPolicy":
			o.set(fAsaPolicy, v)
		case "User":
			if v != "No Authentication Required" && v != "Not Found" {
				setASAUser(o, v)
			}
		case "ApplicationProtocol":
			o.set(fNetworkProtocol, strings.ToLower(v))
		case "URL":
			setURL(o, v)
		case "InitiatorBytes":
			o.set(fSourceBytes, v)
		case "ResponderBytes":
			o.set(fDestBytes, v)
		case "InitiatorPackets":
			o.set(fSourcePackets, v)
		case "ResponderPackets":
			o.set(fDestPackets, v)
		case "ConnectionDuration":
			o.set(fEventDuration, durationNS(v, 1_000_000_000))
		case "ConnectionID":
			o.set(fAsaConnectionId, v)
		}
	}
	if action != "" {
		o.set(fAction, strings.ToLower(action))
		o.set(fType, allowDeny(action))
	}
}
