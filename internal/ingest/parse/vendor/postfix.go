package vendor

import (
	"strings"
)

// postfix: the Postfix MTA's syslog lines, tagged postfix/<program> (or
// "postfix" with the program in the body after an rsyslog reformat):
//
//	postfix/smtpd: connect from mail.example.com[192.0.2.1]
//	postfix/smtpd: 3F2A81C0E1: client=mail.example.com[192.0.2.1], sasl_method=PLAIN, sasl_username=alice
//	postfix/cleanup: 3F2A81C0E1: message-id=<20261125.abc@example.com>
//	postfix/qmgr: 3F2A81C0E1: from=<alice@example.com>, size=1234, nrcpt=1 (queue active)
//	postfix/smtp: 3F2A81C0E1: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2,
//	    delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)
//	postfix/smtpd: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@example.org>:
//	    Relay access denied; from=<spam@example.biz> to=<x@example.org> proto=ESMTP helo=<bad>

func parsePostfix(app, pid, body string, o *out) bool {
	prog := app
	if app == "postfix" {
		// rsyslog may have cut the tag at the slash: body "/smtpd[123]: …"
		// or "smtpd[123]: …".
		b := strings.TrimPrefix(body, "/")
		if tag, p, rest, ok := cutTag(b); ok && tag != "NOQUEUE" && !isQueueID(tag) && !strings.Contains(tag, "%") {
			prog, pid, body = "postfix/"+tag, p, rest
		}
	}
	body = trimSpace(body)
	if body == "" {
		return false
	}
	o.set(fCategory, "email")
	o.set(fEventDataset, "postfix.log")
	o.set(fEventModule, "postfix")
	o.set(fProcessName, prog)
	o.set(fProcessPID, pid)

	// Severity prefixes.
	for _, lvl := range [...]string{"warning: ", "error: ", "fatal: ", "panic: "} {
		if strings.HasPrefix(body, lvl) {
			o.set(fLogLevel, lvl[:len(lvl)-2])
			body = body[len(lvl):]
			if strings.Contains(body, "SASL") && strings.Contains(body, "authentication failed") {
				o.set(fAction, "sasl-authentication-failed")
				o.set(fOutcome, "failure")
				o.set(fType, "info")
				setClient(o, body)
			}
			return true
		}
	}

	// Queue id.
	qid := ""
	if c := strings.Index(body, ": "); c > 0 && c <= 20 {
		if id := body[:c]; id == "NOQUEUE" || isQueueID(id) {
			qid = id
			body = body[c+2:]
		}
	}
	if qid != "NOQUEUE" {
		o.set(fEmailQueueID, qid)
	}

	switch {
	case strings.HasPrefix(body, "connect from "):
		o.set(fAction, "connect")
		o.set(fType, "connection")
		setHostBracket(o, body[13:], fSourceDomain, fSourceIP, fSourcePort)
		return true
	case strings.HasPrefix(body, "disconnect from "):
		o.set(fAction, "disconnect")
		o.set(fType, "end")
		setHostBracket(o, body[16:], fSourceDomain, fSourceIP, fSourcePort)
		if i := strings.Index(body, "] "); i > 0 {
			o.set(fPostfixCommands, body[i+2:])
		}
		return true
	case strings.HasPrefix(body, "lost connection after "), strings.HasPrefix(body, "timeout after "):
		if body[0] == 'l' {
			o.set(fAction, "lost-connection")
		} else {
			o.set(fAction, "timeout")
		}
		if i := strings.Index(body, " from "); i > 0 {
			o.set(fPostfixStage, body[strings.Index(body, "after ")+6:i])
			setHostBracket(o, body[i+6:], fSourceDomain, fSourceIP, fSourcePort)
		}
		return true
	case body == "removed":
		o.set(fAction, "removed")
		o.set(fType, "deletion")
		return true
	}
	for _, verb := range [...]string{"reject: ", "milter-reject: ", "reject_warning: ", "discard: ", "hold: ", "redirect: ", "filter: "} {
		if strings.HasPrefix(body, verb) {
			postfixReject(o, verb[:len(verb)-2], body[len(verb):])
			return true
		}
	}
	if strings.HasSuffix(prog, "/postscreen") && postscreen(o, body) {
		return true
	}
	if strings.HasPrefix(body, "sender non-delivery notification: ") {
		o.set(fAction, "bounce-notification")
		o.set(fPostfixBounceQueueId, trimSpace(body[34:]))
		return true
	}
	o.set(fAction, postfixKV(o, body))
	return true
}

