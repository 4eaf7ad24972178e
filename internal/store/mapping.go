package store

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mamori-soc/mamori/internal/event"
)

// Names of the row fields the store sets itself. Every other field of a row
// is an event field under its ECS (or vendor) dotted name.
const (
	FieldTime              = "_time"          // e.Timestamp (RFC3339Nano, UTC)
	FieldMsg               = "_msg"           // e.Original, the verbatim message
	FieldStream            = "_stream"        // set by the engine: {mamori.source="…",observer.product="…",tenant="…"}
	FieldStreamID          = "_stream_id"     // set by the engine
	FieldTenant            = "tenant"         // e.Tenant
	FieldEventID           = "event.id"       // e.ID
	FieldIngested          = "event.ingested" // e.Ingested (RFC3339Nano, UTC)
	FieldSource            = "mamori.source"  // e.Source
	FieldTimestampOriginal = "mamori.timestamp_original"
	FieldTruncated         = "mamori.truncated"
)

// StreamFields are the VictoriaLogs stream fields, in this order. They must
// stay low-cardinality: a stream is the unit of storage locality and of the
// fast _stream:{…} filter. See docs/STORE.md.
var StreamFields = []string{FieldTenant, FieldSource, event.FieldObserverProduct}

// defaultMsgHTTP is the _msg VictoriaLogs' HTTP insert stores for a row
// without _msg (flag -defaultMsgValue); RowToEvent maps it back to "".
const defaultMsgHTTP = "missing _msg field; see https://docs.victoriametrics.com/victorialogs/keyconcepts/#message-field"

// rowLimits are the engine's per-row limits; rows beyond them are silently
// dropped by VictoriaLogs, so the store trims them instead (and marks them
// with mamori.truncated=true).
type rowLimits struct {
	maxFields  int              // including _msg
	maxNameLen int              // bytes
	maxRowLen  int              // estimated JSON bytes
	valueLen   func(string) int // encoded length of a value
}

// reservedNames are row fields that an event's Fields cannot set: the
// store or the engine owns them.
func isReservedName(name string) bool {
	switch name {
	case "", FieldTime, FieldMsg, FieldStream, FieldStreamID, FieldTenant, FieldEventID, FieldIngested, FieldSource, event.FieldObserverProduct:
		return true
	}
	return false
}

// timeWindow is the [min, max] range of timestamps the engine accepts.
type timeWindow struct {
	min, max int64 // unix nanoseconds; 0,0 = no limit
}

// rowTime returns the _time of e: its Timestamp, else Ingested, else now.
// A timestamp outside the window (the engine would drop the row) is replaced
// by Ingested (or now) and the original is kept in mamori.timestamp_original.
func rowTime(e *event.Event, w timeWindow, now time.Time) (ts int64, original string) {
	t := e.Timestamp
	if t.IsZero() {
		t = e.Ingested
	}
	if t.IsZero() {
		t = now
	}
	if w.min == 0 && w.max == 0 {
		return clampUnixNano(t), ""
	}
	if n := clampUnixNano(t); n >= w.min && n <= w.max {
		return n, ""
	}
	original = t.UTC().Format(time.RFC3339Nano)
	t = e.Ingested
	if n := clampUnixNano(t); t.IsZero() || n < w.min || n > w.max {
		t = now
	}
	return clampUnixNano(t), original
}

func clampUnixNano(t time.Time) int64 {
	// time.Time.UnixNano is undefined outside 1678..2262.
	switch {
	case t.Year() < 1678:
		return time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	case t.Year() > 2261:
		return time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	}
	return t.UnixNano()
}

