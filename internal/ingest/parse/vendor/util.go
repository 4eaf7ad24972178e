package vendor

import (
	"net/netip"
	"strings"
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// atoi parses a small non-negative decimal (at most 18 digits).
func atoi(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// port returns s when it is a valid port number, else "".
func port(s string) string {
	if n, ok := atoi(s); ok && n <= 65535 && len(s) <= 5 {
		return s
	}
	return ""
}

func isIP(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	// Reject by charset first: a failed ParseAddr builds an error.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || c == '.' || c == ':' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '%') {
			if i == 0 || !strings.Contains(s[:i], "%") { // zone ids are free text
				return false
			}
		}
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// ip returns s when it is an IP address, else "".
func ip(s string) string {
	if isIP(s) {
		return s
	}
	return ""
}

// dash maps the "-" placeholder to "".
func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// trimSpace trims ASCII spaces and tabs without allocating.
func trimSpace(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r' || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	return s
}

// fields splits s on runs of spaces into out and returns how many it filled.
// The last slot takes the unsplit rest when there are more words than slots.
func fields(s string, out []string) int {
	n := 0
	for n < len(out) {
		for s != "" && s[0] == ' ' {
			s = s[1:]
		}
		if s == "" {
			break
		}
		if n == len(out)-1 {
			out[n] = trimSpace(s)
			return n + 1
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			out[n] = s
			return n + 1
		}
		out[n] = s[:i]
		s = s[i+1:]
		n++
	}
	return n
}

// splitCSV splits a comma-separated line into out, honouring double quotes
// (a quoted field may hold commas; "" inside quotes is one quote). It returns
// the number of fields; fields past len(out) are dropped.
func splitCSV(s string, out []string) int {
	n, start := 0, 0
	for n < len(out) {
		if start < len(s) && s[start] == '"' {
			// Quoted field (rare): find the closing quote.
			j := start + 1
			esc := false
			for {
				k := strings.IndexByte(s[j:], '"')
				if k < 0 {
					j = len(s)
					break
				}
				j += k
				if j+1 < len(s) && s[j+1] == '"' {
					esc = true
					j += 2
					continue
				}
				break
			}
			v := s[start+1 : j]
			if esc {
				v = strings.ReplaceAll(v, `""`, `"`)
			}
			out[n] = v
			n++
			if j >= len(s) {
				return n
			}
			c := strings.IndexByte(s[j:], ',')
			if c < 0 {
				return n
			}
			start = j + c + 1
			continue
		}
		// A plain loop beats IndexByte on the short fields of these lines.
		i := start
		for i < len(s) && s[i] != ',' {
			i++
		}
		out[n] = s[start:i]
		n++
		if i >= len(s) {
			return n
		}
		start = i + 1
	}
	return n
}

// splitHostPort splits "ip:port" / "[v6]:port" / "ip" (IPv6 without brackets
// has no port).
func splitHostPort(s string) (host, p string) {
	if s != "" && s[0] == '[' {
		if j := strings.IndexByte(s, ']'); j > 0 {
			host = s[1:j]
			if j+1 < len(s) && s[j+1] == ':' {
				p = s[j+2:]
			}
			return host, p
		}
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[:i], ':') >= 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// setURL sets url.original and, when it parses simply, url.scheme, url.domain,
// url.port, url.path and url.query. It never allocates.
func setURL(o *out, u string) {
	if u == "" {
		return
	}
	o.set(fURLOriginal, u)
	rest := u
	if i := strings.Index(u, "://"); i > 0 && i < 16 && isScheme(u[:i]) {
		o.set(fURLScheme, u[:i])
		rest = u[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		hostport := rest[:end]
		if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
			hostport = hostport[at+1:]
		}
		host, p := splitHostPort(hostport)
		o.set(fURLDomain, host)
		o.set(fURLPort, port(p))
		rest = rest[end:]
	}
	if rest == "" || rest[0] != '/' {
		return
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		o.set(fURLQuery, rest[i+1:])
		rest = rest[:i]
	}
	o.set(fURLPath, rest)
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// transport returns the lower-case ECS network.transport for a protocol name,
// without allocating for the common ones.
func transport(p string) string {
	switch p {
	case "tcp", "TCP":
		return "tcp"
	case "udp", "UDP":
		return "udp"
	case "icmp", "ICMP":
		return "icmp"
	case "ICMPv6", "icmpv6", "ipv6-icmp", "icmp6", "ICMP6":
		return "ipv6-icmp"
	case "sctp", "SCTP":
		return "sctp"
	case "gre", "GRE":
		return "gre"
	case "esp", "ESP":
		return "esp"
	case "ah", "AH":
		return "ah"
	case "igmp", "IGMP":
		return "igmp"
	case "UDPLITE", "udplite":
		return "udplite"
	case "carp", "CARP":
		return "carp"
	}
	if isDigits(p) || p == "Options" {
		return "" // numbers go to network.iana_number; "Options" is pf's IPv6 hop-by-hop header
	}
	if len(p) > 16 {
		return ""
	}
	return strings.ToLower(p)
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case in s.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// setFirewall sets the observer and category fields shared by firewalls.
func setFirewall(o *out, vendor, product, dataset string) {
	o.set(fCategory, "network")
	o.set(fEventDataset, dataset)
	o.set(fEventModule, dataset[:strings.IndexByte(dataset, '.')])
	o.set(fObserverProduct, product)
	o.set(fObserverType, "firewall")
	o.set(fObserverVendor, vendor)
}

// allowDeny maps a firewall action word to event.type "allowed"/"denied".
func allowDeny(action string) string {
	switch {
	case containsFold(action, "block"), containsFold(action, "drop"), containsFold(action, "reject"),
		containsFold(action, "deny"), containsFold(action, "denied"), containsFold(action, "reset"),
		containsFold(action, "discard"):
		return "denied"
	case containsFold(action, "allow"), containsFold(action, "accept"), containsFold(action, "pass"),
		containsFold(action, "permit"):
		return "allowed"
	}
	return ""
}

// durationNS formats a count of units (e.g. milliseconds) as nanoseconds.
func durationNS(s string, unit int64) string {
	n, ok := atoi(s)
	if !ok || n > (1<<62)/unit {
		return ""
	}
	return itoa(n * unit)
}

func itoa(n int64) string {
	if n >= 0 && n < 10 {
		return digitStrings[n]
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

var digitStrings = [...]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
