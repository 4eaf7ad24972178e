package intel

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Normalize checks value as an indicator of type typ and returns it in
// canonical form (see the package documentation). The type may change
// between the IP kinds: "10.0.0.0/8" given as ipv4 becomes a cidr, a /32
// cidr becomes an ipv4. typ "" detects the type (see Detect).
func Normalize(typ Type, value string) (Type, string, error) {
	v := refang(strings.TrimSpace(value))
	if v == "" {
		return "", "", fmt.Errorf("%w: empty value", ErrInvalid)
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return "", "", fmt.Errorf("%w: %q has control characters or invalid UTF-8", ErrInvalid, value)
	}
	switch typ {
	case "":
		return Detect(v)
	case TypeIPv4, TypeIPv6, TypeCIDR:
		t, n, err := normalizeIP(v)
		if err != nil {
			return "", "", err
		}
		if typ != TypeCIDR && t != typ && t != TypeCIDR {
			return "", "", fmt.Errorf("%w: %q is not an %s address", ErrInvalid, value, typ)
		}
		return t, n, nil
	case TypeDomain:
		n, err := normalizeDomain(v)
		return TypeDomain, n, err
	case TypeURL:
		n, err := normalizeURL(v)
		return TypeURL, n, err
	case TypeMD5, TypeSHA1, TypeSHA256:
		n, err := normalizeHash(typ, v)
		return typ, n, err
	case TypeEmail:
		n, err := normalizeEmail(v)
		return TypeEmail, n, err
	case TypeFilename:
		n, err := normalizeFilename(v)
		return TypeFilename, n, err
	}
	return "", "", fmt.Errorf("%w: unknown type %q", ErrInvalid, typ)
}

// Detect guesses the type of a bare value: a URL has "://" or a path after
// a host; then IP, CIDR, a hash by its hex length, an e-mail address by its
// '@', and a dotted name is a domain. File names are never guessed (a
// name like "invoice.zip" is also a valid domain): give the type.
func Detect(value string) (Type, string, error) {
	v := refang(strings.TrimSpace(value))
	switch {
	case v == "":
		return "", "", fmt.Errorf("%w: empty value", ErrInvalid)
	case strings.Contains(v, "://"):
		return Normalize(TypeURL, v)
	}
	if t, n, err := normalizeIP(v); err == nil {
		return t, n, nil
	}
	if t := hashType(v); t != "" {
		return t, strings.ToLower(v), nil
	}
	if strings.Contains(v, "@") {
		return Normalize(TypeEmail, v)
	}
	if host, rest, ok := strings.Cut(v, "/"); ok && rest != "" {
		if _, err := normalizeDomain(host); err == nil {
			return Normalize(TypeURL, v)
		}
	}
	if strings.Contains(strings.TrimSuffix(v, "."), ".") {
		if n, err := normalizeDomain(v); err == nil {
			return TypeDomain, n, nil
		}
	}
	return "", "", fmt.Errorf("%w: cannot tell the type of %q (not an IP, CIDR, URL, hash, e-mail address or dotted domain)", ErrInvalid, value)
}

// ParseManual reads an indicator typed by a person (mamori intel add ip
// 203.0.113.9). typ may be a Type or one of the shorthands "ip" (IPv4,
// IPv6 or CIDR), "hash" (by length), "hostname"/"fqdn", "file", "mail",
// "auto" or "" (Detect). The result has no source yet.
func ParseManual(typ, value string) (Indicator, error) {
	var t Type
	switch strings.ToLower(strings.TrimSpace(typ)) {
	case "", "auto":
		t = ""
	case "ip", "addr", "address", "net", "network", "subnet":
		t = TypeCIDR // accepts single addresses and prefixes
	case "ip4", "ipv4":
		t = TypeIPv4
	case "ip6", "ipv6":
		t = TypeIPv6
	case "cidr", "prefix":
		t = TypeCIDR
	case "domain", "hostname", "host", "fqdn":
		t = TypeDomain
	case "url", "uri":
		t = TypeURL
	case "hash":
		t = hashType(strings.TrimSpace(value))
		if t == "" {
			return Indicator{}, fmt.Errorf("%w: %q is not an MD5, SHA-1 or SHA-256 hex digest", ErrInvalid, value)
		}
	case "md5":
		t = TypeMD5
	case "sha1", "sha-1":
		t = TypeSHA1
	case "sha256", "sha-256":
		t = TypeSHA256
	case "email", "mail", "e-mail":
		t = TypeEmail
	case "filename", "file", "name":
		t = TypeFilename
	default:
		return Indicator{}, fmt.Errorf("%w: unknown type %q (want ip, cidr, domain, url, md5, sha1, sha256, hash, email or filename)", ErrInvalid, typ)
	}
	nt, nv, err := Normalize(t, value)
	if err != nil {
		return Indicator{}, err
	}
	return Indicator{Type: nt, Value: nv}, nil
}

// refang undoes the usual defanging of published IOCs.
func refang(v string) string {
	if !strings.ContainsAny(v, "[(") && !hasPrefixFold(v, "hxxp") && !hasPrefixFold(v, "fxp") {
		return v
	}
	r := strings.NewReplacer("[.]", ".", "(.)", ".", "[dot]", ".", "(dot)", ".", "[:]", ":", "[@]", "@", "(@)", "@", "[at]", "@", "[://]", "://")
	v = r.Replace(v)
	for _, p := range [][2]string{{"hxxps://", "https://"}, {"hxxp://", "http://"}, {"fxp://", "ftp://"}} {
		if hasPrefixFold(v, p[0]) {
			v = p[1] + v[len(p[0]):]
		}
	}
	return v
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func normalizeIP(v string) (Type, string, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", "", fmt.Errorf("%w: %q is not a CIDR: %w", ErrInvalid, v, err)
		}
		a := p.Addr()
		if a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Bits() == p.Addr().BitLen() {
			return ipType(p.Addr()), p.Addr().String(), nil
		}
		return TypeCIDR, p.String(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q is not an IP address: %w", ErrInvalid, v, err)
	}
	if a.Zone() != "" {
		return "", "", fmt.Errorf("%w: %q: IPv6 zones are local to a host", ErrInvalid, v)
	}
	a = a.Unmap()
	return ipType(a), a.String(), nil
}

