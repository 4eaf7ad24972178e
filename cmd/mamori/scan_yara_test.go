//go:build yara && cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// With the yara tag, `mamori scan` runs the .yar rules of --patterns and
// merges their detections (kind "yara") into the JSON lines; the result
// for the corpus samples is what YARA 4.2.3 reports (expected/yara.txt).
func TestScanRunsYARARules(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	var stdout, stderr bytes.Buffer
	err := runScan(context.Background(), &stdout, &stderr, []string{filepath.Join(root, "samples")},
		[]string{filepath.Join(root, "sigs")}, 2, pattern.Limits{}, false)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFound {
		t.Fatalf("exit %v, want found; stderr:\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "yara tag") {
		t.Fatalf("still reported as needing YARA:\n%s", stderr.String())
	}
	var got []string
	var sum scanSummary
	kinds := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var l scanLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Kind == "" {
			if err := json.Unmarshal([]byte(line), &sum); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kinds[l.Kind]++
		if l.Kind == "yara" && l.Container == "" {
			got = append(got, l.Signature+" "+filepath.Base(l.Path))
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "expected", "yara.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		rule, file, _ := strings.Cut(line, " ")
		want = append(want, rule+" "+filepath.Base(file))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("YARA detections\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if kinds["hash"] == 0 || kinds["body"] == 0 {
		t.Fatalf("pattern engine detections missing: %v", kinds)
	}
	if !sum.Summary || sum.YARARules != 2 || sum.Detections != kinds["hash"]+kinds["body"]+kinds["logical"]+kinds["yara"] {
		t.Fatalf("summary %+v, kinds %v", sum, kinds)
	}

	// No rule files: the pattern engine alone.
	stdout.Reset()
	err = runScan(context.Background(), &stdout, &stderr, []string{filepath.Join(root, "samples", "eicar.com")},
		[]string{filepath.Join(root, "sigs", "eicar.hdb")}, 1, pattern.Limits{}, true)
	if !errors.As(err, &ee) || ee.code != exitFound || strings.Contains(stdout.String(), "yara") {
		t.Fatalf("without rule files: %v\n%s", err, stdout.String())
	}

	// A broken rule file is skipped with a warning naming file and line.
	pats := t.TempDir()
	yb, _ := os.ReadFile(filepath.Join(root, "sigs", "eicar.yar"))
	os.WriteFile(filepath.Join(pats, "eicar.yar"), yb, 0o600)
	os.WriteFile(filepath.Join(pats, "zz_bad.yar"), []byte("rule Bad\n{\n  condition: nope\n}\n"), 0o600)
	stdout.Reset()
	stderr.Reset()
	err = runScan(context.Background(), &stdout, &stderr, []string{filepath.Join(root, "samples", "eicar.com")}, []string{pats}, 1, pattern.Limits{}, false)
	if !errors.As(err, &ee) || ee.code != exitFound {
		t.Fatalf("exit %v, want found", err)
	}
	if !strings.Contains(stderr.String(), "zz_bad.yar:3: ") || !strings.Contains(stdout.String(), `"signature":"Local_Eicar_YARA"`) {
		t.Fatalf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	}
}
