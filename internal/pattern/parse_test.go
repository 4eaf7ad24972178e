package pattern

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseHexSig(t *testing.T) {
	tests := []struct {
		in, canon string
		err       error
	}{
		{"DEADbeef", "deadbeef", nil},
		{"aa??bb", "aa??bb", nil},
		{"a??b", "a??b", nil},
		{"aa*bb", "aa*bb", nil},
		{"aa{4}bb{2-5}cc{-3}dd{7-}ee", "aa{4}bb{2-5}cc{-3}dd{7-}ee", nil},
		{"aa{0-3}bb", "aa{-3}bb", nil},
		{"aa{3-3}bb", "aa{3}bb", nil},
		{"aa[1-4]bb", "aa{1-4}bb", nil},
		{"(AA|bb|c?)dd", "(aa|bb|c?)dd", nil},
		{"(aabb|cc)dd", "(aabb|cc)dd", nil},
		{"!(aa|bb)cc", "!(aa|bb)cc", nil},
		{"", "", ErrSyntax},
		{"aab", "", ErrSyntax},
		{"aazz", "", ErrSyntax},
		{"aa{3", "", ErrSyntax},
		{"aa{5-2}", "", ErrSyntax},
		{"aa{x}", "", ErrSyntax},
		{"aa{99999999999}bb", "", ErrSyntax},
		{"aa[-4]bb", "", ErrSyntax},
		{"aa[4-]bb", "", ErrSyntax},
		{"(aa|)bb", "", ErrSyntax},
		{"(aa|bb", "", ErrSyntax},
		{"((aa))", "", ErrSyntax},
		{"!aa", "", ErrSyntax},
		{"!(aa|bbcc)", "", ErrSyntax},
		{"(B)aabb", "", ErrUnsupported},
		{"aa(L)", "", ErrUnsupported},
		{"(aa{2}|bb)", "", ErrUnsupported},
	}
	for _, tc := range tests {
		toks, err := parseHexSig(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := formatHexSig(toks); got != tc.canon {
			t.Errorf("%q: canonical %q, want %q", tc.in, got, tc.canon)
		}
		toks2, err := parseHexSig(formatHexSig(toks))
		if err != nil || formatHexSig(toks2) != tc.canon {
			t.Errorf("%q: canonical form does not round-trip: %v", tc.in, err)
		}
	}
}

func TestParseOffset(t *testing.T) {
	tests := []struct {
		in, canon string
		err       error
	}{
		{"*", "*", nil},
		{"0", "0", nil},
		{"12,0", "12", nil},
		{"12,30", "12,30", nil},
		{"EOF-10", "EOF-10", nil},
		{"EOF-10,4", "EOF-10,4", nil},
		{"EP+5", "EP+5", nil},
		{"EP-5,10", "EP-5,10", nil},
		{"S2+100", "S2+100", nil},
		{"SL+0,8", "SL+0,8", nil},
		{"SE1", "", ErrUnsupported},
		{"VI", "", ErrUnsupported},
		{"$1$", "", ErrUnsupported},
		{"", "", ErrSyntax},
		{"-1", "", ErrSyntax},
		{"EOF+3", "", ErrSyntax},
		{"EP*3", "", ErrSyntax},
		{"S+3", "", ErrSyntax},
		{"S100+3", "", ErrSyntax},
		{"4,", "", ErrSyntax},
		{"99999999999", "", ErrSyntax},
	}
	for _, tc := range tests {
		o, err := parseOffset(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || o.String() != tc.canon {
			t.Errorf("%q: got %q, %v; want %q", tc.in, o, err, tc.canon)
		}
	}
}

func TestParseLines(t *testing.T) {
	tests := []struct {
		format Format
		line   string
		rec    string // canonical record, "" when rejected
		err    error
	}{
		// Hashes: by length, either extension, optional flevel.
		{FormatHDB, "44D88612FEA8A8F36DE82E1278ABB02F:68:Eicar", "hash Eicar 44d88612fea8a8f36de82e1278abb02f:68", nil},
		{FormatHDB, "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544:ClamAV-Test-File", "hash ClamAV-Test-File 71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495:544", nil},
		{FormatHSB, "3395856ce81f2b7382dee72602f798b642f14140:*:AnySize:73", "hash AnySize 3395856ce81f2b7382dee72602f798b642f14140:*", nil},
		{FormatHSB, "44d88612fea8a8f36de82e1278abb02f:68:Md5InHsb", "hash Md5InHsb 44d88612fea8a8f36de82e1278abb02f:68", nil},
		{FormatHSB, "3395856ce81f2b7382dee72602f798b642f14140:*:Future:999", "", ErrUnsupported},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02:68:Short", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02g:68:NotHex", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02f:-1:NegSize", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02f:68", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02f:68:a:b:c", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02f:68:", "", ErrSyntax},
		{FormatHDB, "44d88612fea8a8f36de82e1278abb02f:68:x:abc", "", ErrSyntax},

		// Body signatures.
		{FormatNDB, "N:0:*:58354F21", "body N 0:*:58354f21", nil},
		{FormatNDB, "N:1:EP+0,10:58354f21:51:255", "body N 1:EP+0,10:58354f21", nil},
		{FormatNDB, "N:0:0:58354f21:51", "body N 0:0:58354f21", nil},
		{FormatNDB, "N:0:0:58354f21::255", "body N 0:0:58354f21", nil},
		{FormatNDB, "N:0:0:58354f21:999", "", ErrUnsupported},
		{FormatNDB, "N:0:0:58354f21:1:20", "", ErrUnsupported},
		{FormatNDB, "N:3:*:58354f21", "", ErrUnsupported},
		{FormatNDB, "N:77:*:58354f21", "", ErrSyntax},
		{FormatNDB, "N:0:EP+1:58354f21", "", ErrSyntax},
		{FormatNDB, "N:6:EP+1:58354f21", "", ErrUnsupported},
		{FormatNDB, "N:1:SE1:58354f21", "", ErrUnsupported},
		{FormatNDB, "N:0:EOF-300000:58354f21", "", ErrLimit},
		{FormatNDB, "N:0:*:58??21", "", ErrUnsupported}, // no 2 fixed bytes in a row
		{FormatNDB, "N:0:*:5835*21", "", ErrUnsupported},
		{FormatNDB, "N:0:*:*5835", "", ErrSyntax},
		{FormatNDB, "N:0:*:5835{70000}21aa", "", ErrLimit},
		{FormatNDB, "N:0:*", "", ErrSyntax},
		{FormatNDB, "Bad Name:0:*:5835", "", ErrSyntax},

		// Logical signatures.
		{FormatLDB, "L;Engine:51-255,Target:0;0&1;4142;0:4344::i", "logical L Target:0;0&1;4142;0:4344::i", nil},
		{FormatLDB, "L;Target:1,FileSize:10-20;(0|1)>2,2;4142;4344::wa", "logical L Target:1,FileSize:10-20;(0|1)>2,2;4142;4344::aw", nil},
		{FormatLDB, "L;Target:0;0&1|2;4142;4344;4546", "logical L Target:0;0&(1|2);4142;4344;4546", nil},
		{FormatLDB, "L;Target:0;(0&1|2);4142;4344;4546", "logical L Target:0;(0&1)|2;4142;4344;4546", nil},
		{FormatLDB, "L;Target:0;0&1=0;4142;4344", "logical L Target:0;0&1=0;4142;4344", nil},
		{FormatLDB, "L;Target:0;0;4142/abc/", "", ErrUnsupported},
		{FormatLDB, "L;Target:0;0;0(>>5#hb2#=123)", "", ErrUnsupported},
		{FormatLDB, "L;Target:1,IconGroup1:X;0;4142", "", ErrUnsupported},
		{FormatLDB, "L;Engine:250-255,Target:0;0;4142", "", ErrUnsupported},
		{FormatLDB, "L;Target:0;0=0;4142", "", ErrUnsupported}, // alerts on everything
		{FormatLDB, "L;Target:0;0&2;4142;4344", "", ErrSyntax},
		{FormatLDB, "L;Target:0;0&;4142", "", ErrSyntax},
		{FormatLDB, "L;Target:0;(0|1;4142;4344", "", ErrSyntax},
		{FormatLDB, "L;Target:0;0>2,1;4142", "", ErrSyntax},
		{FormatLDB, "L;Bogus:1;0;4142", "", ErrSyntax},
		{FormatLDB, "L;FileSize:1-2;0;4142", "", ErrSyntax},
		{FormatLDB, "L;Target:0;0;4142::z", "", ErrSyntax},
		{FormatLDB, "L;Target:0;0", "", ErrSyntax},
	}
	for _, tc := range tests {
		recs, warns, err := Parse(strings.NewReader(tc.line+"\n"), "t."+string(tc.format), tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if tc.rec == "" {
			if len(recs) != 0 || len(warns) != 1 || !errors.Is(warns[0], tc.err) {
				t.Errorf("%q: got %v %v, want a %v warning", tc.line, recs, warns, tc.err)
			} else if warns[0].Line != 1 || warns[0].File != "t."+string(tc.format) {
				t.Errorf("%q: warning location %s:%d", tc.line, warns[0].File, warns[0].Line)
			}
			continue
		}
		if len(warns) != 0 || len(recs) != 1 {
			t.Errorf("%q: got %v %v", tc.line, recs, warns)
			continue
		}
		if recs[0].String() != tc.rec {
			t.Errorf("%q:\n got %q\nwant %q", tc.line, recs[0].String(), tc.rec)
		}
		// The canonical record compiles and re-parses unchanged.
		r2, err := ParseRecord(recs[0].String())
		if err != nil || r2.String() != tc.rec {
			t.Errorf("%q: record does not round-trip: %v", tc.line, err)
		}
		if _, w, err := Compile([]Record{r2}); err != nil || len(w) > 0 {
			t.Errorf("%q: canonical record does not compile: %v %v", tc.line, err, w)
		}
	}
}

func TestParseFileKeepsGoing(t *testing.T) {
	in := "\ufeff# comment\n\n" +
		"Good1:0:*:41424344\r\n" +
		"Broken:0:*:4142zz\n" +
		"Good2:0:0:45464748\n" +
		strings.Repeat("x", maxLineLen+10) + "\n" +
		"Good3:0:*:494a4b4c" // no final newline
	recs, warns, err := Parse(strings.NewReader(in), "mixed.ndb", FormatNDB)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Name+"@"+strconv.Itoa(r.Line))
	}
	if strings.Join(got, " ") != "Good1@3 Good2@5 Good3@7" {
		t.Errorf("records: %v", got)
	}
	if len(warns) != 2 || warns[0].Line != 4 || !errors.Is(warns[0], ErrSyntax) || warns[0].Name != "Broken" ||
		warns[1].Line != 6 || !errors.Is(warns[1], ErrLimit) {
		t.Errorf("warnings: %v", warns)
	}
	if !strings.Contains(warns[0].Error(), "mixed.ndb:4: Broken:") {
		t.Errorf("warning text %q", warns[0].Error())
	}
}

