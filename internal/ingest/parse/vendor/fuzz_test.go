package vendor

import (
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
)

// FuzzParse checks Parse never panics and keeps its contract: no match sets
// nothing; a match names its format and leaves Fields sorted, unique and
// without empty values.
func FuzzParse(f *testing.F) {
	for _, cs := range allCases {
		for _, c := range cs {
			f.Add(c.app, c.msg)
		}
	}
	f.Fuzz(func(t *testing.T, app, msg string) {
		var e event.Event
		format, ok := Parse(app, msg, &e)
		if !ok {
			if format != "" || len(e.Fields) != 0 || !e.Timestamp.IsZero() {
				t.Fatalf("no match but format %q, fields %v, ts %v", format, e.Fields, e.Timestamp)
			}
			return
		}
		switch format {
		case FormatIptables, FormatPfsense, FormatASA, FormatPanos, FormatPostfix, FormatSSHD, FormatSquid, FormatApache, FormatNginx:
		default:
			t.Fatalf("unknown format %q", format)
		}
		for i, fl := range e.Fields {
			if fl.Value == "" || fl.Name == "" {
				t.Fatalf("empty field %q=%q", fl.Name, fl.Value)
			}
			if i > 0 && e.Fields[i-1].Name >= fl.Name {
				t.Fatalf("fields not sorted/unique at %q", fl.Name)
			}
			if strings.HasPrefix(fl.Name, "source.ip") || strings.HasPrefix(fl.Name, "destination.ip") {
				if !isIP(fl.Value) {
					t.Fatalf("%s = %q is no IP", fl.Name, fl.Value)
				}
			}
			if strings.HasSuffix(fl.Name, ".port") && port(fl.Value) == "" {
				t.Fatalf("%s = %q is no port", fl.Name, fl.Value)
			}
		}
		// Parsing twice into the same event is stable.
		format2, ok2 := Parse(app, msg, &e)
		if format2 != format || !ok2 {
			t.Fatalf("second parse %q %v", format2, ok2)
		}
	})
}

// TestTruncations parses every prefix and suffix of every table input, and
// each input with one byte replaced by a few troublesome ones: index
// arithmetic on cut lines is where parsers panic.
func TestTruncations(t *testing.T) {
	repl := []byte{' ', ':', ',', '"', '[', ']', '/', '=', '(', ')', 0, 0xff}
	check := func(app, msg string) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic %v on app=%q msg=%q", r, app, msg)
			}
		}()
		var e event.Event
		format, ok := Parse(app, msg, &e)
		if !ok && (format != "" || len(e.Fields) != 0) {
			t.Fatalf("no match but fields set: app=%q msg=%q: %v", app, msg, e.Fields)
		}
		for i := 1; i < len(e.Fields); i++ {
			if e.Fields[i-1].Name >= e.Fields[i].Name {
				t.Fatalf("unsorted fields for %q", msg)
			}
		}
	}
	for _, cs := range allCases {
		for _, c := range cs {
			for i := 0; i <= len(c.msg); i++ {
				check(c.app, c.msg[:i])
				check(c.app, c.msg[i:])
			}
			b := []byte(c.msg)
			for i := range b {
				old := b[i]
				for _, r := range repl {
					b[i] = r
					check(c.app, string(b))
				}
				b[i] = old
			}
		}
	}
}
