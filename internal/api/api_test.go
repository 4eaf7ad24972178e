package api

import (
	"strings"
	"testing"
	"time"
)

func TestSplitBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr bool
	}{
		{"ndjson", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}, false},
		{"pretty single object", "{\n  \"a\": 1,\n  \"b\": {\"c\": 2}\n}\n", []string{`{"a":1,"b":{"c":2}}`}, false},
		{"plain lines, CRLF, blanks", "one\r\n\r\n  \ntwo", []string{"one", "two"}, false},
		{"empty", "  \n", nil, false},
		{"line too long", "ok\n" + strings.Repeat("x", 101) + "\n", nil, true},
		{"two pretty objects stay lines", "{\"a\":\n1}\n{\"b\":2}", []string{`{"a":`, `1}`, `{"b":2}`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, p := splitBody([]byte(tt.body), 100)
			if (p != nil) != tt.wantErr {
				t.Fatalf("problem = %+v", p)
			}
			if tt.wantErr {
				if p.Pos == nil || *p.Pos != 2 {
					t.Fatalf("problem should name line 2: %+v", p)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Fatalf("frame %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseTimeAndStep(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     now,
		"now":                  now,
		"-1h":                  now.Add(-time.Hour),
		"-7d":                  now.Add(-7 * 24 * time.Hour),
		"2026-11-01T00:00:00Z": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"1700000000":           time.Unix(1700000000, 0).UTC(),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTime("yesterday", now); err == nil {
		t.Error("ParseTime accepted garbage")
	}
	for span, want := range map[time.Duration]time.Duration{time.Hour: time.Minute, 24 * time.Hour: time.Minute, 7 * 24 * time.Hour: 15 * time.Minute, 90 * 24 * time.Hour: 6 * time.Hour, 1000 * 24 * time.Hour: 24 * time.Hour} {
		if got := histogramStep(now.Add(-span), now); got != want {
			t.Errorf("step for %v = %v, want %v", span, got, want)
		}
	}
}

// TestOpenAPIMatchesRoutes: the document is generated from the route
// table, so every route appears with its method and auth.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := OpenAPI(Routes)
	paths := doc["paths"].(map[string]any)
	n := 0
	for _, rt := range Routes {
		item, ok := paths[rt.Path].(map[string]any)
		if !ok {
			t.Fatalf("%s missing", rt.Path)
		}
		op, ok := item[strings.ToLower(rt.Method)].(map[string]any)
		if !ok {
			t.Fatalf("%s %s missing", rt.Method, rt.Path)
		}
		if _, public := op["security"]; public != rt.Public {
			t.Errorf("%s %s: public=%v in doc, %v in routes", rt.Method, rt.Path, public, rt.Public)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("only %d routes", n)
	}
}
