//go:build yara && cgo

package yara

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// The EICAR test file, built from halves so this source is not itself a
// detectable file.
const (
	eicarHead = `X5O!P%@AP[4\PZX54(P^)7CC)7}$`
	eicarTail = `EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
)

func eicar() []byte { return []byte(eicarHead + eicarTail) }

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// yaraString quotes s as a YARA text string.
func yaraString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func compileStrict(t *testing.T, files ...string) *Rules {
	t.Helper()
	r, warns, err := Compile(context.Background(), files, Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns)
	}
	t.Cleanup(r.Close)
	return r
}

func TestEICARRule(t *testing.T) {
	dir := t.TempDir()
	rule := "rule Test_Eicar\n{\n  strings:\n    $h = " + yaraString(eicarHead) + "\n    $t = " + yaraString(eicarTail[:35]) +
		"\n  condition:\n    $h at 0 and $t\n}\n"
	r := compileStrict(t, writeFile(t, dir, "eicar.yar", rule))
	if r.Len() != 1 {
		t.Fatalf("%d rules, want 1", r.Len())
	}
	ctx := context.Background()
	want := []pattern.Detection{{Path: "mem", Signature: "Test_Eicar", Kind: Kind, Offset: 0}}
	got, err := r.ScanBytes(ctx, "mem", eicar())
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ScanBytes: %v, %v; want %v", got, err, want)
	}
	sample := filepath.Join(dir, "sample.com")
	if err := os.WriteFile(sample, eicar(), 0o600); err != nil {
		t.Fatal(err)
	}
	want[0].Path = sample
	if got, err = r.ScanFile(ctx, sample); err != nil || !slices.Equal(got, want) {
		t.Fatalf("ScanFile: %v, %v; want %v", got, err, want)
	}
	// Shifted by one byte, "at 0" no longer holds.
	if got, err = r.ScanBytes(ctx, "shifted", append([]byte{' '}, eicar()...)); err != nil || len(got) != 0 {
		t.Fatalf("shifted: %v, %v; want nothing", got, err)
	}
	if _, err := r.ScanFile(ctx, dir); !errors.Is(err, pattern.ErrNotRegular) {
		t.Fatalf("directory: %v, want ErrNotRegular", err)
	}
}

func TestCleanGivesNothing(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	r := compileStrict(t, filepath.Join(root, "sigs", "eicar.yar"))
	for _, p := range []string{filepath.Join(root, "samples", "clean_control.txt"), "/bin/sh"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		got, err := r.ScanFile(context.Background(), p)
		if err != nil || len(got) != 0 {
			t.Errorf("%s: %v, %v; want nothing", p, got, err)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ScanFile(context.Background(), empty); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v, %v", got, err)
	}
}

// TestCorpusEICARMatchesYARA compares with what YARA 4.2.3 reports for the
// corpus EICAR samples (expected/yara.txt: "<rule> ./<sample>").
func TestCorpusEICARMatchesYARA(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/eicar")
	r := compileStrict(t, filepath.Join(root, "sigs", "eicar.yar"))
	f, err := os.Open(filepath.Join(root, "expected", "yara.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rule, file, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok {
			want = append(want, rule+" "+filepath.Base(file))
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		dets, err := r.ScanFile(context.Background(), filepath.Join(root, "samples", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dets {
			got = append(got, d.Signature+" "+e.Name())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant (YARA 4.2.3)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "a_good.yar", "rule Good { strings: $a = \"mamori-good\" condition: $a }\n")
	// An undefined function on line 5, after another file: line numbers
	// must count from the start of each file.
	bad := writeFile(t, dir, "b_bad.yar", "rule Bad\n{\n  condition:\n    uint8(0) == 1 and\n    bogus(1)\n}\n")
	_, _, err := Compile(context.Background(), []string{good, bad}, Options{Strict: true})
	var ce *CompileError
	if !errors.As(err, &ce) || ce.File != bad || ce.Line != 5 {
		t.Fatalf("strict: %v, want a CompileError at %s:5", err, bad)
	}
	if !errors.Is(err, ErrCompile) || !errors.Is(err, pattern.ErrSyntax) || !strings.Contains(err.Error(), bad+":5:") {
		t.Fatalf("strict: %q does not wrap ErrCompile and pattern.ErrSyntax or name the line", err)
	}

	// Not strict: the broken file is skipped with a warning, the rest is
	// used; the good file after a bad one still compiles.
	late := writeFile(t, dir, "c_late.yar", "rule Late { strings: $a = \"mamori-late\" condition: $a }\n")
	r, warns, err := Compile(context.Background(), []string{good, bad, late}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(warns) != 1 || warns[0].File != bad || warns[0].Line != 5 || !errors.Is(warns[0], ErrCompile) {
		t.Fatalf("warnings %v, want one for %s:5", warns, bad)
	}
	if !strings.Contains(warns[0].Error(), bad+":5: ") {
		t.Fatalf("warning text %q", warns[0].Error())
	}
	if r.Len() != 2 {
		t.Fatalf("%d rules, want 2", r.Len())
	}
	got, _ := r.ScanBytes(context.Background(), "m", []byte("xx mamori-late"))
	if len(got) != 1 || got[0].Signature != "Late" || got[0].Offset != 3 {
		t.Fatalf("got %v", got)
	}

	// An error inside an included file names that file.
	inc := writeFile(t, dir, "d_inc.yar", "include \"b_bad.yar\"\n")
	_, _, err = Compile(context.Background(), []string{inc}, Options{Strict: true})
	if !errors.As(err, &ce) || ce.File != bad || ce.Line != 5 || !strings.Contains(ce.Msg, "included from") {
		t.Fatalf("include: %v", err)
	}
}

func TestCompileTimeBudget(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns/signature-base/yara")
	files, err := RuleFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, _, err = Compile(context.Background(), files, Options{CompileTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Compile returned after %s, not at its budget", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Compile(ctx, files, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestCorpusRuleSetsCompile compiles two community rule sets whole. The
// bundled libyara is 3.8.1 without OpenSSL, so files using pe.imphash,
// pe.number_of_signatures, the hash module or YARA 4 syntax (base64
// strings, xor ranges) are skipped with a warning; the rest must load and
// stay silent on a clean file.
func TestCorpusRuleSetsCompile(t *testing.T) {
	root := testutil.Corpus(t, "malware-patterns")
	for _, tc := range []struct {
		name               string
		path               string
		minRules, maxSkips int
	}{
		// 5,877 rules in 737 files (YARA 4.2.3); here 5,150 in 632.
		{"signature-base", filepath.Join(root, "signature-base", "yara"), 5000, 120},
		// An index file: expanded to its members, which share 000_common_rules.yar.
		{"Yara-Rules malware", filepath.Join(root, "yara-rules-Yara-Rules", "malware_index.yar"), 2000, 20},
	} {
		files, err := RuleFiles(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		r, warns, err := Compile(context.Background(), files, Options{CompileTimeout: 3 * time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		defer r.Close()
		t.Logf("%s: %d files, %d rules, %d files skipped, compiled in %s", tc.name, len(files), r.Len(), len(warns), time.Since(t0).Round(time.Millisecond))
		if r.Len() < tc.minRules || len(warns) > tc.maxSkips {
			t.Errorf("%s: %d rules (want >= %d), %d files skipped (want <= %d)", tc.name, r.Len(), tc.minRules, len(warns), tc.maxSkips)
		}
		for _, w := range warns {
			if !errors.Is(w, ErrCompile) || w.File == "" {
				t.Errorf("%s: warning %v does not name a file or wrap ErrCompile", tc.name, w)
			}
		}
		clean := filepath.Join(root, "eicar", "samples", "clean_control.txt")
		if got, err := r.ScanFile(context.Background(), clean); err != nil || len(got) != 0 {
			t.Errorf("%s: clean control: %v, %v", tc.name, got, err)
		}
	}
}

// TestConcurrentScans runs more scans at once than libyara allows threads
// per rule set; the engine queues them.
func TestConcurrentScans(t *testing.T) {
	dir := t.TempDir()
	r := compileStrict(t, writeFile(t, dir, "t.yar", "rule T { strings: $a = \"needle\" condition: $a }\n"))
	data := append(make([]byte, 1<<20), "needle"...)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			got, err := r.ScanBytes(context.Background(), "b", data)
			if err == nil && len(got) != 1 {
				err = errors.New("no match")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