// rowFields builds the fields of the row for e (without _time), appending to
// dst. The stream fields come first; it returns how many of them are set.
func rowFields(dst []event.Field, e *event.Event, timeOriginal string, lim *rowLimits) ([]event.Field, int) {
	start := len(dst)
	add := func(name, value string) {
		if value == "" {
			return
		}
		if !utf8.ValidString(value) {
			value = strings.ToValidUTF8(value, "\uFFFD")
		}
		dst = append(dst, event.Field{Name: name, Value: value})
	}
	add(FieldTenant, e.Tenant)
	add(FieldSource, e.Source)
	add(event.FieldObserverProduct, e.Value(event.FieldObserverProduct))
	nStream := len(dst) - start
	add(FieldMsg, e.Original)
	add(FieldEventID, e.ID)
	if !e.Ingested.IsZero() {
		add(FieldIngested, e.Ingested.UTC().Format(time.RFC3339Nano))
	}
	add(FieldTimestampOriginal, timeOriginal)
	for _, f := range e.Fields {
		if isReservedName(f.Name) || f.Name == FieldTimestampOriginal || f.Name == FieldTruncated {
			continue
		}
		name := f.Name
		if !utf8.ValidString(name) {
			name = strings.ToValidUTF8(name, "\uFFFD")
		}
		add(name, f.Value)
	}
	dst = trimRow(dst, start, nStream, lim)
	return dst, nStream
}

// trimRow makes row dst[start:] fit the engine limits.
func trimRow(dst []event.Field, start, nStream int, lim *rowLimits) []event.Field {
	if lim == nil {
		return dst
	}
	truncated := false
	row := dst[start:]
	if lim.maxFields > 0 && len(row) > lim.maxFields {
		row = row[:lim.maxFields-1]
		truncated = true
	}
	for i := range row {
		if lim.maxNameLen > 0 && len(row[i].Name) > lim.maxNameLen {
			row[i].Name = cutUTF8(row[i].Name, lim.maxNameLen)
			truncated = true
		}
	}
	if lim.maxRowLen > 0 {
		vlen := lim.valueLen
		if vlen == nil {
			vlen = func(s string) int { return len(s) }
		}
		const overhead = 256 + len(FieldTruncated) + 16 // {}, _time, the truncation marker
		size := overhead
		for _, f := range row {
			size += 6 + vlen(f.Name) + vlen(f.Value)
		}
		for size > lim.maxRowLen {
			// Cut the longest value (never a stream field: they are short and identify the stream).
			big := -1
			for i := nStream; i < len(row); i++ {
				if big < 0 || len(row[i].Value) > len(row[big].Value) {
					big = i
				}
			}
			if big < 0 || len(row[big].Value) == 0 {
				break
			}
			v := row[big].Value
			excess := size - lim.maxRowLen
			keep := len(v) - excess - 16
			if keep < len(v)/2 {
				keep = len(v) / 2
			}
			nv := cutUTF8(v, keep)
			size -= vlen(v) - vlen(nv)
			row[big].Value = nv
			truncated = true
			if nv == "" {
				row = append(row[:big], row[big+1:]...)
			}
		}
	}
	if truncated {
		row = append(row, event.Field{Name: FieldTruncated, Value: "true"})
	}
	return dst[:start+len(row)]
}

// cutUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RowToEvent converts a row of a plain query (no pipes that drop fields)
// back into an Event: _time → Timestamp, _msg → Original, event.id → ID,
// tenant → Tenant, event.ingested → Ingested, mamori.source → Source, and
// every other field except _stream and _stream_id → Fields (sorted).
func RowToEvent(r Row) *event.Event {
	e := &event.Event{}
	fields := make([]event.Field, 0, len(r))
	for _, f := range r {
		switch f.Name {
		case FieldTime:
			e.Timestamp = parseTime(f.Value)
		case FieldMsg:
			if f.Value != defaultMsgHTTP {
				e.Original = f.Value
			}
		case FieldEventID:
			e.ID = f.Value
		case FieldTenant:
			e.Tenant = f.Value
		case FieldIngested:
			e.Ingested = parseTime(f.Value)
		case FieldSource:
			e.Source = f.Value
		case FieldStream, FieldStreamID:
		default:
			if f.Value != "" && f.Name != "" {
				fields = append(fields, f)
			}
		}
	}
	sortFields(fields)
	// Keep names unique (the first wins), as event.Event requires.
	out := fields[:0]
	for i, f := range fields {
		if i > 0 && f.Name == fields[i-1].Name {
			continue
		}
		out = append(out, f)
	}
	if len(out) > 0 {
		e.Fields = out
	}
	return e
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func sortFields(fs []event.Field) {
	// insertion sort for short, mostly sorted slices; stable.
	if len(fs) > 64 {
		sortFieldsSlow(fs)
		return
	}
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Name < fs[j-1].Name; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}
