package quarantine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// RestoreOption configures Restore.
type RestoreOption func(*restoreOptions)

type restoreOptions struct {
	force bool
	to    string
}

// Force lets Restore replace a different file (not a directory) that now
// sits at the restore path.
func Force() RestoreOption { return func(o *restoreOptions) { o.force = true } }

// To restores to path instead of the original path.
func To(path string) RestoreOption { return func(o *restoreOptions) { o.to = path } }

// Restore writes entry id back to its original path (recreating missing
// parent directories), with its mode, modification time and — when
// running as root on unix — owner, then deletes the entry. The bytes are
// written to a temporary file next to the target, checked against the
// entry's sha256 and only then renamed into place, so a tampered entry
// (ErrTampered) or a failure leaves the target as it was and the entry
// kept. A different file at the path is not replaced (ErrExists) unless
// Force is given; an identical one is.
func (s *Store) Restore(ctx context.Context, id string, opts ...RestoreOption) (Entry, error) {
	var o restoreOptions
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, e, body, err := s.open(ctx, id)
	if err != nil {
		return Entry{}, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	target := e.Path
	if o.to != "" {
		if target, err = filepath.Abs(o.to); err != nil {
			return Entry{}, fmt.Errorf("restore %s: %w", id, err)
		}
	}
	fail := func(err error) (Entry, error) { return Entry{}, fmt.Errorf("restore %s to %s: %w", id, target, err) }
	if err := s.checkTarget(ctx, target, e, o.force); err != nil {
		return fail(err)
	}
	dir := filepath.Dir(target)
	if err := makeParents(dir, e); err != nil {
		return fail(err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".mamori-restore-*")
	if err != nil {
		return fail(err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, body); err != nil {
		return fail(err)
	}
	// Owner before mode: chown clears the setuid and setgid bits.
	if err := chownIfRoot(tmp.Name(), e.UID, e.GID); err != nil {
		return fail(fmt.Errorf("restore owner: %w", err))
	}
	if err := tmp.Chmod(e.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil && posix {
		return fail(fmt.Errorf("restore mode: %w", err))
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chtimes(tmp.Name(), e.ModTime, e.ModTime); err != nil {
		return fail(fmt.Errorf("restore modification time: %w", err))
	}
	// Checked again right before the rename: something may have appeared
	// at the path while the bytes were being written.
	if err := s.checkTarget(ctx, target, e, o.force); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fail(err)
	}
	ok = true
	syncDir(dir)
	if err := os.Remove(s.entryPath(id)); err != nil {
		// The file is back; a leftover entry is only a duplicate.
		s.log.Warn("restored, but the entry could not be deleted", "id", id, "err", err)
	} else {
		syncDir(s.dir)
	}
	s.log.Info("restored from quarantine", "id", id, "path", target, "sha256", e.SHA256)
	return e, nil
}

// checkTarget says whether writing to target may replace what is there.
func (s *Store) checkTarget(ctx context.Context, target string, e Entry, force bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: a directory", ErrExists)
	}
	if force {
		return nil
	}
	if fi.Mode().IsRegular() && fi.Size() == e.Size {
		if sum, err := HashFile(ctx, target); err == nil && sum == e.SHA256 {
			return nil // the same bytes: replacing them loses nothing
		}
	}
	return fmt.Errorf("%w: %s (%d bytes) differs from the quarantined file; restore with Force to replace it, or To another path", ErrExists, describeTarget(fi), fi.Size())
}

func describeTarget(fi fs.FileInfo) string {
	if fi.Mode().IsRegular() {
		return "a regular file"
	}
	return describeMode(fi.Mode())
}

// makeParents creates the missing directories above a restored file,
// owned (as root) by the file's owner: a user's ~/.config/autostart that
// is recreated for them must stay theirs.
func makeParents(dir string, e Entry) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%w: %s is not a directory", ErrExists, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("recreate parent directory: %w", err)
		}
		if err := chownIfRoot(missing[i], e.UID, e.GID); err != nil {
			return fmt.Errorf("recreate parent directory: %w", err)
		}
	}
	return nil
}
