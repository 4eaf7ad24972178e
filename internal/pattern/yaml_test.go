package pattern

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const docExample = `
- name: Local.Eicar.Hash
  hashes:
    - 44d88612fea8a8f36de82e1278abb02f:68
    - 3395856CE81F2B7382DEE72602F798B642F14140
- name: Local.Eicar.Body
  body: "58354f21 5025 4041 50??"
  offset: "0"
  target: pe
- name: Local.Eicar.Logical
  logical: "0&1"
  subsigs: ["45494341522d", "0:414e5449::i"]
  conditions: "FileSize:0-4096"
- name: Local.Eicar.Clean
  cleanup: "quarantine"
`

func TestYAMLExample(t *testing.T) {
	recs, warns, err := Parse(strings.NewReader(docExample), "doc.patterns.yaml", FormatYAML)
	if err != nil || len(warns) > 0 {
		t.Fatalf("%v %v", err, warns)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.String())
	}
	want := []string{
		"hash Local.Eicar.Hash 44d88612fea8a8f36de82e1278abb02f:68",
		"hash Local.Eicar.Hash 3395856ce81f2b7382dee72602f798b642f14140:*",
		"body Local.Eicar.Body 1:0:58354f215025404150??",
		"logical Local.Eicar.Logical Target:0,FileSize:0-4096;0&1;45494341522d;0:414e5449::i",
		"cleanup Local.Eicar.Clean quarantine",
	}
	if !slices.Equal(got, want) {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	if recs[2].Line != 6 || recs[2].File != "doc.patterns.yaml" {
		t.Errorf("location %s:%d", recs[2].File, recs[2].Line)
	}
}

func TestYAMLErrors(t *testing.T) {
	in := `
- name: Good
  body: "41424344"
- name: UnknownKey
  bodyy: "41424344"
- name: BadHex
  body: "4142zz"
- name: NoContent
- name: Offset.Without.Body
  hashes: [44d88612fea8a8f36de82e1278abb02f]
  offset: "0"
- name: PCRE
  logical: "0"
  subsigs: ["41/x/"]
- "not a mapping"
- name: Good2
  hashes: [44d88612fea8a8f36de82e1278abb02f:68]
`
	recs, warns, err := Parse(strings.NewReader(in), "e.yaml", FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Name != "Good" || recs[1].Name != "Good2" {
		t.Errorf("records: %v", recs)
	}
	wantLines := []int{4, 6, 8, 9, 12, 15}
	wantErr := []error{ErrSyntax, ErrSyntax, ErrSyntax, ErrSyntax, ErrUnsupported, ErrSyntax}
	if len(warns) != len(wantLines) {
		t.Fatalf("warnings: %v", warns)
	}
	for i, w := range warns {
		if w.Line != wantLines[i] || !errors.Is(w, wantErr[i]) {
			t.Errorf("warning %d: %v (line %d), want line %d %v", i, w, w.Line, wantLines[i], wantErr[i])
		}
	}
	for _, bad := range []string{"{not: [valid", "name: x"} {
		_, warns, _ := Parse(strings.NewReader(bad), "b.yaml", FormatYAML)
		if len(warns) != 1 || !errors.Is(warns[0], ErrSyntax) {
			t.Errorf("%q: %v", bad, warns)
		}
	}
}

// Records -> YAML -> records is the identity (on canonical, sorted
// records), for every kind.
func TestYAMLRoundTrip(t *testing.T) {
	recs := genRecords(300, 300, 5)
	extra := []string{
		"logical L1 Target:1,FileSize:10-20,EntryPoint:0-100,NumberOfSections:1-3;(0|1)>2,2;4142;EP+3:4344::aw",
		"logical L2 Target:0;0&(1|2=0);4142::f;0:4344;EOF-10,4:4546",
		"body B1 1:S2+10,4:4142??43",
		"body B2 6:EOF-5:4142*4344",
		"cleanup C1 remove then reboot",
		"hash H 44d88612fea8a8f36de82e1278abb02f:*",
	}
	for _, l := range extra {
		r, err := ParseRecord(l)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	// Generated records are not canonical yet: canonicalise via YAML once.
	var buf bytes.Buffer
	if err := WriteYAML(&buf, SortRecords(recs)); err != nil {
		t.Fatal(err)
	}
	first, warns, _ := Parse(bytes.NewReader(buf.Bytes()), "r.yaml", FormatYAML)
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns[0])
	}
	first = SortRecords(first)
	buf.Reset()
	if err := WriteYAML(&buf, first); err != nil {
		t.Fatal(err)
	}
	second, warns, _ := Parse(bytes.NewReader(buf.Bytes()), "r.yaml", FormatYAML)
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns[0])
	}
	second = SortRecords(second)
	if len(first) != len(recs)-countInvalid(t, recs) || len(second) != len(first) {
		t.Fatalf("lost records: %d -> %d -> %d", len(recs), len(first), len(second))
	}
	for i := range first {
		if first[i].String() != second[i].String() {
			t.Fatalf("record %d: %q != %q", i, first[i], second[i])
		}
	}
	// And the YAML file loads through Load like any other signature file.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.patterns.yaml"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("not: signatures"), 0o600)
	set, warns, err := Load(dir)
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v %v", err, warns)
	}
	if st := set.Stats(); st.Hash+st.Body+st.Logical+st.Cleanup != len(second) {
		t.Errorf("stats %+v for %d records", st, len(second))
	}
}

func countInvalid(t *testing.T, recs []Record) int {
	_, warns, err := Compile(recs)
	if err != nil {
		t.Fatal(err)
	}
	return len(warns)
}
