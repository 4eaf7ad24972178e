package cleanup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/update"
)

// rawStep is a step as read, before validation: the one key of its
// mapping (the action) and that key's fields. YAML and record JSON both
// come through it, so both forms accept and reject exactly the same steps.
type rawStep struct {
	action string
	fields []rawField
	line   int
}

type rawField struct {
	key, value string
	line       int
}

// build turns a raw step into a Step, rejecting fields the action does not
// take, then validates it.
func (rs rawStep) build() (Step, *fieldError) {
	s := Step{Action: Action(rs.action)}
	allowed, ok := stepFields[s.Action]
	if !ok {
		return s, &fieldError{line: rs.line, msg: fmt.Sprintf("unknown step %q (want kill_process, quarantine_file or remove_persistence)", rs.action)}
	}
	seen := map[string]bool{}
	for _, f := range rs.fields {
		if !contains(allowed, f.key) {
			return s, &fieldError{line: f.line, field: f.key, msg: fmt.Sprintf("unknown field (%s takes %s)", rs.action, strings.Join(allowed, ", "))}
		}
		if seen[f.key] {
			return s, &fieldError{line: f.line, field: f.key, msg: "given twice"}
		}
		seen[f.key] = true
		switch f.key {
		case "image_sha256":
			s.ImageSHA256 = strings.ToLower(f.value)
		case "path":
			s.Path = f.value
		case "kind":
			s.Kind = PersistenceKind(f.value)
		case "name":
			s.Name = f.value
		case "match":
			s.Match = f.value
		}
	}
	if fe := validStep(s); fe != nil {
		fe.line = rs.line
		for _, f := range rs.fields {
			if f.key == fe.field {
				fe.line = f.line
			}
		}
		return s, fe
	}
	return s, nil
}

// Parse reads definitions in the YAML form:
//
//	# cleanup.yaml
//	- detection: Mamori.Test.Dropper
//	  steps:
//	    - kill_process: {image_sha256: "<hex>"}
//	    - quarantine_file: {path: "{detected}"}
//	    - remove_persistence: {kind: systemd_unit, name: evil.service}
//
// Errors are *ParseError naming the line, definition, step and field.
// An empty document holds no definitions.
func Parse(data []byte) ([]Definition, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, &ParseError{Line: root.Line, Msg: "want a list of definitions"}
	}
	defs := make([]Definition, 0, len(root.Content))
	for i, item := range root.Content {
		d, err := parseDefinition(item)
		if err != nil {
			err.Definition = i + 1
			return nil, err
		}
		defs = append(defs, d)
	}
	if err := checkDuplicates(defs); err != nil {
		err.Line = root.Content[err.Definition-1].Line
		return nil, err
	}
	return defs, nil
}

func parseDefinition(n *yaml.Node) (Definition, *ParseError) {
	if n.Kind != yaml.MappingNode {
		return Definition{}, &ParseError{Line: n.Line, Msg: "want a mapping with detection and steps"}
	}
	var d Definition
	var steps *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return d, &ParseError{Line: k.Line, Detection: d.Detection, Field: k.Value, Msg: "given twice"}
		}
		seen[k.Value] = true
		switch k.Value {
		case "detection":
			s, err := scalar(v)
			if err != nil {
				return d, &ParseError{Line: v.Line, Field: "detection", Msg: err.Error()}
			}
			d.Detection = s
		case "steps":
			steps = v
		default:
			return d, &ParseError{Line: k.Line, Field: k.Value, Msg: "unknown key (want detection, steps)"}
		}
	}
	if err := validDetection(d.Detection); err != nil {
		return d, &ParseError{Line: n.Line, Detection: d.Detection, Field: "detection", Msg: err.Error()}
	}
	if steps == nil || steps.Kind == yaml.ScalarNode && steps.Tag == "!!null" {
		return d, &ParseError{Line: n.Line, Detection: d.Detection, Field: "steps", Msg: "missing"}
	}
	if steps.Kind != yaml.SequenceNode {
		return d, &ParseError{Line: steps.Line, Detection: d.Detection, Field: "steps", Msg: "want a list of steps"}
	}
	if len(steps.Content) == 0 {
		return d, &ParseError{Line: steps.Line, Detection: d.Detection, Field: "steps", Msg: "no steps"}
	}
	for i, sn := range steps.Content {
		rs, err := yamlStep(sn)
		if err == nil {
			var s Step
			if s, err = rs.build(); err == nil {
				d.Steps = append(d.Steps, s)
				continue
			}
		}
		return d, &ParseError{Line: err.line, Detection: d.Detection, Step: i + 1, Action: rs.action, Field: err.field, Msg: err.msg}
	}
	return d, nil
}

func yamlStep(n *yaml.Node) (rawStep, *fieldError) {
	rs := rawStep{line: n.Line}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return rs, &fieldError{line: n.Line, msg: "want a mapping with exactly one action, e.g. {kill_process: {image_sha256: ...}}"}
	}
	k, v := n.Content[0], n.Content[1]
	rs.action = k.Value
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return rs, nil // no fields: build reports what is missing
	}
	if v.Kind != yaml.MappingNode {
		return rs, &fieldError{line: v.Line, msg: "want a mapping of fields"}
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		fk, fv := v.Content[i], v.Content[i+1]
		s, err := scalar(fv)
		if err != nil {
			return rs, &fieldError{line: fv.Line, field: fk.Value, msg: err.Error()}
		}
		rs.fields = append(rs.fields, rawField{key: fk.Value, value: s, line: fk.Line})
	}
	return rs, nil
}

