package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("agent not found")
	ErrInvalid  = errors.New("invalid agent report")
)

// Install statuses an agent reports for a release.
const (
	StatusActive     = "active"      // verified, loaded, self-test passed, in use
	StatusFailed     = "failed"      // refused: verification, load or self-test failed
	StatusRolledBack = "rolled_back" // was active, replaced by the last good version
)

// Info is what an agent says about itself.
type Info struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Version  string `json:"version"`
}

// Health is an agent's account of itself: what the rollout's health gates
// judge a release by. The counters are cumulative since the agent process
// started (a restart resets them, which the gates recognise as a counter
// going down); ScanCPUMillis is the mean over those same Scans. The gates
// compare what changed since an agent made a release active with the
// snapshot taken then (see Activations).
type Health struct {
	ScanErrors     int64   `json:"scan_errors"`
	EngineRestarts int64   `json:"engine_restarts"`
	Scans          int64   `json:"scans"`
	ScanCPUMillis  float64 `json:"scan_cpu_ms"` // mean CPU time per scan
	Detections     int64   `json:"detections"`
	CleanHits      int64   `json:"clean_hits"` // detections on known-clean files: false positives
	// SelfTestFailed: the engine's self-test (EICAR found, known-clean
	// files clean) failed on the last load.
	SelfTestFailed bool `json:"self_test_failed"`
}

// Install is one release's state on an agent.
type Install struct {
	Channel string    `json:"channel"`
	Version uint64    `json:"version"`
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
	Error   string    `json:"error,omitempty"`
}

