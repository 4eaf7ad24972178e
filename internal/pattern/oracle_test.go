package pattern

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/testutil"
)

// Oracle tests against ClamAV's own results on the shared corpus
// (malware-patterns/README.md describes it).

// clamLine parses "./<file>: <Sig>.UNOFFICIAL FOUND" / "./<file>: OK".
func clamLine(line string) (file, sig string, ok bool) {
	path, rest, found := strings.Cut(line, ": ")
	if !found {
		return "", "", false
	}
	file = filepath.Base(path)
	if rest == "OK" {
		return file, "", true
	}
	sig, found = strings.CutSuffix(rest, " FOUND")
	if !found {
		return "", "", false
	}
	sig = strings.TrimSuffix(sig, ".UNOFFICIAL")
	return file, sig, true
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// scanCounts scans every file of dir and counts (file, signature)
// detections, leaving out limit reports.
func scanCounts(t *testing.T, set *Set, dir string) map[string]int {
	t.Helper()
	got := map[string]int{}
	sc := NewScanner(set, Limits{})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		dets, err := sc.ScanFile(context.Background(), filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("scan %s: %v", e.Name(), err)
		}
		for _, d := range dets {
			if d.Kind == KindLimit {
				t.Errorf("%s: unexpected limit %s", d.Location(), d.Signature)
				continue
			}
			got[e.Name()+": "+d.Signature]++
		}
	}
	return got
}

func diffCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %s: got %d detections, ClamAV %d", what, k, got[k], want[k])
		}
	}
}

func hasYARAWarning(warns []Warning) bool {
	for _, w := range warns {
		if errors.Is(w, ErrNeedsYARA) && strings.HasSuffix(w.File, ".yar") {
			return true
		}
	}
	return false
}

func TestOracleEicar(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	samples := filepath.Join(root, "samples")

	// Per signature file: clamscan_per_sigfile.txt.
	want := map[string]map[string]int{}
	var cur string
	for _, l := range readLines(t, filepath.Join(root, "expected", "clamscan_per_sigfile.txt")) {
		if s, ok := strings.CutPrefix(l, "## "); ok {
			cur = filepath.Base(s)
			want[cur] = map[string]int{}
			continue
		}
		file, sig, ok := clamLine(l)
		if !ok || sig == "" {
			t.Fatalf("unexpected line %q", l)
		}
		want[cur][file+": "+sig]++
	}
	sigFiles, _ := filepath.Glob(filepath.Join(root, "sigs", "*"))
	if len(sigFiles) != 7 || len(want) != 7 {
		t.Fatalf("corpus changed: %d sig files, %d expected sections", len(sigFiles), len(want))
	}
	for _, sf := range sigFiles {
		name := filepath.Base(sf)
		t.Run(name, func(t *testing.T) {
			set, warns, err := Load(sf)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, ".yar") {
				if !hasYARAWarning(warns) {
					t.Fatalf("%s not reported as needing the yara engine: %v", name, warns)
				}
				if st := set.Stats(); st.Hash+st.Body+st.Logical != 0 {
					t.Fatalf("YARA file produced signatures: %+v", st)
				}
				t.Logf("%s: %v (known gap: YARA not built here; ClamAV found %d)", name, warns[0], len(want[name]))
				return
			}
			if len(warns) != 0 {
				t.Fatalf("warnings: %v", warns)
			}
			diffCounts(t, name, scanCounts(t, set, samples), want[name])
		})
	}

	// All signature files together: clamscan_allmatch.txt without YARA.
	t.Run("allmatch", func(t *testing.T) {
		set, warns, err := Load(filepath.Join(root, "sigs"))
		if err != nil {
			t.Fatal(err)
		}
		if len(warns) != 1 || !hasYARAWarning(warns) {
			t.Fatalf("want exactly the YARA warning, got %v", warns)
		}
		want := map[string]int{}
		clean := map[string]bool{}
		for _, l := range readLines(t, filepath.Join(root, "expected", "clamscan_allmatch.txt")) {
			file, sig, ok := clamLine(l)
			switch {
			case !ok:
				t.Fatalf("unexpected line %q", l)
			case sig == "":
				clean[file] = true
			case !strings.HasPrefix(sig, "YARA."):
				want[file+": "+sig]++
			}
		}
		got := scanCounts(t, set, samples)
		diffCounts(t, "allmatch", got, want)
		for k := range got {
			if clean[strings.Split(k, ": ")[0]] {
				t.Errorf("clean file detected: %s", k)
			}
		}
		if !clean["clean_control.txt"] {
			t.Fatal("expected file no longer lists clean_control.txt as OK")
		}
		n := 0
		for _, c := range want {
			n += c
		}
		t.Logf("allmatch: %d/%d ClamAV non-YARA detections reproduced (YARA rules: known gap)", n, n)
	})
}

