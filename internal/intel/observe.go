package intel

import (
	"net/netip"
	"strings"
	"unsafe"
)

// How a field's value is read.
const (
	oIP         = iota + 1 // one IP address
	oIPList                // IPs separated by ','
	oHost                  // an IP or a host name
	oHostList              // IPs or host names separated by ','
	oDomain                // a host name
	oDomainList            // host names separated by ','
	oURL                   // absolute URL, or a path with url.domain beside it
	oMD5
	oSHA1
	oSHA256
	oHexHash   // a digest whose algorithm follows from its length, ':' allowed (certificate fingerprints)
	oHashList  // Sysmon "SHA1=…,MD5=…,SHA256=…,IMPHASH=…"
	oEmail     // "a@b" or "Name <a@b>"
	oEmailList // several, separated by ','
	oFile      // a file name
	oFileList  // file names separated by ','
	oPath      // a path: its base name
)

// observableKind says whether and how a field carries observables. The
// names are ECS (docs/FIELDS.md), Sysmon/Windows event data as
// internal/ingest/evtx emits it, and the Suricata/Zeek keys our parsers keep
// under their namespace. A switch on constant strings compiles to a
// length-then-value binary search: a few ns per field, no hashing.
func observableKind(name string) uint8 {
	switch name {
	case "source.ip", "destination.ip", "client.ip", "server.ip",
		"source.nat.ip", "destination.nat.ip", "client.nat.ip", "server.nat.ip":
		return oIP
	case "related.ip", "zeek.tx_hosts", "zeek.rx_hosts", "suricata.dns.grouped.A", "suricata.dns.grouped.AAAA":
		return oIPList
	case "suricata.dns.rdata":
		return oHost
	case "zeek.answers", "related.hosts":
		return oHostList
	case "dns.question.name", "url.domain", "destination.domain", "server.domain",
		"tls.client.server_name", "tls.server.sni":
		return oDomain
	case "suricata.dns.grouped.CNAME", "zeek.san.dns":
		return oDomainList
	case "url.original", "url.full", "http.request.referrer", "suricata.http.redirect":
		return oURL
	case "file.hash.md5", "process.hash.md5", "process.parent.hash.md5", "dll.hash.md5", "tls.server.hash.md5":
		return oMD5
	case "file.hash.sha1", "process.hash.sha1", "process.parent.hash.sha1", "dll.hash.sha1", "tls.server.hash.sha1":
		return oSHA1
	case "file.hash.sha256", "process.hash.sha256", "process.parent.hash.sha256", "dll.hash.sha256", "tls.server.hash.sha256":
		return oSHA256
	case "suricata.tls.fingerprint", "zeek.fingerprint":
		return oHexHash
	case "email.from.address", "email.sender.address", "email.reply_to.address":
		return oEmail
	case "email.to.address", "email.cc.address", "email.bcc.address", "zeek.from", "zeek.to", "zeek.cc", "zeek.reply_to":
		return oEmailList
	case "file.name":
		return oFile
	case "suricata.email.attachment":
		return oFileList
	case "file.path", "process.executable", "process.parent.executable", "dll.path":
		return oPath
	}
	if rest, ok := strings.CutPrefix(name, "winlog.event_data."); ok {
		switch rest {
		case "DestinationIp", "SourceIp", "IpAddress":
			return oIP
		case "DestinationHostname":
			return oHost
		case "QueryName":
			return oDomain
		case "Hashes", "Hash":
			return oHashList
		case "TargetFilename", "Image", "ParentImage", "ImageLoaded":
			return oPath
		}
	}
	return 0
}

