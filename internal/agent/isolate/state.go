package isolate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateRecord is the state file: what was applied, so that an agent
// restarted after a reboot (which empties the kernel ruleset) re-applies
// the isolation and re-arms the expiry.
type stateRecord struct {
	Version   int       `json:"version"`
	Table     string    `json:"table"`
	AppliedAt time.Time `json:"applied_at"`
	Policy    Policy    `json:"policy"`
}

const stateVersion = 1

// readState returns the record, or nil when the file does not exist.
func readState(path string) (*stateRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("isolate: state file: %w", err)
	}
	var r stateRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("isolate: state file %s: %w", path, err)
	}
	if r.Version != stateVersion {
		return nil, fmt.Errorf("isolate: state file %s: version %d, want %d", path, r.Version, stateVersion)
	}
	return &r, nil
}

// writeFileAtomic replaces path with b (mode 0600) so that a crash leaves
// either the old or the new content, never a torn file.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

func writeState(path string, r stateRecord) error {
	r.Version = stateVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("isolate: state file: %w", err)
	}
	return nil
}

// removeState deletes the state file; a missing file is not an error.
func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("isolate: state file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
