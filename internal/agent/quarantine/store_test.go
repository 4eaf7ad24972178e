package quarantine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// eicar is the EICAR test file, kept XOR-ed so that this test's source and
// binary are not themselves EICAR samples.
func eicar() []byte {
	enc, _ := hex.DecodeString("0d601a7405701514050e6109050f0d60617d050b7c6216167c622871101c161407780601141b1114071178141b011c031c070006780110060178131c191074711d7e1d7f")
	out := make([]byte, len(enc))
	for i, b := range enc {
		out[i] = b ^ 0x55
	}
	return out
}

func openStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "q"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	s.chunk = 16 // exercise chunk boundaries with small files
	src := t.TempDir()
	for _, size := range []int{0, 1, 15, 16, 17, 48, 1000} {
		path := filepath.Join(src, "f", "sample.bin")
		data := randBytes(size)
		writeFile(t, path, data, 0o751)
		mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		os.Chtimes(path, mtime, mtime)

		e, err := s.Put(ctx, path, Reason{Kind: ReasonDetection, Signature: "Mamori.Test"})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("size %d: original still there: %v", size, err)
		}
		if e.Size != int64(size) || e.SHA256 != sha(data) || e.Path != path || e.Reason.Signature != "Mamori.Test" {
			t.Fatalf("size %d: entry %+v", size, e)
		}
		got, err := s.Get(ctx, e.ID)
		if err != nil || got.SHA256 != e.SHA256 || !got.Time.Equal(e.Time) {
			t.Fatalf("Get: %+v %v", got, err)
		}
		rc, err := s.Open(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		streamed, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(streamed, data) {
			t.Fatalf("size %d: Open read %d bytes, %v", size, len(streamed), err)
		}

		os.RemoveAll(filepath.Dir(path)) // Restore recreates the parent
		if _, err := s.Restore(ctx, e.ID); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		back, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("size %d: restored %d bytes, %v", size, len(back), err)
		}
		fi, _ := os.Stat(path)
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o751 {
			t.Errorf("size %d: mode %v, want 0751", size, fi.Mode())
		}
		if !fi.ModTime().Equal(mtime) {
			t.Errorf("size %d: mtime %v, want %v", size, fi.ModTime(), mtime)
		}
		if _, err := s.Get(ctx, e.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("size %d: entry still there after restore: %v", size, err)
		}
	}
}

func TestStoredBytesAreNeutered(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path := filepath.Join(t.TempDir(), "eicar.com")
	sample := eicar()
	writeFile(t, path, sample, 0o755)
	e, err := s.Put(ctx, path, Reason{Kind: ReasonDetection, Signature: "Eicar-Test-Signature"})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		found++
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, sample[:30]) || bytes.Contains(b, []byte("EICAR")) {
			t.Errorf("%s holds the plaintext", p)
		}
		if bytes.Contains(b, []byte(path)) || bytes.Contains(b, []byte("Eicar-Test-Signature")) {
			t.Errorf("%s holds metadata in the clear", p)
		}
		fi, _ := d.Info()
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode())
		}
		return nil
	})
	if found != 2 { // the key and the entry
		t.Errorf("%d files in the store, want 2", found)
	}
	if fi, err := os.Stat(s.Dir()); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700) {
		t.Errorf("store dir: %v %v", fi.Mode(), err)
	}
	if n, err := s.TotalSize(ctx); err != nil || n <= int64(len(sample)) {
		t.Errorf("TotalSize %d %v", n, err)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 || list[0].ID != e.ID {
		t.Errorf("List %+v %v", list, err)
	}
}

func TestKeyPersists(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "q")
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x")
	writeFile(t, path, []byte("hello"), 0o644)
	e, err := s1.Put(ctx, path, Reason{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Reason.Kind != ReasonManual {
		t.Errorf("default reason kind %q", e.Reason.Kind)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, e.ID); err != nil {
		t.Fatalf("a reopened store cannot read its entry: %v", err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, keyFile))
	if len(key) != 32 {
		t.Fatalf("key of %d bytes", len(key))
	}
	if fi, _ := os.Stat(filepath.Join(dir, keyFile)); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	os.Chmod(filepath.Join(dir, keyFile), 0o644)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, keyFile)); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("loosened key mode not repaired: %v", fi.Mode())
	}
	// A damaged key is an error, not a reason to start over.
	os.WriteFile(filepath.Join(dir, keyFile), key[:10], 0o600)
	if _, err := Open(dir); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v", err)
	}
	// Another store's key cannot read these entries.
	other := openStore(t)
	os.Link(s1.entryPath(e.ID), other.entryPath(e.ID))
	if _, err := other.Get(ctx, e.ID); !errors.Is(err, ErrTampered) {
		t.Fatalf("foreign key: %v", err)
	}
}

// putOne quarantines a fresh file and returns the entry and its bytes.
func putOne(t *testing.T, s *Store, data []byte) (Entry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "victim.bin")
	writeFile(t, path, data, 0o644)
	e, err := s.Put(context.Background(), path, Reason{Kind: ReasonDetection, Signature: "X"})
	if err != nil {
		t.Fatal(err)
	}
	return e, path
}