// field matches one field's value.
func (st *matchState) field(kind uint8, name, v string) {
	buf := &st.buf
	switch kind {
	case oIP:
		st.ip(name, v)
	case oHost:
		st.host(name, v, buf)
	case oDomain:
		st.domain(name, v, buf)
	case oURL:
		st.url(name, v, buf)
	case oMD5:
		st.str(kMD5, name, v, buf)
	case oSHA1:
		st.str(kSHA1, name, v, buf)
	case oSHA256:
		st.str(kSHA256, name, v, buf)
	case oHexHash:
		st.hexHash(name, v, buf)
	case oEmail:
		st.email(name, v, buf)
	case oFile:
		st.str(kFile, name, v, buf)
	case oPath:
		st.str(kFile, name, baseName(v), buf)
	default: // the list kinds
		for len(v) > 0 {
			item := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			switch kind {
			case oIPList:
				st.ip(name, item)
			case oHostList:
				st.host(name, item, buf)
			case oDomainList:
				st.domain(name, item, buf)
			case oEmailList:
				st.email(name, item, buf)
			case oFileList:
				st.str(kFile, name, item, buf)
			case oHashList:
				st.hashItem(name, item, buf)
			}
		}
	}
}

// lower returns v in lower case, using buf when v has upper-case letters.
// The result may point into buf: it must not outlive the call that owns buf.
func lower(v string, buf *[256]byte) (string, bool) {
	i := 0
	for i < len(v) && !(v[i] >= 'A' && v[i] <= 'Z') {
		i++
	}
	if i == len(v) {
		return v, true
	}
	if len(v) > len(buf) {
		return "", false
	}
	for j := 0; j < len(v); j++ {
		c := v[j]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[j] = c
	}
	return unsafe.String(&buf[0], len(v)), true
}

func (st *matchState) lookupStr(kind int, key string) group {
	return st.x.lookup(kind, key)
}

func (st *matchState) lookupIP(a netip.Addr) group {
	k := ipKey(a)
	return st.x.lookup(kIP, unsafe.String(&k[0], len(k)))
}

// str looks up a case-insensitive exact value (hashes, e-mail, file names).
func (st *matchState) str(kind int, name, v string, buf *[256]byte) {
	key, ok := lower(v, buf)
	if !ok || key == "" {
		return
	}
	if l := st.lookupStr(kind, key); !l.empty() {
		st.emit(l, name, v)
	}
}

func (st *matchState) ip(name, v string) {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return
	}
	st.addr(name, v, a.Unmap().WithZone(""))
}

func (st *matchState) addr(name, v string, a netip.Addr) {
	if l := st.lookupIP(a); !l.empty() {
		st.emit(l, name, v)
	}
	if a.Is4() {
		if len(st.x.cidr4.e) > 0 {
			st.x.cidr4.lookup(toU128(a), st, name, v)
		}
	} else if len(st.x.cidr6.e) > 0 {
		st.x.cidr6.lookup(toU128(a), st, name, v)
	}
}

func (st *matchState) host(name, v string, buf *[256]byte) {
	if len(v) > 0 && (v[0] >= '0' && v[0] <= '9' || strings.IndexByte(v, ':') >= 0) {
		if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
			st.addr(name, v, a.Unmap().WithZone(""))
			return
		}
	}
	st.domain(name, v, buf)
}

// domain looks up the name and each parent domain (a domain indicator
// covers its subdomains), down to the fewest labels any domain indicator
// has. The same name twice in a row (url.domain, then the host of
// url.original) is looked up once.
func (st *matchState) domain(name, v string, buf *[256]byte) {
	if v == st.lastDomain && st.lastDomainField != "" {
		if st.lastDomainHit {
			st.domainWalk(name, v, buf)
		}
		return
	}
	st.lastDomain, st.lastDomainField = v, name
	st.lastDomainHit = st.domainWalk(name, v, buf)
}

func (st *matchState) domainWalk(name, v string, buf *[256]byte) (hit bool) {
	key, ok := lower(strings.TrimSuffix(v, "."), buf)
	if !ok {
		return false
	}
	dots := strings.Count(key, ".")
	for dots >= st.x.minDots {
		if l := st.lookupStr(kDomain, key); !l.empty() {
			st.emit(l, name, v)
			hit = true
		}
		i := strings.IndexByte(key, '.')
		if i < 0 {
			return hit
		}
		key = key[i+1:]
		dots--
	}
	return hit
}

