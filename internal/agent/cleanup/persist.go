package cleanup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mamori-soc/mamori/internal/agent/quarantine"
)

// maxCronFile bounds what is read as a cron table: real ones are a few
// KiB, and a huge file in a cron directory is not worth rewriting.
const maxCronFile = 1 << 20

func unsupported(out *Outcome, s Step) bool {
	if unixPersistence {
		return false
	}
	out.fail(fmt.Errorf("%w: %s removal is built for Linux", ErrUnsupported, s.Kind))
	return true
}

// removeUnit removes a systemd unit everywhere it is defined: the links
// that enable it (*.wants, *.requires, *.upholds) first, then the unit
// file and its drop-ins, each into the quarantine (links are recorded).
func (st *run) removeUnit(ctx context.Context, s Step, out *Outcome) {
	if unsupported(out, s) {
		return
	}
	dirs := expand(st.r.o.Roots.SystemdUnits)
	var found []string
	for _, dir := range dirs {
		for _, pat := range []string{"*.wants", "*.requires", "*.upholds"} {
			links, _ := filepath.Glob(filepath.Join(dir, pat, s.Name))
			found = append(found, links...)
		}
		found = append(found, filepath.Join(dir, s.Name))
		dropins, _ := filepath.Glob(filepath.Join(dir, s.Name+".d", "*"))
		found = append(found, dropins...)
	}
	present := found[:0]
	for _, p := range found {
		if _, err := os.Lstat(p); err == nil {
			present = append(present, p)
		}
	}
	if len(present) == 0 {
		out.note("unit %s not found in %s", s.Name, strings.Join(dirs, ", "))
		out.settle(false, false)
		return
	}
	// A unit with any protected piece is a system unit: refuse the whole
	// step before stopping it or touching its links.
	for _, p := range present {
		if pat, ok := st.r.isProtected(p); ok {
			out.fail(fmt.Errorf("%w: %s (protected by %s); unit %s left as it is", ErrProtected, p, pat, s.Name))
			return
		}
	}
	run := st.r.o.Systemctl != nil && !st.r.o.DryRun
	if run {
		if err := st.r.o.Systemctl(ctx, "stop", s.Name); err != nil {
			out.note("systemctl stop %s: %v", s.Name, err)
		}
	}
	acted := false
	for _, p := range present {
		acted = st.remove(ctx, p, s, out) || acted
	}
	if run && acted {
		if err := st.r.o.Systemctl(ctx, "daemon-reload"); err != nil {
			out.fail(fmt.Errorf("systemctl daemon-reload: %w", err))
		}
	}
	out.settle(acted, st.r.o.DryRun)
}

func (st *run) removeAutostart(ctx context.Context, s Step, out *Outcome) {
	if unsupported(out, s) {
		return
	}
	dirs := expand(st.r.o.Roots.Autostart)
	acted := false
	for _, dir := range dirs {
		acted = st.remove(ctx, filepath.Join(dir, s.Name), s, out) || acted
	}
	if !acted && out.Status != StatusFailed {
		out.note("%s not found in %s", s.Name, strings.Join(dirs, ", "))
	}
	out.settle(acted, st.r.o.DryRun)
}

// removeCronLines removes every line containing s.Match from the cron
// files under the cron roots. The whole original file is copied into the
// quarantine first, then the rest of it is written back atomically in its
// place (same mode and owner), so the file never goes missing and Undo can
// restore it exactly.
func (st *run) removeCronLines(ctx context.Context, s Step, out *Outcome) {
	if unsupported(out, s) {
		return
	}
	acted := false
	for _, f := range cronFiles(expand(st.r.o.Roots.Cron)) {
		if ctx.Err() != nil {
			out.fail(ctx.Err())
			break
		}
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Size() > maxCronFile {
			out.note("%s skipped: %d bytes is too large for a cron table", f, fi.Size())
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			out.fail(err)
			continue
		}
		kept, removed := withoutLines(data, s.Match)
		if removed == 0 {
			continue
		}
		if pat, ok := st.r.isProtected(f); ok {
			out.fail(fmt.Errorf("%w: %s (protected by %s)", ErrProtected, f, pat))
			continue
		}
		if st.r.o.DryRun {
			out.note("would remove %d line(s) from %s", removed, f)
			acted = true
			continue
		}
		if st.r.o.Store == nil {
			out.fail(fmt.Errorf("%w: cannot save %s before rewriting it", ErrNoStore, f))
			continue
		}
		e, err := st.r.o.Store.Copy(ctx, f, st.reason(s))
		if err != nil {
			out.fail(err)
			continue
		}
		sum, err := rewrite(ctx, f, kept, fi, e.SHA256)
		if err != nil {
			// The file is as it was; the copy would only confuse Undo.
			if derr := st.r.o.Store.Delete(ctx, e.ID); derr != nil {
				err = errors.Join(err, derr)
			}
			out.fail(err)
			continue
		}
		out.Quarantined = append(out.Quarantined, Quarantined{ID: e.ID, Path: e.Path, Rewritten: sum})
		out.note("removed %d line(s) from %s (original saved as %s)", removed, f, e.ID)
		acted = true
	}
	if !acted && out.Status != StatusFailed {
		out.note("no cron line contains %q", s.Match)
	}
	out.settle(acted, st.r.o.DryRun)
}

// cronFiles lists the cron tables under roots: each root that is a
// regular file, and the regular, non-hidden files directly inside each
// root that is a directory (cron does not descend further).
func cronFiles(roots []string) []string {
	var out []string
	for _, r := range roots {
		fi, err := os.Lstat(r)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() {
			out = append(out, r)
			continue
		}
		if !fi.IsDir() {
			continue
		}
		des, _ := os.ReadDir(r)
		for _, de := range des {
			if de.Type().IsRegular() && !strings.HasPrefix(de.Name(), ".") {
				out = append(out, filepath.Join(r, de.Name()))
			}
		}
	}
	return out
}

// withoutLines drops the lines containing match, keeping every other byte
// (line endings, a missing final newline) as it was.
func withoutLines(data []byte, match string) ([]byte, int) {
	var kept []byte
	removed := 0
	m := []byte(match)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		if bytes.Contains(line, m) {
			removed++
			continue
		}
		kept = append(kept, line...)
	}
	return kept, removed
}

// rewrite replaces path with data atomically, keeping fi's mode and owner,
// provided path still holds the bytes with sha256 origSum (what was saved
// to the quarantine). It returns the sha256 of data.
func rewrite(ctx context.Context, path string, data []byte, fi fs.FileInfo, origSum string) (string, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".mamori-*")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return "", err
	}
	if err := copyOwner(tmp.Name(), fi); err != nil {
		return "", err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if cur, err := quarantine.HashFile(ctx, path); err != nil || cur != origSum {
		return "", fmt.Errorf("%w: %s was edited while being cleaned", quarantine.ErrChanged, path)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	ok = true
	syncDir(dir)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