func TestRecords(t *testing.T) {
	for _, bad := range []string{"", "hash", "hash x", "nope x y", "hash bad\x01name d", "hash x \x00"} {
		if _, err := ParseRecord(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	recs := []Record{
		{Kind: KindLogical, Name: "b", Data: "x"},
		{Kind: KindHash, Name: "b", Data: "2"},
		{Kind: KindHash, Name: "a", Data: "9", File: "f1"},
		{Kind: KindHash, Name: "b", Data: "1"},
		{Kind: KindHash, Name: "a", Data: "9", File: "f2"},
		{Kind: KindBody, Name: "z", Data: "0"},
	}
	var got []string
	for _, r := range SortRecords(recs) {
		got = append(got, r.String()+"|"+r.File)
	}
	want := "body z 0| hash a 9|f1 hash b 1| hash b 2| logical b x|"
	if strings.Join(got, " ") != want {
		t.Errorf("sorted:\n got %q\nwant %q", strings.Join(got, " "), want)
	}
	// Cleanup records are carried, unknown kinds rejected.
	set, warns, err := Compile([]Record{{Kind: KindCleanup, Name: "c", Data: "delete file"}, {Kind: "other", Name: "o", Data: "x"}})
	if err != nil || len(warns) != 1 || set.Stats().Cleanup != 1 || set.Stats().Skipped != 1 {
		t.Errorf("cleanup: %+v %v %v", set.Stats(), warns, err)
	}
}
