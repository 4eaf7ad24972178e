package vendor

import (
	"strings"
)

// sshd: OpenSSH server messages (tag sshd, or sshd-session / sshd-auth
// since OpenSSH 9.8), e.g.
//
//	Accepted publickey for root from 192.0.2.1 port 5555 ssh2: ED25519 SHA256:…
//	Failed password for invalid user bob from 203.0.113.9 port 40022 ssh2
//	Invalid user bob from 203.0.113.9 port 40022
//	Connection closed by authenticating user root 203.0.113.9 port 40022 [preauth]
//	Disconnected from user root 192.0.2.1 port 5555
//	Received disconnect from 203.0.113.9 port 40022:11: Bye Bye [preauth]
//	pam_unix(sshd:session): session opened for user root(uid=0) by root(uid=0)
//	pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root
//	error: maximum authentication attempts exceeded for root from 203.0.113.9 port 40022 ssh2 [preauth]

func parseSSHD(app, pid, body string, o *out) bool {
	body = trimSpace(body)
	if body == "" {
		return false
	}
	o.set(fEventDataset, "sshd.log")
	o.set(fEventModule, "sshd")
	o.set(fProcessName, app)
	o.set(fProcessPID, pid)
	if strings.HasSuffix(body, " [preauth]") {
		body = body[:len(body)-10]
		o.set(fSshdPreauth, "true")
	}
	for _, lvl := range [...]string{"error: ", "fatal: "} {
		if strings.HasPrefix(body, lvl) {
			o.set(fLogLevel, lvl[:len(lvl)-2])
			body = body[len(lvl):]
			break
		}
	}

	auth := func(action, outcome string) {
		o.set(fCategory, "authentication")
		o.set(fType, "info")
		o.set(fAction, action)
		o.set(fOutcome, outcome)
	}
	network := func(action, typ string) {
		o.set(fCategory, "network")
		o.set(fType, typ)
		o.set(fAction, action)
	}

	switch {
	case strings.HasPrefix(body, "Accepted "), strings.HasPrefix(body, "Failed "):
		ok := body[0] == 'A'
		rest := body[strings.IndexByte(body, ' ')+1:]
		method, rest, found := strings.Cut(rest, " for ")
		if !found {
			return true
		}
		if ok {
			auth("ssh_login", "success")
		} else {
			auth("ssh_login", "failure")
		}
		o.set(fSshdMethod, method)
		sshUserFrom(o, rest)
	case strings.HasPrefix(body, "Invalid user "):
		auth("invalid_user", "failure")
		sshUserFrom(o, body[13:])
	case strings.HasPrefix(body, "maximum authentication attempts exceeded for "):
		auth("max_auth_attempts_exceeded", "failure")
		sshUserFrom(o, body[45:])
	case strings.HasPrefix(body, "Connection closed by "):
		o.set(fCategory, "authentication")
		o.set(fType, "end")
		o.set(fAction, "connection_closed")
		sshUserIPPort(o, body[21:])
	case strings.HasPrefix(body, "Connection reset by "):
		o.set(fCategory, "authentication")
		o.set(fType, "end")
		o.set(fAction, "connection_reset")
		sshUserIPPort(o, body[20:])
	case strings.HasPrefix(body, "Disconnected from "):
		o.set(fCategory, "authentication")
		o.set(fType, "end")
		o.set(fAction, "disconnected")
		sshUserIPPort(o, body[18:])
	case strings.HasPrefix(body, "Received disconnect from "):
		network("received_disconnect", "end")
		rest := sshIPPort(o, body[25:])
		// rest ":11: Bye Bye"
		if strings.HasPrefix(rest, ":") {
			code, reason, _ := strings.Cut(rest[1:], ": ")
			o.set(fSshdDisconnectCode, code)
			o.set(fEventReason, trimSpace(reason))
		}
	case strings.HasPrefix(body, "pam_unix(") || strings.HasPrefix(body, "pam_"):
		sshPAM(o, body)
	case strings.HasPrefix(body, "PAM ") && strings.Contains(body, "more authentication failure"):
		auth("authentication_failure", "failure")
		sshPAMKV(o, body)
	case strings.HasPrefix(body, "Did not receive identification string from "):
		network("no_identification", "connection")
		sshIPPort(o, body[43:])
	case strings.HasPrefix(body, "Unable to negotiate with "):
		network("negotiation_failed", "connection")
		rest := sshIPPort(o, body[25:])
		if strings.HasPrefix(rest, ": ") {
			o.set(fEventReason, rest[2:])
		}
	case strings.HasPrefix(body, "Timeout before authentication for "):
		network("timeout", "end")
		sshIPPort(o, body[34:])
	case strings.HasPrefix(body, "banner exchange: Connection from "):
		network("banner_exchange_failed", "connection")
		rest := sshIPPort(o, body[33:])
		if strings.HasPrefix(rest, ": ") {
			o.set(fEventReason, rest[2:])
		}
	case strings.HasPrefix(body, "Connection from "):
		network("connection", "start")
		rest := sshIPPort(o, body[16:])
		if strings.HasPrefix(rest, " on ") {
			if a, r, ok := strings.Cut(rest[4:], " port "); ok && isIP(a) {
				o.set(fDestIP, a)
				p, _, _ := strings.Cut(r, " ")
				o.set(fDestPort, port(p))
			}
		}
	}
	return true
}

