package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/api"
)

func TestBuildPatterns(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.hsb", "3395856ce81f2b7382dee72602f798b642f14140:68:Main.Good\n44d88612fea8a8f36de82e1278abb02f:68:Main.Md5\n")
	dup := write("dup.hdb", "44d88612fea8a8f36de82e1278abb02f:68:Main.Md5\n")
	body := write("body.ndb", "Main.Body:0:*:58354f2150254041505b345c505a58353428505e2937434329377d24\n")
	bad := write("bad.hsb", "zz:68:Main.Bad\n44d88612fea8a8f36de82e1278abb02f:*:Main.Any\n")
	tests := []struct {
		name    string
		args    []string
		skip    bool
		wantErr bool
		records int
		kinds   map[string]int
		refused int
	}{
		{name: "files, duplicates merged", args: []string{good, dup, body}, records: 3, kinds: map[string]int{"hash": 2, "body": 1}},
		{name: "a bad signature fails the build", args: []string{good, bad}, wantErr: true},
		{name: "skip-invalid drops it", args: []string{good, bad}, skip: true, records: 3, kinds: map[string]int{"hash": 3}, refused: 1},
		{name: "nothing to build", args: []string{write("empty.hsb", "")}, wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out", string(rune('a'+i)))
			var stderr bytes.Buffer
			res, err := buildPatterns(tt.args, out, tt.skip, &stderr)
			if tt.wantErr {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != exitUsage {
					t.Fatalf("want a usage error, got %v", err)
				}
				if _, err := os.Stat(filepath.Join(out, "patterns.records")); err == nil {
					t.Error("a failed build wrote its output")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != tt.records || res.Refused != tt.refused || len(res.Kinds) != len(tt.kinds) {
				t.Fatalf("result %+v", res)
			}
			for k, n := range tt.kinds {
				if res.Kinds[k] != n {
					t.Errorf("%s: %d, want %d", k, res.Kinds[k], n)
				}
			}
			if tt.refused > 0 && !strings.Contains(stderr.String(), "Main.Bad") && !strings.Contains(stderr.String(), "bad.hsb") {
				t.Errorf("refused signature not reported: %q", stderr.String())
			}
			// The file is the canonical content: sorted lines, its sha256 the
			// reported one, and it reads back as the same records.
			b, err := os.ReadFile(res.Output)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != res.SHA256 || len(b) != res.Bytes {
				t.Error("content hash or size differs from the file")
			}
			recs, files, warns, err := readPatternFiles([]string{out})
			if err != nil || files != 1 || len(warns) != 0 || len(recs) != res.Records {
				t.Errorf("read back: %d records from %d files, %v %v", len(recs), files, warns, err)
			}
		})
	}
}

func TestPrintDiff(t *testing.T) {
	d := api.PatternDiff{Channel: "main", From: 1, To: 2, Added: []string{"hash C x:1"}, Removed: []string{"hash B y:1"}}
	var human, js bytes.Buffer
	if err := printDiff(&human, d, false); err != nil {
		t.Fatal(err)
	}
	if want := "main 1 → 2: 1 added, 1 removed\n- hash B y:1\n+ hash C x:1\n"; human.String() != want {
		t.Errorf("human:\n%s\nwant:\n%s", human.String(), want)
	}
	if err := printDiff(&js, d, true); err != nil {
		t.Fatal(err)
	}
	if want := `{"change":"removed","record":"hash B y:1"}` + "\n" + `{"change":"added","record":"hash C x:1"}` + "\n"; js.String() != want {
		t.Errorf("json:\n%s", js.String())
	}
}

func TestPinArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{[]string{"3"}, false},
		{[]string{"--latest"}, false},
		{[]string{}, true},
		{[]string{"3", "--latest"}, true},
		{[]string{"3", "4"}, true},
	} {
		cmd := newPatternPinCmd()
		cmd.SetArgs(tc.args)
		cmd.RunE = func(*cobra.Command, []string) error { return nil }
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		if err := cmd.Execute(); (err != nil) != tc.wantErr {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}