// xorKey is the obfuscation key of ClamAV's unit-test scan files
// (unit_tests/input/xor_testfile.py, quoted in the corpus README).
const xorKey = "bhcftqarohcdiayfohalohkgmoefxrrg" + "fnczssgybajvkzjaahpfrlqsratkhhfv" +
	"pxytculmwgmtyzujlbjlgrhtwxhzpjaz" + "libbwepffyjyfkjwzyofgpopoueurinp" + "dujkphxwhnaxfkaiwrpzdqsnwughtejr"

func TestOracleClamAVHdbScanfiles(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/clamav-unit-tests")
	in := filepath.Join(root, "unit_tests", "input")
	dir := t.TempDir()
	xors, _ := filepath.Glob(filepath.Join(in, "clamav_hdb_scanfiles", "*.xor"))
	if len(xors) != 11 {
		t.Fatalf("want 11 .xor files, found %d", len(xors))
	}
	for _, x := range xors {
		data, err := os.ReadFile(x)
		if err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] ^= xorKey[i%len(xorKey)]
		}
		if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(x), ".xor")), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set, warns, err := Load(filepath.Join(in, "clamav.hdb"))
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v %v", err, warns)
	}
	// Containers this engine does not open; ClamAV finds the test file in
	// all of them.
	gaps := map[string]string{
		"clam-upx.exe":  "UPX unpacking",
		"clam.7z":       "7z archives",
		"clam.exe.html": "HTML data: URIs",
		"clam.pdf":      "PDF streams",
	}
	got := scanCounts(t, set, dir)
	found := map[string]bool{}
	for k := range got {
		file, sig, _ := strings.Cut(k, ": ")
		if sig != "ClamAV-Test-File" {
			t.Errorf("unexpected detection %s", k)
		}
		found[file] = true
	}
	lines := readLines(t, filepath.Join(root, "expected", "clam_xor_decoded_vs_clamav.hdb.txt"))
	supported := 0
	for _, l := range lines {
		file, sig, ok := clamLine(l)
		if !ok || sig != "ClamAV-Test-File" {
			t.Fatalf("unexpected expected line %q", l)
		}
		if why, gap := gaps[file]; gap {
			if found[file] {
				t.Errorf("%s: found, but listed as a known gap (%s): update the test", file, why)
			}
			t.Logf("known gap: %s not found (%s not supported)", file, why)
			continue
		}
		supported++
		if !found[file] {
			t.Errorf("%s: ClamAV-Test-File not found", file)
		}
	}
	t.Logf("found %d/%d (%d known gaps)", supported, len(lines), len(gaps))
}

func TestOracleZstd(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/clamav-unit-tests")
	in := filepath.Join(root, "unit_tests", "input")
	set, warns, err := Load(filepath.Join(in, "other_sigs", "zstd.hdb"))
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v %v", err, warns)
	}
	got := scanCounts(t, set, filepath.Join(in, "other_scanfiles", "zstd"))
	t.Logf("zstd detections: %v", got)
	// The sha1 signatures are of the decompressed test texts; every
	// .zst file decompresses to one of them.
	files, _ := filepath.Glob(filepath.Join(in, "other_scanfiles", "zstd", "*.zst"))
	for _, f := range files {
		if got[filepath.Base(f)+": ZSTD_TEST_FILE"] == 0 {
			t.Errorf("%s: ZSTD_TEST_FILE not found", filepath.Base(f))
		}
	}
}

