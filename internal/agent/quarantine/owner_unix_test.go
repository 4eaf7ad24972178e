//go:build unix

package quarantine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mamori-soc/mamori/internal/testutil"
)

func TestOwnerAndSpecialModes(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.Missing(t, "restoring another user's ownership needs root")
	}
	ctx := context.Background()
	s := openStore(t)
	dir := filepath.Join(t.TempDir(), "home", "u")
	path := filepath.Join(dir, "bin", "tool")
	writeFile(t, path, []byte("#!/bin/sh\n"), 0o755)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, fs.ModeSetuid|0o750); err != nil { // must survive the chown on restore
		t.Fatal(err)
	}
	e, err := s.Put(ctx, path, Reason{})
	if err != nil {
		t.Fatal(err)
	}
	if e.UID != 1234 || e.GID != 5678 {
		t.Fatalf("entry owner %d:%d", e.UID, e.GID)
	}
	os.RemoveAll(filepath.Join(dir, "bin"))
	if _, err := s.Restore(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owned by %d:%d, want 1234:5678", p, st.Uid, st.Gid)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode() != fs.ModeSetuid|0o750 {
		t.Errorf("mode %v, want setuid 0750", fi.Mode())
	}
}

func TestPutRefusesFIFO(t *testing.T) {
	s := openStore(t)
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), p, Reason{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Put(fifo): %v", err)
	}
}