// sshUserFrom reads "[invalid user ]USER from IP port PORT[ ssh2[: SIG]]".
func sshUserFrom(o *out, s string) {
	i := strings.LastIndex(s, " from ")
	if i < 0 {
		return
	}
	user := s[:i]
	if strings.HasPrefix(user, "invalid user ") {
		user = user[13:]
		o.set(fSshdInvalidUser, "true")
	}
	o.set(fUserName, user)
	rest := sshIPPort(o, s[i+6:])
	if j := strings.Index(rest, "ssh2: "); j >= 0 {
		o.set(fSshdSignature, trimSpace(rest[j+6:]))
	}
}

// sshUserIPPort reads "[authenticating user |invalid user |user ]USER IP port PORT".
func sshUserIPPort(o *out, s string) {
	for _, lead := range [...]string{"authenticating user ", "invalid user ", "user "} {
		if strings.HasPrefix(s, lead) {
			rest := s[len(lead):]
			pi := strings.LastIndex(rest, " port ")
			if pi < 0 {
				pi = len(rest)
			}
			sp := strings.LastIndexByte(rest[:pi], ' ')
			if sp < 0 {
				return
			}
			if lead == "invalid user " {
				o.set(fSshdInvalidUser, "true")
			}
			o.set(fUserName, rest[:sp])
			sshIPPort(o, rest[sp+1:])
			return
		}
	}
	sshIPPort(o, s)
}

// sshIPPort reads "IP[ port PORT]" and returns what follows.
func sshIPPort(o *out, s string) string {
	end := strings.IndexByte(s, ' ')
	if end < 0 {
		end = len(s)
	}
	tok := s[:end]
	if !isIP(tok) && strings.HasSuffix(tok, ":") {
		tok = tok[:len(tok)-1] // "Received disconnect from 1.2.3.4: 11: …" (old sshd)
	}
	o.set(fSourceIP, ip(tok))
	rest := s[len(tok):]
	if strings.HasPrefix(rest, " port ") {
		rest = rest[6:]
		j := 0
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		o.set(fSourcePort, port(rest[:j]))
		rest = rest[j:]
	}
	return rest
}

// pam_unix(sshd:session): session opened for user root(uid=0) by root(uid=0)
// pam_unix(sshd:session): session closed for user root
// pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root
func sshPAM(o *out, body string) {
	_, msg, ok := strings.Cut(body, "): ")
	if !ok {
		return
	}
	switch {
	case strings.HasPrefix(msg, "session opened for user "), strings.HasPrefix(msg, "session closed for user "):
		o.set(fCategory, "session")
		if msg[8] == 'o' {
			o.set(fType, "start")
			o.set(fAction, "session_opened")
		} else {
			o.set(fType, "end")
			o.set(fAction, "session_closed")
		}
		u := msg[24:]
		if j := strings.IndexAny(u, "( "); j >= 0 {
			u = u[:j]
		}
		o.set(fUserName, u)
	case strings.HasPrefix(msg, "authentication failure"):
		o.set(fCategory, "authentication")
		o.set(fType, "info")
		o.set(fAction, "authentication_failure")
		o.set(fOutcome, "failure")
		sshPAMKV(o, msg)
	case strings.HasPrefix(msg, "check pass; user unknown"):
		o.set(fCategory, "authentication")
		o.set(fType, "info")
		o.set(fAction, "user_unknown")
		o.set(fOutcome, "failure")
	}
}

// sshPAMKV reads rhost= and user= from a PAM failure line.
func sshPAMKV(o *out, s string) {
	if i := strings.Index(s, "rhost="); i >= 0 {
		v, _, _ := strings.Cut(s[i+6:], " ")
		if isIP(v) {
			o.set(fSourceIP, v)
		} else {
			o.set(fSourceDomain, v)
		}
	}
	if i := strings.Index(s, " user="); i >= 0 {
		v, _, _ := strings.Cut(s[i+6:], " ")
		o.set(fUserName, v)
	}
}
