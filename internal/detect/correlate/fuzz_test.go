package correlate

import (
	"errors"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var sentinels = []error{ErrSyntax, ErrNotCorrelation, ErrMissing, ErrInvalid, ErrUnsupported}

// FuzzParse checks Parse's contract on arbitrary input: errors are
// *ParseError naming the file and wrapping a sentinel; a parsed rule is
// complete, parses again to the same value, is accepted by New, and
// survives a stream of matches with consistent firings.
func FuzzParse(f *testing.F) {
	for _, s := range strings.Split(specFailedLogins, "\n---\n") {
		f.Add([]byte(s))
	}
	_ = fs.WalkDir(Builtin(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(Builtin(), p)
			for _, doc := range strings.Split(string(b), "\n---\n") {
				f.Add([]byte(doc))
			}
		}
		return nil
	})
	f.Add([]byte("title: T\ncorrelation:\n    type: temporal\n    rules: [a, b]\n    group-by: [h]\n    timespan: 1m\n    condition: a and not b\n"))
	f.Add([]byte("title: T\ncorrelation:\n    type: value_sum\n    rules: [a]\n    timespan: 1m\n    condition: {field: n, gt: 1, lte: 3}\n"))
	f.Add([]byte("title: T\ncorrelation:\n    type: event_count\n    rules: [T]\n    timespan: 1s\n    condition: {eq: 0}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse("fuzz.yml", body)
		if err != nil {
			if r != nil {
				t.Fatal("rule and error both returned")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Path != "fuzz.yml" || !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error %q (%T) does not locate the file", err, err)
			}
			wraps := false
			for _, s := range sentinels {
				wraps = wraps || errors.Is(err, s)
			}
			if !wraps {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		if r.Title == "" || len(r.Rules) == 0 || r.Timespan <= 0 || r.Path != "fuzz.yml" {
			t.Fatalf("incomplete rule %+v", r)
		}
		if err := validate(r); err != nil {
			t.Fatalf("Parse accepted what New rejects: %v", err)
		}
		again, err := Parse("fuzz.yml", body)
		if err != nil || !reflect.DeepEqual(r, again) {
			t.Fatalf("second parse differs: %v", err)
		}
		e, errs := New([]*Rule{r}, Options{MaxGroups: 4, MaxEventsPerGroup: 8, MaxEventIDs: 3})
		if len(errs) > 0 {
			// Only a rule referencing itself is refused on its own.
			if len(errs) != 1 || !errors.Is(errs[0], ErrCycle) {
				t.Fatalf("New: %v", errs)
			}
			return
		}
		drive(t, e, r)
	})
}

// drive feeds matches of every referenced rule, in and out of order, and
// checks each firing.
func drive(t *testing.T, e *Engine, r *Rule) {
	observed := 0
	check := func(fs []Firing) {
		for _, f := range fs {
			if f.Rule != r || f.Tenant == "" || f.Count < 1 || f.Count > observed || f.Last.Before(f.First) || len(f.EventIDs) > 3 {
				t.Fatalf("inconsistent firing %+v after %d matches", f, observed)
			}
			if f.Last.Sub(f.First) >= r.Timespan {
				t.Fatalf("firing spans %v, more than the timespan %v", f.Last.Sub(f.First), r.Timespan)
			}
		}
	}
	step := r.Timespan / 7
	if step <= 0 {
		step = 1
	}
	for i := range 60 {
		ref := r.Rules[i%len(r.Rules)]
		at := time.Duration(i) * step
		if i%5 == 4 {
			at -= 3 * step // out of order
		}
		val := strconv.Itoa(i % 6)
		m := Match{Tenant: "t" + strconv.Itoa(i%2), RuleID: ref, RuleName: ref, Time: t0.Add(at), EventID: strconv.Itoa(i),
			Value: func(string) (string, bool) { return val, i%11 != 10 }}
		observed++
		check(e.Observe(m))
	}
	check(e.Tick(t0.Add(100 * r.Timespan)))
	if st := e.Stats(); st.Groups != 0 && st.Groups > 8 {
		t.Fatalf("groups %d exceed MaxGroups per tenant", st.Groups)
	}
}
