package parse

import (
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// LEEF 1.0: "LEEF:1.0|Vendor|Product|Version|EventID|" then TAB-separated
// key=value pairs. LEEF 2.0: "LEEF:2.0|Vendor|Product|Version|EventID|
// Delimiter|" where the delimiter is one character or its hex form ("x09",
// "0x5E", "\x09"); TAB when absent.

// leefDirect maps LEEF predefined keys to ECS fields copied as is.
var leefDirect = map[string]string{
	"src":            event.FieldSourceIP,
	"dst":            event.FieldDestIP,
	"srcPort":        event.FieldSourcePort,
	"dstPort":        event.FieldDestPort,
	"srcPostNAT":     event.FieldSourceNatIP,
	"dstPostNAT":     event.FieldDestNatIP,
	"srcPostNATPort": event.FieldSourceNatPort,
	"dstPostNATPort": event.FieldDestNatPort,
	"srcMAC":         event.FieldSourceMAC,
	"dstMAC":         event.FieldDestMAC,
	"srcBytes":       event.FieldSourceBytes,
	"dstBytes":       event.FieldDestBytes,
	"srcPackets":     event.FieldSourcePackets,
	"dstPackets":     event.FieldDestPackets,
	"usrName":        event.FieldUserName,
	"domain":         event.FieldUserDomain,
	"identSrc":       event.FieldHostIP,
	"identHostName":  event.FieldHostHostname,
	"policy":         event.FieldRuleName,
	"msg":            event.FieldMessage,
	"message":        event.FieldMessage,
	"userAgent":      event.FieldUserAgent,
	"fileName":       event.FieldFileName,
	"filePath":       event.FieldFilePath,
}

// parseLEEF parses s, which starts with "LEEF:". It returns false when s
// is not a LEEF record.
func (st *state) parseLEEF(s string) bool {
	var hdr [5]string
	i, n, start := 5, 0, 5
	esc := false
	for i < len(s) && n < 5 {
		switch s[i] {
		case '\\':
			esc = true
			i += 2
			continue
		case '|':
			hdr[n] = cefHeaderField(s[start:i], esc)
			n++
			start, esc = i+1, false
		}
		i++
	}
	rest := ""
	switch {
	case n == 5:
		rest = s[min(start, len(s)):]
	case n == 4:
		hdr[4] = cefHeaderField(s[min(start, len(s)):], esc)
	default:
		return false
	}
	ver := hdr[0]
	if ver == "" || (ver[0] != '1' && ver[0] != '2') || (len(ver) > 1 && ver[1] != '.') || len(ver) > 4 {
		return false
	}
	delim := byte('\t')
	if ver[0] == '2' {
		if k := strings.IndexByte(rest, '|'); k >= 0 && k <= 6 {
			if c, ok := leefDelim(rest[:k]); ok {
				delim = c
				rest = rest[k+1:]
			}
		}
	}
	var pairs []kvPair
	if delim == ' ' || (delim == '\t' && strings.IndexByte(rest, '\t') < 0) {
		// No delimiter in use (single pair, or a sender using spaces):
		// values run until the next " key=", as in CEF.
		pairs = scanCEFExt(rest, st.sc.pairs[:0])
	} else {
		pairs = scanDelimited(rest, delim, st.sc.pairs[:0])
	}
	st.sc.pairs = pairs

	e := st.e
	add(e, "leef.version", ver)
	add(e, event.FieldObserverVendor, hdr[1])
	add(e, event.FieldObserverProduct, hdr[2])
	add(e, event.FieldObserverVersion, hdr[3])
	add(e, event.FieldEventCode, hdr[4])

	var devTime, devTimeFormat, cat, action, usr, acct string
	for _, p := range pairs {
		switch p.key {
		case "devTime":
			devTime = p.val
		case "devTimeFormat":
			devTimeFormat = p.val
		}
	}
	nm := &st.sc.names
	for _, p := range pairs {
		k, v := p.key, p.val
		switch k {
		case "devTime":
			if t, ok := leefTime(devTime, devTimeFormat, st.ref, st.p.loc()); ok {
				st.ts = t
				continue
			}
		case "devTimeFormat":
			continue
		case "proto":
			add(e, event.FieldNetworkTransport, transportName(v))
			continue
		case "sev":
			add(e, event.FieldSeverity, v)
			continue
		case "url":
			setURL(e, v)
			continue
		case "fileHash":
			if f := hashField(v); f != "" {
				add(e, f, v)
				continue
			}
		case "cat":
			cat = v
		case "action":
			action = v
			continue
		case "usrName":
			usr = v
		case "accountName":
			acct = v
		}
		if f := leefDirect[k]; f != "" {
			add(e, f, v)
			continue
		}
		nm.add("leef.", k, v)
	}
	nm.flush(e)
	if usr == "" {
		add(e, event.FieldUserName, acct)
	}
	if action != "" {
		add(e, event.FieldAction, action)
		out, typ := actionOutcome(action)
		add(e, event.FieldOutcome, out)
		add(e, event.FieldType, typ)
	} else {
		add(e, event.FieldAction, cat)
	}
	return true
}

// leefDelim decodes the LEEF 2.0 delimiter field.
func leefDelim(d string) (byte, bool) {
	switch {
	case d == "":
		return '\t', true
	case len(d) == 1:
		return d[0], true
	}
	h := d
	switch {
	case strings.HasPrefix(h, "0x"), strings.HasPrefix(h, "0X"), strings.HasPrefix(h, "\\x"):
		h = h[2:]
	case h[0] == 'x' || h[0] == 'X':
		h = h[1:]
	default:
		return 0, false
	}
	if len(h) < 1 || len(h) > 2 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(h); i++ {
		c := h[i] | 0x20
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		default:
			return 0, false
		}
	}
	if v == 0 || v > 127 {
		return 0, false
	}
	return byte(v), true
}

