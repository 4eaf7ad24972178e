package logship

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type sink struct {
	lines []string
	fail  bool
}

func (k *sink) send(_ context.Context, b []byte) error {
	if k.fail {
		return errors.New("server down")
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k.lines = append(k.lines, l)
	}
	return nil
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func newShipper(t *testing.T, k *sink, o Options) *Shipper {
	t.Helper()
	o.Send = k.send
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range s.fol {
			f.f.Close()
		}
	})
	return s
}

func once(t *testing.T, s *Shipper) {
	t.Helper()
	if err := s.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func expect(t *testing.T, k *sink, want ...string) {
	t.Helper()
	if strings.Join(k.lines, "|") != strings.Join(want, "|") {
		t.Fatalf("shipped %q, want %q", k.lines, want)
	}
}

func TestFollowFailRestart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	state := filepath.Join(dir, "state.json")
	appendTo(t, log, "old 1\nold 2\n")
	k := &sink{}
	s := newShipper(t, k, Options{Paths: []string{filepath.Join(dir, "*.log")}, StateFile: state})
	once(t, s)
	expect(t, k) // history before the agent is not shipped
	appendTo(t, log, "new 1\nnew 2\npart")
	once(t, s)
	expect(t, k, "new 1", "new 2") // the unfinished line waits

	// The server refuses: nothing is committed, nothing lost.
	k.fail = true
	appendTo(t, log, "ial\nnew 3\n")
	if err := s.Once(context.Background()); err == nil {
		t.Fatal("a refused batch was not reported")
	}
	k.fail = false
	once(t, s)
	expect(t, k, "new 1", "new 2", "partial", "new 3")

	// A restarted shipper resumes after the last accepted line.
	appendTo(t, log, "new 4\n")
	k2 := &sink{}
	s2 := newShipper(t, k2, Options{Paths: []string{log}, StateFile: state})
	once(t, s2)
	expect(t, k2, "new 4")
	if st := s.Stats(); st.Lines != 4 || st.SendFails != 1 || st.Batches != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestRotationTruncationAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendTo(t, log, "a1\n")
	k := &sink{}
	s := newShipper(t, k, Options{Paths: []string{filepath.Join(dir, "*.log")}, FromStart: true})
	once(t, s)
	expect(t, k, "a1")

	// Rotation by rename: the writer still appends to the old file for a
	// moment, then a new file starts. Every line arrives.
	appendTo(t, log, "a2\n")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, log+".1", "a3 last before the switch")
	appendTo(t, log, "b1\n")
	once(t, s)
	once(t, s)
	expect(t, k, "a1", "a2", "a3 last before the switch", "b1")
	if st := s.Stats(); st.Rotations != 1 {
		t.Errorf("rotations %d", st.Rotations)
	}

	// Truncated in place (copytruncate): read again from the start.
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, log, "c\n")
	once(t, s)
	expect(t, k, "a1", "a2", "a3 last before the switch", "b1", "c")
	if st := s.Stats(); st.Truncated != 1 {
		t.Errorf("truncations %d", st.Truncated)
	}

	// A file that appears later is picked up.
	appendTo(t, filepath.Join(dir, "other.log"), "d1\n")
	once(t, s)
	expect(t, k, "a1", "a2", "a3 last before the switch", "b1", "c", "d1")
}

func TestLongLinesAreSplitNotDropped(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "x.log")
	appendTo(t, log, strings.Repeat("x", 100)+"\nshort\n"+strings.Repeat("y", 250))
	k := &sink{}
	s := newShipper(t, k, Options{Paths: []string{log}, FromStart: true, MaxLine: 40, BatchBytes: 64})
	for range 10 {
		once(t, s)
	}
	var xs, ys int
	for i, l := range k.lines {
		if len(l) > 40 {
			t.Fatalf("line %d is %d bytes", i, len(l))
		}
		xs += strings.Count(l, "x")
		ys += strings.Count(l, "y")
	}
	// Every byte of the long line arrives; of the unfinished one, all but
	// a tail shorter than MaxLine (it waits for its newline).
	if xs != 100 || !slices.Contains(k.lines, "short") || ys < 250-39 || ys > 250 {
		t.Fatalf("x %d, y %d, lines %q", xs, ys, k.lines)
	}
	if st := s.Stats(); st.Cut < 2+6 {
		t.Errorf("split lines not counted: %+v", st)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Options{Send: (&sink{}).send}); !errors.Is(err, ErrNoPaths) {
		t.Errorf("no paths: %v", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "state.json")
	_ = os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := New(Options{Paths: []string{"x"}, StateFile: bad, Send: (&sink{}).send}); err == nil {
		t.Error("corrupt state accepted")
	}
}
