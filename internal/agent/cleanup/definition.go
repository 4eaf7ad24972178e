package cleanup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors.
var (
	ErrInvalid     = errors.New("invalid cleanup definition")
	ErrUnsupported = errors.New("cleanup step not supported on this platform")
	ErrProtected   = errors.New("protected path")
	ErrNoStore     = errors.New("no quarantine store configured")
	ErrMismatch    = errors.New("definition does not apply to this detection")
	ErrIncomplete  = errors.New("cleanup incomplete")
)

// Action is what a step does.
type Action string

const (
	ActionKill              Action = "kill_process"
	ActionQuarantine        Action = "quarantine_file"
	ActionRemovePersistence Action = "remove_persistence"
)

// PersistenceKind is where a remove_persistence step looks.
type PersistenceKind string

const (
	SystemdUnit   PersistenceKind = "systemd_unit"   // unit file, its .wants/.requires links and drop-ins
	Cron          PersistenceKind = "cron"           // lines of cron files
	Autostart     PersistenceKind = "autostart"      // XDG autostart .desktop entries
	RunKey        PersistenceKind = "run_key"        // Windows Run/RunOnce value (not executed yet)
	Service       PersistenceKind = "service"        // Windows service (not executed yet)
	ScheduledTask PersistenceKind = "scheduled_task" // Windows scheduled task (not executed yet)
)

// Placeholder in a quarantine_file path: the detected file's path.
const Placeholder = "{detected}"

// Definition is the cleanup for one detection name: steps run in order.
type Definition struct {
	// Detection is the signature name it applies to: exact, or a glob in
	// which only '*' is special (any run of characters).
	Detection string
	Steps     []Step
}

// Step is one cleanup action. Which fields are set depends on Action (and
// for remove_persistence on Kind); the rest stay empty.
type Step struct {
	Action      Action          `json:"action"`
	ImageSHA256 string          `json:"image_sha256,omitempty"` // kill_process: lower-case hex
	Path        string          `json:"path,omitempty"`         // quarantine_file: absolute, or starting with {detected}
	Kind        PersistenceKind `json:"kind,omitempty"`         // remove_persistence
	Name        string          `json:"name,omitempty"`         // systemd_unit, autostart and the Windows kinds
	Match       string          `json:"match,omitempty"`        // cron: a line containing this is removed
}

// String describes the step for people (reports, logs, the console).
func (s Step) String() string {
	switch s.Action {
	case ActionKill:
		return "kill every process running the image with sha256 " + s.ImageSHA256
	case ActionQuarantine:
		return "quarantine " + s.Path
	case ActionRemovePersistence:
		switch s.Kind {
		case SystemdUnit:
			return "remove systemd unit " + s.Name + " (unit file, links and drop-ins)"
		case Cron:
			return fmt.Sprintf("remove cron lines containing %q", s.Match)
		case Autostart:
			return "remove XDG autostart entry " + s.Name
		case RunKey:
			return "remove Windows Run/RunOnce value " + s.Name
		case Service:
			return "remove Windows service " + s.Name
		case ScheduledTask:
			return "remove Windows scheduled task " + s.Name
		}
	}
	return fmt.Sprintf("%s (kind %q)", s.Action, s.Kind)
}

