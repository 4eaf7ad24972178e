package quarantine

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sentinel errors.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file larger than the quarantine size cap")
	ErrChanged    = errors.New("file changed while being quarantined")
	ErrNotFound   = errors.New("no such quarantine entry")
	ErrTampered   = errors.New("quarantine entry tampered with or corrupt")
	ErrExists     = errors.New("a different file is in the way")
	ErrKey        = errors.New("quarantine key unusable")
)

// DefaultMaxSize is the largest file Put accepts unless MaxSize says
// otherwise: large enough for any dropper or packed binary, small enough
// that one quarantine cannot fill the agent's disk.
const DefaultMaxSize = 256 << 20

const (
	keyFile  = "key"
	entryExt = ".mq"
	tmpExt   = ".tmp"
	idLen    = 32 // hex digits
)

// ReasonKind says why an object was quarantined.
type ReasonKind string

const (
	ReasonDetection ReasonKind = "detection" // a scan found it
	ReasonCleanup   ReasonKind = "cleanup"   // a cleanup step moved it
	ReasonManual    ReasonKind = "manual"    // an analyst asked for it
)

// Reason is why an entry exists, kept with it.
type Reason struct {
	Kind      ReasonKind `json:"kind"`
	Signature string     `json:"signature,omitempty"` // the detection that caused it
	Note      string     `json:"note,omitempty"`      // e.g. the cleanup step
}

// Entry is the metadata of one quarantined file. It is stored encrypted
// and authenticated together with the bytes.
type Entry struct {
	ID      string      `json:"id"`
	Path    string      `json:"path"` // absolute original path
	Mode    fs.FileMode `json:"mode"`
	UID     int         `json:"uid"` // -1 where the platform has none
	GID     int         `json:"gid"`
	Size    int64       `json:"size"`
	SHA256  string      `json:"sha256"` // of the original bytes, hex
	ModTime time.Time   `json:"mod_time"`
	Reason  Reason      `json:"reason"`
	Time    time.Time   `json:"time"` // when it was quarantined, UTC
}

// Store is a quarantine directory. It is safe for concurrent use by one
// process; two processes must not share a directory.
type Store struct {
	dir     string
	key     []byte
	maxSize int64
	chunk   int
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex // one Restore or Delete at a time: both consume entries

	// Test hooks, nil in production: they stand in for a crash or a
	// concurrent writer at the points where either matters.
	afterHash    func(path string) error // between hashing and encrypting
	beforeRename func() error            // entry written and synced, not yet visible
	beforeRemove func(Entry) error       // entry durable, original not yet removed
}

// Option configures a Store.
type Option func(*Store)

// MaxSize sets the largest file Put accepts (default DefaultMaxSize).
func MaxSize(n int64) Option { return func(s *Store) { s.maxSize = n } }

// Logger sets the store's logger (default: discard).
func Logger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens the quarantine in dir, creating dir (0700) and its key on
// first use. An existing key that cannot be read is an error, never a
// reason to make a new one: that would orphan every entry.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, maxSize: DefaultMaxSize, chunk: defaultChunk, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("quarantine dir %s: %w", dir, err)
	}
	s.dir = abs
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("quarantine dir: %w", err)
	}
	if s.key, err = loadKey(s.dir); err != nil {
		return nil, err
	}
	s.removeStaleTemps()
	s.log = s.log.With("component", "quarantine")
	return s, nil
}

// loadKey reads dir/key or creates it. Creation links a fully written
// temporary file into place, so a concurrent or interrupted first start
// never leaves a short key behind.
func loadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, keyFile)
	k, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k = make([]byte, keyLen)
		rand.Read(k)
		tmp, err := os.CreateTemp(dir, ".key-*"+tmpExt)
		if err != nil {
			return nil, fmt.Errorf("%w: create: %w", ErrKey, err)
		}
		defer os.Remove(tmp.Name())
		if err := tmp.Chmod(0o600); err != nil && posix {
			tmp.Close()
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		if _, err := tmp.Write(k); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("%w: write: %w", ErrKey, err)
		}
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("%w: sync: %w", ErrKey, err)
		}
		tmp.Close()
		if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		syncDir(dir)
		k, err = os.ReadFile(path) // whoever won the race
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if fi, err := os.Stat(path); err == nil && posix && fi.Mode().Perm() != 0o600 {
		// Someone loosened it; the key is what keeps entries tamper-evident.
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("%w: %s is mode %v and cannot be made 0600: %w", ErrKey, path, fi.Mode().Perm(), err)
		}
	}
	if len(k) != keyLen {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d (restore it from a backup; entries cannot be read without it)", ErrKey, path, len(k), keyLen)
	}
	return k, nil
}