// isQueueID accepts short (hex) and long (base-52-ish) Postfix queue ids.
func isQueueID(s string) bool {
	if len(s) < 5 || len(s) > 20 {
		return false
	}
	digit, hex := false, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digit = true
		case c >= 'A' && c <= 'F':
		case c >= 'G' && c <= 'Z', c >= 'a' && c <= 'z':
			hex = false
		default:
			return false
		}
	}
	// Words like "warning" or "Postfix" have no digits; long ids nearly
	// always do, short ids are upper-case hex.
	return digit || hex
}

// setHostBracket reads "host[ip]" or "host[ip]:port" into the domain/ip/port fields.
func setHostBracket(o *out, s string, domainF, ipF, portF *fname) {
	ob := strings.IndexByte(s, '[')
	if ob < 0 {
		return
	}
	c := strings.IndexByte(s[ob:], ']')
	if c < 0 {
		return
	}
	host, addr := s[:ob], s[ob+1:ob+c]
	if strings.HasPrefix(addr, "IPv6:") {
		addr = addr[5:]
	}
	if host != "unknown" && host != "" && strings.IndexByte(host, ' ') < 0 {
		o.set(domainF, host)
	}
	o.set(ipF, ip(addr))
	rest := s[ob+c+1:]
	if len(rest) > 1 && rest[0] == ':' {
		p := rest[1:]
		if j := strings.IndexAny(p, ",; "); j >= 0 {
			p = p[:j]
		}
		o.set(portF, port(p))
	}
}

// setClient finds "host[ip]" in a warning such as
// "unknown[203.0.113.9]: SASL LOGIN authentication failed: …".
func setClient(o *out, s string) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return
	}
	start := strings.LastIndexByte(s[:end], ' ') + 1
	setHostBracket(o, s[start:end+1], fSourceDomain, fSourceIP, fSourcePort)
	if i := strings.Index(s, "sasl_username="); i >= 0 {
		o.set(fUserName, s[i+14:])
	}
}

// reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@example.org>: Relay access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>
func postfixReject(o *out, verb, s string) {
	o.set(fAction, verb)
	if verb == "reject" || verb == "milter-reject" || verb == "discard" {
		o.set(fOutcome, "failure")
		o.set(fType, "denied")
	}
	stage, rest, ok := strings.Cut(s, " from ")
	if !ok {
		return
	}
	o.set(fPostfixStage, stage)
	// rest: "unknown[203.0.113.9]: 554 5.7.1 …; from=<…> …"
	setHostBracket(o, rest, fSourceDomain, fSourceIP, fSourcePort)
	if i := strings.Index(rest, "]: "); i >= 0 {
		rest = rest[i+3:]
	} else if i := strings.Index(rest, ": "); i >= 0 {
		rest = rest[i+2:]
	}
	resp, kv, _ := strings.Cut(rest, "; ")
	var w [2]string
	if n := fields(resp, w[:]); n == 2 && len(w[0]) == 3 && isDigits(w[0]) {
		o.set(fPostfixResponseCode, w[0])
		if d, _, _ := strings.Cut(w[1], " "); isDSN(d) {
			o.set(fPostfixDsn, d)
		}
	}
	o.set(fEventReason, resp)
	postfixKV(o, kv)
}

func isDSN(s string) bool {
	return len(s) >= 5 && (s[0] == '2' || s[0] == '4' || s[0] == '5') && s[1] == '.'
}