// ParseError locates what is wrong in a definition. It wraps ErrInvalid.
type ParseError struct {
	Line       int    // YAML line, 0 when not known
	Record     int    // 1-based index of the record line (Decode), 0 otherwise
	Definition int    // 1-based index of the definition, 0 when not known
	Detection  string // the definition's detection, when known
	Step       int    // 1-based index of the step, 0 when not in a step
	Action     string // the step's action, when known
	Field      string // the offending field, when there is one
	Msg        string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Record > 0 {
		fmt.Fprintf(&b, "record %d: ", e.Record)
	}
	if e.Definition > 0 || e.Detection != "" {
		b.WriteString("definition")
		if e.Definition > 0 {
			fmt.Fprintf(&b, " %d", e.Definition)
		}
		if e.Detection != "" {
			fmt.Fprintf(&b, " (%s)", e.Detection)
		}
		b.WriteString(": ")
	}
	if e.Step > 0 {
		fmt.Fprintf(&b, "step %d", e.Step)
		if e.Action != "" {
			fmt.Fprintf(&b, " (%s)", e.Action)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *ParseError) Unwrap() error { return ErrInvalid }

// fieldError is a problem in one step, before the caller adds where.
type fieldError struct {
	field, msg string
	line       int
}

// stepFields lists the fields each action takes, in canonical order.
var stepFields = map[Action][]string{
	ActionKill:              {"image_sha256"},
	ActionQuarantine:        {"path"},
	ActionRemovePersistence: {"kind", "name", "match"},
}

// maxDetection matches the pattern package's longest signature name: the
// detection travels as a record's name.
const (
	maxDetection = 512
	maxValue     = 4096
)

// Validate checks a definition built in code the way Parse and Decode check
// what they read, and normalises nothing: call it before Run.
func (d Definition) Validate() error {
	if err := validDetection(d.Detection); err != nil {
		return &ParseError{Detection: d.Detection, Field: "detection", Msg: err.Error()}
	}
	if len(d.Steps) == 0 {
		return &ParseError{Detection: d.Detection, Field: "steps", Msg: "no steps"}
	}
	for i, s := range d.Steps {
		if fe := validStep(s); fe != nil {
			return &ParseError{Detection: d.Detection, Step: i + 1, Action: string(s.Action), Field: fe.field, Msg: fe.msg}
		}
	}
	return nil
}

func validDetection(name string) error {
	switch {
	case name == "":
		return errors.New("missing")
	case len(name) > maxDetection:
		return fmt.Errorf("longer than %d bytes", maxDetection)
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }) >= 0:
		// The pattern package's rule for record names, which this becomes.
		return fmt.Errorf("%q contains white space, a control character or U+FFFD", name)
	}
	return nil
}

// validValue keeps values printable and record-safe (no control
// characters, so a definition always encodes to one record line).
func validValue(v string) error {
	switch {
	case len(v) > maxValue:
		return fmt.Errorf("longer than %d bytes", maxValue)
	case !utf8.ValidString(v):
		return errors.New("not valid UTF-8")
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	}
	return nil
}