// scanDelimited splits "k=v<d>k=v..." into pairs. A piece without "=" is
// taken as a delimiter inside the previous value.
func scanDelimited(ext string, d byte, pairs []kvPair) []kvPair {
	prevStart := -1 // start of the previous value in ext
	i := 0
	for i <= len(ext) {
		end := strings.IndexByte(ext[i:], d)
		if end < 0 {
			end = len(ext)
		} else {
			end += i
		}
		piece := ext[i:end]
		eq := strings.IndexByte(piece, '=')
		key := ""
		if eq > 0 {
			key = strings.TrimSpace(piece[:eq])
		}
		if key != "" && validKVKey(key) {
			v := trimSpaces(piece[eq+1:])
			pairs = append(pairs, kvPair{key, v})
			prevStart = i + eq + 1
		} else if prevStart >= 0 && len(pairs) > 0 && strings.TrimSpace(piece) != "" {
			pairs[len(pairs)-1].val = trimSpaces(ext[prevStart:end])
		}
		i = end + 1
	}
	return pairs
}

func trimSpaces(v string) string {
	for len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	for len(v) > 0 && v[len(v)-1] == ' ' {
		v = v[:len(v)-1]
	}
	return v
}

func validKVKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isCEFKeyChar(k[i]) {
			return false
		}
	}
	return true
}

// leefTime parses devTime with the Java SimpleDateFormat in devTimeFormat,
// or without one as epoch milliseconds or "MMM dd yyyy HH:mm:ss".
func leefTime(v, javaFormat string, ref time.Time, loc *time.Location) (time.Time, bool) {
	if javaFormat != "" {
		if layout := javaLayout(javaFormat); layout != "" {
			if t, err := time.ParseInLocation(layout, v, locOrUTC(loc)); err == nil {
				return t.UTC(), true
			}
		}
	}
	if t, ok := parseCEFTime(v, ref, loc); ok {
		return t, true
	}
	return parseAnyTime(v, ref, loc)
}

var (
	layoutMu    sync.RWMutex
	layoutCache = map[string]string{}
)

// javaLayout converts a Java SimpleDateFormat pattern to a Go time layout
// ("" when it cannot). Results are cached (bounded).
func javaLayout(f string) string {
	layoutMu.RLock()
	l, ok := layoutCache[f]
	layoutMu.RUnlock()
	if ok {
		return l
	}
	l = convertJavaLayout(f)
	layoutMu.Lock()
	if len(layoutCache) < 256 {
		layoutCache[f] = l
	}
	layoutMu.Unlock()
	return l
}

func convertJavaLayout(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); {
		c := f[i]
		j := i
		for j < len(f) && f[j] == c {
			j++
		}
		n := j - i
		switch c {
		case 'y':
			if n == 2 {
				b.WriteString("06")
			} else {
				b.WriteString("2006")
			}
		case 'M':
			switch {
			case n >= 4:
				b.WriteString("January")
			case n == 3:
				b.WriteString("Jan")
			case n == 2:
				b.WriteString("01")
			default:
				b.WriteString("1")
			}
		case 'd':
			if n >= 2 {
				b.WriteString("02")
			} else {
				b.WriteString("2")
			}
		case 'H', 'k':
			b.WriteString("15")
		case 'h', 'K':
			if n >= 2 {
				b.WriteString("03")
			} else {
				b.WriteString("3")
			}
		case 'm':
			if n >= 2 {
				b.WriteString("04")
			} else {
				b.WriteString("4")
			}
		case 's':
			if n >= 2 {
				b.WriteString("05")
			} else {
				b.WriteString("5")
			}
		case 'S':
			b.WriteString(strings.Repeat("0", min(n, 9)))
		case 'a':
			b.WriteString("PM")
		case 'E':
			if n >= 4 {
				b.WriteString("Monday")
			} else {
				b.WriteString("Mon")
			}
		case 'z':
			b.WriteString("MST")
		case 'Z':
			b.WriteString("-0700")
		case 'X':
			switch n {
			case 1:
				b.WriteString("Z07")
			case 2:
				b.WriteString("Z0700")
			default:
				b.WriteString("Z07:00")
			}
		case '\'':
			// quoted literal
			k := strings.IndexByte(f[i+1:], '\'')
			if k < 0 {
				return ""
			}
			if k == 0 {
				b.WriteByte('\'')
			} else {
				b.WriteString(f[i+1 : i+1+k])
			}
			j = i + k + 2
		default:
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
				return "" // a pattern letter we do not support
			}
			b.WriteString(f[i:j])
		}
		i = j
	}
	return b.String()
}
