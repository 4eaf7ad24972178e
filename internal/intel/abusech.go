package intel

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// abuse.ch CSV layouts, told apart by their column names. The header is
// either the last '#' comment line before the data ("# id,dateadded,url,…"
// in URLhaus, ThreatFox, MalwareBazaar, SSLBL) or the first data line
// (Feodo Tracker's "first_seen_utc","dst_ip",…):
//
//	urlhaus        url + url_status: the URL; threat and tags as tags; urlhaus_link as Ref
//	threatfox      ioc_value + ioc_type (ip:port, domain, url, md5_hash, sha1_hash, sha256_hash);
//	               confidence_level as confidence; malware_printable as description
//	malwarebazaar  sha256_hash + md5_hash: the three hashes; signature as tag and description
//	feodo          dst_ip: the C2 address; malware as tag; first_seen_utc, last_online
//	ipblocklist    dstip (+ firstseen): Feodo/SSLBL IP lists of the older layout
//	sslbl          sha1 + listingreason: certificate SHA-1 fingerprints
type csvLayout struct {
	name   string
	need   []string
	header []string // lower-case column names
	skip   int      // 1-based line of a header that is a data line (0: a comment)
}

var csvLayouts = []csvLayout{
	{name: "urlhaus", need: []string{"url", "url_status"}},
	{name: "threatfox", need: []string{"ioc_value", "ioc_type"}},
	{name: "malwarebazaar", need: []string{"sha256_hash", "md5_hash"}},
	{name: "feodo", need: []string{"dst_ip"}},
	{name: "ipblocklist", need: []string{"dstip"}},
	{name: "sslbl", need: []string{"sha1", "listingreason"}},
}

func splitHeader(line string) []string {
	r := csv.NewReader(strings.NewReader(line))
	r.TrimLeadingSpace = true
	r.LazyQuotes = true
	cols, err := r.Read()
	if err != nil {
		return nil
	}
	for i := range cols {
		cols[i] = strings.ToLower(strings.TrimSpace(cols[i]))
	}
	return cols
}

func matchLayout(cols []string) *csvLayout {
	for _, l := range csvLayouts {
		if len(cols) >= 2 && !slices.ContainsFunc(l.need, func(c string) bool { return !slices.Contains(cols, c) }) {
			l.header = cols
			return &l
		}
	}
	return nil
}

// detectCSV finds an abuse.ch layout in the leading comment block or the
// first data line; nil when there is none.
func detectCSV(b []byte) *csvLayout {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var found *csvLayout
	for n := 1; sc.Scan() && n <= 64; n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" {
			continue
		}
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if l := matchLayout(splitHeader(strings.TrimSpace(c))); l != nil {
				found = l // the last matching comment wins
			}
			continue
		}
		if found != nil {
			return found
		}
		if l := matchLayout(splitHeader(line)); l != nil {
			l.skip = n
			return l
		}
		return nil
	}
	return found
}

// ParseAbuseCH reads one of the abuse.ch CSV layouts (see csvLayout); a
// file without a recognizable header is an ErrFormat error.
func ParseAbuseCH(r io.Reader, name string, o FeedOptions) (*Feed, error) {
	b, err := readAll(r, name)
	if err != nil {
		return nil, err
	}
	if err := notText(b, name, "an abuse.ch CSV feed"); err != nil {
		return nil, err
	}
	layout := detectCSV(b)
	if layout == nil {
		return nil, fmt.Errorf("%w: %s: no abuse.ch column header (URLhaus, ThreatFox, MalwareBazaar, Feodo, SSLBL) in the leading lines", ErrFormat, name)
	}
	return parseCSVFeed(b, name, o, layout)
}

func parseCSVFeed(b []byte, name string, o FeedOptions, l *csvLayout) (*Feed, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	f := &Feed{Format: l.name}
	r := csv.NewReader(bytes.NewReader(b))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	col := map[string]int{}
	for i, c := range l.header {
		col[c] = i
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			f.problem(Problem{File: name, Line: pe.StartLine}, "bad CSV: %v", pe.Err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
		}
		if line == l.skip {
			continue
		}
		where := Problem{File: name, Line: line}
		if len(rec) != len(l.header) {
			f.problem(where, "%d columns, want %d (%s); line cut short?", len(rec), len(l.header), strings.Join(l.header, ","))
			continue
		}
		get := func(c string) string {
			if i, ok := col[c]; ok {
				v := strings.TrimSpace(rec[i])
				if v == "None" || v == "n/a" {
					return ""
				}
				return v
			}
			return ""
		}
		csvRow(f, &o, l.name, get, where)
	}
	return f, nil
}

