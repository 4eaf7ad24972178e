package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// tlpMarkings are the standard TLP marking-definition ids: STIX 2.1 TLP 1
// (white, green, amber, red) and the OASIS TLP 2.0 extension.
var tlpMarkings = map[string]string{
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear, // TLP:WHITE
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLPClear, // TLP 2.0
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLPGreen,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLPAmber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLPAmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLPRed,
}

type stixObject struct {
	Type           string          `json:"type"`
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	Pattern        *string         `json:"pattern"`
	PatternType    string          `json:"pattern_type"`
	ValidFrom      string          `json:"valid_from"`
	ValidUntil     string          `json:"valid_until"`
	Modified       string          `json:"modified"`
	Revoked        bool            `json:"revoked"`
	Confidence     *int            `json:"confidence"`
	Labels         []string        `json:"labels"`
	IndicatorTypes []string        `json:"indicator_types"`
	Markings       []string        `json:"object_marking_refs"`
	DefinitionType string          `json:"definition_type"`
	Definition     json.RawMessage `json:"definition"`
	Extensions     map[string]struct {
		TLP string `json:"tlp_2_0"`
	} `json:"extensions"`
}

// ParseSTIX reads a STIX 2.x bundle (or a single object, or a JSON array
// of objects) and turns every indicator with a STIX pattern into
// indicators (see Pattern.Observables): valid_until becomes Expires (else
// Now + TTL), valid_from FirstSeen, modified LastSeen, confidence,
// labels and indicator_types the tags, the TLP from object_marking_refs
// (the standard TLP 1 and 2.0 ids, and TLP marking definitions in the
// bundle). What cannot be used is reported per indicator id and JSON path.
func ParseSTIX(r io.Reader, name string, o FeedOptions) (*Feed, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b, err := readAll(r, name)
	if err != nil {
		return nil, err
	}
	if err := notText(b, name, "a STIX bundle"); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := decodeJSON(b, &raw, name); err != nil {
		return nil, err
	}
	var objects []json.RawMessage
	prefix := "objects"
	switch t := strings.TrimLeft(string(raw), " \t\r\n"); {
	case strings.HasPrefix(t, "["):
		prefix = ""
		if err := json.Unmarshal(raw, &objects); err != nil {
			return nil, jsonError(err, b, name)
		}
	case strings.HasPrefix(t, "{"):
		var top struct {
			Type    string            `json:"type"`
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal(raw, &top); err != nil {
			return nil, jsonError(err, b, name)
		}
		switch {
		case top.Type == "bundle":
			objects = top.Objects
		case top.Type != "":
			objects, prefix = []json.RawMessage{raw}, ""
		default:
			return nil, fmt.Errorf("%w: %s is JSON but not STIX (no \"type\": \"bundle\")", ErrFormat, name)
		}
	default:
		return nil, fmt.Errorf("%w: %s: a STIX document is a JSON object or array", ErrFormat, name)
	}

	f := &Feed{Format: "stix"}
	parsed := make([]stixObject, len(objects))
	ok := make([]bool, len(objects))
	tlps := map[string]string{}
	for i, rawObj := range objects {
		if json.Unmarshal(rawObj, &parsed[i]) != nil {
			continue // reported in order below
		}
		ok[i] = true
		if o := &parsed[i]; o.Type == "marking-definition" {
			if t := markingTLP(o); t != "" {
				tlps[o.ID] = t
			}
		}
	}
	for i := range parsed {
		obj := &parsed[i]
		if !ok[i] {
			var probe stixObject
			err := json.Unmarshal(objects[i], &probe)
			f.problem(Problem{File: name, Path: jsonIndex(prefix, i)}, "not a STIX object: %v", err)
			continue
		}
		if obj.Type != "indicator" {
			continue
		}
		where := Problem{File: name, Path: jsonIndex(prefix, i), ID: obj.ID}
		stixIndicator(f, &o, obj, tlps, where)
	}
	return f, nil
}

func jsonIndex(prefix string, i int) string {
	if prefix == "" {
		return fmt.Sprintf("[%d]", i)
	}
	return fmt.Sprintf("%s[%d]", prefix, i)
}

// markingTLP reads the TLP level of a marking definition (TLP 1
// "definition": {"tlp": …} or the TLP 2.0 extension), else a standard id.
func markingTLP(o *stixObject) string {
	if t, ok := tlpMarkings[o.ID]; ok {
		return t
	}
	if o.DefinitionType == "tlp" {
		var d struct {
			TLP string `json:"tlp"`
		}
		if json.Unmarshal(o.Definition, &d) == nil {
			if t, err := NormalizeTLP(d.TLP); err == nil {
				return t
			}
		}
	}
	for _, ext := range o.Extensions {
		if t, err := NormalizeTLP(ext.TLP); err == nil && t != "" {
			return t
		}
	}
	return ""
}

func stixIndicator(f *Feed, o *FeedOptions, obj *stixObject, tlps map[string]string, where Problem) {
	switch {
	case obj.Revoked:
		f.problem(where, "indicator is revoked")
		return
	case obj.Pattern == nil:
		where.Path += ".pattern"
		f.problem(where, "indicator has no pattern")
		return
	case obj.PatternType != "" && obj.PatternType != "stix":
		where.Path += ".pattern_type"
		f.problem(where, "pattern_type %q is not supported (only stix)", obj.PatternType)
		return
	}
	ref := o.ref()
	ref.Ref = obj.ID
	ref.Description = obj.Name
	if obj.Description != "" {
		ref.Description = strings.TrimSpace(strings.TrimPrefix(ref.Description+": "+obj.Description, ": "))
	}
	ref.Tags = slices.Compact(append(slices.Clone(obj.IndicatorTypes), obj.Labels...))
	if obj.Confidence != nil {
		if *obj.Confidence < 0 || *obj.Confidence > 100 {
			f.problem(Problem{File: where.File, Path: where.Path + ".confidence", ID: where.ID}, "confidence %d outside 0-100", *obj.Confidence)
			return
		}
		ref.Confidence = *obj.Confidence
	}
	for _, m := range obj.Markings {
		if t, ok := tlps[m]; ok {
			ref.TLP = t
		} else if t, ok := tlpMarkings[m]; ok {
			ref.TLP = t
		}
	}
	var err error
	if ref.FirstSeen, err = stixTime(obj.ValidFrom); err != nil {
		f.problem(Problem{File: where.File, Path: where.Path + ".valid_from", ID: where.ID}, "%v", err)
		return
	}
	if ref.LastSeen, err = stixTime(obj.Modified); err != nil {
		f.problem(Problem{File: where.File, Path: where.Path + ".modified", ID: where.ID}, "%v", err)
		return
	}
	if obj.ValidUntil != "" {
		if ref.Expires, err = stixTime(obj.ValidUntil); err != nil {
			f.problem(Problem{File: where.File, Path: where.Path + ".valid_until", ID: where.ID}, "%v", err)
			return
		}
	}
	pwhere := Problem{File: where.File, Path: where.Path + ".pattern", ID: where.ID}
	p, err := ParsePattern(*obj.Pattern)
	if err != nil {
		f.problem(pwhere, "%v", err)
		return
	}
	obs, errs := p.Observables()
	for _, e := range errs {
		reason := e.Error()
		if errors.Is(e, ErrUnsupported) {
			reason = strings.Replace(reason, ErrUnsupported.Error()+": ", "", 1) + ": " + ErrUnsupported.Error()
		}
		f.problem(pwhere, "%s", reason)
	}
	for _, ob := range obs {
		f.Indicators = append(f.Indicators, Indicator{Type: ob.Type, Value: ob.Value, Tenant: o.Tenant, Sources: []SourceRef{cloneRef(ref)}})
	}
}

func cloneRef(r SourceRef) SourceRef {
	r.Tags = slices.Clone(r.Tags)
	return r
}

func stixTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not RFC 3339", s)
	}
	return t.UTC(), nil
}
