package cleanup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// uniqueSleep copies sleep(1) to dir with random bytes appended — the ELF
// loader ignores them — so its image hash belongs to this test alone, and
// starts it.
func uniqueSleep(t *testing.T, dir, name string) (*exec.Cmd, string) {
	t.Helper()
	src, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep(1) is needed to test killing by image hash: %v", err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, 64)
	rand.Read(tail)
	b = append(b, tail...)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	var cmd *exec.Cmd
	for i := 0; ; i++ {
		cmd = exec.Command(path, "300")
		err = cmd.Start()
		// A fork elsewhere in this process may briefly hold the file open
		// for writing (golang.org/issue/22315).
		if err == nil || !errors.Is(err, syscall.ETXTBSY) || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, hex.EncodeToString(sum[:])
}

// waitKilled waits for cmd and reports whether SIGKILL ended it.
func waitKilled(t *testing.T, cmd *exec.Cmd) bool {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		return ws.Signaled() && ws.Signal() == syscall.SIGKILL
	case <-time.After(10 * time.Second):
		return false
	}
}

func alive(pid int) bool {
	// A zombie still answers kill(0); its state in /proc tells.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func killDef(sum string) Definition {
	return Definition{Detection: "Mamori.Test.Dropper", Steps: []Step{{Action: ActionKill, ImageSHA256: sum}}}
}

func TestKillProcessByImageHash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	evil1, sum := uniqueSleep(t, dir, "evil")
	// The same image under a second name and process: both must die.
	b, _ := os.ReadFile(filepath.Join(dir, "evil"))
	os.WriteFile(filepath.Join(dir, "evil-copy"), b, 0o755)
	evil2 := exec.Command(filepath.Join(dir, "evil-copy"), "300")
	if err := evil2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { evil2.Process.Kill(); evil2.Wait() })
	bystander, otherSum := uniqueSleep(t, dir, "bystander")
	if otherSum == sum {
		t.Fatal("copies share a hash")
	}

	// A dry run names them and kills nothing.
	rep, err := New(Options{DryRun: true, Roots: emptyRoots()}).Run(ctx, killDef(sum), Target{Signature: "Mamori.Test.Dropper"})
	if err != nil || rep.Steps[0].Status != StatusPlanned || !strings.Contains(rep.Steps[0].Detail, "would kill pid "+strconv.Itoa(evil1.Process.Pid)) {
		t.Fatalf("dry run: %v %+v", err, rep)
	}
	time.Sleep(50 * time.Millisecond)
	if !alive(evil1.Process.Pid) {
		t.Fatal("dry run killed the process")
	}

	rep, err = New(Options{Roots: emptyRoots()}).Run(ctx, killDef(sum), Target{Signature: "Mamori.Test.Dropper"})
	if err != nil {
		t.Fatalf("%v %+v", err, rep)
	}
	out := rep.Steps[0]
	if out.Status != StatusDone || !slices.Contains(out.Killed, evil1.Process.Pid) || !slices.Contains(out.Killed, evil2.Process.Pid) || len(out.Killed) != 2 {
		t.Fatalf("outcome %+v (pids %d %d)", out, evil1.Process.Pid, evil2.Process.Pid)
	}
	if !waitKilled(t, evil1) || !waitKilled(t, evil2) {
		t.Fatal("the matching processes did not die of SIGKILL")
	}
	if !alive(bystander.Process.Pid) {
		t.Fatal("a process with another image hash was killed")
	}

	// Nothing left to kill: skipped, not failed.
	rep, err = New(Options{Roots: emptyRoots()}).Run(ctx, killDef(sum), Target{})
	if err != nil || rep.Steps[0].Status != StatusSkipped {
		t.Fatalf("second run: %v %+v", err, rep)
	}
}

// TestKillSparesTheAgent targets the image this test binary runs: the
// runner must spare its own process (and report that), or this test
// would not finish.
func TestKillSparesTheAgent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	io.Copy(h, f)
	f.Close()
	rep, err := New(Options{Roots: emptyRoots()}).Run(context.Background(), killDef(hex.EncodeToString(h.Sum(nil))), Target{})
	if err != nil {
		t.Fatal(err)
	}
	out := rep.Steps[0]
	if len(out.Killed) != 0 || out.Status != StatusSkipped || !strings.Contains(out.Detail, "spared pid(s) ["+strconv.Itoa(os.Getpid())) {
		t.Fatalf("outcome %+v", out)
	}
}

func TestHashCacheAndUnreadableProcesses(t *testing.T) {
	dir := t.TempDir()
	a, sum := uniqueSleep(t, dir, "a")
	st := &run{r: New(Options{Roots: emptyRoots()}), hashes: map[exeKey]string{}}
	h, err := st.exeHash(a.Process.Pid)
	if err != nil || h != sum {
		t.Fatalf("exeHash %s %v, want %s", h, err, sum)
	}
	if len(st.hashes) != 1 {
		t.Fatalf("cache %v", st.hashes)
	}
	// A cached hash is served without reading the file again: poison the
	// cache entry and see it come back.
	for k := range st.hashes {
		st.hashes[k] = "cached"
	}
	if h, _ := st.exeHash(a.Process.Pid); h != "cached" {
		t.Fatalf("cache not used: %s", h)
	}
	// A replaced binary on disk does not hide the running image:
	// /proc/PID/exe still reads the deleted original.
	os.Remove(filepath.Join(dir, "a"))
	st.hashes = map[exeKey]string{}
	if h, err := st.exeHash(a.Process.Pid); err != nil || h != sum {
		t.Fatalf("deleted image: %s %v", h, err)
	}
}
