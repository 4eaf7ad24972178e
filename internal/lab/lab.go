package lab

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Errors.
var (
	ErrNotFound = errors.New("lab: no such sample")
	ErrTooLarge = errors.New("lab: sample too large")
	ErrInvalid  = errors.New("lab: invalid sample")
	ErrTampered = errors.New("lab: stored sample does not decrypt to its hash")
)

// Sample is one stored file and the sightings the caller may see.
type Sample struct {
	SHA256    string     `json:"sha256"`
	SHA1      string     `json:"sha1"`
	MD5       string     `json:"md5"`
	Size      int64      `json:"size"`
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	Sightings []Sighting `json:"sightings"`
}

// Sighting is one upload of a sample by an agent.
type Sighting struct {
	Tenant       string    `json:"tenant"`
	Agent        string    `json:"agent"`
	Name         string    `json:"name,omitempty"`      // the file's path on the endpoint
	Detection    string    `json:"detection,omitempty"` // the signature that found it
	QuarantineID string    `json:"quarantine_id,omitempty"`
	At           time.Time `json:"at"`
}

// Options configure a Store.
type Options struct {
	MaxSize int64 // largest sample accepted (default 64 MiB)
	Now     func() time.Time
	Logger  *slog.Logger
}

// Store keeps samples encrypted in a directory and their metadata in the
// state database.
type Store struct {
	db   *sql.DB
	dir  string
	aead cipher.AEAD
	o    Options
}

const schema = `
CREATE TABLE IF NOT EXISTS lab_samples (
	sha256 TEXT PRIMARY KEY,
	sha1 TEXT NOT NULL,
	md5 TEXT NOT NULL,
	size INTEGER NOT NULL,
	first_ms INTEGER NOT NULL,
	last_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lab_sightings (
	sha256 TEXT NOT NULL,
	tenant TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	detection TEXT NOT NULL DEFAULT '',
	quarantine_id TEXT NOT NULL DEFAULT '',
	at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS lab_sightings_sha ON lab_sightings(sha256);
CREATE INDEX IF NOT EXISTS lab_sightings_tenant ON lab_sightings(tenant, at_ms);`

