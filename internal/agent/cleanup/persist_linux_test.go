package cleanup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/agent/quarantine"
)

type fakeSystemctl struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeSystemctl) run(_ context.Context, args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.Join(args, " "))
	return nil
}

func TestRemoveSystemdUnitAndUndo(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	sys := filepath.Join(root, "etc/systemd/system")
	user := filepath.Join(root, "home/u/.config/systemd/user")
	mustWrite(t, filepath.Join(sys, "evil.service"), "[Service]\nExecStart=/tmp/evil\n", 0o644)
	mustWrite(t, filepath.Join(sys, "evil.service.d/override.conf"), "[Service]\nRestart=always\n", 0o644)
	mustWrite(t, filepath.Join(sys, "good.service"), "[Service]\nExecStart=/bin/true\n", 0o644)
	os.MkdirAll(filepath.Join(sys, "multi-user.target.wants"), 0o755)
	os.Symlink("../evil.service", filepath.Join(sys, "multi-user.target.wants/evil.service"))
	os.Symlink("../good.service", filepath.Join(sys, "multi-user.target.wants/good.service"))
	// A user unit that is only a link to a file elsewhere: the link goes,
	// the file it points to is not touched through it.
	elsewhere := filepath.Join(root, "var/tmp/evil.service")
	mustWrite(t, elsewhere, "[Service]\n", 0o644)
	os.MkdirAll(user, 0o755)
	os.Symlink(elsewhere, filepath.Join(user, "evil.service"))

	store := newStore(t)
	sc := &fakeSystemctl{}
	r := New(Options{Store: store, Systemctl: sc.run, Roots: Roots{
		SystemdUnits: []string{sys, filepath.Join(root, "home/*/.config/systemd/user"), filepath.Join(root, "missing")},
		Cron:         []string{}, Autostart: []string{},
	}})
	def := Definition{Detection: "X", Steps: []Step{{Action: ActionRemovePersistence, Kind: SystemdUnit, Name: "evil.service"}}}
	rep, err := r.Run(ctx, def, Target{Signature: "X"})
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	out := rep.Steps[0]
	if out.Status != StatusDone || len(out.Quarantined) != 2 || len(out.Unlinked) != 2 {
		t.Fatalf("outcome %+v", out)
	}
	for _, p := range []string{"evil.service", "evil.service.d/override.conf", "multi-user.target.wants/evil.service"} {
		if _, err := os.Lstat(filepath.Join(sys, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(user, "evil.service")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("user unit link still there")
	}
	if readString(t, elsewhere) != "[Service]\n" {
		t.Errorf("link target touched")
	}
	if _, err := os.Lstat(filepath.Join(sys, "multi-user.target.wants/good.service")); err != nil {
		t.Errorf("another unit's link removed: %v", err)
	}
	if want := []string{"stop evil.service", "daemon-reload"}; !reflect.DeepEqual(sc.calls, want) {
		t.Errorf("systemctl calls %v, want %v", sc.calls, want)
	}

	if err := r.Undo(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(sys, "evil.service")) != "[Service]\nExecStart=/tmp/evil\n" {
		t.Error("unit not restored")
	}
	if readString(t, filepath.Join(sys, "evil.service.d/override.conf")) != "[Service]\nRestart=always\n" {
		t.Error("drop-in not restored")
	}
	if l, err := os.Readlink(filepath.Join(sys, "multi-user.target.wants/evil.service")); err != nil || l != "../evil.service" {
		t.Errorf("wants link not restored: %q %v", l, err)
	}
	if l, err := os.Readlink(filepath.Join(user, "evil.service")); err != nil || l != elsewhere {
		t.Errorf("user link not restored: %q %v", l, err)
	}
	if sc.calls[len(sc.calls)-1] != "daemon-reload" || len(sc.calls) != 3 {
		t.Errorf("undo systemctl calls %v", sc.calls)
	}

	// Absent unit: skipped, systemctl untouched.
	sc.calls = nil
	rep, err = r.Run(ctx, Definition{Detection: "X", Steps: []Step{{Action: ActionRemovePersistence, Kind: SystemdUnit, Name: "absent.service"}}}, Target{})
	if err != nil || rep.Steps[0].Status != StatusSkipped || len(sc.calls) != 0 {
		t.Errorf("absent unit: %v %+v %v", err, rep, sc.calls)
	}
}

func TestRemoveCronLinesAndUndo(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	crontab := filepath.Join(root, "etc/crontab")
	cronD := filepath.Join(root, "etc/cron.d")
	spool := filepath.Join(root, "var/spool/cron/crontabs")
	files := map[string]string{
		crontab:                         "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
		filepath.Join(cronD, "evil"):    "* * * * * root /tmp/evil --daemon\n",
		filepath.Join(cronD, "mixed"):   "# m h dom mon dow user command\n*/5 * * * * root /tmp/evil\r\n0 3 * * * root /usr/sbin/logrotate\n@reboot root sh -c '/tmp/evil'", // no final newline
		filepath.Join(cronD, ".hidden"): "* * * * * root /tmp/evil\n",
		filepath.Join(spool, "alice"):   "0 * * * * /tmp/evil\n30 * * * * /home/alice/backup.sh\n",
	}
	for p, c := range files {
		mustWrite(t, p, c, 0o644)
	}
	os.Chmod(filepath.Join(spool, "alice"), 0o600)
	root0 := os.Geteuid() == 0 // only root can give a file away
	if root0 {
		if err := os.Chown(filepath.Join(spool, "alice"), 1234, 2345); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(crontab, old, old)

	store := newStore(t)
	r := New(Options{Store: store, Roots: Roots{SystemdUnits: []string{}, Autostart: []string{}, Cron: []string{crontab, cronD, spool}}})
	def := Definition{Detection: "X", Steps: []Step{{Action: ActionRemovePersistence, Kind: Cron, Match: "/tmp/evil"}}}
	rep, err := r.Run(ctx, def, Target{})
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	out := rep.Steps[0]
	if out.Status != StatusDone || len(out.Quarantined) != 3 {
		t.Fatalf("outcome %+v", out)
	}
	want := map[string]string{
		crontab:                         files[crontab],
		filepath.Join(cronD, "evil"):    "",
		filepath.Join(cronD, "mixed"):   "# m h dom mon dow user command\n0 3 * * * root /usr/sbin/logrotate\n",
		filepath.Join(cronD, ".hidden"): files[filepath.Join(cronD, ".hidden")], // cron ignores it; so do we
		filepath.Join(spool, "alice"):   "30 * * * * /home/alice/backup.sh\n",
	}
	for p, c := range want {
		if got := readString(t, p); got != c {
			t.Errorf("%s = %q, want %q", p, got, c)
		}
	}
	if fi, _ := os.Stat(crontab); !fi.ModTime().Equal(old) {
		t.Error("a file without matching lines was rewritten")
	}
	fi, _ := os.Stat(filepath.Join(spool, "alice"))
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || root0 && (st.Uid != 1234 || st.Gid != 2345) {
		t.Errorf("rewritten crontab mode %v owner %d:%d", fi.Mode(), st.Uid, st.Gid)
	}
	if tmps, _ := filepath.Glob(filepath.Join(cronD, ".*.mamori-*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	if err := r.Undo(ctx, rep); err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		if got := readString(t, p); got != c {
			t.Errorf("after undo %s = %q, want %q", p, got, c)
		}
	}

	// A file edited after the cleanup is not clobbered by Undo.
	rep, err = r.Run(ctx, def, Target{})
	if err != nil {
		t.Fatal(err)
	}
	mixed := filepath.Join(cronD, "mixed")
	mustWrite(t, mixed, "# the admin's new line\n", 0o644)
	if err := r.Undo(ctx, rep); !errors.Is(err, quarantine.ErrExists) {
		t.Fatalf("undo over an edited file: %v", err)
	}
	if readString(t, mixed) != "# the admin's new line\n" {
		t.Fatal("undo clobbered an edited cron file")
	}
	if readString(t, filepath.Join(cronD, "evil")) != files[filepath.Join(cronD, "evil")] {
		t.Error("undo stopped at the first refusal instead of restoring the rest")
	}
}

func TestRemoveAutostartAndUndo(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a := filepath.Join(root, "home/alice/.config/autostart/evil.desktop")
	b := filepath.Join(root, "home/bob/.config/autostart/evil.desktop")
	keep := filepath.Join(root, "home/bob/.config/autostart/keep.desktop")
	for _, p := range []string{a, b, keep} {
		mustWrite(t, p, "[Desktop Entry]\nExec=/tmp/evil\n", 0o644)
	}
	store := newStore(t)
	r := New(Options{Store: store, Roots: Roots{SystemdUnits: []string{}, Cron: []string{},
		Autostart: []string{filepath.Join(root, "etc/xdg/autostart"), filepath.Join(root, "home/*/.config/autostart")}}})
	def := Definition{Detection: "X", Steps: []Step{{Action: ActionRemovePersistence, Kind: Autostart, Name: "evil.desktop"}}}

	dry, err := New(Options{Store: store, DryRun: true, Roots: r.o.Roots}).Run(ctx, def, Target{})
	if err != nil || dry.Steps[0].Status != StatusPlanned || strings.Count(dry.Steps[0].Detail, "would quarantine") != 2 {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatal("dry run removed a file")
	}

	rep, err := r.Run(ctx, def, Target{})
	if err != nil || rep.Steps[0].Status != StatusDone || len(rep.Steps[0].Quarantined) != 2 {
		t.Fatalf("%v %+v", err, rep)
	}
	for _, p := range []string{a, b} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Error("another entry removed")
	}
	os.RemoveAll(filepath.Join(root, "home/alice/.config")) // Undo recreates it
	if err := r.Undo(ctx, rep); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if readString(t, p) != "[Desktop Entry]\nExec=/tmp/evil\n" {
			t.Errorf("%s not restored", p)
		}
	}
}

func TestPersistenceUnderProtectedRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/systemd/system")
	etc := filepath.Join(root, "etc/systemd/system")
	mustWrite(t, filepath.Join(units, "ssh.service"), "[Service]\n", 0o644)
	link := filepath.Join(etc, "multi-user.target.wants/ssh.service")
	os.MkdirAll(filepath.Dir(link), 0o755)
	os.Symlink(filepath.Join(units, "ssh.service"), link)
	sc := &fakeSystemctl{}
	r := New(Options{Store: newStore(t), Protected: []string{filepath.Join(root, "usr/lib*")}, Systemctl: sc.run,
		Roots: Roots{SystemdUnits: []string{etc, units}, Cron: []string{}, Autostart: []string{}}})
	rep, err := r.Run(ctx, Definition{Detection: "X", Steps: []Step{{Action: ActionRemovePersistence, Kind: SystemdUnit, Name: "ssh.service"}}}, Target{})
	if !errors.Is(err, ErrProtected) || rep.Steps[0].Status != StatusFailed {
		t.Fatalf("%v %+v", err, rep)
	}
	if readString(t, filepath.Join(units, "ssh.service")) != "[Service]\n" {
		t.Fatal("protected unit touched")
	}
	if _, err := os.Readlink(link); err != nil {
		t.Fatal("the enablement link of a protected unit was removed")
	}
	if len(sc.calls) != 0 {
		t.Fatalf("a protected unit was stopped: %v", sc.calls)
	}
}