// removeStaleTemps deletes entries a crash left half-written: they were
// never renamed into place, so the originals still exist.
func (s *Store) removeStaleTemps() {
	des, _ := os.ReadDir(s.dir)
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, ".") && strings.HasSuffix(n, tmpExt) {
			if err := os.Remove(filepath.Join(s.dir, n)); err == nil {
				s.log.Info("removed a half-written quarantine entry", "file", n)
			}
		}
	}
}

// Dir is the store's absolute directory (callers protect it from cleanup).
func (s *Store) Dir() string { return s.dir }

func (s *Store) entryPath(id string) string { return filepath.Join(s.dir, id+entryExt) }

func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func newID() string {
	b := make([]byte, idLen/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Put moves the regular file at path into the quarantine. The original is
// removed only after the entry is written, synced and renamed into place,
// and only if it is still the file that was read; any failure before that
// leaves the original untouched and no entry behind.
func (s *Store) Put(ctx context.Context, path string, reason Reason) (Entry, error) {
	return s.put(ctx, path, reason, true)
}

// Copy stores the file at path like Put but leaves it in place, for a
// caller that rewrites the file itself (a cron file without its malicious
// lines) and wants the original restorable. Restoring such an entry over
// the rewritten file needs Force.
func (s *Store) Copy(ctx context.Context, path string, reason Reason) (Entry, error) {
	return s.put(ctx, path, reason, false)
}

func (s *Store) put(ctx context.Context, path string, reason Reason, remove bool) (Entry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Entry{}, fmt.Errorf("quarantine %s: %w", path, err)
	}
	fail := func(err error) (Entry, error) { return Entry{}, fmt.Errorf("quarantine %s: %w", abs, err) }
	fi, err := os.Lstat(abs)
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("%w: %s", ErrNotRegular, describeMode(fi.Mode())))
	}
	if fi.Size() > s.maxSize {
		return fail(fmt.Errorf("%w: %d bytes, cap %d", ErrTooLarge, fi.Size(), s.maxSize))
	}
	f, err := os.Open(abs)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !os.SameFile(fi, ofi) {
		return fail(fmt.Errorf("%w: replaced between check and open", ErrChanged))
	}

	sum, size, err := hashReader(ctx, io.LimitReader(f, s.maxSize+1))
	if err != nil {
		return fail(err)
	}
	if size > s.maxSize {
		return fail(fmt.Errorf("%w: grew past the cap of %d bytes", ErrTooLarge, s.maxSize))
	}
	if s.afterHash != nil {
		if err := s.afterHash(abs); err != nil {
			return fail(err)
		}
	}
	if reason.Kind == "" {
		reason.Kind = ReasonManual
	}
	uid, gid := owner(ofi)
	e := Entry{
		ID: newID(), Path: abs, Mode: ofi.Mode(), UID: uid, GID: gid, Size: size, SHA256: sum,
		ModTime: ofi.ModTime().UTC(), Reason: reason, Time: s.now().UTC(),
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	if err := s.writeEntry(ctx, e, f); err != nil {
		return fail(err)
	}

	if !remove {
		s.log.Info("copied into quarantine", "id", e.ID, "path", abs, "sha256", e.SHA256, "size", e.Size,
			"reason", e.Reason.Kind, "signature", e.Reason.Signature)
		return e, nil
	}
	// The entry is durable. Remove the original only if it is still the
	// file that was stored: a write after our read would otherwise be lost.
	undo := func(cause error) (Entry, error) {
		if err := os.Remove(s.entryPath(e.ID)); err != nil {
			s.log.Error("cannot roll back a quarantine entry; the original is still in place too",
				"id", e.ID, "path", abs, "err", err)
		}
		return fail(cause)
	}
	if s.beforeRemove != nil {
		if err := s.beforeRemove(e); err != nil {
			return undo(err)
		}
	}
	now, err := os.Lstat(abs)
	if err != nil {
		return undo(err)
	}
	if !os.SameFile(now, ofi) || now.Size() != size || !now.ModTime().Equal(ofi.ModTime()) {
		return undo(fmt.Errorf("%w: modified after it was read", ErrChanged))
	}
	if err := os.Remove(abs); err != nil {
		return undo(fmt.Errorf("remove the original: %w", err))
	}
	syncDir(filepath.Dir(abs))
	s.log.Info("quarantined", "id", e.ID, "path", abs, "sha256", e.SHA256, "size", e.Size,
		"reason", e.Reason.Kind, "signature", e.Reason.Signature)
	return e, nil
}

