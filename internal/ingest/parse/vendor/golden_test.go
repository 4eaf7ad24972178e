package vendor

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden.json and the FuzzParse seed corpus")

// Golden files: testdata/golden/<format>.txt holds one input per line,
// "app<TAB>msg" (no tab: app is "", a file line); blank lines and lines
// starting with "#" are skipped. <format>.golden.json holds what Parse made
// of each.

type goldenResult struct {
	App       string            `json:"app,omitempty"`
	Msg       string            `json:"msg"`
	Format    string            `json:"format"`
	OK        bool              `json:"ok"`
	Timestamp string            `json:"timestamp,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
}

type goldenInput struct{ app, msg string }

func readGoldenInputs(t testing.TB, path string) []goldenInput {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in []goldenInput
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		app, msg, ok := strings.Cut(line, "\t")
		if !ok {
			app, msg = "", line
		}
		in = append(in, goldenInput{app, msg})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			var results []goldenResult
			for _, in := range readGoldenInputs(t, path) {
				var e event.Event
				format, ok := Parse(in.app, in.msg, &e)
				r := goldenResult{App: in.app, Msg: in.msg, Format: format, OK: ok}
				if !e.Timestamp.IsZero() {
					r.Timestamp = e.Timestamp.UTC().Format(time.RFC3339Nano)
				}
				if len(e.Fields) > 0 {
					r.Fields = make(map[string]string, len(e.Fields))
					for _, f := range e.Fields {
						r.Fields[f.Name] = f.Value
					}
				}
				checkSorted(t, &e)
				results = append(results, r)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(results); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(path, ".txt") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(want, buf.Bytes()) {
				t.Errorf("%s differs from Parse output; run go test -run TestGolden -update and review the diff.\n%s", golden, firstDiff(string(want), buf.String()))
			}
		})
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("length %d vs %d lines", len(al), len(bl))
}

// TestGoldenFormats checks each golden input file's lines parse as the
// format the file is named for, except those after a "# negative" line.
func TestGoldenFormats(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.txt")
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		negative := false
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "# negative") {
				negative = true
				continue
			}
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			app, msg, ok := strings.Cut(line, "\t")
			if !ok {
				app, msg = "", line
			}
			var e event.Event
			format, matched := Parse(app, msg, &e)
			switch {
			case negative && matched:
				t.Errorf("%s: negative line matched %s: %q", name, format, line)
			case !negative && format != name:
				t.Errorf("%s: line parsed as %q (ok=%v): %q", name, format, matched, line)
			}
		}
	}
}

// TestWriteFuzzCorpus writes the table and golden inputs as FuzzParse seeds
// (only with -update).
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("only with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var inputs []goldenInput
	for _, cs := range allCases {
		for _, c := range cs {
			inputs = append(inputs, goldenInput{c.app, c.msg})
		}
	}
	files, _ := filepath.Glob("testdata/golden/*.txt")
	for _, path := range files {
		inputs = append(inputs, readGoldenInputs(t, path)...)
	}
	for _, in := range inputs {
		body := "go test fuzz v1\nstring(" + strconv.Quote(in.app) + ")\nstring(" + strconv.Quote(in.msg) + ")\n"
		sum := sha256.Sum256([]byte(body))
		name := filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8]))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
