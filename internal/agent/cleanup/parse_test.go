package cleanup

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/encode.golden")

const hash64 = "6f1ed002ab5595859014ebf0951522d9f7f3dd5ef7a1a8a5e1b2b1d2a3f4e5c6"

func TestParseExample(t *testing.T) {
	b, err := os.ReadFile("testdata/examples/dropper.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defs, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Definition{{
		Detection: "Mamori.Test.Dropper",
		Steps: []Step{
			{Action: ActionKill, ImageSHA256: hash64},
			{Action: ActionQuarantine, Path: "{detected}"},
			{Action: ActionRemovePersistence, Kind: SystemdUnit, Name: "evil.service"},
			{Action: ActionRemovePersistence, Kind: Cron, Match: "/tmp/evil"},
			{Action: ActionRemovePersistence, Kind: Autostart, Name: "evil.desktop"},
		},
	}}
	if !reflect.DeepEqual(defs, want) {
		t.Fatalf("got %+v\nwant %+v", defs, want)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		def, step  int
		field      string
		line       int
		msg        string
	}{
		{"not a list", "detection: X\n", 0, 0, "", 1, "want a list"},
		{"item not a mapping", "- X\n", 1, 0, "", 1, "want a mapping"},
		{"missing detection", "- steps: [{quarantine_file: {path: '{detected}'}}]\n", 1, 0, "detection", 1, "missing"},
		{"detection with space", "- detection: A B\n  steps: [{quarantine_file: {path: '{detected}'}}]\n", 1, 0, "detection", 1, "white space"},
		{"detection with U+FFFD", "- detection: \"A\\uFFFDB\"\n  steps: [{quarantine_file: {path: '{detected}'}}]\n", 1, 0, "detection", 1, "U+FFFD"},
		{"unknown key", "- detection: X\n  stepz: []\n", 1, 0, "stepz", 2, "unknown key"},
		{"missing steps", "- detection: X\n", 1, 0, "steps", 1, "missing"},
		{"empty steps", "- detection: X\n  steps: []\n", 1, 0, "steps", 2, "no steps"},
		{"steps not a list", "- detection: X\n  steps: {a: b}\n", 1, 0, "steps", 2, "want a list"},
		{"unknown step kind", "- detection: X\n  steps:\n    - format_disk: {path: /}\n", 1, 1, "", 3, `unknown step "format_disk"`},
		{"two actions in a step", "- detection: X\n  steps:\n    - {kill_process: {image_sha256: " + hash64 + "}, quarantine_file: {path: /x}}\n", 1, 1, "", 3, "exactly one action"},
		{"missing hash", "- detection: X\n  steps:\n    - kill_process: {}\n", 1, 1, "image_sha256", 3, "missing"},
		{"null fields", "- detection: X\n  steps:\n    - kill_process:\n", 1, 1, "image_sha256", 3, "missing"},
		{"bad hex", "- detection: X\n  steps:\n    - kill_process: {image_sha256: zz}\n", 1, 1, "image_sha256", 3, "64 lower-case hex"},
		{"short hex", "- detection: X\n  steps:\n    - kill_process: {image_sha256: abcd}\n", 1, 1, "image_sha256", 3, "64 lower-case hex"},
		{"unknown field", "- detection: X\n  steps:\n    - kill_process: {image_sha256: " + hash64 + ", pid: 1}\n", 1, 1, "pid", 3, "unknown field"},
		{"field of another action", "- detection: X\n  steps:\n    - kill_process: {path: /x}\n", 1, 1, "path", 3, "unknown field"},
		{"field given twice", "- detection: X\n  steps:\n    - quarantine_file:\n        path: /a\n        path: /b\n", 1, 1, "path", 5, "given twice"},
		{"key given twice", "- detection: X\n  detection: Y\n  steps: [{quarantine_file: {path: /a}}]\n", 1, 0, "detection", 2, "given twice"},
		{"relative path", "- detection: X\n  steps:\n    - quarantine_file: {path: tmp/x}\n", 1, 1, "path", 3, "neither absolute"},
		{"unknown placeholder", "- detection: X\n  steps:\n    - quarantine_file: {path: '/x/{user}'}\n", 1, 1, "path", 3, "placeholder"},
		{"misplaced placeholder", "- detection: X\n  steps:\n    - quarantine_file: {path: '/x/{detected}'}\n", 1, 1, "path", 3, "placeholder"},
		{"non-scalar value", "- detection: X\n  steps:\n    - quarantine_file: {path: [/a, /b]}\n", 1, 1, "path", 3, "single value"},
		{"missing kind", "- detection: X\n  steps:\n    - remove_persistence: {name: a.service}\n", 1, 1, "kind", 3, "missing"},
		{"unknown kind", "- detection: X\n  steps:\n    - remove_persistence: {kind: launchd, name: a}\n", 1, 1, "kind", 3, `unknown kind "launchd"`},
		{"unit with slash", "- detection: X\n  steps:\n\n    - remove_persistence: {kind: systemd_unit, name: ../../etc/passwd.service}\n", 1, 1, "name", 4, "path separators"},
		{"unit dot-dot", "- detection: X\n  steps:\n    - remove_persistence: {kind: systemd_unit, name: ..}\n", 1, 1, "name", 3, "path separators"},
		{"not a unit name", "- detection: X\n  steps:\n    - remove_persistence: {kind: systemd_unit, name: evil}\n", 1, 1, "name", 3, "not a unit name"},
		{"unit without name", "- detection: X\n  steps:\n    - remove_persistence: {kind: systemd_unit}\n", 1, 1, "name", 3, "missing"},
		{"cron without match", "- detection: X\n  steps:\n    - remove_persistence: {kind: cron}\n", 1, 1, "match", 3, "missing"},
		{"cron with name", "- detection: X\n  steps:\n    - remove_persistence: {kind: cron, match: x, name: y}\n", 1, 1, "name", 3, "not used"},
		{"autostart with match", "- detection: X\n  steps:\n    - remove_persistence: {kind: autostart, name: a.desktop, match: x}\n", 1, 1, "match", 3, "not used"},
		{"autostart not .desktop", "- detection: X\n  steps:\n    - remove_persistence: {kind: autostart, name: a.sh}\n", 1, 1, "name", 3, ".desktop"},
		{"run_key without name", "- detection: X\n  steps:\n    - remove_persistence: {kind: run_key}\n", 1, 1, "name", 3, "missing"},
		{"control character", "- detection: X\n  steps:\n    - remove_persistence: {kind: cron, match: \"a\\tb\"}\n", 1, 1, "match", 3, "control character"},
		{"second definition bad", "- detection: A\n  steps: [{quarantine_file: {path: /a}}]\n- detection: B\n  steps: [{kill_process: {image_sha256: x}}]\n", 2, 1, "image_sha256", 4, "hex"},
		{"duplicate detection", "- detection: A\n  steps: [{quarantine_file: {path: /a}}]\n- detection: A\n  steps: [{quarantine_file: {path: /b}}]\n", 2, 0, "detection", 3, "already defined by definition 1"},
		{"alias", "- detection: X\n  steps:\n    - quarantine_file: {path: &p /a}\n    - quarantine_file: {path: *p}\n", 1, 2, "path", 4, "aliases"},
		{"yaml syntax", "- detection: [\n", 0, 0, "", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defs, err := Parse([]byte(c.yaml))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v %+v, want ErrInvalid", err, defs)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				if c.def != 0 || c.field != "" {
					t.Fatalf("error %q is not a *ParseError", err)
				}
				return
			}
			if pe.Definition != c.def || pe.Step != c.step || pe.Field != c.field || (c.line != 0 && pe.Line != c.line) {
				t.Errorf("got def %d step %d field %q line %d, want %d %d %q %d (%v)",
					pe.Definition, pe.Step, pe.Field, pe.Line, c.def, c.step, c.field, c.line, err)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "~\n"} {
		if defs, err := Parse([]byte(in)); err != nil || len(defs) != 0 {
			t.Errorf("Parse(%q) = %v, %v", in, defs, err)
		}
	}
}

