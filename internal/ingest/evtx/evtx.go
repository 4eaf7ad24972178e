package evtx

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/Velocidex/ordereddict"
	libevtx "www.velocidex.com/golang/evtx"
)

// Field names of the records Read produces (ECS / Winlogbeat layout).
const (
	FieldTimestamp     = "@timestamp"
	FieldEventID       = "winlog.event_id"
	FieldEventCode     = "event.code"
	FieldChannel       = "winlog.channel"
	FieldChannelNumber = "winlog.channel_number" // numeric Channel of ETW-converted records
	FieldProvider      = "winlog.provider_name"
	FieldProviderGUID  = "winlog.provider_guid"
	FieldComputer      = "winlog.computer_name"
	FieldHostName      = "host.name"
	FieldRecordID      = "winlog.record_id"
	FieldProcessPID    = "winlog.process.pid"
	FieldThreadID      = "winlog.process.thread.id"
	FieldUserID        = "winlog.user.identifier"
	FieldVersion       = "winlog.version"
	FieldLevel         = "winlog.level"
	FieldLogLevel      = "log.level"
	FieldTask          = "winlog.task"
	FieldOpcode        = "winlog.opcode"
	FieldKeywords      = "winlog.keywords"
	FieldActivityID    = "winlog.activity_id"
	FieldOutcome       = "event.outcome"
	FieldKind          = "event.kind"
	FieldEventProvider = "event.provider"
	EventDataPrefix    = "winlog.event_data."
)

// maxRecordsPerChunk bounds the record numbers a chunk header may claim:
// a 64 KiB chunk cannot hold more 24-byte record headers than this. A
// header claiming more is corrupt and is skipped (the library would loop
// over the claimed range).
const maxRecordsPerChunk = (libevtx.EVTX_CHUNK_SIZE - libevtx.EVTX_CHUNK_HEADER_SIZE) / libevtx.EVTX_EVENT_RECORD_SIZE

// Read streams the records of one .evtx file as flat JSON-ready maps with
// ECS/winlog dotted keys: @timestamp (RFC3339Nano UTC from
// System.TimeCreated), winlog.event_id, event.code (same), winlog.channel,
// winlog.provider_name, winlog.computer_name (and host.name),
// winlog.record_id, winlog.event_data.<Name> for each EventData/UserData
// item, winlog.process.pid / winlog.user.identifier if present,
// event.kind="event", event.provider; message is absent.
//
// records counts the maps passed to fn. A record that cannot be decoded is
// counted in errs and skipped; so are the records a chunk header announces
// but the library could not reach (it stops a chunk at the first damaged
// record) and the records of a chunk whose decoding failed. err is set
// when the file cannot be read as EVTX at all, or is the error fn returned
// (reading stops there).
func Read(r io.ReadSeeker, fn func(rec map[string]any) error) (records int, errs int, err error) {
	chunks, err := libevtx.GetChunks(r)
	if err != nil {
		return 0, 0, fmt.Errorf("evtx: %w", err)
	}
	for _, c := range chunks {
		first, last := c.Header.FirstEventRecNumber, c.Header.LastEventRecNumber
		if last < first || last-first >= maxRecordsPerChunk {
			errs++ // corrupt chunk header
			continue
		}
		want := int(last - first + 1)
		recs, perr := parseChunk(c)
		if perr != nil {
			errs += max(want-len(recs), 1)
		} else if len(recs) < want {
			errs += want - len(recs)
		}
		for _, rec := range recs {
			m, ok := Flatten(rec)
			if !ok {
				errs++
				continue
			}
			records++
			if err := fn(m); err != nil {
				return records, errs, err
			}
		}
	}
	return records, errs, nil
}

// parseChunk decodes one chunk. The library decodes untrusted binary XML;
// a panic inside it on a damaged chunk is turned into an error so one bad
// chunk does not end the file (our own code does not rely on recover).
func parseChunk(c *libevtx.Chunk) (recs []*libevtx.EventRecord, err error) {
	defer func() {
		if p := recover(); p != nil {
			recs, err = nil, fmt.Errorf("evtx: chunk at offset %d: decoder panic: %v", c.Offset, p)
		}
	}()
	recs, err = c.Parse(0)
	if err != nil {
		err = fmt.Errorf("evtx: chunk at offset %d: %w", c.Offset, err)
	}
	return recs, err
}