// csvRow turns one row of a layout into indicators.
func csvRow(f *Feed, o *FeedOptions, layout string, get func(string) string, where Problem) {
	ref := o.ref()
	ref.Ref = fmt.Sprintf("%s:%d", where.File, where.Line)
	tags := func(vs ...string) {
		for _, v := range vs {
			for t := range strings.SplitSeq(v, ",") {
				if t = strings.TrimSpace(t); t != "" && !slices.Contains(ref.Tags, t) {
					ref.Tags = append(ref.Tags, t)
				}
			}
		}
	}
	switch layout {
	case "urlhaus":
		ref.FirstSeen, ref.LastSeen = feedTime(get("dateadded")), feedTime(get("last_online"))
		ref.Description = strings.TrimSpace(get("threat") + " " + get("url_status"))
		if link := get("urlhaus_link"); link != "" {
			ref.Ref = link
		}
		tags(get("threat"), get("tags"))
		f.add(o, TypeURL, get("url"), ref, where)
	case "threatfox":
		ref.FirstSeen, ref.LastSeen = feedTime(get("first_seen_utc")), feedTime(get("last_seen_utc"))
		ref.Description = get("malware_printable")
		if id := get("ioc_id"); id != "" {
			ref.Ref = "threatfox:" + id
		}
		if c := get("confidence_level"); c != "" {
			var n int
			if _, err := fmt.Sscan(c, &n); err != nil || n < 0 || n > 100 {
				f.problem(where, "confidence_level %q is not 0-100", c)
				return
			}
			ref.Confidence = n
		}
		tags(get("threat_type"), get("malware"), get("tags"))
		value := get("ioc_value")
		var typ Type
		switch t := get("ioc_type"); t {
		case "ip:port":
			typ, value = TypeCIDR, stripPort(value)
		case "domain":
			typ = TypeDomain
		case "url":
			typ = TypeURL
		case "md5_hash":
			typ = TypeMD5
		case "sha1_hash":
			typ = TypeSHA1
		case "sha256_hash":
			typ = TypeSHA256
		default:
			f.problem(where, "ioc_type %q: %s", t, ErrUnsupported)
			return
		}
		f.add(o, typ, value, ref, where)
	case "malwarebazaar":
		ref.FirstSeen = feedTime(get("first_seen_utc"))
		ref.Description = strings.TrimSpace(get("signature") + " " + get("file_name"))
		ref.Ref = "malwarebazaar:" + get("sha256_hash")
		tags(get("signature"))
		f.add(o, TypeSHA256, get("sha256_hash"), cloneRef(ref), where)
		f.add(o, TypeMD5, get("md5_hash"), cloneRef(ref), where)
		f.add(o, TypeSHA1, get("sha1_hash"), cloneRef(ref), where)
	case "feodo":
		ref.FirstSeen, ref.LastSeen = feedTime(get("first_seen_utc")), feedTime(get("last_online"))
		ref.Description = strings.TrimSpace("botnet C2 " + get("malware") + " port " + get("dst_port") + " " + get("c2_status"))
		tags(get("malware"))
		f.add(o, TypeCIDR, get("dst_ip"), ref, where)
	case "ipblocklist":
		ref.FirstSeen, ref.LastSeen = feedTime(get("firstseen")), feedTime(get("lastonline"))
		ref.Description = strings.TrimSpace("botnet C2 " + get("malware") + " port " + get("dstport"))
		tags(get("malware"))
		f.add(o, TypeCIDR, get("dstip"), ref, where)
	case "sslbl":
		ref.FirstSeen = feedTime(get("listingdate"))
		ref.Description = "SSL certificate: " + get("listingreason")
		f.add(o, TypeSHA1, get("sha1"), ref, where)
	}
}

// stripPort removes ":port" from "1.2.3.4:443" or "[2001:db8::1]:443".
func stripPort(v string) string {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return ap.Addr().String()
	}
	if i := strings.LastIndexByte(v, ':'); i > 0 && strings.Count(v, ":") == 1 {
		return v[:i]
	}
	return v
}

// feedTime reads the times abuse.ch writes (UTC); zero when unreadable.
func feedTime(s string) time.Time {
	for _, layout := range []string{time.DateTime, time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ParseList reads a plain list: one value per line, its type detected
// (see Detect). Blank lines and lines starting with '#', ';' or "//" are
// skipped; " #…" ends a line. A hosts-file line ("0.0.0.0 evil.example")
// gives its name; "value;description" and "value description" keep the
// rest as the description (signature-base's hash;comment lists).
func ParseList(r io.Reader, name string, o FeedOptions) (*Feed, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b, err := readAll(r, name)
	if err != nil {
		return nil, err
	}
	if err := notText(b, name, "a list of indicators"); err != nil {
		return nil, err
	}
	f := &Feed{Format: "list"}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || strings.HasPrefix(line, "//") {
			continue
		}
		value, desc := line, ""
		if v, d, ok := strings.Cut(line, ";"); ok {
			value, desc = strings.TrimSpace(v), strings.TrimSpace(d)
		} else if fields := strings.Fields(line); len(fields) >= 2 {
			switch fields[0] {
			case "0.0.0.0", "127.0.0.1", "::", "::1":
				value = fields[1]
			default:
				value, desc = fields[0], strings.TrimSpace(line[len(fields[0]):])
			}
		}
		ref := o.ref()
		ref.Ref = fmt.Sprintf("%s:%d", name, n)
		ref.Description = desc
		f.add(&o, "", value, ref, Problem{File: name, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	return f, nil
}