// Agent is an enrolled endpoint.
type Agent struct {
	ID         string             `json:"id"`
	Tenant     string             `json:"tenant"`
	Info       Info               `json:"info"`
	Ring       int                `json:"ring"` // 0–99, stable: rollout rings take the agents below a percentage
	EnrolledAt time.Time          `json:"enrolled_at"`
	LastSeen   time.Time          `json:"last_seen"`
	Health     Health             `json:"health"`
	HealthAt   time.Time          `json:"health_at,omitzero"` // when the server received Health (zero: not since it started)
	Active     map[string]Install `json:"active"`             // channel → the release in use
	// CertSerial is the serial number (hex) of the client certificate
	// issued to the agent, the only one that authenticates it; empty for
	// an agent enrolled with a bearer credential only. CertNotAfter is when
	// it expires.
	CertSerial   string    `json:"cert_serial,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Auth is how the agent last authenticated: AuthMTLS or AuthBearer
	// (empty: not since it enrolled).
	Auth string `json:"auth,omitempty"`
}

// How an agent authenticated (Agent.Auth).
const (
	AuthMTLS   = "mtls"   // its client certificate, on the agents' TLS listener
	AuthBearer = "bearer" // its bearer credential
)

// Options configure a Fleet.
type Options struct {
	Now    func() time.Time
	Logger *slog.Logger
}

// Fleet is the agent registry. Safe for concurrent use.
type Fleet struct {
	db  *sql.DB
	now func() time.Time
	log *slog.Logger

	mu     sync.RWMutex
	agents map[string]*Agent
	byHash map[[32]byte]string // credential hash → agent id
	// acts holds, per release, when each agent made it active (the first
	// report counts); fails which agents refused it.
	acts  map[relKey]map[string]time.Time
	fails map[relKey]map[string]bool
	// base holds, per agent and channel, its health when it made its
	// active release active: the baseline of the health gates. failedAt is
	// when each agent last reported a refusal (server time).
	base     map[baseKey]baseline
	failedAt map[string]time.Time
	dirty    map[string]bool
	dirtyB   map[baseKey]bool
	pending  []pendingInstall
}

type baseKey struct {
	agent, channel string
}

// baseline is an agent's health when it activated version, received at.
type baseline struct {
	version uint64
	health  Health
	at      time.Time
}

type relKey struct {
	channel string
	version uint64
}

type pendingInstall struct {
	agent string
	in    Install
}

const schema = `
CREATE TABLE IF NOT EXISTS fleet_agents (
	id TEXT PRIMARY KEY,
	tenant TEXT NOT NULL,
	cred_hash BLOB NOT NULL UNIQUE,
	info TEXT NOT NULL,
	ring INTEGER NOT NULL,
	enrolled_at INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	health TEXT NOT NULL DEFAULT '{}',
	cert_serial TEXT NOT NULL DEFAULT '',
	cert_not_after INTEGER NOT NULL DEFAULT 0,
	auth TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS fleet_agents_tenant ON fleet_agents(tenant);
CREATE TABLE IF NOT EXISTS fleet_installs (
	agent_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	version INTEGER NOT NULL,
	status TEXT NOT NULL,
	at_ms INTEGER NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (agent_id, channel, version, status)
);
CREATE TABLE IF NOT EXISTS fleet_baselines (
	agent_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	version INTEGER NOT NULL,
	health TEXT NOT NULL,
	at_ms INTEGER NOT NULL,
	PRIMARY KEY (agent_id, channel)
);`

// Open loads the registry from db (creating its tables).
func Open(ctx context.Context, db *sql.DB, o Options) (*Fleet, error) {
	f := &Fleet{db: db, now: o.Now, log: o.Logger, agents: map[string]*Agent{}, byHash: map[[32]byte]string{}, acts: map[relKey]map[string]time.Time{}, fails: map[relKey]map[string]bool{},
		base: map[baseKey]baseline{}, failedAt: map[string]time.Time{}, dirty: map[string]bool{}, dirtyB: map[baseKey]bool{}}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("fleet schema: %w", err)
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT id, tenant, cred_hash, info, ring, enrolled_at, last_seen, health, cert_serial, cert_not_after, auth FROM fleet_agents`)
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a Agent
		var info, health string
		var enrolled, seen, certNotAfter int64
		var hash []byte
		if err := rows.Scan(&a.ID, &a.Tenant, &hash, &info, &a.Ring, &enrolled, &seen, &health, &a.CertSerial, &certNotAfter, &a.Auth); err != nil {
			return nil, fmt.Errorf("load agents: %w", err)
		}
		if len(hash) == sha256.Size {
			f.byHash[[32]byte(hash)] = a.ID
		}
		_ = json.Unmarshal([]byte(info), &a.Info)
		_ = json.Unmarshal([]byte(health), &a.Health)
		a.EnrolledAt, a.LastSeen = time.Unix(enrolled, 0).UTC(), time.Unix(seen, 0).UTC()
		if certNotAfter > 0 {
			a.CertNotAfter = time.Unix(certNotAfter, 0).UTC()
		}
		a.Active = map[string]Install{}
		f.agents[a.ID] = &a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	irows, err := db.QueryContext(ctx, `SELECT agent_id, channel, version, status, at_ms, error FROM fleet_installs ORDER BY at_ms`)
	if err != nil {
		return nil, fmt.Errorf("load installs: %w", err)
	}
	defer irows.Close()
	for irows.Next() {
		var id string
		var in Install
		var at int64
		if err := irows.Scan(&id, &in.Channel, &in.Version, &in.Status, &at, &in.Error); err != nil {
			return nil, fmt.Errorf("load installs: %w", err)
		}
		in.At = time.UnixMilli(at).UTC()
		f.apply(id, in)
	}
	if err := irows.Err(); err != nil {
		return nil, fmt.Errorf("load installs: %w", err)
	}
	if err := f.loadBaselines(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// migrate adds the columns a registry made by an older server lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('fleet_agents')`)
	if err != nil {
		return fmt.Errorf("fleet schema: %w", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("fleet schema: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("fleet schema: %w", err)
	}
	for _, c := range []struct{ name, def string }{
		{"cert_serial", "TEXT NOT NULL DEFAULT ''"},
		{"cert_not_after", "INTEGER NOT NULL DEFAULT 0"},
		{"auth", "TEXT NOT NULL DEFAULT ''"},
	} {
		if have[c.name] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE fleet_agents ADD COLUMN `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("fleet schema: add %s: %w", c.name, err)
		}
	}
	return nil
}

func (f *Fleet) loadBaselines(ctx context.Context) error {
	rows, err := f.db.QueryContext(ctx, `SELECT agent_id, channel, version, health, at_ms FROM fleet_baselines`)
	if err != nil {
		return fmt.Errorf("load health baselines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k baseKey
		var b baseline
		var health string
		var at int64
		if err := rows.Scan(&k.agent, &k.channel, &b.version, &health, &at); err != nil {
			return fmt.Errorf("load health baselines: %w", err)
		}
		if _, ok := f.agents[k.agent]; !ok {
			continue
		}
		_ = json.Unmarshal([]byte(health), &b.health)
		b.at = time.UnixMilli(at).UTC()
		f.base[k] = b
	}
	return rows.Err()
}

// ringOf places an agent id in 0–99, uniformly and stably.
func ringOf(id string) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % 100)
}

func randomHex(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Enroll registers a new agent of tenant, written through to the database.
// It returns the agent's credential, shown this once: only its SHA-256 is
// kept.
func (f *Fleet) Enroll(ctx context.Context, tenant string, info Info) (Agent, string, error) {
	now := f.now().UTC()
	a := &Agent{ID: randomHex("agt_", 12), Tenant: tenant, Info: info, EnrolledAt: now, LastSeen: now, Active: map[string]Install{}}
	a.Ring = ringOf(a.ID)
	secret := randomHex("mma_", 32)
	hash := sha256.Sum256([]byte(secret))
	infoJSON, _ := json.Marshal(info)
	if _, err := f.db.ExecContext(ctx, `INSERT INTO fleet_agents(id, tenant, cred_hash, info, ring, enrolled_at, last_seen) VALUES (?,?,?,?,?,?,?)`,
		a.ID, tenant, hash[:], string(infoJSON), a.Ring, now.Unix(), now.Unix()); err != nil {
		return Agent{}, "", fmt.Errorf("enroll: %w", err)
	}
	f.mu.Lock()
	f.agents[a.ID] = a
	f.byHash[hash] = a.ID
	f.mu.Unlock()
	return a.clone(), secret, nil
}

// Authenticate returns the agent whose credential secret is, without
// touching the database (agents call often; thousands at once after a
// release).
func (f *Fleet) Authenticate(secret string) (id, tenant string, ok bool) {
	hash := sha256.Sum256([]byte(secret))
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok = f.byHash[hash]
	if !ok {
		return "", "", false
	}
	return id, f.agents[id].Tenant, true
}

// SetCertificate records the client certificate issued to agent id,
// written through: from now on a certificate authenticates the agent only
// with this serial (one issued before, e.g. to a key since replaced, no
// longer does).
func (f *Fleet) SetCertificate(ctx context.Context, id, serial string, notAfter time.Time) error {
	f.mu.RLock()
	_, ok := f.agents[id]
	f.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	if _, err := f.db.ExecContext(ctx, `UPDATE fleet_agents SET cert_serial = ?, cert_not_after = ? WHERE id = ?`, serial, notAfter.Unix(), id); err != nil {
		return fmt.Errorf("record certificate: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agents[id]
	if !ok { // removed meanwhile
		return ErrNotFound
	}
	a.CertSerial, a.CertNotAfter = serial, notAfter.UTC()
	return nil
}

// AuthenticateCert returns the tenant of agent id when serial is that of
// the certificate recorded for it (the TLS layer verified the chain). A
// removed agent, or a certificate superseded by a newer one, does not
// authenticate. In memory, like Authenticate.
func (f *Fleet) AuthenticateCert(id, serial string) (tenant string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.agents[id]
	if !ok || a.CertSerial == "" || a.CertSerial != serial {
		return "", false
	}
	return a.Tenant, true
}

// NoteAuth records how agent id last authenticated (AuthMTLS or
// AuthBearer); written behind like heartbeats. Cheap when unchanged: every
// agent request calls it.
func (f *Fleet) NoteAuth(id, method string) {
	f.mu.RLock()
	a, ok := f.agents[id]
	same := ok && a.Auth == method
	f.mu.RUnlock()
	if !ok || same {
		return
	}
	f.mu.Lock()
	if a, ok := f.agents[id]; ok {
		a.Auth = method
		f.dirty[id] = true
	}
	f.mu.Unlock()
}

// Remove forgets an agent (its install history stays for the record).
func (f *Fleet) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	_, ok := f.agents[id]
	delete(f.agents, id)
	delete(f.dirty, id)
	delete(f.failedAt, id)
	for k := range f.base {
		if k.agent == id {
			delete(f.base, k)
			delete(f.dirtyB, k)
		}
	}
	for h, x := range f.byHash {
		if x == id {
			delete(f.byHash, h)
		}
	}
	f.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	if _, err := f.db.ExecContext(ctx, `DELETE FROM fleet_agents WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove agent: %w", err)
	}
	if _, err := f.db.ExecContext(ctx, `DELETE FROM fleet_baselines WHERE agent_id = ?`, id); err != nil {
		return fmt.Errorf("remove agent: %w", err)
	}
	return nil
}

// Heartbeat records that agent id is alive, with its info and health.
func (f *Fleet) Heartbeat(id string, info Info, h Health) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agents[id]
	if !ok {
		return ErrNotFound
	}
	now := f.now().UTC()
	a.Info, a.Health, a.LastSeen, a.HealthAt = info, h, now, now
	f.dirty[id] = true
	return nil
}

// Report records an install state of agent id.
func (f *Fleet) Report(id string, in Install) error {
	if in.Channel == "" || in.Version == 0 {
		return fmt.Errorf("%w: channel and version are required", ErrInvalid)
	}
	switch in.Status {
	case StatusActive, StatusFailed, StatusRolledBack:
	default:
		return fmt.Errorf("%w: status %q", ErrInvalid, in.Status)
	}
	if in.At.IsZero() {
		in.At = f.now()
	}
	in.At = in.At.UTC()
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.agents[id]
	if !ok {
		return ErrNotFound
	}
	now := f.now().UTC()
	a.LastSeen = now
	f.dirty[id] = true
	switch k := (baseKey{id, in.Channel}); in.Status {
	case StatusActive:
		// The health reported so far is the baseline a newly active
		// release is judged against; a repeated report keeps the first.
		if b, ok := f.base[k]; !ok || b.version != in.Version || a.Active[in.Channel].Version != in.Version {
			f.base[k] = baseline{version: in.Version, health: a.Health, at: now}
			f.dirtyB[k] = true
		}
	case StatusFailed:
		f.failedAt[id] = now
	}
	f.apply(id, in)
	f.pending = append(f.pending, pendingInstall{id, in})
	return nil
}

// apply updates the in-memory view; f.mu held (or not yet shared).
func (f *Fleet) apply(id string, in Install) {
	a := f.agents[id]
	switch in.Status {
	case StatusActive:
		k := relKey{in.Channel, in.Version}
		if f.acts[k] == nil {
			f.acts[k] = map[string]time.Time{}
		}
		if _, seen := f.acts[k][id]; !seen {
			f.acts[k][id] = in.At
		}
		if a != nil {
			a.Active[in.Channel] = in
		}
	case StatusFailed:
		k := relKey{in.Channel, in.Version}
		if f.fails[k] == nil {
			f.fails[k] = map[string]bool{}
		}
		f.fails[k][id] = true
	case StatusRolledBack:
		if a != nil && a.Active[in.Channel].Version == in.Version {
			delete(a.Active, in.Channel)
		}
	}
}

// Get returns agent id.
func (f *Fleet) Get(id string) (Agent, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.agents[id]
	if !ok {
		return Agent{}, false
	}
	return a.clone(), true
}

// Count is the number of enrolled agents.
func (f *Fleet) Count() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.agents)
}

