package pattern

import (
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// The YAML authoring form (documented in doc.go). Each entry yields one
// record per hash, one for body, one for logical and one for cleanup; all
// carry the entry's name. WriteYAML writes records back so that parsing
// the output gives the same records.

type yamlEntry struct {
	Name       string   `yaml:"name"`
	Hashes     []string `yaml:"hashes,omitempty"`
	Body       string   `yaml:"body,omitempty"`
	Offset     string   `yaml:"offset,omitempty"`
	Target     string   `yaml:"target,omitempty"`
	Logical    string   `yaml:"logical,omitempty"`
	Subsigs    []string `yaml:"subsigs,omitempty"`
	Conditions string   `yaml:"conditions,omitempty"`
	Cleanup    string   `yaml:"cleanup,omitempty"`
}

var yamlKeys = map[string]bool{
	"name": true, "hashes": true, "body": true, "offset": true, "target": true,
	"logical": true, "subsigs": true, "conditions": true, "cleanup": true,
}

var targetByName = map[string]string{"any": "0", "pe": "1", "elf": "6", "macho": "9"}

func yamlTarget(t fileType) string {
	switch t {
	case typePE:
		return "pe"
	case typeELF:
		return "elf"
	case typeMachO:
		return "macho"
	}
	return ""
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

func parseYAML(data []byte, file string) ([]Record, []Warning) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []Warning{{File: file, Err: syntaxf("%v", err)}}
	}
	if root.Kind == 0 { // empty document
		return nil, nil
	}
	seq := &root
	if seq.Kind == yaml.DocumentNode && len(seq.Content) == 1 {
		seq = seq.Content[0]
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, []Warning{{File: file, Line: seq.Line, Err: syntaxf("the document must be a list of signatures")}}
	}
	var (
		recs  []Record
		warns []Warning
	)
	for _, item := range seq.Content {
		rs, err := yamlItem(item)
		if err != nil {
			name := ""
			if item.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(item.Content); i += 2 {
					if item.Content[i].Value == "name" {
						name = item.Content[i+1].Value
					}
				}
			}
			warns = append(warns, warningAt(file, item.Line, name, err))
			continue
		}
		for i := range rs {
			rs[i].File, rs[i].Line = file, item.Line
		}
		recs = append(recs, rs...)
	}
	return recs, warns
}

func yamlItem(item *yaml.Node) ([]Record, error) {
	if item.Kind != yaml.MappingNode {
		return nil, syntaxf("a signature must be a mapping")
	}
	for i := 0; i+1 < len(item.Content); i += 2 {
		if k := item.Content[i].Value; !yamlKeys[k] {
			return nil, syntaxf("unknown key %q (line %d)", trunc(k), item.Content[i].Line)
		}
	}
	var e yamlEntry
	if err := item.Decode(&e); err != nil {
		return nil, syntaxf("%v", err)
	}
	return e.records()
}

func (e yamlEntry) records() ([]Record, error) {
	if err := validName(e.Name); err != nil {
		return nil, err
	}
	if len(e.Hashes) == 0 && e.Body == "" && e.Logical == "" && e.Cleanup == "" {
		return nil, syntaxf("signature has none of hashes, body, logical, cleanup")
	}
	if e.Offset != "" && e.Body == "" {
		return nil, syntaxf("offset without body")
	}
	if (len(e.Subsigs) > 0 || e.Conditions != "") && e.Logical == "" {
		return nil, syntaxf("subsigs/conditions without logical")
	}
	target := "0"
	if e.Target != "" {
		t, ok := targetByName[strings.ToLower(e.Target)]
		if !ok {
			t = e.Target // a ClamAV target number; validated below
		}
		target = t
	}
	var out []Record
	for _, h := range e.Hashes {
		h = strings.ToLower(strings.TrimSpace(h))
		if !strings.Contains(h, ":") {
			h += ":*"
		}
		digest, _, size, err := parseHashData(h)
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Kind: KindHash, Name: e.Name, Data: formatHashData(digest, size)})
	}
	if e.Body != "" {
		off := e.Offset
		if off == "" {
			off = "*"
		}
		data, err := normalizeBody(target + ":" + stripSpace(off) + ":" + stripSpace(e.Body))
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Kind: KindBody, Name: e.Name, Data: data})
	}
	if e.Logical != "" {
		if len(e.Subsigs) == 0 {
			return nil, syntaxf("logical without subsigs")
		}
		tdbText := "Target:" + target
		if c := stripSpace(e.Conditions); c != "" {
			tdbText += "," + c
		}
		subs := make([]string, len(e.Subsigs))
		for i, s := range e.Subsigs {
			subs[i] = stripSpace(s)
		}
		l, err := parseLogicalData(tdbText + ";" + stripSpace(e.Logical) + ";" + strings.Join(subs, ";"))
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Kind: KindLogical, Name: e.Name, Data: l.String()})
	}
	if e.Cleanup != "" {
		out = append(out, Record{Kind: KindCleanup, Name: e.Name, Data: e.Cleanup})
	}
	for _, r := range out {
		if err := r.validFraming(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteYAML writes records in the YAML authoring form. Records must be
// valid (as Compile accepts them); hash records of one name that are
// adjacent become one entry. Parsing the output yields the same records.
func WriteYAML(w io.Writer, recs []Record) error {
	var entries []yamlEntry
	for i, r := range recs {
		e := yamlEntry{Name: r.Name}
		switch r.Kind {
		case KindHash:
			if i > 0 && recs[i-1].Kind == KindHash && recs[i-1].Name == r.Name && len(entries) > 0 {
				last := &entries[len(entries)-1]
				last.Hashes = append(last.Hashes, r.Data)
				continue
			}
			e.Hashes = []string{r.Data}
		case KindBody:
			d, err := parseBodyData(r.Data)
			if err != nil {
				return fmt.Errorf("record %s: %w", r, err)
			}
			e.Body, e.Target = formatHexSig(d.toks), yamlTarget(d.target)
			if d.off.kind != offAny {
				e.Offset = d.off.String()
			}
		case KindLogical:
			l, err := parseLogicalData(r.Data)
			if err != nil {
				return fmt.Errorf("record %s: %w", r, err)
			}
			e.Target, e.Logical = yamlTarget(l.tdb.target), l.expr.String()
			_, cond, _ := strings.Cut(l.tdb.String(), ",")
			e.Conditions = cond
			for _, s := range l.subs {
				e.Subsigs = append(e.Subsigs, s.String())
			}
		case KindCleanup:
			e.Cleanup = r.Data
		default:
			return fmt.Errorf("%w: record kind %q", ErrSyntax, r.Kind)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(entries); err != nil {
		return err
	}
	return enc.Close()
}