// writeEntry writes e and the bytes of src to a temporary file, syncs it,
// renames it to its final name and syncs the directory.
func (s *Store) writeEntry(ctx context.Context, e Entry, src io.Reader) error {
	tmp := filepath.Join(s.dir, "."+e.ID+tmpExt)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(out, 64<<10)
	if err := sealEntry(ctx, w, s.key, s.chunk, e, src); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync entry: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	if s.beforeRename != nil {
		if err := s.beforeRename(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.entryPath(e.ID)); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	ok = true
	if err := syncDir(s.dir); err != nil {
		os.Remove(s.entryPath(e.ID))
		return fmt.Errorf("sync quarantine dir: %w", err)
	}
	return nil
}

// Get returns the authenticated metadata of entry id.
func (s *Store) Get(ctx context.Context, id string) (Entry, error) {
	f, e, _, err := s.open(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	f.Close()
	return e, nil
}

// open opens entry id and authenticates its metadata; the caller closes f.
func (s *Store) open(ctx context.Context, id string) (*os.File, Entry, *bodyReader, error) {
	if !validID(id) {
		return nil, Entry{}, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	f, err := os.Open(s.entryPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Entry{}, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, Entry{}, nil, fmt.Errorf("quarantine entry %s: %w", id, err)
	}
	e, body, err := openEntry(ctx, f, s.key)
	if err == nil && e.ID != id {
		// Authentic, but filed under another name: a swapped entry.
		err = fmt.Errorf("%w: file named %s holds entry %s", ErrTampered, id, e.ID)
	}
	if err != nil {
		f.Close()
		return nil, Entry{}, nil, fmt.Errorf("quarantine entry %s: %w", id, err)
	}
	return f, e, body, nil
}

// List returns every entry, oldest first. Entries that do not
// authenticate are left out and reported in err (wrapping ErrTampered)
// alongside the ones that do.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []Entry
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		e, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // restored or deleted meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, errors.Join(errs...)
}

// ids lists the entry files present, by name. A file whose name is not an
// id is not an entry and is ignored.
func (s *Store) ids() ([]string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("quarantine dir: %w", err)
	}
	var ids []string
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), entryExt)
		if ok && validID(id) && de.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Delete removes entry id for good. Its bytes are gone afterwards.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validID(id) {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.entryPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("delete quarantine entry %s: %w", id, err)
	}
	syncDir(s.dir)
	s.log.Info("quarantine entry deleted", "id", id)
	return nil
}

// Open returns the decrypted bytes of entry id as a stream, for uploading
// a sample. Every byte it yields is authenticated; a tampered entry makes
// Read fail with ErrTampered. The caller must never execute or scan-and-
// act on what it reads (it is the malware), and must Close it.
func (s *Store) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	f, _, body, err := s.open(ctx, id)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{body, f}, nil
}

// TotalSize is the disk space the entries take, in bytes.
func (s *Store) TotalSize(ctx context.Context) (int64, error) {
	ids, err := s.ids()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		fi, err := os.Stat(s.entryPath(id))
		if err != nil {
			continue // gone meanwhile
		}
		total += fi.Size()
	}
	return total, nil
}

func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", 0, err
		}
	}
}

// HashFile returns the sha256 (hex) of the file at path. Callers use it to
// tell whether a file is the one an entry holds.
func HashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, _, err := hashReader(ctx, f)
	return sum, err
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link (quarantine its target instead)"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not a regular file (" + m.String() + ")"
	}
}