// List returns the agents of tenant ("" for all), by id.
func (f *Fleet) List(tenant string) []Agent {
	f.mu.RLock()
	out := make([]Agent, 0, len(f.agents))
	for _, a := range f.agents {
		if tenant == "" || a.Tenant == tenant {
			out = append(out, a.clone())
		}
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *Agent) clone() Agent {
	c := *a
	c.Active = make(map[string]Install, len(a.Active))
	for k, v := range a.Active {
		c.Active[k] = v
	}
	return c
}

// Activation is one agent's health around its activation of a release:
// the baseline the rollout's health gates compare with, and the latest.
type Activation struct {
	Agent  string    `json:"agent"`
	Tenant string    `json:"tenant"`
	At     time.Time `json:"at"`     // when the server received the active report
	Before Health    `json:"before"` // the last health reported before that
	After  Health    `json:"after"`  // the last health reported
	// AfterAt is when After arrived; not after At: nothing reported since
	// the activation (or since the server started) yet.
	AfterAt time.Time `json:"after_at"`
	// FailedAt is when the agent last refused a release (any channel);
	// a refusal after At explains a failed self-test in After.
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// Activations returns the agents that have release (channel, version)
// active and a health baseline for it, by agent id.
func (f *Fleet) Activations(channel string, version uint64) []Activation {
	f.mu.RLock()
	var out []Activation
	for id, a := range f.agents {
		if a.Active[channel].Version != version {
			continue
		}
		b, ok := f.base[baseKey{id, channel}]
		if !ok || b.version != version {
			continue // active before baselines were kept
		}
		out = append(out, Activation{Agent: id, Tenant: a.Tenant, At: b.at, Before: b.health, After: a.Health, AfterAt: a.HealthAt, FailedAt: f.failedAt[id]})
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// Reached returns the enrolled agents that reported on release (channel,
// version): made it active at some point, or refused it.
func (f *Fleet) Reached(channel string, version uint64) []string {
	k := relKey{channel, version}
	f.mu.RLock()
	var out []string
	for id := range f.acts[k] {
		if _, ok := f.agents[id]; ok {
			out = append(out, id)
		}
	}
	for id := range f.fails[k] {
		if _, active := f.acts[k][id]; !active {
			if _, ok := f.agents[id]; ok {
				out = append(out, id)
			}
		}
	}
	f.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Tenant returns the tenant of agent id.
func (f *Fleet) Tenant(id string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.agents[id]
	if !ok {
		return "", false
	}
	return a.Tenant, true
}

// Protection is the time to protect of one release for one tenant.
type Protection struct {
	Tenant      string    `json:"tenant"`
	Channel     string    `json:"channel"`
	Version     uint64    `json:"version"`
	PublishedAt time.Time `json:"published_at"`
	Agents      int       `json:"agents"` // the tenant's enrolled agents
	Active      int       `json:"active"` // of them, those that made the release active
	Failed      int       `json:"failed"` // those that refused it (verification, load or self-test)
	// Seconds from publication until half, 99 % and all of the agents had
	// the release active; nil while not reached.
	P50 *float64 `json:"p50_seconds"`
	P99 *float64 `json:"p99_seconds"`
	All *float64 `json:"all_seconds"`
}

// Protection computes the time to protect of release (channel, version),
// published at published, for tenant ("" for every tenant).
func (f *Fleet) Protection(tenant, channel string, version uint64, published time.Time) Protection {
	p := Protection{Tenant: tenant, Channel: channel, Version: version, PublishedAt: published.UTC()}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, a := range f.agents {
		if tenant == "" || a.Tenant == tenant {
			p.Agents++
		}
	}
	var secs []float64
	for id, at := range f.acts[relKey{channel, version}] {
		a, ok := f.agents[id]
		if !ok || (tenant != "" && a.Tenant != tenant) {
			continue
		}
		secs = append(secs, math.Max(0, at.Sub(published).Seconds()))
	}
	slices.Sort(secs)
	p.Active = len(secs)
	for id := range f.fails[relKey{channel, version}] {
		if a, ok := f.agents[id]; ok && (tenant == "" || a.Tenant == tenant) {
			p.Failed++
		}
	}
	at := func(q float64) *float64 {
		need := int(math.Ceil(q * float64(p.Agents)))
		if p.Agents == 0 || need > len(secs) {
			return nil
		}
		v := secs[max(need, 1)-1]
		return &v
	}
	p.P50, p.P99, p.All = at(0.5), at(0.99), at(1)
	return p
}

// Flush writes the heartbeats and installs received since the last flush
// in one transaction.
func (f *Fleet) Flush(ctx context.Context) error {
	f.mu.Lock()
	dirty := make([]Agent, 0, len(f.dirty))
	for id := range f.dirty {
		if a, ok := f.agents[id]; ok {
			dirty = append(dirty, a.clone())
		}
	}
	pending := f.pending
	bases := make(map[baseKey]baseline, len(f.dirtyB))
	for k := range f.dirtyB {
		if b, ok := f.base[k]; ok {
			bases[k] = b
		}
	}
	f.dirty, f.dirtyB, f.pending = map[string]bool{}, map[baseKey]bool{}, nil
	f.mu.Unlock()
	if len(dirty) == 0 && len(pending) == 0 && len(bases) == 0 {
		return nil
	}
	err := f.write(ctx, dirty, pending, bases)
	if err != nil {
		// Keep them for the next flush.
		f.mu.Lock()
		for _, a := range dirty {
			if _, ok := f.agents[a.ID]; ok {
				f.dirty[a.ID] = true
			}
		}
		for k := range bases {
			if _, ok := f.base[k]; ok {
				f.dirtyB[k] = true
			}
		}
		f.pending = append(pending, f.pending...)
		f.mu.Unlock()
	}
	return err
}

func (f *Fleet) write(ctx context.Context, dirty []Agent, pending []pendingInstall, bases map[baseKey]baseline) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("fleet flush: %w", err)
	}
	defer tx.Rollback()
	// After a release every agent is dirty at once: each statement is
	// prepared once per flush, not parsed again for every row.
	exec := func(query string, rows int, args func(i int) []any) error {
		if rows == 0 {
			return nil
		}
		st, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("fleet flush: %w", err)
		}
		defer st.Close()
		for i := range rows {
			if _, err := st.ExecContext(ctx, args(i)...); err != nil {
				return fmt.Errorf("fleet flush: %w", err)
			}
		}
		return nil
	}
	if err := exec(`UPDATE fleet_agents SET info = ?, last_seen = ?, health = ?, auth = ? WHERE id = ?`, len(dirty), func(i int) []any {
		a := dirty[i]
		info, _ := json.Marshal(a.Info)
		health, _ := json.Marshal(a.Health)
		return []any{string(info), a.LastSeen.Unix(), string(health), a.Auth, a.ID}
	}); err != nil {
		return err
	}
	if err := exec(`INSERT OR REPLACE INTO fleet_installs(agent_id, channel, version, status, at_ms, error) VALUES (?,?,?,?,?,?)`, len(pending), func(i int) []any {
		p := pending[i]
		return []any{p.agent, p.in.Channel, p.in.Version, p.in.Status, p.in.At.UnixMilli(), p.in.Error}
	}); err != nil {
		return err
	}
	keys := make([]baseKey, 0, len(bases))
	for k := range bases {
		keys = append(keys, k)
	}
	if err := exec(`INSERT OR REPLACE INTO fleet_baselines(agent_id, channel, version, health, at_ms) VALUES (?,?,?,?,?)`, len(keys), func(i int) []any {
		k, b := keys[i], bases[keys[i]]
		health, _ := json.Marshal(b.health)
		return []any{k.agent, k.channel, b.version, string(health), b.at.UnixMilli()}
	}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("fleet flush: %w", err)
	}
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (f *Fleet) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := f.Flush(context.WithoutCancel(ctx)); err != nil {
				f.log.Error("fleet flush at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := f.Flush(ctx); err != nil {
				f.log.Warn("fleet flush", "err", err)
			}
		}
	}
}
