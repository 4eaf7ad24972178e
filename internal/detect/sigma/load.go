package sigma

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options tune loading.
type Options struct {
	// Placeholders gives the values of |expand placeholders, by name
	// without the % signs (e.g. "DomainControllers").
	Placeholders map[string][]string
	// Logger receives load warnings and a summary; nil discards.
	Logger *slog.Logger
}

// Rule is one Sigma detection rule as written.
type Rule struct {
	ID, Name, Title, Description, Level, Status, Path string
	Author, Date, Modified                            string
	Tags                                              []string
	Logsource                                         Logsource
	References                                        []string
	Falsepositives                                    []string
	Fields                                            []string
	Related                                           []Related
	Line                                              int // line of the document's first key
	Dormant                                           bool
}

// Related is a rule's related: entry.
type Related struct{ ID, Type string }

// CorrelationDoc is a correlation document kept as written, for the
// correlation engine to parse.
type CorrelationDoc struct {
	Path  string
	Index int // 0-based document index in the file
	Body  []byte
}

// Load reads rule files and directories (recursively, .yml/.yaml, in
// lexical order) and compiles them into one Ruleset.
func Load(paths []string, opts Options) (*Ruleset, []*LoadError) {
	return LoadWith(paths, nil, opts)
}

// Embedded is a rule tree shipped inside the binary; its files are named
// Prefix + their path in FS.
type Embedded struct {
	FS     fs.FS
	Prefix string
}

// LoadWith is Load plus embedded rule trees, compiled into one Ruleset (so
// rules and correlations may refer to each other across them).
func LoadWith(paths []string, embedded []Embedded, opts Options) (*Ruleset, []*LoadError) {
	b := newBuilder(opts)
	for _, em := range embedded {
		var files []string
		err := fs.WalkDir(em.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && isRuleFile(p) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			b.errs = append(b.errs, &LoadError{Path: em.Prefix, Err: fmt.Errorf("%w: %w", ErrRead, err)})
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := fs.ReadFile(em.FS, f)
			if err != nil {
				b.errs = append(b.errs, &LoadError{Path: em.Prefix + f, Err: fmt.Errorf("%w: %w", ErrRead, err)})
				continue
			}
			b.addFile(em.Prefix+f, data)
		}
	}
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			b.errs = append(b.errs, &LoadError{Path: root, Err: fmt.Errorf("%w: %w", ErrRead, err)})
			continue
		}
		if !st.IsDir() {
			b.addPath(root)
			continue
		}
		var files []string
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				b.errs = append(b.errs, &LoadError{Path: p, Err: fmt.Errorf("%w: %w", ErrRead, err)})
				return nil
			}
			if !d.IsDir() && isRuleFile(p) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			b.errs = append(b.errs, &LoadError{Path: root, Err: fmt.Errorf("%w: %w", ErrRead, err)})
		}
		sort.Strings(files)
		for _, f := range files {
			b.addPath(f)
		}
	}
	return b.build()
}

// Parse compiles the rules of one file's content.
func Parse(path string, data []byte, opts Options) (*Ruleset, []*LoadError) {
	b := newBuilder(opts)
	b.addFile(path, data)
	return b.build()
}

func isRuleFile(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	return ext == ".yml" || ext == ".yaml"
}

type builder struct {
	opts     Options
	log      *slog.Logger
	rules    []*Rule
	dets     []*detection
	corr     []CorrelationDoc
	errs     []*LoadError
	warnings []Warning
	ids      map[string]string // rule id → path
	files    int
	skipped  int
}

func newBuilder(opts Options) *builder {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &builder{opts: opts, log: log, ids: map[string]string{}}
}

func (b *builder) addPath(p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		b.errs = append(b.errs, &LoadError{Path: p, Err: fmt.Errorf("%w: %w", ErrRead, err)})
		return
	}
	b.addFile(p, data)
}

// splitDocs cuts a YAML stream at "---" lines, keeping each document's
// bytes as written and the line it starts on.
func splitDocs(data []byte) (docs [][]byte, lines []int) {
	start, startLine, line := 0, 1, 1
	for i := 0; i <= len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i
		}
		l := bytes.TrimRight(data[i:end], " \t\r")
		if bytes.Equal(l, []byte("---")) || bytes.HasPrefix(l, []byte("--- #")) {
			docs = append(docs, data[start:i])
			lines = append(lines, startLine)
			start, startLine = min(end+1, len(data)), line+1
		}
		i = end + 1
		line++
	}
	docs = append(docs, data[start:])
	lines = append(lines, startLine)
	return docs, lines
}