// Flatten turns one decoded record into the flat map described at Read.
// It reports false when the record lacks the Event/System structure.
func Flatten(rec *libevtx.EventRecord) (map[string]any, bool) {
	if rec == nil {
		return nil, false
	}
	root, ok := rec.Event.(*ordereddict.Dict)
	if !ok {
		return nil, false
	}
	ev, ok := getDict(root, "Event")
	if !ok {
		return nil, false
	}
	sys, ok := getDict(ev, "System")
	if !ok {
		return nil, false
	}
	m := make(map[string]any, 24)
	m[FieldKind] = "event"

	if prov, ok := getDict(sys, "Provider"); ok {
		if name, ok := prov.Get("Name"); ok {
			if s := str(name); s != "" {
				m[FieldProvider] = s
				m[FieldEventProvider] = s
			}
		}
		if g, ok := prov.Get("Guid"); ok {
			if s := str(g); s != "" {
				m[FieldProviderGUID] = s
			}
		}
	}
	if v, ok := sys.Get("EventID"); ok {
		if d, ok := v.(*ordereddict.Dict); ok {
			v, _ = d.Get("Value")
		}
		if id, ok := toUint(v); ok {
			m[FieldEventID] = id
			m[FieldEventCode] = strconv.FormatUint(id, 10)
		}
	}
	if tc, ok := getDict(sys, "TimeCreated"); ok {
		if v, ok := tc.Get("SystemTime"); ok {
			if t, ok := fileTime(v); ok {
				m[FieldTimestamp] = t.Format(time.RFC3339Nano)
			}
		}
	}
	if v, ok := sys.Get("EventRecordID"); ok {
		if id, ok := toUint(v); ok {
			m[FieldRecordID] = id
		}
	}
	if _, ok := m[FieldRecordID]; !ok && rec.Header.RecordID != 0 {
		m[FieldRecordID] = rec.Header.RecordID
	}
	if v, ok := sys.Get("Channel"); ok {
		switch x := v.(type) {
		case string:
			if x != "" {
				m[FieldChannel] = x
			}
		default:
			// Records converted from ETW traces hold a channel number
			// here, not a name (python-evtx shows an empty channel).
			if n, ok := toUint(x); ok {
				m[FieldChannelNumber] = n
			}
		}
	}
	if v, ok := sys.Get("Computer"); ok {
		if s := str(v); s != "" {
			m[FieldComputer] = s
			m[FieldHostName] = s
		}
	}
	if ex, ok := getDict(sys, "Execution"); ok {
		if v, ok := ex.Get("ProcessID"); ok {
			if n, ok := toUint(v); ok {
				m[FieldProcessPID] = n
			}
		}
		if v, ok := ex.Get("ThreadID"); ok {
			if n, ok := toUint(v); ok {
				m[FieldThreadID] = n
			}
		}
	}
	if sec, ok := getDict(sys, "Security"); ok {
		if v, ok := sec.Get("UserID"); ok {
			if s := str(v); s != "" {
				m[FieldUserID] = s
			}
		}
	}
	if c, ok := getDict(sys, "Correlation"); ok {
		if v, ok := c.Get("ActivityID"); ok {
			if s := str(v); s != "" {
				m[FieldActivityID] = s
			}
		}
	}
	for _, k := range []struct{ xml, field string }{{"Version", FieldVersion}, {"Task", FieldTask}, {"Opcode", FieldOpcode}} {
		if v, ok := sys.Get(k.xml); ok {
			if n, ok := toUint(v); ok {
				m[k.field] = n
			}
		}
	}
	if v, ok := sys.Get("Level"); ok {
		if n, ok := toUint(v); ok {
			m[FieldLevel] = n
			if name := levelName(n); name != "" {
				m[FieldLogLevel] = name
			}
		}
	}
	if v, ok := sys.Get("Keywords"); ok {
		if n, ok := toUint(v); ok {
			m[FieldKeywords] = "0x" + strconv.FormatUint(n, 16)
			switch {
			case n&auditSuccess != 0:
				m[FieldOutcome] = "success"
			case n&auditFailure != 0:
				m[FieldOutcome] = "failure"
			}
		}
	}

	if ed, ok := ev.Get("EventData"); ok {
		flattenData(m, ed)
	}
	if ud, ok := getDict(ev, "UserData"); ok {
		// <UserData><SomeElement xmlns=...><Item>v</Item>...</SomeElement>
		for _, k := range ud.Keys() {
			v, _ := ud.Get(k)
			if d, ok := v.(*ordereddict.Dict); ok {
				flattenData(m, d)
			} else if !strings.HasPrefix(k, "xmlns") {
				put(m, EventDataPrefix+k, v)
			}
		}
	}
	return m, true
}