// scalar returns a scalar's literal text: "0123" stays "0123" whatever
// YAML would resolve it to.
func scalar(n *yaml.Node) (string, error) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", errors.New("aliases are not supported")
	case n.Kind != yaml.ScalarNode:
		return "", errors.New("want a single value")
	case n.Tag == "!!null":
		return "", nil
	}
	return n.Value, nil
}

// checkDuplicates refuses two definitions for the same detection: which
// one ran would depend on their order, and a release's records have none.
func checkDuplicates(defs []Definition) *ParseError {
	first := map[string]int{}
	for i, d := range defs {
		if j, dup := first[d.Detection]; dup {
			return &ParseError{Definition: i + 1, Detection: d.Detection, Field: "detection", Msg: fmt.Sprintf("already defined by definition %d", j+1)}
		}
		first[d.Detection] = i
	}
	return nil
}

// Records: a definition travels in the pattern repository's cleanup
// channel as one pattern record of kind "cleanup" (pattern.Record, the
// form every channel's release holds, which the server parses and compiles
// before publishing and the agent parses before loading):
//
//	cleanup <detection> {"steps":[{"kill_process":{"image_sha256":"..."}},...]}
//
// The data is compact JSON with sorted keys, so equal definitions have
// equal records and a release's content hash does not depend on who
// encoded it.

// wireDef is the JSON data of a cleanup record.
type wireDef struct {
	Steps []map[string]map[string]string `json:"steps"`
}

// Encode returns one canonical record line per definition, in order.
func Encode(defs []Definition) ([]string, error) {
	out := make([]string, 0, len(defs))
	for i, d := range defs {
		if err := d.Validate(); err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Definition = i + 1
			}
			return nil, err
		}
		w := wireDef{Steps: make([]map[string]map[string]string, len(d.Steps))}
		for j, s := range d.Steps {
			w.Steps[j] = map[string]map[string]string{string(s.Action): stepMap(s)}
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(w); err != nil {
			return nil, err
		}
		rec := pattern.Record{Kind: pattern.KindCleanup, Name: d.Detection, Data: strings.TrimSuffix(buf.String(), "\n")}
		line := rec.String()
		if len(line) > update.MaxRecordLen {
			return nil, &ParseError{Definition: i + 1, Detection: d.Detection, Msg: fmt.Sprintf("encodes to %d bytes, over the record limit of %d", len(line), update.MaxRecordLen)}
		}
		if _, err := pattern.ParseRecord(line); err != nil {
			return nil, &ParseError{Definition: i + 1, Detection: d.Detection, Msg: "not a valid record: " + err.Error()}
		}
		out = append(out, line)
	}
	return out, nil
}

func stepMap(s Step) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"image_sha256": s.ImageSHA256, "path": s.Path, "kind": string(s.Kind), "name": s.Name, "match": s.Match} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// Decode turns the records of a cleanup channel release back into
// definitions. Records of other kinds are skipped (a release may mix
// them); a cleanup record that is not a valid definition is an error
// naming its line, so a broken release is refused whole rather than
// cleaning up with half of it.
func Decode(lines []string) ([]Definition, error) {
	var defs []Definition
	recIdx := []int{}
	for i, line := range lines {
		rec, err := pattern.ParseRecord(line)
		if err != nil {
			return nil, &ParseError{Record: i + 1, Msg: err.Error()}
		}
		if rec.Kind != pattern.KindCleanup {
			continue
		}
		d, perr := DecodeRecord(rec)
		if perr != nil {
			var pe *ParseError
			if errors.As(perr, &pe) {
				pe.Record = i + 1
			}
			return nil, perr
		}
		defs = append(defs, d)
		recIdx = append(recIdx, i+1)
	}
	if err := checkDuplicates(defs); err != nil {
		err.Record, err.Definition = recIdx[err.Definition-1], 0
		return nil, err
	}
	return defs, nil
}

// DecodeRecord turns one cleanup record into a definition.
func DecodeRecord(rec pattern.Record) (Definition, error) {
	d := Definition{Detection: rec.Name}
	if rec.Kind != pattern.KindCleanup {
		return d, &ParseError{Detection: rec.Name, Msg: fmt.Sprintf("record kind %q, want cleanup", rec.Kind)}
	}
	if err := validDetection(rec.Name); err != nil {
		return d, &ParseError{Detection: rec.Name, Field: "detection", Msg: err.Error()}
	}
	dec := json.NewDecoder(strings.NewReader(rec.Data))
	dec.DisallowUnknownFields()
	var w wireDef
	if err := dec.Decode(&w); err != nil {
		return d, &ParseError{Detection: rec.Name, Msg: "data is not a cleanup definition (JSON): " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return d, &ParseError{Detection: rec.Name, Msg: "data continues after the JSON object"}
	}
	if len(w.Steps) == 0 {
		return d, &ParseError{Detection: rec.Name, Field: "steps", Msg: "no steps"}
	}
	for i, m := range w.Steps {
		rs := rawStep{}
		if len(m) != 1 {
			return d, &ParseError{Detection: rec.Name, Step: i + 1, Msg: fmt.Sprintf("want exactly one action, got %d", len(m))}
		}
		for a, fields := range m {
			rs.action = a
			keys := make([]string, 0, len(fields))
			for k := range fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				rs.fields = append(rs.fields, rawField{key: k, value: fields[k]})
			}
		}
		s, fe := rs.build()
		if fe != nil {
			return d, &ParseError{Detection: rec.Name, Step: i + 1, Action: rs.action, Field: fe.field, Msg: fe.msg}
		}
		d.Steps = append(d.Steps, s)
	}
	return d, nil
}
