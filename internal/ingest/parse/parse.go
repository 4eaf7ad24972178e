package parse

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mamori-soc/mamori/internal/event"
)

// Result says what Parse did, for metrics.
type Result struct {
	// Format names what understood the message: "rfc5424", "rfc3164",
	// "cef", "leef", "json", "suricata", "zeek", "winlog", "kv",
	// "fortigate" or a vendor parser's name; "" when nothing did.
	Format string
	// Unparsed is true when nothing understood the message; event.kind is
	// then "unparsed".
	Unparsed bool
	// InvalidUTF8 is true when the raw bytes were not valid UTF-8.
	InvalidUTF8 bool
}

// Parser parses messages into events. It holds options only, so one Parser
// is safe for concurrent use by many goroutines.
type Parser struct {
	// Location is the time zone of timestamps that carry none (RFC 3164
	// stamps, CEF/LEEF dates, FortiGate date/time without tz). nil or
	// time.UTC means UTC.
	Location *time.Location
}

// New returns a Parser with default options (UTC for zone-less times).
func New() *Parser { return &Parser{Location: time.UTC} }

func (p *Parser) loc() *time.Location {
	if p == nil || p.Location == nil {
		return time.UTC
	}
	return p.Location
}

// state is what one Parse call threads through the format parsers.
type state struct {
	p    *Parser
	e    *event.Event
	ref  time.Time // reference "now" (e.Ingested) for year inference
	ts   time.Time // event time found in the body, if any
	errs string    // error.message, "; "-joined
	sc   *scratch
}

func (st *state) addErr(msg string) {
	if st.errs == "" {
		st.errs = msg
		return
	}
	st.errs += "; " + msg
}

