package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// FeedOptions says how a feed's entries become indicators.
type FeedOptions struct {
	Source     string        // SourceRef.Source for every entry (required), e.g. "abuse.ch-urlhaus"
	Confidence int           // when the feed gives none; 0 means 50
	TLP        string        // when the feed gives none
	TTL        time.Duration // Expires = Now + TTL when the feed gives no expiry; 0: never
	Tenant     string        // "" for all tenants
	Now        time.Time     // import time; zero: time.Now()
}

func (o *FeedOptions) defaults() error {
	if strings.TrimSpace(o.Source) == "" {
		return fmt.Errorf("%w: feed options need a source name", ErrInvalid)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	if o.Confidence == 0 {
		o.Confidence = 50
	}
	tlp, err := NormalizeTLP(o.TLP)
	if err != nil {
		return err
	}
	o.TLP = tlp
	return nil
}

// ref returns the feed's default SourceRef.
func (o *FeedOptions) ref() SourceRef {
	r := SourceRef{Source: o.Source, Confidence: o.Confidence, TLP: o.TLP}
	if o.TTL > 0 {
		r.Expires = o.Now.Add(o.TTL)
	}
	return r
}

// Problem is one skipped feed entry: where it is and why.
type Problem struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"` // 1-based, line-oriented formats
	Path   string `json:"path,omitempty"` // JSON path, e.g. objects[12].pattern
	ID     string `json:"id,omitempty"`   // STIX id, MISP attribute uuid
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Path != "" {
		b.WriteString(": " + p.Path)
	}
	if p.ID != "" {
		b.WriteString(" (" + p.ID + ")")
	}
	return b.String() + ": " + p.Reason
}

// Feed is what a feed parser read.
type Feed struct {
	Format     string      `json:"format"` // stix, misp, urlhaus, feodo, threatfox, malwarebazaar, sslbl, sslbl-ip, list
	Indicators []Indicator `json:"indicators"`
	Problems   []Problem   `json:"problems,omitempty"`
}

// add appends an indicator for (typ, value) with ref, or a problem.
func (f *Feed) add(o *FeedOptions, typ Type, value string, ref SourceRef, where Problem) {
	t, v, err := Normalize(typ, value)
	if err != nil {
		where.Reason = err.Error()
		f.Problems = append(f.Problems, where)
		return
	}
	f.Indicators = append(f.Indicators, Indicator{Type: t, Value: v, Tenant: o.Tenant, Sources: []SourceRef{ref}})
}

func (f *Feed) problem(where Problem, format string, args ...any) {
	where.Reason = fmt.Sprintf(format, args...)
	f.Problems = append(f.Problems, where)
}

// maxFeedBytes bounds what a parser reads into memory.
const maxFeedBytes = 1 << 30

func readAll(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFeedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxFeedBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrFormat, name, maxFeedBytes)
	}
	return b, nil
}

// notText rejects what is clearly not a feed: HTML (an error or login page
// served instead of the feed), binary data, nothing at all.
func notText(b []byte, name, want string) error {
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	switch {
	case len(t) == 0:
		return fmt.Errorf("%w: %s is empty, not %s", ErrFormat, name, want)
	case bytes.IndexByte(t[:min(len(t), 4096)], 0) >= 0:
		return fmt.Errorf("%w: %s holds binary data, not %s (compressed? unzip it first)", ErrFormat, name, want)
	case t[0] == '<':
		head := strings.ToLower(string(t[:min(len(t), 512)]))
		if strings.Contains(head, "<html") || strings.Contains(head, "<!doctype html") || strings.Contains(head, "<head") || strings.Contains(head, "<body") {
			return fmt.Errorf("%w: %s is an HTML page, not %s (an error or login page served instead of the feed?)", ErrFormat, name, want)
		}
		return fmt.Errorf("%w: %s is XML, not %s", ErrFormat, name, want)
	}
	return nil
}

// jsonError explains a JSON decoding error with its byte offset; a
// document cut short says so.
func jsonError(err error, b []byte, name string) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s: JSON cut short after %d bytes (truncated download?)", ErrFormat, name, len(b))
	case errors.As(err, &se):
		if strings.Contains(se.Error(), "unexpected end of JSON input") {
			return fmt.Errorf("%w: %s: JSON cut short after %d bytes (truncated download?)", ErrFormat, name, len(b))
		}
		return fmt.Errorf("%w: %s: invalid JSON at byte %d: %v", ErrFormat, name, se.Offset, se)
	case errors.As(err, &te):
		return fmt.Errorf("%w: %s: at byte %d, %s is a JSON %s, want %s", ErrFormat, name, te.Offset, te.Field, te.Value, te.Type)
	}
	return fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
}

// decodeJSON unmarshals b into v with jsonError's explanations.
func decodeJSON(b []byte, v any, name string) error {
	if !json.Valid(b) {
		var probe any
		return jsonError(json.Unmarshal(b, &probe), b, name)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(err, b, name)
	}
	return nil
}

// ParseFeed detects the format of a feed file and parses it: a STIX bundle
// or object, a MISP event, an abuse.ch CSV layout, else a plain list. A
// MISP feed directory (manifest.json) is read with ParseMISPFeed.
func ParseFeed(r io.Reader, name string, o FeedOptions) (*Feed, error) {
	b, err := readAll(r, name)
	if err != nil {
		return nil, err
	}
	if err := notText(b, name, "a feed"); err != nil {
		return nil, err
	}
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if t[0] == '{' || t[0] == '[' {
		var probe struct {
			Type  string          `json:"type"`
			Event json.RawMessage `json:"Event"`
			Info  *string         `json:"info"`
		}
		if err := decodeJSON(t, &probe, name); err != nil && t[0] == '{' {
			return nil, err
		}
		if len(probe.Event) > 0 || probe.Info != nil {
			return ParseMISPEvent(bytes.NewReader(b), name, o)
		}
		return ParseSTIX(bytes.NewReader(b), name, o)
	}
	if layout := detectCSV(b); layout != nil {
		return parseCSVFeed(b, name, o, layout)
	}
	return ParseList(bytes.NewReader(b), name, o)
}
