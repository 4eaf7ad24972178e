package cleanup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/agent/quarantine"
)

func newStore(t *testing.T) *quarantine.Store {
	t.Helper()
	s, err := quarantine.Open(filepath.Join(t.TempDir(), "quarantine"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// emptyRoots keeps a test's runner away from the real persistence
// locations whatever steps it runs.
func emptyRoots() Roots {
	return Roots{SystemdUnits: []string{}, Cron: []string{}, Autostart: []string{}}
}

func mustWrite(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func statuses(rep Report) []Status {
	var out []Status
	for _, o := range rep.Steps {
		out = append(out, o.Status)
	}
	return out
}

func equalStatuses(a, b []Status) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuarantineStepAndUndo(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	r := New(Options{Store: store, Roots: emptyRoots()})
	dir := t.TempDir()
	detected := filepath.Join(dir, "dropper")
	extra := filepath.Join(dir, "payload.bin")
	mustWrite(t, detected, "MZ evil", 0o755)
	mustWrite(t, extra, "payload", 0o644)
	def := Definition{Detection: "Mamori.Test.*", Steps: []Step{
		{Action: ActionQuarantine, Path: Placeholder},
		{Action: ActionQuarantine, Path: extra},
		{Action: ActionQuarantine, Path: filepath.Join(dir, "never-existed")},
	}}
	rep, err := r.Run(ctx, def, Target{Path: detected, Signature: "Mamori.Test.Dropper"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Status{StatusDone, StatusDone, StatusSkipped}; !equalStatuses(statuses(rep), want) {
		t.Fatalf("statuses %v, want %v (%+v)", statuses(rep), want, rep)
	}
	for _, p := range []string{detected, extra} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if q := rep.Steps[0].Quarantined; len(q) != 1 || q[0].Path != detected || q[0].ID == "" {
		t.Fatalf("quarantined %+v", q)
	}
	e, err := store.Get(ctx, rep.Steps[0].Quarantined[0].ID)
	if err != nil || e.Reason.Kind != quarantine.ReasonCleanup || e.Reason.Signature != "Mamori.Test.Dropper" {
		t.Fatalf("entry %+v %v", e, err)
	}

	// The report survives the trip to the server and back.
	b, _ := json.Marshal(rep)
	var stored Report
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if err := r.Undo(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if readString(t, detected) != "MZ evil" || readString(t, extra) != "payload" {
		t.Fatal("undo did not restore the files")
	}
	if fi, _ := os.Stat(detected); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o755 {
		t.Errorf("mode after undo %v", fi.Mode())
	}
	if list, _ := store.List(ctx); len(list) != 0 {
		t.Errorf("entries left after undo: %d", len(list))
	}
}

func TestFailingStepDoesNotStopTheRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	prot := filepath.Join(dir, "protected")
	r := New(Options{Store: newStore(t), Roots: emptyRoots(), Protected: []string{prot}})
	mustWrite(t, filepath.Join(prot, "keep"), "system file", 0o644)
	mustWrite(t, filepath.Join(dir, "evil"), "evil", 0o644)
	def := Definition{Detection: "X", Steps: []Step{
		{Action: ActionQuarantine, Path: filepath.Join(prot, "keep")},
		{Action: ActionQuarantine, Path: filepath.Join(dir, "evil")},
		{Action: ActionRemovePersistence, Kind: Service, Name: "EvilSvc"},
	}}
	rep, err := r.Run(ctx, def, Target{Signature: "X"})
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, ErrProtected) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Run: %v", err)
	}
	if want := []Status{StatusFailed, StatusDone, StatusFailed}; !equalStatuses(statuses(rep), want) {
		t.Fatalf("statuses %v, want %v", statuses(rep), want)
	}
	if !rep.Failed() || rep.Steps[0].Error == "" || !errors.Is(rep.Steps[2].Err, ErrUnsupported) {
		t.Fatalf("report %+v", rep)
	}
	if readString(t, filepath.Join(prot, "keep")) != "system file" {
		t.Fatal("protected file touched")
	}
	if _, err := os.Lstat(filepath.Join(dir, "evil")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the step after the failure did not run")
	}
}

func TestProtectedPaths(t *testing.T) {
	dir := t.TempDir()
	prot := filepath.Join(dir, "sys")
	os.MkdirAll(filepath.Join(prot, "sub"), 0o755)
	os.MkdirAll(filepath.Join(dir, "lib64"), 0o755)
	if err := os.Symlink(prot, filepath.Join(dir, "innocent")); err != nil {
		t.Fatal(err)
	}
	store := newStore(t)
	r := New(Options{Store: store, Protected: []string{prot, filepath.Join(dir, "lib*")}})
	exe, _ := os.Executable()
	cases := map[string]bool{
		filepath.Join(prot, "sub", "x"):         true,
		prot:                                    true,
		filepath.Join(dir, "innocent", "x"):     true, // parent is a link into the protected tree
		filepath.Join(dir, "lib64", "libc.so"):  true,
		filepath.Join(dir, "sysx"):              false,
		filepath.Join(dir, "other", "x"):        false,
		exe:                                     true, // the agent's own binary, always
		filepath.Join(store.Dir(), "key"):       true, // the quarantine itself, always
		filepath.Join(dir, "innocent-file.txt"): false,
	}
	for p, want := range cases {
		if _, got := r.isProtected(p); got != want {
			t.Errorf("isProtected(%s) = %v, want %v", p, got, want)
		}
	}

	// The defaults, checked in a dry run so that a broken check could not
	// touch the real files.
	def := New(Options{DryRun: true, Roots: emptyRoots()})
	if runtime.GOOS != "windows" {
		for _, p := range []string{"/etc/passwd", "/etc/shadow", "/usr/bin/env", "/bin/sh", "/lib64/ld-linux-x86-64.so.2", "/usr/lib/systemd/system/ssh.service", "/boot/vmlinuz"} {
			if _, ok := def.isProtected(p); !ok {
				t.Errorf("default protection misses %s", p)
			}
		}
		for _, p := range []string{"/tmp/x", "/usr/local/bin/kworkerd", "/etc/cron.d/evil", "/etc/systemd/system/evil.service", "/etc/passwd-", "/home/u/.config/autostart/x.desktop"} {
			if pat, ok := def.isProtected(p); ok {
				t.Errorf("default protection refuses %s (%s)", p, pat)
			}
		}
		rep, err := def.Run(context.Background(), Definition{Detection: "X", Steps: []Step{{Action: ActionQuarantine, Path: "/etc/passwd"}}}, Target{})
		if !errors.Is(err, ErrProtected) || rep.Steps[0].Status != StatusFailed {
			t.Errorf("quarantining /etc/passwd: %v %+v", err, rep)
		}
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	r := New(Options{Roots: emptyRoots()})
	def := Definition{Detection: "Unix.Trojan.*", Steps: []Step{{Action: ActionQuarantine, Path: Placeholder}}}
	if _, err := r.Run(ctx, def, Target{Path: "/tmp/x", Signature: "Win.Trojan.Y"}); !errors.Is(err, ErrMismatch) {
		t.Errorf("mismatched signature: %v", err)
	}
	if _, err := r.Run(ctx, Definition{Detection: "X"}, Target{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no steps: %v", err)
	}
	rep, err := r.Run(ctx, def, Target{Signature: "Unix.Trojan.Y"})
	if !errors.Is(err, ErrInvalid) || rep.Steps[0].Status != StatusFailed {
		t.Errorf("{detected} without a path: %v", err)
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "f"), "x", 0o644)
	if _, err := r.Run(ctx, def, Target{Path: filepath.Join(dir, "f")}); !errors.Is(err, ErrNoStore) {
		t.Errorf("no store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Errorf("file lost without a store: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	rep, err = New(Options{Store: newStore(t), Roots: emptyRoots()}).Run(cctx, def, Target{Path: filepath.Join(dir, "f")})
	if err != nil || rep.Steps[0].Status != StatusSkipped || !errors.Is(rep.Steps[0].Err, context.Canceled) {
		t.Errorf("cancelled: %v %+v", err, rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Errorf("cancelled run removed the file: %v", err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "evil")
	mustWrite(t, f, "evil", 0o755)
	r := New(Options{Store: store, Roots: emptyRoots(), DryRun: true})
	rep, err := r.Run(ctx, Definition{Detection: "X", Steps: []Step{{Action: ActionQuarantine, Path: Placeholder}}}, Target{Path: f, Signature: "X"})
	if err != nil || rep.Steps[0].Status != StatusPlanned || !strings.Contains(rep.Steps[0].Detail, "would quarantine "+f) {
		t.Fatalf("%v %+v", err, rep)
	}
	if readString(t, f) != "evil" {
		t.Fatal("dry run changed the file")
	}
	if list, _ := store.List(ctx); len(list) != 0 {
		t.Fatal("dry run stored something")
	}
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(rep)
	if !strings.Contains(buf.String(), `"dry_run":true`) {
		t.Errorf("report JSON %s", buf.String())
	}
}
