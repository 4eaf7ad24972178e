package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrInvalidName   = errors.New("invalid tenant name")
	ErrInvalidToken  = errors.New("invalid token")
	ErrInvalidSource = errors.New("invalid source mapping")
)

// Token kinds.
const (
	TokenAdmin  = "admin"  // every tenant, every endpoint
	TokenIngest = "ingest" // one tenant, ingest only
	TokenRead   = "read"   // one tenant, read endpoints
	TokenEnroll = "enroll" // one tenant, enrolls endpoint agents (whose own credentials live in the fleet)
)

// Mapping kinds.
const (
	MapCIDR        = "cidr"
	MapCertSubject = "cert_subject"
)

// Tenant is a customer organisation.
type Tenant struct {
	ID        uint32        `json:"id"`
	Name      string        `json:"name"`
	Retention time.Duration `json:"-"`
	CreatedAt time.Time     `json:"created_at"`
}

// Token is an API token's stored description (the secret itself is only
// returned once, at creation).
type Token struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Tenant    string    `json:"tenant,omitempty"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Mapping assigns a log source to a tenant.
type Mapping struct {
	ID     int64  `json:"id"`
	Tenant string `json:"tenant"`
	Kind   string `json:"kind"`
	Value  string `json:"value"`
}

// DB is the state database.
type DB struct {
	db *sql.DB

	mu      sync.RWMutex
	tenants map[string]Tenant // cache by name; tenants are few and read on every event
}

var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidTenantName reports whether name can be a tenant: lower-case letters,
// digits, '-' and '_', at most 63 characters.
func ValidTenantName(name string) bool { return tenantName.MatchString(name) }

var migrations = []string{
	`CREATE TABLE tenants (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		retention_seconds INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE tokens (
		id INTEGER PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		kind TEXT NOT NULL,
		tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
		name TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL
	);
	CREATE TABLE source_mappings (
		id INTEGER PRIMARY KEY,
		tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
		kind TEXT NOT NULL,
		value TEXT NOT NULL,
		UNIQUE(kind, value)
	);`,
}

// Open opens (creating if needed) the SQLite database at path and migrates it.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state db: %w", err)
	}
	sdb.SetMaxOpenConns(1) // SQLite has one writer; one connection avoids SQLITE_BUSY
	d := &DB{db: sdb}
	if err := d.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if err := d.reload(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var v int
	if err := d.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version),0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for i := v; i < len(migrations); i++ {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

func (d *DB) reload(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, `SELECT id, name, retention_seconds, created_at FROM tenants`)
	if err != nil {
		return fmt.Errorf("load tenants: %w", err)
	}
	defer rows.Close()
	m := map[string]Tenant{}
	for rows.Next() {
		var t Tenant
		var ret, created int64
		if err := rows.Scan(&t.ID, &t.Name, &ret, &created); err != nil {
			return fmt.Errorf("load tenants: %w", err)
		}
		t.Retention = time.Duration(ret) * time.Second
		t.CreatedAt = time.Unix(created, 0).UTC()
		m[t.Name] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load tenants: %w", err)
	}
	d.mu.Lock()
	d.tenants = m
	d.mu.Unlock()
	return nil
}

// AddTenant creates a tenant. retention 0 means the server default.
func (d *DB) AddTenant(ctx context.Context, name string, retention time.Duration) (Tenant, error) {
	if !ValidTenantName(name) {
		return Tenant{}, fmt.Errorf("%w: %q (lower-case letters, digits, - and _, at most 63)", ErrInvalidName, name)
	}
	now := time.Now().UTC().Truncate(time.Second)
	res, err := d.db.ExecContext(ctx, `INSERT INTO tenants(name, retention_seconds, created_at) VALUES (?,?,?)`, name, int64(retention/time.Second), now.Unix())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Tenant{}, fmt.Errorf("tenant %q: %w", name, ErrExists)
		}
		return Tenant{}, fmt.Errorf("add tenant: %w", err)
	}
	id, _ := res.LastInsertId()
	t := Tenant{ID: uint32(id), Name: name, Retention: retention, CreatedAt: now}
	d.mu.Lock()
	d.tenants[name] = t
	d.mu.Unlock()
	return t, nil
}

// EnsureTenant returns the tenant, creating it when missing.
func (d *DB) EnsureTenant(ctx context.Context, name string) (Tenant, error) {
	if t, ok := d.Tenant(name); ok {
		return t, nil
	}
	t, err := d.AddTenant(ctx, name, 0)
	if errors.Is(err, ErrExists) {
		if t, ok := d.Tenant(name); ok {
			return t, nil
		}
	}
	return t, err
}

// Tenant looks a tenant up by name (from the in-memory cache).
func (d *DB) Tenant(name string) (Tenant, bool) {
	d.mu.RLock()
	t, ok := d.tenants[name]
	d.mu.RUnlock()
	return t, ok
}

// TenantID returns the numeric id of a tenant; it is the store's tenant key.
func (d *DB) TenantID(name string) (uint32, error) {
	t, ok := d.Tenant(name)
	if !ok {
		return 0, fmt.Errorf("tenant %q: %w", name, ErrNotFound)
	}
	return t.ID, nil
}

// Tenants lists tenants sorted by name.
func (d *DB) Tenants() []Tenant {
	d.mu.RLock()
	out := make([]Tenant, 0, len(d.tenants))
	for _, t := range d.tenants {
		out = append(out, t)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b Tenant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// NewSecret returns a random token secret with a recognisable prefix.
func NewSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "mmr_" + hex.EncodeToString(b[:])
}

// CreateToken stores a token and returns its secret (shown once). For an
// admin token tenant must be empty; otherwise it must exist.
func (d *DB) CreateToken(ctx context.Context, kind, tenant, name string) (string, Token, error) {
	secret := NewSecret()
	tok, err := d.AddTokenSecret(ctx, secret, kind, tenant, name)
	return secret, tok, err
}

// AddTokenSecret stores a token whose secret the caller chose (e.g. a preset
// MAMORI_ADMIN_TOKEN). Only its SHA-256 is kept.
func (d *DB) AddTokenSecret(ctx context.Context, secret, kind, tenant, name string) (Token, error) {
	if len(secret) < 16 {
		return Token{}, fmt.Errorf("%w: a token needs at least 16 characters", ErrInvalidToken)
	}
	var tenantID any
	switch kind {
	case TokenAdmin:
		if tenant != "" {
			return Token{}, fmt.Errorf("%w: an admin token has no tenant", ErrInvalidToken)
		}
	case TokenIngest, TokenRead, TokenEnroll:
		t, ok := d.Tenant(tenant)
		if !ok {
			return Token{}, fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
		}
		tenantID = t.ID
	default:
		return Token{}, fmt.Errorf("%w: unknown kind %q (admin, ingest, read, enroll)", ErrInvalidToken, kind)
	}
	now := time.Now().UTC().Truncate(time.Second)
	res, err := d.db.ExecContext(ctx, `INSERT INTO tokens(hash, kind, tenant_id, name, created_at) VALUES (?,?,?,?,?)`, hashToken(secret), kind, tenantID, name, now.Unix())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Token{}, fmt.Errorf("token: %w", ErrExists)
		}
		return Token{}, fmt.Errorf("create token: %w", err)
	}
	id, _ := res.LastInsertId()
	return Token{ID: id, Kind: kind, Tenant: tenant, Name: name, CreatedAt: now}, nil
}

// LookupToken resolves a presented secret. It returns ErrInvalidToken when
// no such token exists.
func (d *DB) LookupToken(ctx context.Context, secret string) (Token, error) {
	var t Token
	var tenant sql.NullString
	var created int64
	err := d.db.QueryRowContext(ctx, `SELECT tk.id, tk.kind, t.name, tk.name, tk.created_at FROM tokens tk LEFT JOIN tenants t ON t.id = tk.tenant_id WHERE tk.hash = ?`, hashToken(secret)).
		Scan(&t.ID, &t.Kind, &tenant, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrInvalidToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("lookup token: %w", err)
	}
	t.Tenant = tenant.String
	t.CreatedAt = time.Unix(created, 0).UTC()
	return t, nil
}

// CountTokens counts tokens of a kind.
func (d *DB) CountTokens(ctx context.Context, kind string) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE kind = ?`, kind).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", err)
	}
	return n, nil
}

