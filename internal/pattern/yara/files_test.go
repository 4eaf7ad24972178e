package yara

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRuleFilesExpandsIndexesAndSkipsIncluded(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"index.yar":         "/* generated */\ninclude \"./sub/a.yar\"\n  include \"sub/b.YARA\"\n// end\n",
		"lib.yar":           "include \"sub/c.yara\"\nrule L { condition: C }\n",
		"sub/a.yar":         "rule A { condition: true }\n",
		"sub/b.YARA":        "rule B { condition: true }\n",
		"sub/c.yara":        "rule C { condition: true }\n",
		"notes.txt":         "include \"sub/a.yar\"\n",
		"x.hdb":             "",
		"sub/commented.yar": "// include \"c.yara\"\nrule D { condition: true }\n",
		"broken_index.yar":  "include \"missing.yar\"\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RuleFiles(dir, filepath.Join(dir, "sub", "commented.yar"))
	if err != nil {
		t.Fatal(err)
	}
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	want := []string{j("broken_index.yar"), j("sub", "a.yar"), j("sub", "b.YARA"), j("lib.yar"), j("sub", "commented.yar")}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	if _, err := RuleFiles(filepath.Join(dir, "absent")); err == nil {
		t.Fatal("no error for a missing path")
	}
}
