package pattern

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// compileRecs compiles records given as canonical lines and fails on any
// warning.
func compileRecs(t testing.TB, lines ...string) *Set {
	t.Helper()
	var recs []Record
	for _, l := range lines {
		r, err := ParseRecord(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, r)
	}
	set, warns, err := Compile(recs)
	if err != nil || len(warns) > 0 {
		t.Fatalf("compile: %v %v", err, warns)
	}
	return set
}

// detect scans data and returns "container:signature@offset" strings,
// sorted.
func detect(t testing.TB, set *Set, data []byte) []string {
	t.Helper()
	sc := NewScanner(set, Limits{})
	sc.repanic = true
	dets, err := sc.ScanBytes(context.Background(), "t", data)
	if err != nil {
		t.Fatal(err)
	}
	return detStrings(dets)
}

func detStrings(dets []Detection) []string {
	out := make([]string, 0, len(dets))
	for _, d := range dets {
		s := d.Signature
		if d.Container != "" {
			s = d.Container + ":" + s
		}
		if d.Offset >= 0 {
			s += "@" + strconv.FormatInt(d.Offset, 10)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func names(dets []string) string { return strings.Join(dets, ",") }

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