func TestOraclePEAllmatch(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/clamav-unit-tests")
	pe := filepath.Join(root, "unit_tests", "input", "pe_allmatch")
	exe := filepath.Join(pe, "test.exe")

	// The names ClamAV reported (clamscan -z with alert and weak sigs).
	clam := map[string]bool{}
	for _, l := range readLines(t, filepath.Join(root, "expected", "pe_allmatch_alert+weak.txt")) {
		_, sig, ok := clamLine(l)
		if !ok || sig == "" {
			t.Fatalf("unexpected line %q", l)
		}
		clam[sig] = true
	}
	if len(clam) != 84 {
		t.Fatalf("expected file lists %d names, want 84", len(clam))
	}

	scanNames := func(t *testing.T, dirs ...string) (map[string]bool, []Warning) {
		set, warns, err := Load(dirs...)
		if err != nil {
			t.Fatal(err)
		}
		dets, err := NewScanner(set, Limits{}).ScanFile(context.Background(), exe)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, d := range dets {
			if d.Kind == KindLimit {
				t.Errorf("limit: %v", d)
			}
			names[d.Signature] = true
		}
		return names, warns
	}

	t.Run("alert", func(t *testing.T) {
		alert := filepath.Join(pe, "alert-sigs")
		// What this engine supports, computed from the signature files
		// themselves: every signature that parses into a record.
		supported := map[string]bool{}
		skipped := map[string][]string{}
		files, _ := filepath.Glob(filepath.Join(alert, "*"))
		for _, f := range files {
			recs, warns, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				supported[r.Name] = true
			}
			for _, w := range warns {
				skipped[filepath.Ext(f)] = append(skipped[filepath.Ext(f)], w.Error())
			}
		}
		for _, ext := range slices.Sorted(maps.Keys(skipped)) {
			t.Logf("skipped %s: %d (e.g. %s)", ext, len(skipped[ext]), skipped[ext][0])
		}
		want := map[string]bool{}
		for n := range supported {
			if !clam[n] {
				t.Errorf("supported signature %s is not in ClamAV's result", n)
			}
			want[n] = true
		}
		for _, dirs := range [][]string{{alert}, {alert, filepath.Join(pe, "weak-sigs")}} {
			got, _ := scanNames(t, dirs...)
			if !maps.Equal(got, want) {
				t.Errorf("%v:\n got %v\nwant %v", dirs, sortedKeys(got), sortedKeys(want))
			}
		}
		var gaps []string
		for n := range clam {
			if !want[n] {
				gaps = append(gaps, n)
			}
		}
		sort.Strings(gaps)
		t.Logf("found %d/%d ClamAV detections; %d are signature types not supported: %v", len(want), len(clam), len(gaps), gaps)
	})

	t.Run("broken", func(t *testing.T) {
		got, warns := scanNames(t, filepath.Join(pe, "broken-sigs"))
		if len(got) > 0 {
			t.Errorf("broken signatures alerted: %v", got)
		}
		for _, w := range warns {
			t.Logf("skipped: %v", w)
		}
	})

	t.Run("weak", func(t *testing.T) {
		for _, l := range readLines(t, filepath.Join(root, "expected", "pe_allmatch_weak_only.txt")) {
			if _, sig, ok := clamLine(l); !ok || sig != "" {
				t.Fatalf("expected file changed: %q", l)
			}
		}
		got, warns := scanNames(t, filepath.Join(pe, "weak-sigs"))
		if len(got) > 0 {
			t.Errorf("weak signatures alerted: %v", got)
		}
		if len(warns) == 0 {
			t.Error("the .idb files were not reported as unsupported")
		}
	})
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