func TestTampering(t *testing.T) {
	ctx := context.Background()
	metaEnd := func(b []byte) int {
		return headerLen + int(binary.BigEndian.Uint32(b[headerLen-4:]))
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, s *Store, e Entry, b []byte) []byte
		getOK  bool // the metadata still authenticates
	}{
		{"ciphertext bit flipped", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			b[metaEnd(b)+5] ^= 1
			return b
		}, true},
		{"last byte (tag) flipped", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			b[len(b)-1] ^= 0x80
			return b
		}, true},
		{"truncated by a chunk", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			return b[:len(b)-(16+16)]
		}, true},
		{"bytes appended", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			return append(b, 0)
		}, true},
		{"metadata bit flipped", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			b[headerLen+3] ^= 1
			return b
		}, false},
		{"salt changed", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			b[len(magic)] ^= 1
			return b
		}, false},
		{"chunk size changed", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			binary.BigEndian.PutUint32(b[len(magic)+saltLen:], 32)
			return b
		}, false},
		{"body of another entry", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			other, _ := putOne(t, s, bytes.Repeat([]byte("B"), 100))
			ob, _ := os.ReadFile(s.entryPath(other.ID))
			return append(b[:metaEnd(b)], ob[metaEnd(ob):]...)
		}, true},
		{"whole entry filed under another id", func(t *testing.T, s *Store, e Entry, b []byte) []byte {
			other, _ := putOne(t, s, bytes.Repeat([]byte("B"), 100))
			ob, _ := os.ReadFile(s.entryPath(other.ID))
			return ob
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			s.chunk = 16
			data := bytes.Repeat([]byte("A"), 100)
			e, path := putOne(t, s, data)
			b, _ := os.ReadFile(s.entryPath(e.ID))
			os.WriteFile(s.entryPath(e.ID), c.tamper(t, s, e, b), 0o600)

			_, err := s.Get(ctx, e.ID)
			if c.getOK != (err == nil) || (err != nil && !errors.Is(err, ErrTampered)) {
				t.Fatalf("Get: %v (metadata should authenticate: %v)", err, c.getOK)
			}
			if _, err := s.Restore(ctx, e.ID); !errors.Is(err, ErrTampered) {
				t.Fatalf("Restore: %v, want ErrTampered", err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a tampered restore left a file at the path: %v", err)
			}
			if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(tmps) > 0 {
				t.Fatalf("temporary files left: %v", tmps)
			}
			if _, err := os.Stat(s.entryPath(e.ID)); err != nil {
				t.Fatalf("a failed restore deleted the entry: %v", err)
			}
			if rc, err := s.Open(ctx, e.ID); err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("Open read: %v, want ErrTampered", err)
				}
			} else if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open: %v", err)
			}
			if !c.getOK {
				if _, err := s.List(ctx); !errors.Is(err, ErrTampered) {
					t.Fatalf("List: %v, want ErrTampered", err)
				}
			}
		})
	}
}