// url looks up the URL (scheme ignored, see urlKey) and its host as a
// domain or IP. A path-only value (Suricata, Zeek, web servers log the
// host apart) is joined with url.domain; its host was matched there.
func (st *matchState) url(name, v string, buf *[256]byte) {
	rest := v
	if i := strings.Index(v, "://"); i >= 0 {
		rest = v[i+3:]
		end := strings.IndexAny(rest, "/?#")
		auth := rest
		if end >= 0 {
			auth = rest[:end]
		}
		if j := strings.LastIndexByte(auth, '@'); j >= 0 {
			auth = auth[j+1:]
		}
		host, _ := splitHostPort(auth)
		if host != "" {
			st.host(name, host, buf)
		}
		if st.x.hasURL {
			st.urlKey(name, v, rest, buf)
		}
		return
	}
	if !st.x.hasURL || len(v) == 0 || v[0] != '/' {
		return
	}
	dom, ok := st.e.Get("url.domain")
	if !ok || len(dom)+len(v) > len(buf) {
		return
	}
	n := copy(buf[:], dom)
	n += copy(buf[n:], v)
	if k := strings.IndexByte(unsafe.String(&buf[0], n), '#'); k >= 0 {
		n = k
	}
	lowerBytes(buf[:len(dom)])
	if l := st.lookupStr(kURL, unsafe.String(&buf[0], n)); !l.empty() {
		st.emit(l, name, v)
	}
}

// urlKey builds the matching key of an absolute URL in buf (lower-case
// host, default port and fragment dropped, "/" for an empty path).
func (st *matchState) urlKey(name, v, rest string, buf *[256]byte) {
	end := strings.IndexAny(rest, "/?#")
	auth, tail := rest, ""
	if end >= 0 {
		auth, tail = rest[:end], rest[end:]
	}
	if j := strings.LastIndexByte(auth, '@'); j >= 0 {
		auth = auth[j+1:]
	}
	host, port := splitHostPort(auth)
	if port == "80" || port == "443" {
		port = ""
	}
	if k := strings.IndexByte(tail, '#'); k >= 0 {
		tail = tail[:k]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host)+len(port)+len(tail)+2 > len(buf) {
		return
	}
	n := copy(buf[:], host)
	lowerBytes(buf[:n])
	if port != "" {
		buf[n] = ':'
		n++
		n += copy(buf[n:], port)
	}
	if tail == "" || tail[0] == '?' {
		buf[n] = '/'
		n++
	}
	n += copy(buf[n:], tail)
	if l := st.lookupStr(kURL, unsafe.String(&buf[0], n)); !l.empty() {
		st.emit(l, name, v)
	}
}

func lowerBytes(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// hexHash reads a digest that may be written with ':' between bytes.
func (st *matchState) hexHash(name, v string, buf *[256]byte) {
	n := 0
	for i := 0; i < len(v) && n < len(buf); i++ {
		if c := v[i]; c != ':' {
			buf[n] = c
			n++
		}
	}
	lowerBytes(buf[:n])
	key := unsafe.String(&buf[0], n)
	switch hashType(key) {
	case TypeMD5:
		st.emitStr(kMD5, key, name, v)
	case TypeSHA1:
		st.emitStr(kSHA1, key, name, v)
	case TypeSHA256:
		st.emitStr(kSHA256, key, name, v)
	}
}

func (st *matchState) emitStr(kind int, key, name, v string) {
	if l := st.lookupStr(kind, key); !l.empty() {
		st.emit(l, name, v)
	}
}

// hashItem reads one "ALGO=hex" item of a Sysmon Hashes field.
func (st *matchState) hashItem(name, item string, buf *[256]byte) {
	algo, hex, ok := strings.Cut(item, "=")
	if !ok {
		return
	}
	var kind int
	switch {
	case strings.EqualFold(algo, "MD5"):
		kind = kMD5
	case strings.EqualFold(algo, "SHA1"):
		kind = kSHA1
	case strings.EqualFold(algo, "SHA256"):
		kind = kSHA256
	default:
		return
	}
	st.str(kind, name, strings.TrimSpace(hex), buf)
}

// email reads "a@b" or "Display Name <a@b>".
func (st *matchState) email(name, v string, buf *[256]byte) {
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	if strings.IndexByte(v, '@') < 0 {
		return
	}
	st.str(kEmail, name, v, buf)
}