// scratch holds reusable buffers for one Parse call.
type scratch struct {
	sortedFor *event.Event // finish: sortedFor.Fields[:sortedN] is sorted
	sortedN   int
	keys      []sortKey // finish: sort keys in field order
	sorted    []sortKey // finish: sort keys in name order
	names     names
	pairs     []kvPair
	json      jsonScratch
	sd        []sdParam
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

const maxScratch = 64 << 10 // buffers larger than this are not pooled

// reset empties the buffers for the next message. Entries holding strings
// are cleared so a pooled scratch does not keep old messages alive.
func (sc *scratch) reset() {
	sc.sortedFor, sc.sortedN = nil, 0
	sc.names.reset()
	clear(sc.pairs)
	sc.pairs = sc.pairs[:0]
	sc.json.reset()
	clear(sc.sd)
	if cap(sc.sd) > 256 {
		sc.sd = nil
	}
	if cap(sc.keys) > 1024 {
		sc.keys, sc.sorted = nil, nil
	}
	sc.sd = sc.sd[:0]
}

// kvPair is one key/value pair found by the CEF, LEEF and key=value
// scanners; values are substrings of the message unless unescaped.
type kvPair struct{ key, val string }

// names builds many field names with a single allocation: callers add
// (name parts, value) entries, flush turns the buffer into one string and
// adds the fields.
type names struct {
	buf  []byte
	refs []nameRef
}

type nameRef struct {
	n0, n1 int
	val    string
}

func (n *names) reset() {
	clear(n.refs)
	if cap(n.buf) > maxScratch {
		n.buf = nil
	}
	n.buf = n.buf[:0]
	if cap(n.refs) > 4096 {
		n.refs = nil
	}
	n.refs = n.refs[:0]
}

// add queues the field prefix+key.
func (n *names) add(prefix, key, val string) {
	if val == "" || key == "" {
		return
	}
	n0 := len(n.buf)
	n.buf = append(n.buf, prefix...)
	n.buf = append(n.buf, key...)
	n.refs = append(n.refs, nameRef{n0, len(n.buf), val})
}

// addBytes queues the field prefix+key with key given as bytes.
func (n *names) addBytes(prefix string, key []byte, val string) {
	if val == "" || len(key) == 0 {
		return
	}
	n0 := len(n.buf)
	n.buf = append(n.buf, prefix...)
	n.buf = append(n.buf, key...)
	n.refs = append(n.refs, nameRef{n0, len(n.buf), val})
}

// add3 queues the field a+b+c+d.
func (n *names) add3(a, b, c, d, val string) {
	if val == "" {
		return
	}
	n0 := len(n.buf)
	n.buf = append(n.buf, a...)
	n.buf = append(n.buf, b...)
	n.buf = append(n.buf, c...)
	n.buf = append(n.buf, d...)
	n.refs = append(n.refs, nameRef{n0, len(n.buf), val})
}

// flush adds the queued fields to e (unsorted, see add) and empties n.
func (n *names) flush(e *event.Event) {
	if len(n.refs) == 0 {
		return
	}
	all := string(n.buf)
	for _, r := range n.refs {
		add(e, all[r.n0:r.n1], r.val)
	}
	n.buf = n.buf[:0]
	n.refs = n.refs[:0]
}

// add appends a field without keeping e.Fields sorted; finish sorts. An
// empty value is ignored, as in event.Set.
func add(e *event.Event, name, value string) {
	if value == "" || name == "" {
		return
	}
	e.Fields = append(e.Fields, event.Field{Name: name, Value: value})
}

// has reports whether e has a field name, sorted or not.
func has(e *event.Event, name string) bool {
	for i := len(e.Fields) - 1; i >= 0; i-- {
		if e.Fields[i].Name == name {
			return true
		}
	}
	return false
}

// sortKey orders fields: the first 16 bytes of the name as two big-endian
// integers (most comparisons end there), then the name, then the index.
type sortKey struct {
	hi, lo uint64
	i      int32
}

// keyLessSlow orders two fields whose names share their first 16 bytes;
// equal names keep their insertion order.
// bucketOf maps the first name byte (top byte of hi) to a bucket 0..27
// that preserves byte order.
func bucketOf(hi uint64) int {
	c := byte(hi >> 56)
	switch {
	case c < 'a':
		return 0
	case c > 'z':
		return 27
	}
	return int(c-'a') + 1
}

func keyLessSlow(i, j int32, f []event.Field) bool {
	if c := strings.Compare(f[i].Name, f[j].Name); c != 0 {
		return c < 0
	}
	return i < j
}

// nameKey returns the first 16 bytes of a field name as two big-endian
// integers (zero padded).
func nameKey(s string) (hi, lo uint64) {
	n := len(s)
	switch {
	case n >= 16:
		b := unsafe.Slice(unsafe.StringData(s), 16)
		return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	case n >= 8:
		b := unsafe.Slice(unsafe.StringData(s), n)
		hi = binary.BigEndian.Uint64(b[:8])
		if n > 8 {
			// bytes 8..n-1 at the top, zero padded: load the last 8
			// bytes (overlapping) and shift the overlap out.
			lo = binary.BigEndian.Uint64(b[n-8:]) << (8 * (16 - n))
		}
		return hi, lo
	}
	for i := 0; i < n; i++ {
		hi |= uint64(s[i]) << (56 - 8*i)
	}
	return hi, 0
}

// finish sorts e.Fields by name and removes duplicates, the value added
// last winning (as repeated event.Set calls would). It sorts small integer
// keys and moves each field once, which is much cheaper than comparing
// names with long shared prefixes and swapping two-string structs.
func finish(e *event.Event, sc *scratch) {
	f := e.Fields
	// p: length of the sorted, duplicate-free prefix. After an earlier
	// finish in this Parse call the first sortedN fields are known to be
	// sorted (only appends and event.Set happen in between).
	p := 1
	if sc.sortedFor == e {
		p = max(1, min(sc.sortedN, len(f)))
	}
	for p < len(f) && f[p-1].Name < f[p].Name {
		p++
	}
	defer func() { sc.sortedFor, sc.sortedN = e, len(e.Fields) }()
	if p >= len(f) {
		return
	}
	if len(f)-p <= 4 && p >= 8 {
		// A few fields added after an earlier finish: insert them.
		var tail [4]event.Field
		n := copy(tail[:], f[p:])
		clear(f[p:])
		e.Fields = f[:p]
		for _, t := range tail[:n] {
			e.Set(t.Name, t.Value)
		}
		return
	}
	// Bucket the keys by the first byte of the name (lower-case letters get
	// a bucket each, everything else shares buckets 0 and 27 which keep
	// byte order), then insertion-sort each small bucket.
	var count [29]int32
	keys := sc.keys[:0]
	for i := range f {
		hi, lo := nameKey(f[i].Name)
		keys = append(keys, sortKey{hi, lo, int32(i)})
		count[bucketOf(hi)+1]++
	}
	for b := 1; b < len(count); b++ {
		count[b] += count[b-1]
	}
	sorted := slices.Grow(sc.sorted[:0], len(keys))[:len(keys)]
	for _, k := range keys {
		b := bucketOf(k.hi)
		sorted[count[b]] = k
		count[b]++
	}
	start := int32(0)
	for b := 0; b < 28; b++ {
		end := count[b] // after the scatter, count[b] is the end of bucket b
		for i := start + 1; i < end; i++ {
			k := sorted[i]
			j := i
			for ; j > start; j-- {
				p := &sorted[j-1]
				if !(k.hi < p.hi || k.hi == p.hi && (k.lo < p.lo || k.lo == p.lo && keyLessSlow(k.i, p.i, f))) {
					break
				}
				sorted[j] = *p
			}
			sorted[j] = k
		}
		start = end
	}
	sc.keys, sc.sorted = keys[:0], sorted[:0]
	keys = sorted
	// Apply the permutation in place, cycle by cycle: position r takes
	// the field keys[r].i. Done positions are marked with i = -1.
	for r := range keys {
		if keys[r].i < 0 {
			continue
		}
		first := f[r]
		j := r
		for {
			k := int(keys[j].i)
			keys[j].i = -1
			if k == r {
				f[j] = first
				break
			}
			f[j] = f[k]
			j = k
		}
	}
	// Drop duplicates: in a run of equal names the last added (last in
	// the run) wins.
	w := 0
	for r := range f {
		if r+1 < len(f) && keys[r+1].hi == keys[r].hi && keys[r+1].lo == keys[r].lo && f[r+1].Name == f[r].Name {
			continue
		}
		if w != r {
			f[w] = f[r]
		}
		w++
	}
	clear(f[w:])
	e.Fields = f[:w]
}

// trimEnd drops the trailing LF, CR and NUL bytes framing leaves behind.
func trimEnd(s string) string {
	for len(s) > 0 {
		switch s[len(s)-1] {
		case '\n', '\r', 0:
			s = s[:len(s)-1]
			continue
		}
		break
	}
	return s
}

// trimBody drops a UTF-8 BOM and leading blanks before a message body.
func trimBody(s string) string {
	for {
		switch {
		case strings.HasPrefix(s, "\uFEFF"):
			s = s[3:]
		case len(s) > 0 && (s[0] == ' ' || s[0] == '\t'):
			s = s[1:]
		default:
			return s
		}
	}
}

// Parse fills e from one message: a syslog frame (without transport
// framing) or one log line / JSON object. The caller has already set e.ID,
// e.Tenant, e.Source, e.Ingested. Parse sets e.Original (verbatim text),
// e.Timestamp (sender's time; e.Ingested when the message has none or it is
// unparseable) and e.Fields. Fields the caller set before are kept unless
// Parse sets the same name; e.Fields is sorted and duplicate-free on return.
//
// Detection order: syslog envelope (when the text starts with <PRI>, or is
// a BSD line "Mmm dd hh:mm:ss host tag: ..."), then on the body: CEF, LEEF,
// JSON (also after an "@cee:" cookie), FortiGate key=value, the vendor line
// parsers, generic key=value. What nothing understood is kept as message.
func (p *Parser) Parse(raw []byte, e *event.Event) Result {
	var res Result
	sc := scratchPool.Get().(*scratch)
	st := state{p: p, e: e, ref: e.Ingested, sc: sc}
	if st.ref.IsZero() {
		st.ref = time.Now()
	}

	var s string
	if utf8.Valid(raw) {
		s = string(raw)
	} else {
		res.InvalidUTF8 = true
		s = strings.ToValidUTF8(string(raw), "\uFFFD")
		add(e, event.FieldOriginalBase64, base64.StdEncoding.EncodeToString(raw))
		st.addErr("invalid UTF-8 in message: invalid bytes replaced by U+FFFD, raw bytes in " + event.FieldOriginalBase64)
	}
	e.Original = s
	e.Timestamp = time.Time{}
	// Room for the fields: about one per 12 bytes of message, so a fresh
	// event rarely grows its slice more than once.
	if want := min(max(12+len(raw)/12, 16), 128); cap(e.Fields)-len(e.Fields) < want {
		e.Fields = slices.Grow(e.Fields, want)
	}

	text := trimEnd(s)
	env := envelope{pri: -1, sd: sc.sd[:0]}
	body := text
	if pri, n, ok := priPrefix(text); ok {
		p.parseSyslog(text, pri, n, st.ref, &env)
		body = env.msg
	} else if t := trimBody(text); len(t) > 0 && t[0] != '{' {
		var h envelope
		h.pri = -1
		// A BSD line from a file: accept the header only when it has a
		// time, a host and a tag, so prose is not taken apart.
		if parseBSD(t, false, st.ref, p.loc(), &h) && h.host != "" && h.app != "" {
			h.format = "rfc3164"
			env = h
			body = h.msg
		}
	}
	sc.sd = env.sd
	body = trimBody(body)
	if env.format != "" {
		st.applyEnvelope(&env)
	}

	// Fields are appended unsorted (add) and sorted once by finish; the
	// vendor hook uses event.Set, so it gets a sorted slice.
	add(e, event.FieldKind, event.KindEvent) // parsers may add another kind after this
	format, matched, stop := st.detect(body)
	if !st.ts.IsZero() {
		e.Timestamp = st.ts
	} else if !env.ts.IsZero() {
		e.Timestamp = env.ts
	}
	if !matched && !stop {
		finish(e, sc)
		if f, ok := vendorParse(env.app, body, e); ok {
			format, matched = f, true
			// A vendor line is its own human-readable message.
			if !has(e, event.FieldMessage) {
				e.Set(event.FieldMessage, body)
			}
		}
	}
	if !matched && !stop && strings.Count(body, "=") >= kvMinPairs {
		if kv := st.parseKV(body, false); kv != "" {
			format, matched = kv, true
			if !st.ts.IsZero() {
				e.Timestamp = st.ts
			}
		}
	}
	if !matched {
		if !has(e, event.FieldMessage) {
			add(e, event.FieldMessage, body)
		}
		if env.format != "" {
			format = env.format
		} else {
			res.Unparsed = true
			add(e, event.FieldKind, event.KindUnparsed)
		}
	}
	if st.errs != "" {
		for i := len(e.Fields) - 1; i >= 0; i-- {
			if f := e.Fields[i]; f.Name == event.FieldParseError {
				if f.Value != st.errs {
					st.errs = f.Value + "; " + st.errs
				}
				break
			}
		}
		add(e, event.FieldParseError, st.errs)
	}
	finish(e, sc)
	if e.Timestamp.IsZero() {
		e.Timestamp = e.Ingested
	}
	res.Format = format
	sc.reset()
	scratchPool.Put(sc)
	return res
}

// detect runs the body format parsers that write with add (CEF, LEEF,
// JSON, FortiGate). stop means the body was recognised as JSON but is not
// usable (the reason is in error.message): no other parser should try.
func (st *state) detect(body string) (format string, matched, stop bool) {
	if body == "" {
		return "", false, false
	}
	if i := findCEFLEEF(body); i >= 0 {
		b := body[i:]
		if b[0] == 'C' {
			if st.parseCEF(b) {
				return "cef", true, false
			}
		} else if st.parseLEEF(b) {
			return "leef", true, false
		}
	}
	j := body
	if strings.HasPrefix(j, "@cee:") {
		j = trimBody(j[5:])
		if j == "" {
			return "", false, false
		}
	}
	switch c := j[0]; {
	case c == '{':
		f, err := st.parseJSON(j)
		if err != nil {
			st.addErr(err.Error())
			return "", false, true
		}
		return f, true, false
	case c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
		if kind := jsonScalarKind(j); kind != "" {
			st.addErr("JSON " + kind + " is not an object: only JSON objects are parsed")
			return "", false, true
		}
	}
	if looksFortiGate(body) {
		if f := st.parseKV(body, true); f != "" {
			return f, true, false
		}
	}
	return "", false, false
}

// findCEFLEEF returns the index of "CEF:<digit>" or "LEEF:<digit>" at the
// start of s or after a space within its first 512 bytes, or -1.
func findCEFLEEF(s string) int {
	w := s
	if len(w) > 512 {
		w = w[:512]
	}
	for off := 0; off < len(w); {
		k := strings.IndexByte(w[off:], 'E')
		if k < 0 {
			return -1
		}
		k += off
		off = k + 1
		switch {
		case k >= 1 && strings.HasPrefix(w[k-1:], "CEF:") && (k == 1 || w[k-2] == ' ') && len(w) > k+3 && isDigit(w[k+3]):
			return k - 1
		case k >= 1 && strings.HasPrefix(w[k-1:], "LEEF:") && (k == 1 || w[k-2] == ' ') && len(w) > k+4 && isDigit(w[k+4]):
			return k - 1
		}
	}
	return -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