// postfixKV reads "key=value" lists separated by ", " or " ". Values in <…>
// lose the brackets; status= takes its parenthesized text too. It returns
// the event.action the keys imply.
func postfixKV(o *out, s string) string {
	action := ""
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		ks := strings.LastIndexAny(s[:eq], " ,(") + 1
		key := s[ks:eq]
		s = s[eq+1:]
		var v string
		if s != "" && s[0] == '<' {
			end := strings.IndexByte(s, '>')
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[1:end], s[end+1:]
			}
		} else {
			end := strings.IndexAny(s, ", ")
			if end < 0 {
				end = len(s)
			}
			v, s = s[:end], s[end:]
		}
		switch key {
		case "from":
			o.set(fEmailFrom, v)
			if action == "" {
				action = "queued"
			}
		case "to":
			o.set(fEmailTo, v)
		case "orig_to":
			o.set(fPostfixOrigTo, v)
		case "relay":
			o.set(fPostfixRelay, v)
			setHostBracket(o, v, fDestDomain, fDestIP, fDestPort)
		case "delay":
			o.set(fPostfixDelay, v)
		case "delays":
			o.set(fPostfixDelays, v)
		case "dsn":
			o.set(fPostfixDsn, v)
		case "status":
			o.set(fPostfixStatus, v)
			action = v
			switch v {
			case "sent", "delivered":
				o.set(fOutcome, "success")
			case "bounced", "deferred", "expired", "undeliverable":
				o.set(fOutcome, "failure")
			}
			if t := trimSpace(s); len(t) > 1 && t[0] == '(' {
				if c := strings.LastIndexByte(t, ')'); c > 0 {
					o.set(fPostfixStatusText, t[1:c])
				}
			}
			s = "" // the rest is free text
		case "message-id":
			o.set(fEmailMessageID, v)
			action = "cleanup"
		case "client":
			setHostBracket(o, v, fSourceDomain, fSourceIP, fSourcePort)
			action = "client"
		case "sasl_method":
			o.set(fPostfixSaslMethod, v)
		case "sasl_username":
			o.set(fUserName, v)
		case "sasl_sender":
			o.set(fPostfixSaslSender, v)
		case "size":
			o.set(fPostfixSize, v)
		case "nrcpt":
			o.set(fPostfixNrcpt, v)
		case "proto":
			o.set(fPostfixProto, v)
		case "helo":
			o.set(fPostfixHelo, v)
		case "uid":
			o.set(fPostfixUid, v)
		case "orig_client":
			o.set(fPostfixOrigClient, v)
		}
	}
	return action
}

// postscreen: "CONNECT from [203.0.113.12]:51234 to [192.0.2.25]:25",
// "PASS NEW [203.0.113.12]:51234", "DNSBL rank 3 for [203.0.113.12]:51234",
// "PREGREET 11 after 0.1 from [203.0.113.12]:51234: EHLO x", "DISCONNECT [203.0.113.12]:51234"…
func postscreen(o *out, body string) bool {
	word, _, _ := strings.Cut(body, " ")
	action := ""
	switch word {
	case "CONNECT":
		action = "connect"
	case "PASS":
		action = "pass"
	case "DISCONNECT":
		action = "disconnect"
	case "PREGREET":
		action = "pregreet"
	case "HANGUP":
		action = "hangup"
	case "DNSBL":
		action = "dnsbl"
	case "WHITELISTED", "ALLOWLISTED":
		action = "allowlisted"
	case "BLACKLISTED", "DENYLISTED":
		action = "denylisted"
	case "COMMAND", "BARE", "NON-SMTP":
		action = "protocol-violation"
	default:
		return false
	}
	o.set(fAction, action)
	ob := strings.IndexByte(body, '[')
	if ob < 0 {
		return true
	}
	setHostBracket(o, body[ob:], fSourceDomain, fSourceIP, fSourcePort)
	if i := strings.Index(body, " to ["); i > 0 && word == "CONNECT" {
		setHostBracket(o, body[i+4:], fDestDomain, fDestIP, fDestPort)
	}
	return true
}
