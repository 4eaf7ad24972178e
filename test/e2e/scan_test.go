package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type scanOut struct {
	lines   []map[string]any
	summary map[string]any
	code    int
}

func runScan(t *testing.T, args ...string) scanOut {
	t.Helper()
	cmd := exec.Command(mamoriBin, append([]string{"scan", "-q"}, args...)...)
	out, err := cmd.Output()
	var o scanOut
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if m["summary"] == true {
			o.summary = m
			continue
		}
		o.lines = append(o.lines, m)
	}
	if o.summary == nil {
		t.Fatalf("no summary line in %q", out)
	}
	return o
}

// TestScanCLI: `mamori scan` over the EICAR samples gives, for each
// signature file, the files and signatures ClamAV 1.4.6 reports
// (expected/clamscan_per_sigfile.txt), with the exit codes scripts rely on:
// 1 found, 0 clean, 2 error.
func TestScanCLI(t *testing.T) {
	root := corpus(t, "malware-patterns/eicar")
	samples := filepath.Join(root, "samples")
	raw, err := os.ReadFile(filepath.Join(root, "expected", "clamscan_per_sigfile.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{} // sig file → sorted "file: signature"
	var cur string
	for _, l := range strings.Split(string(raw), "\n") {
		if f, ok := strings.CutPrefix(l, "## "); ok {
			cur = filepath.Base(f)
			continue
		}
		file, rest, ok := strings.Cut(l, ": ")
		if !ok || !strings.HasSuffix(rest, " FOUND") {
			continue
		}
		sig := strings.TrimSuffix(strings.TrimSuffix(rest, " FOUND"), ".UNOFFICIAL")
		want[cur] = append(want[cur], filepath.Base(file)+": "+sig)
	}
	if len(want) < 5 {
		t.Fatalf("expected file parsed to %d sections", len(want))
	}
	for sigFile, exp := range want {
		if strings.HasSuffix(sigFile, ".yar") {
			continue // YARA is an optional engine (build tag yara)
		}
		o := runScan(t, samples, "--patterns", filepath.Join(root, "sigs", sigFile))
		var got []string
		for _, l := range o.lines {
			got = append(got, filepath.Base(l["path"].(string))+": "+l["signature"].(string))
		}
		slices.Sort(got)
		got = slices.Compact(got)
		slices.Sort(exp)
		exp = slices.Compact(exp)
		if !slices.Equal(got, exp) {
			t.Errorf("%s:\n got  %q\n want %q", sigFile, got, exp)
		}
		if o.code != 1 {
			t.Errorf("%s: exit %d, want 1", sigFile, o.code)
		}
		if int(o.summary["files"].(float64)) != 10 {
			t.Errorf("%s: summary %v", sigFile, o.summary)
		}
	}
	all := filepath.Join(root, "sigs")
	if o := runScan(t, filepath.Join(samples, "clean_control.txt"), "--patterns", all); o.code != 0 || len(o.lines) != 0 {
		t.Errorf("clean file: exit %d, lines %v", o.code, o.lines)
	}
	if o := runScan(t, filepath.Join(samples, "no-such-file"), "--patterns", all); o.code != 2 || len(o.lines) != 1 || o.lines[0]["kind"] != "error" {
		t.Errorf("missing file: exit %d, lines %v", o.code, o.lines)
	}
	empty := t.TempDir()
	if err := exec.Command(mamoriBin, "scan", samples, "--patterns", empty).Run(); err == nil {
		t.Error("a pattern directory without signatures was accepted")
	} else if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() != 2 {
		t.Errorf("empty patterns: exit %d, want 2", ee.ExitCode())
	}
}
