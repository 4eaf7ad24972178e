package cleanup

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, every error is an ErrInvalid, and what it
// accepts encodes to records that decode to the same definitions.
func FuzzParse(f *testing.F) {
	f.Add([]byte("- detection: X\n  steps: [{quarantine_file: {path: '{detected}'}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		checkRoundTrip(t, defs)
	})
}

// FuzzDecode: one release per input, records separated by newlines.
func FuzzDecode(f *testing.F) {
	f.Add(`cleanup X {"steps":[{"kill_process":{"image_sha256":"` + hash64 + `"}}]}`)
	f.Fuzz(func(t *testing.T, release string) {
		defs, err := Decode(strings.Split(release, "\n"))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		checkRoundTrip(t, defs)
	})
}

func checkRoundTrip(t *testing.T, defs []Definition) {
	t.Helper()
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid definition %+v: %v", d, err)
		}
	}
	lines, err := Encode(defs)
	if err != nil {
		if strings.Contains(err.Error(), "record limit") {
			return // accepted, but too big for one record: Encode says so
		}
		t.Fatalf("Encode of accepted definitions: %v", err)
	}
	back, err := Decode(lines)
	if err != nil {
		t.Fatalf("Decode(Encode(x)): %v\n%q", err, lines)
	}
	if len(defs) == 0 && len(back) == 0 {
		return
	}
	if !reflect.DeepEqual(back, defs) {
		t.Fatalf("round trip changed the definitions:\n%+v\n%+v", defs, back)
	}
}
