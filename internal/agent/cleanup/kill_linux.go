package cleanup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// exeKey identifies an executable file's content for the hash cache: the
// same inode with the same mtime and size has the same bytes, so the many
// processes of one binary cost one hash.
type exeKey struct {
	dev, ino    uint64
	mtime, size int64
}

// maxPasses bounds how often the process list is walked: a dropper that
// forked between our listing and its death is caught by the next pass.
const maxPasses = 3

// kill sends SIGKILL to every process whose executable has sha256 sum.
// Each process is pinned with a pidfd (os.FindProcess) before its image
// is hashed, so a pid reused in between gets no signal: the signal goes
// to the pinned, dead process and fails harmlessly.
func (st *run) kill(ctx context.Context, sum string, out *Outcome) {
	done := map[int]bool{}
	var spared []int
	for pass := 0; pass < maxPasses; pass++ {
		pids, err := listPIDs(st.r.o.ProcDir)
		if err != nil {
			out.fail(err)
			return
		}
		fresh := 0
		for _, pid := range pids {
			if err := ctx.Err(); err != nil {
				out.fail(err)
				out.settle(len(out.Killed) > 0, st.r.o.DryRun)
				return
			}
			if done[pid] {
				continue
			}
			p, err := os.FindProcess(pid)
			if err != nil {
				continue
			}
			h, err := st.exeHash(pid)
			if err != nil || h != sum {
				p.Release()
				continue
			}
			done[pid] = true
			if slices.Contains(st.r.safePIDs, pid) {
				spared = append(spared, pid)
				p.Release()
				continue
			}
			fresh++
			if st.r.o.DryRun {
				out.note("would kill pid %d", pid)
				p.Release()
				continue
			}
			err = p.Signal(syscall.SIGKILL)
			p.Release()
			switch {
			case err == nil:
				out.Killed = append(out.Killed, pid)
			case errors.Is(err, os.ErrProcessDone):
			default:
				out.fail(fmt.Errorf("kill pid %d: %w", pid, err))
			}
		}
		if fresh == 0 || st.r.o.DryRun {
			break
		}
	}
	if len(spared) > 0 {
		out.note("spared pid(s) %v: init, the agent or its parent run this image", spared)
	}
	found := len(done) > len(spared)
	if len(out.Killed) > 0 {
		out.note("killed pid(s) %v", out.Killed)
	} else if !found && out.Status != StatusFailed {
		out.note("no process runs this image")
	}
	out.settle(len(out.Killed) > 0 || st.r.o.DryRun && found, st.r.o.DryRun)
}

func listPIDs(procDir string) ([]int, error) {
	des, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, de := range des {
		if pid, err := strconv.Atoi(de.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// exeHash returns the sha256 of the executable pid runs, read through
// /proc/PID/exe: that works even when the file was deleted or replaced on
// disk, which malware likes to do. Kernel threads have no exe and fail.
func (st *run) exeHash(pid int) (string, error) {
	exe := filepath.Join(st.r.o.ProcDir, strconv.Itoa(pid), "exe")
	fi, err := os.Stat(exe)
	if err != nil {
		return "", err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", errors.New("no stat data")
	}
	key := exeKey{dev: uint64(sys.Dev), ino: uint64(sys.Ino), mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if h, ok := st.hashes[key]; ok {
		return h, nil
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	st.hashes[key] = sum
	return sum, nil
}