func TestParseNormalisesHash(t *testing.T) {
	defs, err := Parse([]byte("- detection: X\n  steps: [{kill_process: {image_sha256: " + strings.ToUpper(hash64) + "}}]\n"))
	if err != nil || defs[0].Steps[0].ImageSHA256 != hash64 {
		t.Fatalf("%+v %v", defs, err)
	}
}

func readExamples(t *testing.T) []Definition {
	t.Helper()
	files, _ := filepath.Glob("testdata/examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("examples: %v", files)
	}
	var all []Definition
	for _, f := range files {
		b, _ := os.ReadFile(f)
		defs, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, defs...)
	}
	return all
}

// TestEncodeGolden pins the record form: agents and the server compare
// releases by their bytes, so a change here is a format change.
func TestEncodeGolden(t *testing.T) {
	defs := readExamples(t)
	lines, err := Encode(defs)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines, "\n") + "\n"
	if *updateGolden {
		os.WriteFile("testdata/encode.golden", []byte(got), 0o644)
	}
	want, err := os.ReadFile("testdata/encode.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("Encode differs from testdata/encode.golden (go test -update to accept):\n%s", got)
	}
	back, err := Decode(lines)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, defs) {
		t.Fatalf("Decode(Encode(x)) != x:\n%+v\n%+v", back, defs)
	}
	// What the server and the agent do with every release: each line must
	// be a pattern record that compiles.
	var recs []pattern.Record
	for _, l := range lines {
		r, err := pattern.ParseRecord(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if _, warns, err := pattern.Compile(recs); err != nil || len(warns) > 0 {
		t.Fatalf("records do not compile: %v %v", err, warns)
	}
}

func TestDecode(t *testing.T) {
	good := `cleanup Mamori.X {"steps":[{"quarantine_file":{"path":"{detected}"}}]}`
	cases := []struct {
		name  string
		lines []string
		rec   int
		msg   string
	}{
		{"not a record", []string{"garbage"}, 1, "record needs"},
		{"free text cleanup data", []string{good, "cleanup Local.Eicar.Clean quarantine"}, 2, "not a cleanup definition"},
		{"unknown top-level field", []string{`cleanup X {"steps":[{"quarantine_file":{"path":"/a"}}],"v":2}`}, 1, "unknown field"},
		{"trailing data", []string{`cleanup X {"steps":[{"quarantine_file":{"path":"/a"}}]} {}`}, 1, "continues"},
		{"no steps", []string{`cleanup X {"steps":[]}`}, 1, "no steps"},
		{"two actions", []string{`cleanup X {"steps":[{"quarantine_file":{"path":"/a"},"kill_process":{}}]}`}, 1, "exactly one action"},
		{"number value", []string{`cleanup X {"steps":[{"kill_process":{"image_sha256":1}}]}`}, 1, "cannot unmarshal"},
		{"unknown step", []string{`cleanup X {"steps":[{"reboot":{}}]}`}, 1, `unknown step "reboot"`},
		{"bad unit", []string{`cleanup X {"steps":[{"remove_persistence":{"kind":"systemd_unit","name":"a/b.service"}}]}`}, 1, "path separators"},
		{"duplicate detection", []string{good, "hash Y 44d88612fea8a8f36de82e1278abb02f:68", good}, 3, "already defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.lines)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode: %v, want a *ParseError", err)
			}
			if pe.Record != c.rec || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q (record %d), want record %d saying %q", err, pe.Record, c.rec, c.msg)
			}
		})
	}
	// Other kinds are skipped, not errors: a release may mix them.
	defs, err := Decode([]string{"hash Y 44d88612fea8a8f36de82e1278abb02f:68", good})
	if err != nil || len(defs) != 1 || defs[0].Detection != "Mamori.X" {
		t.Fatalf("mixed release: %+v %v", defs, err)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	_, err := Encode([]Definition{
		{Detection: "A", Steps: []Step{{Action: ActionQuarantine, Path: "/a"}}},
		{Detection: "B", Steps: []Step{{Action: ActionKill, ImageSHA256: "nothex"}}},
	})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Definition != 2 || pe.Field != "image_sha256" {
		t.Fatalf("Encode: %v", err)
	}
	long := strings.Repeat("a", 4000)
	var steps []Step
	for range 20 {
		steps = append(steps, Step{Action: ActionRemovePersistence, Kind: Cron, Match: long})
	}
	if _, err := Encode([]Definition{{Detection: "A", Steps: steps}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "record limit") {
		t.Fatalf("oversized record: %v", err)
	}
}

func TestFind(t *testing.T) {
	defs := []Definition{
		{Detection: "Unix.*"},
		{Detection: "Unix.Trojan.*"},
		{Detection: "*.Trojan.Mirai-*"},
		{Detection: "Unix.Trojan.Mirai-7"},
		{Detection: "Win.*.Agent-[1]"},
	}
	cases := map[string]string{
		"Unix.Trojan.Mirai-7":   "Unix.Trojan.Mirai-7", // exact wins
		"Unix.Trojan.Mirai-8":   "*.Trojan.Mirai-*",    // more literal characters
		"Unix.Trojan.Gafgyt":    "Unix.Trojan.*",
		"Unix.Coinminer.Xmrig":  "Unix.*",
		"Win.Trojan.Agent-[1]":  "Win.*.Agent-[1]", // brackets are literal
		"Win.Trojan.Agent-1":    "",
		"Osx.Trojan.Mirai-1":    "*.Trojan.Mirai-*",
		"Unix.Trojan.Mirai":     "Unix.Trojan.*",
		"Unix":                  "",
		"Unix.Trojan.Mirai-7.x": "*.Trojan.Mirai-*",
	}
	for sig, want := range cases {
		d, ok := Find(defs, sig)
		if ok != (want != "") || d.Detection != want {
			t.Errorf("Find(%q) = %q %v, want %q", sig, d.Detection, ok, want)
		}
		// Order must not matter.
		rev := slices.Clone(defs)
		slices.Reverse(rev)
		if d2, _ := Find(rev, sig); d2.Detection != d.Detection {
			t.Errorf("Find(%q) depends on order: %q vs %q", sig, d.Detection, d2.Detection)
		}
	}
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"a*a", "a", false}, {"a*a", "aa", true}, {"*", "", true}, {"a**b", "ab", true},
		{"*x*y", "axbxy", true}, {"*x*y", "ayx", false}, {"abc", "abcd", false},
	} {
		if got := globMatch(c.pat, c.name); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pat, c.name, got)
		}
	}
}

func TestStepStringsDescribeEveryKind(t *testing.T) {
	for _, d := range readExamples(t) {
		for _, s := range d.Steps {
			str := s.String()
			if str == "" || strings.Contains(str, "kind \"") {
				t.Errorf("step %+v described as %q", s, str)
			}
		}
	}
}