// AddMapping maps a source (a CIDR or a TLS client certificate subject) to a tenant.
func (d *DB) AddMapping(ctx context.Context, tenant, kind, value string) (Mapping, error) {
	t, ok := d.Tenant(tenant)
	if !ok {
		return Mapping{}, fmt.Errorf("tenant %q: %w", tenant, ErrNotFound)
	}
	switch kind {
	case MapCIDR:
		p, err := netip.ParsePrefix(value)
		if err != nil {
			a, aerr := netip.ParseAddr(value)
			if aerr != nil {
				return Mapping{}, fmt.Errorf("%w: %q is not a CIDR or address", ErrInvalidSource, value)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		value = p.Masked().String()
	case MapCertSubject:
		if strings.TrimSpace(value) == "" {
			return Mapping{}, fmt.Errorf("%w: empty certificate subject", ErrInvalidSource)
		}
	default:
		return Mapping{}, fmt.Errorf("%w: unknown kind %q (cidr, cert_subject)", ErrInvalidSource, kind)
	}
	res, err := d.db.ExecContext(ctx, `INSERT INTO source_mappings(tenant_id, kind, value) VALUES (?,?,?)`, t.ID, kind, value)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Mapping{}, fmt.Errorf("%s %s: %w", kind, value, ErrExists)
		}
		return Mapping{}, fmt.Errorf("add mapping: %w", err)
	}
	id, _ := res.LastInsertId()
	return Mapping{ID: id, Tenant: tenant, Kind: kind, Value: value}, nil
}

// Mappings lists all source mappings.
func (d *DB) Mappings(ctx context.Context) ([]Mapping, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT m.id, t.name, m.kind, m.value FROM source_mappings m JOIN tenants t ON t.id = m.tenant_id ORDER BY t.name, m.kind, m.value`)
	if err != nil {
		return nil, fmt.Errorf("list mappings: %w", err)
	}
	defer rows.Close()
	var out []Mapping
	for rows.Next() {
		var m Mapping
		if err := rows.Scan(&m.ID, &m.Tenant, &m.Kind, &m.Value); err != nil {
			return nil, fmt.Errorf("list mappings: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SQL returns the underlying database, for domain packages that keep their
// own tables in the same file (intel, alerts). They create their tables
// themselves, with IF NOT EXISTS.
func (d *DB) SQL() *sql.DB { return d.db }