// Keyword bits of the Security log.
const (
	auditSuccess = 0x0020000000000000
	auditFailure = 0x0010000000000000
)

// levelName maps the Windows event level to a log.level word.
func levelName(l uint64) string {
	switch l {
	case 0, 4:
		return "information"
	case 1:
		return "critical"
	case 2:
		return "error"
	case 3:
		return "warning"
	case 5:
		return "verbose"
	}
	return ""
}

// flattenData adds EventData/UserData items as winlog.event_data.<Name>.
// Unnamed <Data> items (the library keeps them as a "Data" list or value)
// become winlog.event_data.param1, param2, ...
func flattenData(m map[string]any, v any) {
	d, ok := v.(*ordereddict.Dict)
	if !ok {
		if s := str(v); s != "" {
			m[EventDataPrefix+"param1"] = s
		}
		return
	}
	for _, k := range d.Keys() {
		if strings.HasPrefix(k, "xmlns") {
			continue
		}
		val, _ := d.Get(k)
		if k == "Data" {
			switch x := val.(type) {
			case []any:
				for i, el := range x {
					if ed, ok := el.(*ordereddict.Dict); ok {
						if name, ok := ed.Get("Name"); ok {
							if s := str(name); s != "" {
								value, _ := ed.Get("Value")
								put(m, EventDataPrefix+s, value)
								continue
							}
						}
					}
					put(m, EventDataPrefix+"param"+strconv.Itoa(i+1), el)
				}
				continue
			case *ordereddict.Dict:
				if name, ok := x.Get("Name"); ok {
					if s := str(name); s != "" {
						value, _ := x.Get("Value")
						put(m, EventDataPrefix+s, value)
						continue
					}
				}
			default:
				put(m, EventDataPrefix+"param1", val)
				continue
			}
		}
		put(m, EventDataPrefix+k, val)
	}
}

// put stores a value in JSON-ready form: strings and numbers as they are,
// binary as upper-case hex, lists as []any of JSON-ready values, nested
// elements flattened with dotted keys; empty values are dropped.
func put(m map[string]any, key string, v any) {
	switch x := v.(type) {
	case nil:
	case string:
		if x != "" {
			m[key] = x
		}
	case []byte:
		if len(x) > 0 {
			m[key] = strings.ToUpper(hex.EncodeToString(x))
		}
	case bool, uint8, uint16, uint32, uint64, int, int8, int16, int32, int64:
		m[key] = x
	case float64:
		// The library turns FILETIME arguments (its only float64 values)
		// into Unix seconds; render them as times (FILETIME 0 is 1601-01-01).
		if t, ok := fileTime(x); ok {
			m[key] = t.Format(time.RFC3339Nano)
		} else {
			m[key] = x
		}
	case []string:
		var out []any
		for _, s := range x {
			if s != "" {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			m[key] = out
		}
	case []any:
		var out []any
		for _, el := range x {
			if s := str(el); s != "" {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			m[key] = out
		}
	case *ordereddict.Dict:
		for _, k := range x.Keys() {
			if strings.HasPrefix(k, "xmlns") {
				continue
			}
			val, _ := x.Get(k)
			if k == "Value" {
				put(m, key, val)
				continue
			}
			put(m, key+"."+k, val)
		}
	default:
		m[key] = fmt.Sprint(x)
	}
}

func getDict(d *ordereddict.Dict, k string) (*ordereddict.Dict, bool) {
	v, ok := d.Get(k)
	if !ok {
		return nil, false
	}
	r, ok := v.(*ordereddict.Dict)
	return r, ok
}

// str renders a scalar as text ("" for nil and containers).
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return strings.ToUpper(hex.EncodeToString(x))
	case *ordereddict.Dict, []any:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int:
		if x >= 0 {
			return uint64(x), true
		}
	case int64:
		if x >= 0 {
			return uint64(x), true
		}
	case float64:
		if x >= 0 && x < math.MaxUint64 {
			return uint64(x), true
		}
	case string:
		s := strings.TrimSpace(x)
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			n, err := strconv.ParseUint(s[2:], 16, 64)
			return n, err == nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// fileTime converts the library's FILETIME rendering (Unix seconds as a
// float64) to a UTC time rounded to the microsecond: a float64 holds about
// 0.2 µs at today's magnitudes, so finer digits would be noise.
func fileTime(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < -1e11 || f > 1e11 {
		return time.Time{}, false
	}
	sec := math.Floor(f)
	t := time.Unix(int64(sec), int64(math.Round((f-sec)*1e6))*1e3).UTC()
	return t, true
}