func (b *builder) addFile(path string, data []byte) {
	b.files++
	docs, lines := splitDocs(data)
	index := 0
	for di, doc := range docs {
		var root yaml.Node
		if err := yaml.Unmarshal(doc, &root); err != nil {
			b.skip(&LoadError{Path: path, Line: lines[di], Err: fmt.Errorf("%w: %v", ErrYAML, err)})
			index++
			continue
		}
		if root.Kind == 0 || len(root.Content) == 0 {
			continue // empty document (comments only)
		}
		b.addDoc(path, index, lines[di]-1, doc, root.Content[0])
		index++
	}
}

func (b *builder) skip(e *LoadError) {
	b.errs = append(b.errs, e)
	b.skipped++
	b.log.Debug("sigma rule skipped", "err", e)
}

// addDoc handles one document; lineOff converts document lines to file lines.
func (b *builder) addDoc(path string, index, lineOff int, raw []byte, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		b.skip(&LoadError{Path: path, Line: n.Line + lineOff, Err: fmt.Errorf("%w: a rule document must be a mapping", ErrYAML)})
		return
	}
	top := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		top[n.Content[i].Value] = n.Content[i+1]
	}
	id := scalar(top["id"])
	line := n.Line + lineOff
	switch {
	case top["correlation"] != nil:
		b.corr = append(b.corr, CorrelationDoc{Path: path, Index: index, Body: bytes.Clone(raw)})
		return
	case top["action"] != nil:
		b.skip(&LoadError{Path: path, Line: line, RuleID: id, Err: fmt.Errorf("%w: rule collections (action: %s)", ErrUnsupported, scalar(top["action"]))})
		return
	case top["filter"] != nil && top["detection"] == nil:
		b.skip(&LoadError{Path: path, Line: line, RuleID: id, Err: fmt.Errorf("%w: meta filter documents (filter:)", ErrUnsupported)})
		return
	case top["detection"] == nil:
		b.skip(&LoadError{Path: path, Line: line, RuleID: id, Err: fmt.Errorf("%w: no detection", ErrRule)})
		return
	}
	r := &Rule{
		ID: id, Name: scalar(top["name"]), Title: scalar(top["title"]),
		Description: scalar(top["description"]), Level: strings.ToLower(scalar(top["level"])),
		Status: strings.ToLower(scalar(top["status"])), Path: path,
		Author: scalar(top["author"]), Date: scalar(top["date"]), Modified: scalar(top["modified"]),
		Tags: strList(top["tags"]), References: strList(top["references"]),
		Falsepositives: strList(top["falsepositives"]), Fields: strList(top["fields"]), Line: line,
	}
	if ls := top["logsource"]; ls != nil {
		if ls.Kind != yaml.MappingNode {
			b.skip(&LoadError{Path: path, Line: ls.Line + lineOff, RuleID: id, Err: fmt.Errorf("%w: logsource must be a mapping", ErrRule)})
			return
		}
		m := map[string]string{}
		for i := 0; i+1 < len(ls.Content); i += 2 {
			m[ls.Content[i].Value] = scalar(ls.Content[i+1])
		}
		r.Logsource = Logsource{Product: strings.ToLower(m["product"]), Category: strings.ToLower(m["category"]),
			Service: strings.ToLower(m["service"]), Definition: m["definition"]}
	}
	if rel := top["related"]; rel != nil && rel.Kind == yaml.SequenceNode {
		for _, x := range rel.Content {
			var v struct{ ID, Type string }
			if x.Decode(&v) == nil {
				r.Related = append(r.Related, Related{ID: v.ID, Type: v.Type})
			}
		}
	}
	c := &compiler{placeholders: b.opts.Placeholders}
	det, err := c.compileDetection(top["detection"])
	if err != nil {
		le := &LoadError{Path: path, Line: line, RuleID: id, Err: err}
		var at *errAt
		if ok := asErrAt(err, &at); ok {
			le.Line, le.Err = at.line+lineOff, at.err
		}
		b.skip(le)
		return
	}
	if id != "" {
		if prev, dup := b.ids[id]; dup {
			b.skip(&LoadError{Path: path, Line: line, RuleID: id, Err: fmt.Errorf("%w: first loaded from %s", ErrDuplicate, prev)})
			return
		}
		b.ids[id] = path
	}
	for i, w := range c.warnings {
		wn := Warning{Path: path, Line: c.warnLine[i] + lineOff, RuleID: id, Msg: w}
		b.warnings = append(b.warnings, wn)
		b.log.Warn("sigma rule warning", "rule", id, "path", path, "line", wn.Line, "warning", w)
	}
	b.rules = append(b.rules, r)
	b.dets = append(b.dets, det)
}

func asErrAt(err error, at **errAt) bool {
	e, ok := err.(*errAt)
	if ok {
		*at = e
	}
	return ok
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return ""
	}
	return n.Value
}

// strList reads a list of strings, or a single string as a list of one.
func strList(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if s := scalar(n); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	if n.Kind == yaml.SequenceNode {
		for _, x := range n.Content {
			if s := scalar(x); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