func TestRestoreRefusesToClobber(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	data := []byte("original")
	e, path := putOne(t, s, data)

	writeFile(t, path, []byte("somebody else's file"), 0o644)
	if _, err := s.Restore(ctx, e.ID); !errors.Is(err, ErrExists) {
		t.Fatalf("Restore over a different file: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "somebody else's file" {
		t.Fatalf("clobbered: %q", b)
	}
	// To another path leaves both.
	alt := filepath.Join(t.TempDir(), "sub", "copy")
	if _, err := s.Restore(ctx, e.ID, To(alt)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(alt); !bytes.Equal(b, data) {
		t.Fatalf("To: %q", b)
	}

	e, path = putOne(t, s, data)
	os.Mkdir(path, 0o755)
	if _, err := s.Restore(ctx, e.ID, Force()); !errors.Is(err, ErrExists) {
		t.Fatalf("Force over a directory: %v, want ErrExists", err)
	}
	os.Remove(path)
	writeFile(t, path, []byte("newer"), 0o644)
	if _, err := s.Restore(ctx, e.ID, Force()); err != nil {
		t.Fatalf("Force: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
		t.Fatalf("Force restored %q", b)
	}

	// The same bytes at the path are not in the way.
	e, path = putOne(t, s, data)
	writeFile(t, path, data, 0o600)
	if _, err := s.Restore(ctx, e.ID); err != nil {
		t.Fatalf("identical file in the way: %v", err)
	}
}

func TestPutRefuses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, MaxSize(10))
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	writeFile(t, big, make([]byte, 11), 0o644)
	small := filepath.Join(dir, "small")
	writeFile(t, small, make([]byte, 10), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want error
	}{
		{dir, ErrNotRegular},
		{link, ErrNotRegular},
		{big, ErrTooLarge},
		{filepath.Join(dir, "missing"), fs.ErrNotExist},
	} {
		if _, err := s.Put(ctx, c.path, Reason{}); !errors.Is(err, c.want) {
			t.Errorf("Put(%s): %v, want %v", c.path, err, c.want)
		}
	}
	if _, err := os.Stat(big); err != nil {
		t.Errorf("refused file removed: %v", err)
	}
	if _, err := os.Stat(small); err != nil {
		t.Errorf("link target removed: %v", err)
	}
	if list, err := s.List(ctx); len(list) != 0 || err != nil {
		t.Errorf("entries after refusals: %v %v", list, err)
	}
	if _, err := s.Put(ctx, small, Reason{}); err != nil {
		t.Errorf("a file at the cap: %v", err)
	}
}

// TestCrashSafety fails Put at each point between reading the file and
// removing it: the original must survive every one, byte for byte, and no
// entry or temporary file may be left behind.
func TestCrashSafety(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("simulated crash")
	data := randBytes(5000)
	cases := []struct {
		name  string
		setup func(s *Store, path string)
		want  error
	}{
		{"between hash and encrypt", func(s *Store, path string) {
			s.afterHash = func(string) error { return boom }
		}, boom},
		{"before the entry is renamed into place", func(s *Store, path string) {
			s.beforeRename = func() error { return boom }
		}, boom},
		{"entry durable, original not yet removed", func(s *Store, path string) {
			s.beforeRemove = func(Entry) error { return boom }
		}, boom},
		{"file rewritten between the passes", func(s *Store, path string) {
			s.afterHash = func(p string) error {
				b := append([]byte{}, data...)
				b[0] ^= 1
				return os.WriteFile(p, b, 0o644)
			}
		}, ErrChanged},
		{"file appended to between the passes", func(s *Store, path string) {
			s.afterHash = func(p string) error {
				f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				defer f.Close()
				_, err := f.Write([]byte("more"))
				return err
			}
		}, ErrChanged},
		{"file modified after the entry was written", func(s *Store, path string) {
			s.beforeRemove = func(Entry) error {
				later := time.Now().Add(time.Hour)
				return os.Chtimes(path, later, later)
			}
		}, ErrChanged},
		{"context cancelled", nil, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			s.chunk = 1024
			path := filepath.Join(t.TempDir(), "precious")
			writeFile(t, path, data, 0o644)
			cctx := ctx
			if c.setup != nil {
				c.setup(s, path)
			} else {
				var cancel context.CancelFunc
				cctx, cancel = context.WithCancel(ctx)
				cancel()
			}
			if _, err := s.Put(cctx, path, Reason{}); !errors.Is(err, c.want) {
				t.Fatalf("Put: %v, want %v", err, c.want)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("original lost: %v", err)
			}
			if c.want != ErrChanged && !bytes.Equal(b, data) {
				t.Fatal("original changed")
			}
			des, _ := os.ReadDir(s.Dir())
			for _, de := range des {
				if de.Name() != keyFile {
					t.Errorf("left in the store: %s", de.Name())
				}
			}
		})
	}
}

// TestEntryDurableBeforeRemoval checks the order Put promises: at the
// moment the original is removed, a fresh process can already restore it.
func TestEntryDurableBeforeRemoval(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	data := randBytes(3000)
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, data, 0o644)
	checked := false
	s.beforeRemove = func(e Entry) error {
		fresh, err := Open(s.Dir())
		if err != nil {
			return err
		}
		rc, err := fresh.Open(ctx, e.ID)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		checked = bytes.Equal(b, data)
		return nil
	}
	if _, err := s.Put(ctx, path, Reason{}); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the entry was not readable by another store before the original was removed")
	}
}

func TestStaleTempsRemovedAndIDsValidated(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	stale := filepath.Join(s.Dir(), "."+newID()+tmpExt)
	os.WriteFile(stale, []byte("half"), 0o600)
	if _, err := Open(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary kept: %v", err)
	}
	for _, id := range []string{"", "../key", strings.Repeat("A", 32), strings.Repeat("0", 31)} {
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q): %v", id, err)
		}
	}
	e, _ := putOne(t, s, []byte("x"))
	if err := s.Delete(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Restore(ctx, e.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Restore after Delete: %v", err)
	}
	if n, err := s.TotalSize(ctx); n != 0 || err != nil {
		t.Errorf("TotalSize after Delete: %d %v", n, err)
	}
}

func TestCopyKeepsOriginal(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	path := filepath.Join(t.TempDir(), "crontab")
	writeFile(t, path, []byte("* * * * * root /tmp/evil\n"), 0o644)
	e, err := s.Copy(ctx, path, Reason{Kind: ReasonCleanup})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Copy removed the original: %v", err)
	}
	writeFile(t, path, []byte("# rewritten\n"), 0o644)
	if _, err := s.Restore(ctx, e.ID); !errors.Is(err, ErrExists) {
		t.Fatalf("Restore over the rewritten file without Force: %v", err)
	}
	if _, err := s.Restore(ctx, e.ID, Force()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "* * * * * root /tmp/evil\n" {
		t.Fatalf("restored %q", b)
	}
}