func ipType(a netip.Addr) Type {
	if a.Is4() {
		return TypeIPv4
	}
	return TypeIPv6
}

func normalizeDomain(v string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(v, "."))
	d = strings.TrimPrefix(d, "*.")
	if d == "" || len(d) > 253 {
		return "", fmt.Errorf("%w: domain %q: empty or longer than 253 bytes", ErrInvalid, v)
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", fmt.Errorf("%w: %q is an IP address, not a domain", ErrInvalid, v)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%w: domain %q: empty label or label longer than 63 bytes", ErrInvalid, v)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 0x80) {
				return "", fmt.Errorf("%w: domain %q: character %q not allowed in a host name", ErrInvalid, v, c)
			}
		}
	}
	return d, nil
}

// normalizeURL implements the URL rules of the package documentation
// without re-encoding the path, so the value stays comparable with what
// proxies and IDS log.
func normalizeURL(v string) (string, error) {
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		scheme, rest = "http", v
	}
	scheme = strings.ToLower(scheme)
	if scheme == "" {
		return "", fmt.Errorf("%w: URL %q: empty scheme", ErrInvalid, v)
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", fmt.Errorf("%w: URL %q: bad scheme", ErrInvalid, v)
		}
	}
	if strings.ContainsAny(rest, " \t\r\n") {
		return "", fmt.Errorf("%w: URL %q contains blanks", ErrInvalid, v)
	}
	key, err := urlKey(rest)
	if err != nil {
		return "", fmt.Errorf("%w: URL %q: %w", ErrInvalid, v, err)
	}
	return scheme + "://" + key, nil
}

// urlKey turns "authority/path?query#frag" (no scheme) into the matching
// key host[:port]/path[?query].
func urlKey(rest string) (string, error) {
	end := strings.IndexAny(rest, "/?#")
	auth, tail := rest, ""
	if end >= 0 {
		auth, tail = rest[:end], rest[end:]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	host, port := splitHostPort(auth)
	if host == "" {
		return "", fmt.Errorf("no host")
	}
	if port == "80" || port == "443" {
		port = ""
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", fmt.Errorf("bad port %q", port)
		}
	}
	var h string
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("IPv6 zone in host")
		}
		h = a.Unmap().String()
		if a.Is6() && !a.Is4In6() {
			h = "[" + h + "]"
		}
	} else {
		d, err := normalizeDomain(host)
		if err != nil {
			return "", fmt.Errorf("host: %w", err)
		}
		h = d
	}
	if i := strings.IndexByte(tail, '#'); i >= 0 {
		tail = tail[:i]
	}
	if tail == "" || tail[0] == '?' {
		tail = "/" + tail
	}
	if port != "" {
		h += ":" + port
	}
	return h + tail, nil
}

func splitHostPort(auth string) (host, port string) {
	if strings.HasPrefix(auth, "[") {
		if i := strings.IndexByte(auth, ']'); i >= 0 {
			host, rest := auth[:i+1], auth[i+1:]
			return host, strings.TrimPrefix(rest, ":")
		}
		return auth, ""
	}
	if strings.Count(auth, ":") == 1 {
		h, p, _ := strings.Cut(auth, ":")
		return h, p
	}
	return auth, ""
}

func hashType(v string) Type {
	var t Type
	switch len(v) {
	case 32:
		t = TypeMD5
	case 40:
		t = TypeSHA1
	case 64:
		t = TypeSHA256
	default:
		return ""
	}
	if !isHex(v) {
		return ""
	}
	return t
}

func isHex(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func normalizeHash(typ Type, v string) (string, error) {
	if hashType(v) != typ {
		return "", fmt.Errorf("%w: %q is not a %s hex digest", ErrInvalid, v, typ)
	}
	return strings.ToLower(v), nil
}

func normalizeEmail(v string) (string, error) {
	e := strings.TrimPrefix(strings.ToLower(v), "mailto:")
	if i := strings.LastIndexByte(e, '<'); i >= 0 && strings.HasSuffix(e, ">") {
		e = e[i+1 : len(e)-1]
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || strings.ContainsAny(local, " \t<>,;") || strings.Contains(domain, "@") {
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrInvalid, v)
	}
	d, err := normalizeDomain(domain)
	if err != nil {
		if a, aerr := netip.ParseAddr(strings.Trim(domain, "[]")); aerr == nil && a.Zone() == "" {
			return local + "@[" + a.String() + "]", nil
		}
		return "", fmt.Errorf("%w: e-mail %q: %w", ErrInvalid, v, err)
	}
	return local + "@" + d, nil
}

func normalizeFilename(v string) (string, error) {
	n := strings.TrimSpace(baseName(v))
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "\x00\r\n") {
		return "", fmt.Errorf("%w: %q is not a file name", ErrInvalid, v)
	}
	return strings.ToLower(n), nil
}

// baseName returns the last element of a Windows or POSIX path.
func baseName(v string) string {
	if i := strings.LastIndexAny(v, `/\`); i >= 0 {
		return v[i+1:]
	}
	return v
}