// Open opens (creating) the store: samples under dir, the key in keyFile.
func Open(ctx context.Context, db *sql.DB, dir, keyFile string, o Options) (*Store, error) {
	if o.MaxSize <= 0 {
		o.MaxSize = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	key, err := loadKey(keyFile)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("lab key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("lab key: %w", err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("lab schema: %w", err)
	}
	return &Store{db: db, dir: dir, aead: aead, o: o}, nil
}

func loadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("lab key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lab key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("lab key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("lab key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("lab key %s: %d bytes, want 32", path, len(key))
	}
	return key, nil
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *Store) path(sha string) string { return filepath.Join(s.dir, sha[:2], sha) }

// Put stores what r yields as a sample sighted by agent of tenant. The
// bytes are read in full (up to MaxSize) before anything is written.
func (s *Store) Put(ctx context.Context, r io.Reader, sg Sighting) (Sample, error) {
	data, err := io.ReadAll(io.LimitReader(r, s.o.MaxSize+1))
	if err != nil {
		return Sample{}, fmt.Errorf("lab: read sample: %w", err)
	}
	if int64(len(data)) > s.o.MaxSize {
		return Sample{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.o.MaxSize)
	}
	if len(data) == 0 {
		return Sample{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if sg.Tenant == "" || sg.Agent == "" {
		return Sample{}, fmt.Errorf("%w: tenant and agent are required", ErrInvalid)
	}
	s256, s1, m5 := sha256.Sum256(data), sha1.Sum(data), md5.Sum(data)
	smp := Sample{SHA256: hex.EncodeToString(s256[:]), SHA1: hex.EncodeToString(s1[:]), MD5: hex.EncodeToString(m5[:]), Size: int64(len(data))}
	p := s.path(smp.SHA256)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if err := s.write(p, smp.SHA256, data); err != nil {
			return Sample{}, err
		}
	}
	now := s.o.Now().UTC()
	sg.At = now
	sg.Name, sg.Detection = clip(sg.Name, 4096), clip(sg.Detection, 512)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Sample{}, fmt.Errorf("lab: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_samples(sha256, sha1, md5, size, first_ms, last_ms) VALUES (?,?,?,?,?,?)
		ON CONFLICT(sha256) DO UPDATE SET last_ms = excluded.last_ms`, smp.SHA256, smp.SHA1, smp.MD5, smp.Size, now.UnixMilli(), now.UnixMilli()); err != nil {
		return Sample{}, fmt.Errorf("lab: record sample: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_sightings(sha256, tenant, agent_id, name, detection, quarantine_id, at_ms) VALUES (?,?,?,?,?,?,?)`,
		smp.SHA256, sg.Tenant, sg.Agent, sg.Name, sg.Detection, sg.QuarantineID, now.UnixMilli()); err != nil {
		return Sample{}, fmt.Errorf("lab: record sighting: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Sample{}, fmt.Errorf("lab: %w", err)
	}
	s.o.Logger.Info("sample stored", "sha256", smp.SHA256, "size", smp.Size, "tenant", sg.Tenant, "agent", sg.Agent, "detection", sg.Detection)
	return s.Get(ctx, smp.SHA256, []string{sg.Tenant})
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// write encrypts data to p: nonce ‖ ciphertext, read-only, via a temporary
// file so a crash never leaves half a sample under its hash.
func (s *Store) write(p, sha string, data []byte) error {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	out := s.aead.Seal(nonce, nonce, data, []byte(sha))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(out); err != nil {
		f.Close()
		return fmt.Errorf("lab: write sample: %w", err)
	}
	if err := f.Chmod(0o400); err != nil {
		f.Close()
		return fmt.Errorf("lab: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("lab: write sample: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("lab: write sample: %w", err)
	}
	return os.Rename(f.Name(), p)
}

// Content returns a sample's bytes, decrypted and checked against its
// hash. For analysis and bandage making only: never executed.
func (s *Store) Content(sha string) ([]byte, error) {
	if !shaRE.MatchString(sha) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(s.path(sha))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	n := s.aead.NonceSize()
	if len(b) < n {
		return nil, ErrTampered
	}
	data, err := s.aead.Open(nil, b[:n], b[n:], []byte(sha))
	if err != nil {
		return nil, ErrTampered
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		return nil, ErrTampered
	}
	return data, nil
}

// Get returns a sample with the sightings of tenants (nil: all tenants);
// ErrNotFound when none of those tenants sighted it.
func (s *Store) Get(ctx context.Context, sha string, tenants []string) (Sample, error) {
	if !shaRE.MatchString(sha) {
		return Sample{}, ErrNotFound
	}
	var smp Sample
	var first, last int64
	err := s.db.QueryRowContext(ctx, `SELECT sha256, sha1, md5, size, first_ms, last_ms FROM lab_samples WHERE sha256 = ?`, sha).
		Scan(&smp.SHA256, &smp.SHA1, &smp.MD5, &smp.Size, &first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return Sample{}, ErrNotFound
	}
	if err != nil {
		return Sample{}, fmt.Errorf("lab: %w", err)
	}
	smp.FirstSeen, smp.LastSeen = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	q, args := `SELECT tenant, agent_id, name, detection, quarantine_id, at_ms FROM lab_sightings WHERE sha256 = ?`, []any{sha}
	if tenants != nil {
		q += ` AND tenant IN (` + placeholders(len(tenants)) + `)`
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY at_ms`, args...)
	if err != nil {
		return Sample{}, fmt.Errorf("lab: %w", err)
	}
	defer rows.Close()
	smp.Sightings = []Sighting{}
	for rows.Next() {
		var sg Sighting
		var at int64
		if err := rows.Scan(&sg.Tenant, &sg.Agent, &sg.Name, &sg.Detection, &sg.QuarantineID, &at); err != nil {
			return Sample{}, fmt.Errorf("lab: %w", err)
		}
		sg.At = time.UnixMilli(at).UTC()
		smp.Sightings = append(smp.Sightings, sg)
	}
	if err := rows.Err(); err != nil {
		return Sample{}, fmt.Errorf("lab: %w", err)
	}
	if len(smp.Sightings) == 0 {
		return Sample{}, ErrNotFound
	}
	return smp, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// List returns the samples sighted by tenants (nil: all), most recently
// sighted first, without their sightings' details beyond the count.
func (s *Store) List(ctx context.Context, tenants []string, limit int) ([]Sample, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q, args := `SELECT sha256, MAX(at_ms) FROM lab_sightings`, []any{}
	if tenants != nil {
		if len(tenants) == 0 {
			return []Sample{}, nil
		}
		q += ` WHERE tenant IN (` + placeholders(len(tenants)) + `)`
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	q += ` GROUP BY sha256 ORDER BY MAX(at_ms) DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var shas []string
	for rows.Next() {
		var sha string
		var at int64
		if err := rows.Scan(&sha, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("lab: %w", err)
		}
		shas = append(shas, sha)
	}
	rows.Close()
	out := []Sample{}
	for _, sha := range shas {
		smp, err := s.Get(ctx, sha, tenants)
		if err != nil {
			return nil, err
		}
		out = append(out, smp)
	}
	return out, nil
}

// BandageRecord is the exact-hash bandage pattern for a sample, in
// canonical record form: a hash cannot match anything but this file.
// Check name with pattern.ValidName first.
func BandageRecord(smp Sample, name string) string {
	return fmt.Sprintf("hash %s %s:%d", name, smp.SHA256, smp.Size)
}
