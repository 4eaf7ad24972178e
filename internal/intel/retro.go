package intel

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Fields searched by RetroQuery, per kind of observable; the same fields
// the matcher reads (observableKind), minus the Suricata/Zeek list fields.
var (
	retroIPFields = []string{"source.ip", "destination.ip", "client.ip", "server.ip",
		"source.nat.ip", "destination.nat.ip", "client.nat.ip", "server.nat.ip",
		"winlog.event_data.DestinationIp", "winlog.event_data.SourceIp", "winlog.event_data.IpAddress"}
	retroDomainFields = []string{"dns.question.name", "url.domain", "destination.domain", "server.domain",
		"tls.client.server_name", "tls.server.sni", "winlog.event_data.QueryName", "winlog.event_data.DestinationHostname"}
	retroURLFields   = []string{"url.original", "url.full", "http.request.referrer"}
	retroEmailFields = []string{"email.from.address", "email.to.address", "email.sender.address",
		"email.reply_to.address", "email.cc.address", "email.bcc.address"}
	retroPathFields = []string{"file.path", "process.executable", "process.parent.executable", "dll.path",
		"winlog.event_data.TargetFilename", "winlog.event_data.Image", "winlog.event_data.ParentImage", "winlog.event_data.ImageLoaded"}
)

func retroHashFields(alg string) []string {
	return []string{"file.hash." + alg, "process.hash." + alg, "process.parent.hash." + alg, "dll.hash." + alg,
		"tls.server.hash." + alg, "winlog.event_data.Hashes", "winlog.event_data.Hash"}
}

// RetroQuery returns a LogsQL filter that finds stored events mentioning
// the indicator, over the ECS fields the matcher reads: exact matches for
// IPs, ipv4_range/ipv6_range for CIDRs, a case-insensitive regexp for a
// domain and its subdomains (also as the host of a URL), the URL with any
// scheme, default port or fragment (or its path beside url.domain),
// whole-token case-insensitive matches for hashes (also inside Sysmon's
// Hashes) and e-mail addresses, the base name of paths for file names.
// Tenancy and the time range are the caller's: the query runs in the
// tenant's store, with a _time filter added.
func RetroQuery(ind *Indicator) (string, error) {
	typ, val, err := Normalize(ind.Type, ind.Value)
	if err != nil {
		return "", fmt.Errorf("retro query: %w", err)
	}
	var q []string
	each := func(fields []string, filter string) {
		for _, f := range fields {
			q = append(q, quoteField(f)+":"+filter)
		}
	}
	switch typ {
	case TypeIPv4:
		each(retroIPFields, "="+strconv.Quote(val))
	case TypeIPv6:
		each(retroIPFields, "ipv6_range("+strconv.Quote(val)+")")
	case TypeCIDR:
		fn := "ipv4_range"
		if p := netip.MustParsePrefix(val); p.Addr().Is6() {
			fn = "ipv6_range"
		}
		each(retroIPFields, fn+"("+strconv.Quote(val)+")")
	case TypeDomain:
		host := `(?i:([^/?#:@]*\.)?` + regexp.QuoteMeta(val) + `\.?)`
		each(retroDomainFields, "~"+strconv.Quote(`^`+host+`$`))
		each(retroURLFields, "~"+strconv.Quote(`^[A-Za-z][A-Za-z0-9+.-]*://([^/?#@]*@)?`+host+`([:/?#]|$)`))
	case TypeURL:
		_, rest, _ := strings.Cut(val, "://")
		host, tail := rest, "/"
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			host, tail = rest[:i], rest[i:]
		}
		hostRe := `(?i:` + regexp.QuoteMeta(host) + `\.?)`
		if !strings.Contains(host, ":") || strings.HasSuffix(host, "]") {
			hostRe += `(:(80|443))?`
		}
		tailRe := regexp.QuoteMeta(tail)
		if tail == "/" {
			tailRe = "/?"
		}
		each(retroURLFields, "~"+strconv.Quote(`^[A-Za-z][A-Za-z0-9+.-]*://([^/?#@]*@)?`+hostRe+tailRe+`(#.*)?$`))
		if h, _ := splitHostPort(host); h == host { // path-only URLs: the host is in url.domain
			q = append(q, "("+quoteField("url.domain")+":~"+strconv.Quote(`^`+hostRe+`$`)+" AND "+
				quoteField("url.original")+":~"+strconv.Quote(`^`+tailRe+`(#.*)?$`)+")")
		}
	case TypeMD5, TypeSHA1, TypeSHA256:
		each(retroHashFields(string(typ)), "i("+strconv.Quote(val)+")")
	case TypeEmail:
		each(retroEmailFields, "i("+strconv.Quote(val)+")")
	case TypeFilename:
		name := regexp.QuoteMeta(val)
		each([]string{"file.name"}, "~"+strconv.Quote(`(?i)^`+name+`$`))
		each(retroPathFields, "~"+strconv.Quote(`(?i)(^|[/\\])`+name+`$`))
	}
	return strings.Join(q, " OR "), nil
}

// quoteField quotes a field name for LogsQL. Always quoting is simpler than
// internal/query's rule (quote unless plain and not a keyword) and is
// equally valid.
func quoteField(name string) string { return strconv.Quote(name) }