func validStep(s Step) *fieldError {
	fields := map[string]string{"image_sha256": s.ImageSHA256, "path": s.Path, "kind": string(s.Kind), "name": s.Name, "match": s.Match}
	allowed, ok := stepFields[s.Action]
	if !ok {
		return &fieldError{msg: fmt.Sprintf("unknown action %q (want kill_process, quarantine_file or remove_persistence)", s.Action)}
	}
	for _, f := range []string{"image_sha256", "path", "kind", "name", "match"} {
		if fields[f] == "" {
			continue
		}
		if !contains(allowed, f) {
			return &fieldError{field: f, msg: fmt.Sprintf("not a field of %s (it takes %s)", s.Action, strings.Join(allowed, ", "))}
		}
		if err := validValue(fields[f]); err != nil {
			return &fieldError{field: f, msg: err.Error()}
		}
	}
	switch s.Action {
	case ActionKill:
		if s.ImageSHA256 == "" {
			return &fieldError{field: "image_sha256", msg: "missing"}
		}
		if _, err := hex.DecodeString(s.ImageSHA256); err != nil || len(s.ImageSHA256) != 64 || strings.ToLower(s.ImageSHA256) != s.ImageSHA256 {
			return &fieldError{field: "image_sha256", msg: fmt.Sprintf("want 64 lower-case hex digits, got %q", s.ImageSHA256)}
		}
	case ActionQuarantine:
		if s.Path == "" {
			return &fieldError{field: "path", msg: "missing"}
		}
		if err := validPath(s.Path); err != nil {
			return &fieldError{field: "path", msg: err.Error()}
		}
	case ActionRemovePersistence:
		return validPersistence(s)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validPath accepts "{detected}" (optionally followed by more, e.g.
// "{detected}.lock") or an absolute path with no placeholder: relative
// paths would depend on the agent's working directory.
func validPath(p string) error {
	rest := p
	if strings.HasPrefix(p, Placeholder) {
		rest = p[len(Placeholder):]
	} else if !isAbs(p) {
		return fmt.Errorf("%q is neither absolute nor starts with %s", p, Placeholder)
	}
	if i := strings.IndexByte(rest, '{'); i >= 0 {
		return fmt.Errorf("%q: unknown or misplaced placeholder (only a leading %s)", p, Placeholder)
	}
	return nil
}

// isAbs accepts unix and Windows absolute forms whatever the build
// platform: definitions are written once and parsed by agents on all of
// them, so validity must not depend on where they are parsed.
func isAbs(p string) bool {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\\`) {
		return true
	}
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z')
}

// unitSuffixes are the systemd unit types a malicious unit can be.
var unitSuffixes = []string{".service", ".timer", ".socket", ".path", ".mount", ".automount", ".target"}

func validPersistence(s Step) *fieldError {
	needName := func() *fieldError {
		if s.Name == "" {
			return &fieldError{field: "name", msg: "missing"}
		}
		if s.Match != "" {
			return &fieldError{field: "match", msg: fmt.Sprintf("not used by kind %s", s.Kind)}
		}
		return nil
	}
	plainName := func() *fieldError {
		if strings.ContainsAny(s.Name, `/\`) || s.Name == "." || s.Name == ".." {
			return &fieldError{field: "name", msg: fmt.Sprintf("%q must be a file name, without path separators", s.Name)}
		}
		return nil
	}
	switch s.Kind {
	case "":
		return &fieldError{field: "kind", msg: "missing"}
	case SystemdUnit:
		if fe := needName(); fe != nil {
			return fe
		}
		if fe := plainName(); fe != nil {
			return fe
		}
		ok := false
		for _, suf := range unitSuffixes {
			ok = ok || strings.HasSuffix(s.Name, suf) && len(s.Name) > len(suf)
		}
		if !ok {
			return &fieldError{field: "name", msg: fmt.Sprintf("%q is not a unit name (want one of %s)", s.Name, strings.Join(unitSuffixes, " "))}
		}
	case Autostart:
		if fe := needName(); fe != nil {
			return fe
		}
		if fe := plainName(); fe != nil {
			return fe
		}
		if !strings.HasSuffix(s.Name, ".desktop") {
			return &fieldError{field: "name", msg: fmt.Sprintf("%q: autostart entries end in .desktop", s.Name)}
		}
	case Cron:
		if s.Match == "" {
			return &fieldError{field: "match", msg: "missing (a line containing it is removed)"}
		}
		if s.Name != "" {
			return &fieldError{field: "name", msg: "not used by kind cron"}
		}
	case RunKey, Service, ScheduledTask:
		return needName()
	default:
		return &fieldError{field: "kind", msg: fmt.Sprintf("unknown kind %q (want systemd_unit, cron, autostart, run_key, service or scheduled_task)", s.Kind)}
	}
	return nil
}

// Matches reports whether the definition applies to a detection named
// signature.
func (d Definition) Matches(signature string) bool {
	return globMatch(d.Detection, signature)
}

// globMatch matches name against pattern in which '*' stands for any run
// of characters and everything else is literal (signature names contain
// '.', '-' and brackets that path.Match would treat specially).
func globMatch(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, last)
}

// Find returns the definition for a detection: an exact name wins over
// globs, and among globs the most specific (most literal characters),
// ties broken by the pattern's text so the choice never depends on the
// order definitions arrived in.
func Find(defs []Definition, signature string) (Definition, bool) {
	best, found := Definition{}, false
	for _, d := range defs {
		if !d.Matches(signature) {
			continue
		}
		if !strings.Contains(d.Detection, "*") {
			return d, true
		}
		if !found || moreSpecific(d.Detection, best.Detection) {
			best, found = d, true
		}
	}
	return best, found
}

func moreSpecific(a, b string) bool {
	la, lb := len(a)-strings.Count(a, "*"), len(b)-strings.Count(b, "*")
	if la != lb {
		return la > lb
	}
	return a < b
}
