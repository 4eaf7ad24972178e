package alert

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// Defaults of Options.
const (
	DefaultWindow = time.Hour
	DefaultLimit  = 100
	MaxLimit      = 1000
)

// Options configures a Store.
type Options struct {
	// Window: a finding updates the open alert of its dedup key when it is
	// at most Window (event time) after that alert's last event.
	Window time.Duration
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Store keeps alerts in the state database. Record is in memory and cheap;
// Commit writes everything recorded so far in one transaction (callers
// acknowledge their input only after it). Safe for concurrent use.
type Store struct {
	db   *sql.DB
	opts Options
	ids  *event.IDGen

	mu    sync.Mutex
	open  map[string]*Alert // dedup key → alert still collecting findings
	dirty map[string]*Alert // id → alert changed since the last commit

	cmu        sync.Mutex // one commit at a time
	exceptions atomic.Pointer[[]*Exception]

	smu  sync.Mutex
	subs map[*subscriber]struct{}

	dropped atomic.Uint64
}

type subscriber struct {
	tenants []string // nil: all
	ch      chan *Alert
}

const schema = `
CREATE TABLE IF NOT EXISTS alerts (
	id TEXT PRIMARY KEY,
	tenant TEXT NOT NULL,
	kind TEXT NOT NULL,
	rule_id TEXT NOT NULL,
	severity TEXT NOT NULL,
	status TEXT NOT NULL,
	dedup_key TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	count INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_updated ON alerts(tenant, updated);
CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts(dedup_key, last_seen);
CREATE TABLE IF NOT EXISTS alert_exceptions (
	id INTEGER PRIMARY KEY,
	body TEXT NOT NULL
);`

// Open prepares the alert tables in db and loads the open alerts of the
// last window (so deduplication continues across a restart) and the
// exceptions.
func Open(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("alert: create tables: %w", err)
	}
	s := &Store{db: db, opts: opts, ids: event.NewIDGen(), open: map[string]*Alert{}, dirty: map[string]*Alert{}, subs: map[*subscriber]struct{}{}}
	if err := s.loadOpen(ctx); err != nil {
		return nil, err
	}
	if err := s.loadExceptions(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) loadOpen(ctx context.Context) error {
	since := s.opts.Now().Add(-s.opts.Window).UnixNano()
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM alerts WHERE updated >= ? AND status != ?`, since, StatusClosed)
	if err != nil {
		return fmt.Errorf("alert: load open alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return fmt.Errorf("alert: load open alerts: %w", err)
		}
		var a Alert
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return fmt.Errorf("alert: decode stored alert: %w", err)
		}
		if cur, ok := s.open[a.DedupKey]; !ok || cur.Updated.Before(a.Updated) {
			s.open[a.DedupKey] = &a
		}
	}
	return rows.Err()
}

// Record adds a finding: it updates the open alert with the same dedup key
// within the window, or starts a new one. It returns a copy of the alert
// and whether it is new. The change is durable after the next Commit.
func (s *Store) Record(f Finding) (*Alert, bool) {
	now := s.opts.Now()
	if f.LastSeen.IsZero() {
		f.LastSeen = now
	}
	if f.FirstSeen.IsZero() || f.FirstSeen.After(f.LastSeen) {
		f.FirstSeen = f.LastSeen
	}
	status := StatusOpen
	var exc int64
	if x := s.exception(&f, now); x != nil {
		status, exc = StatusSuppressed, x.ID
	}
	key := f.dedupKey()
	if status == StatusSuppressed {
		key += "\x00suppressed"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.open[key]; ok && a.Status != StatusClosed && f.FirstSeen.Sub(a.LastSeen) <= s.opts.Window && a.FirstSeen.Sub(f.LastSeen) <= s.opts.Window {
		a.merge(&f)
		a.Updated = now
		s.dirty[a.ID] = a
		return clone(a), false
	}
	a := &Alert{
		ID: s.ids.Next(), Tenant: f.Tenant, Kind: f.Kind, Rule: f.Rule,
		Severity: NormalizeSeverity(f.Severity), Status: status, Exception: exc,
		Tags: slices.Clone(f.Tags), DedupKey: key,
		FirstSeen: f.FirstSeen, LastSeen: f.LastSeen, Created: now, Updated: now,
	}
	a.merge(&f)
	s.open[key] = a
	s.dirty[a.ID] = a
	return clone(a), true
}

// Commit writes every alert recorded before the call, then tells the live
// subscribers about them.
func (s *Store) Commit(ctx context.Context) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.Lock()
	if len(s.dirty) == 0 {
		s.mu.Unlock()
		return nil
	}
	batch := make([]*Alert, 0, len(s.dirty))
	for _, a := range s.dirty {
		batch = append(batch, clone(a))
	}
	s.dirty = map[string]*Alert{}
	s.mu.Unlock()
	if err := s.write(ctx, batch); err != nil {
		// Keep them dirty for the next commit (a newer version may be there).
		s.mu.Lock()
		for _, a := range batch {
			if _, ok := s.dirty[a.ID]; !ok {
				if cur := s.open[a.DedupKey]; cur != nil && cur.ID == a.ID {
					s.dirty[a.ID] = cur
				} else {
					s.dirty[a.ID] = a
				}
			}
		}
		s.mu.Unlock()
		return err
	}
	s.publish(batch)
	s.prune()
	return nil
}

func (s *Store) write(ctx context.Context, batch []*Alert) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("alert: commit: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (id, tenant, kind, rule_id, severity, status, dedup_key, first_seen, last_seen, count, updated, body)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET severity=excluded.severity, status=excluded.status, first_seen=excluded.first_seen,
			last_seen=excluded.last_seen, count=excluded.count, updated=excluded.updated, body=excluded.body`)
	if err != nil {
		return fmt.Errorf("alert: commit: %w", err)
	}
	defer st.Close()
	for _, a := range batch {
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("alert: encode: %w", err)
		}
		if _, err := st.ExecContext(ctx, a.ID, a.Tenant, a.Kind, a.Rule.ID, a.Severity, a.Status, a.DedupKey,
			a.FirstSeen.UnixNano(), a.LastSeen.UnixNano(), a.Count, a.Updated.UnixNano(), string(body)); err != nil {
			return fmt.Errorf("alert: write %s: %w", a.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("alert: commit: %w", err)
	}
	return nil
}

// prune forgets open alerts not updated for a window: a new finding for
// their key starts a new alert anyway.
func (s *Store) prune() {
	cut := s.opts.Now().Add(-2 * s.opts.Window)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.open {
		if a.Updated.Before(cut) {
			if _, dirty := s.dirty[a.ID]; !dirty {
				delete(s.open, k)
			}
		}
	}
}

// Filter selects alerts. Tenants scopes the query (nil: every tenant, for
// admins only — the API always sets it for other callers).
type Filter struct {
	Tenants  []string
	Severity []string // exact severities
	// MinSeverity keeps alerts at or above it.
	MinSeverity string
	// Status: exact statuses; empty means every status but suppressed.
	Status []string
	RuleID string
	Kind   string
	// Since keeps alerts updated at or after it.
	Since time.Time
	Limit int
}

// List returns the alerts matching f, most recently updated first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Alert, error) {
	var where []string
	var args []any
	in := func(col string, vals []string) {
		where = append(where, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if f.Tenants != nil {
		if len(f.Tenants) == 0 {
			return nil, nil
		}
		in("tenant", f.Tenants)
	}
	if len(f.Severity) > 0 {
		for _, sv := range f.Severity {
			if !slices.Contains(Severities, sv) {
				return nil, fmt.Errorf("%w: severity %q (one of %s)", ErrBadFilter, sv, strings.Join(Severities, ", "))
			}
		}
		in("severity", f.Severity)
	}
	if f.MinSeverity != "" {
		r := slices.Index(Severities, f.MinSeverity)
		if r < 0 {
			return nil, fmt.Errorf("%w: severity %q (one of %s)", ErrBadFilter, f.MinSeverity, strings.Join(Severities, ", "))
		}
		in("severity", Severities[r:])
	}
	if len(f.Status) > 0 {
		for _, st := range f.Status {
			if !validStatus(st) {
				return nil, fmt.Errorf("%w: %q", ErrBadStatus, st)
			}
		}
		in("status", f.Status)
	} else {
		where = append(where, "status != ?")
		args = append(args, StatusSuppressed)
	}
	if f.RuleID != "" {
		where = append(where, "rule_id = ?")
		args = append(args, f.RuleID)
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, f.Kind)
	}
	if !f.Since.IsZero() {
		where = append(where, "updated >= ?")
		args = append(args, f.Since.UnixNano())
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	q := "SELECT body FROM alerts"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY updated DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("alert: list: %w", err)
	}
	defer rows.Close()
	var out []*Alert
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("alert: list: %w", err)
		}
		a := &Alert{}
		if err := json.Unmarshal([]byte(body), a); err != nil {
			return nil, fmt.Errorf("alert: decode: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Get returns one alert; tenants scopes it as in Filter.
func (s *Store) Get(ctx context.Context, tenants []string, id string) (*Alert, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM alerts WHERE id = ?`, id).Scan(&body)
	if err == sql.ErrNoRows {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("alert: get: %w", err)
	}
	a := &Alert{}
	if err := json.Unmarshal([]byte(body), a); err != nil {
		return nil, fmt.Errorf("alert: decode: %w", err)
	}
	if tenants != nil && !slices.Contains(tenants, a.Tenant) {
		return nil, ErrNotFound // another tenant's alert does not exist for the caller
	}
	return a, nil
}

func validStatus(s string) bool {
	return s == StatusOpen || s == StatusAcknowledged || s == StatusClosed || s == StatusSuppressed
}

// SetStatus changes an alert's status (an analyst acknowledging or
// closing it). A closed alert collects no more findings: the next one
// starts a new alert.
func (s *Store) SetStatus(ctx context.Context, tenants []string, id, status string) (*Alert, error) {
	if status != StatusOpen && status != StatusAcknowledged && status != StatusClosed {
		return nil, fmt.Errorf("%w: %q (open, acknowledged, closed)", ErrBadStatus, status)
	}
	a, err := s.Get(ctx, tenants, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if cur, ok := s.open[a.DedupKey]; ok && cur.ID == id {
		a = cur
	}
	a.Status = status
	a.Updated = s.opts.Now()
	if status == StatusClosed {
		delete(s.open, a.DedupKey)
	}
	s.dirty[a.ID] = a
	out := clone(a)
	s.mu.Unlock()
	if err := s.Commit(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// Subscribe returns a channel of new and updated alerts of the given
// tenants (nil: all) and a function to stop. A subscriber that does not
// keep up loses alerts (counted in Dropped) rather than slowing detection.
func (s *Store) Subscribe(tenants []string) (<-chan *Alert, func()) {
	sub := &subscriber{tenants: tenants, ch: make(chan *Alert, 256)}
	s.smu.Lock()
	s.subs[sub] = struct{}{}
	s.smu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			s.smu.Lock()
			delete(s.subs, sub)
			s.smu.Unlock()
			close(sub.ch)
		})
	}
}

// Dropped counts alerts not delivered to slow subscribers.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

func (s *Store) publish(batch []*Alert) {
	s.smu.Lock()
	defer s.smu.Unlock()
	for _, a := range batch {
		if a.Status == StatusSuppressed {
			continue
		}
		for sub := range s.subs {
			if sub.tenants != nil && !slices.Contains(sub.tenants, a.Tenant) {
				continue
			}
			select {
			case sub.ch <- a:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

// exception returns the first exception that suppresses f.
func (s *Store) exception(f *Finding, now time.Time) *Exception {
	xs := s.exceptions.Load()
	if xs == nil {
		return nil
	}
	for _, x := range *xs {
		if x.matches(f, now) {
			return x
		}
	}
	return nil
}

func (s *Store) loadExceptions(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, body FROM alert_exceptions ORDER BY id`)
	if err != nil {
		return fmt.Errorf("alert: load exceptions: %w", err)
	}
	defer rows.Close()
	var xs []*Exception
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return fmt.Errorf("alert: load exceptions: %w", err)
		}
		x := &Exception{}
		if err := json.Unmarshal([]byte(body), x); err != nil {
			return fmt.Errorf("alert: decode exception %d: %w", id, err)
		}
		x.ID = id
		if err := x.compile(); err != nil {
			s.opts.Logger.Warn("stored exception no longer valid; ignored", "id", id, "err", err)
			continue
		}
		xs = append(xs, x)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("alert: load exceptions: %w", err)
	}
	s.exceptions.Store(&xs)
	return nil
}

// AddException stores an exception; it applies to findings recorded from
// now on.
func (s *Store) AddException(ctx context.Context, x Exception) (Exception, error) {
	x.Values = slices.Clone(x.Values)
	if err := x.compile(); err != nil {
		return Exception{}, err
	}
	x.Created = s.opts.Now().UTC()
	body, err := json.Marshal(&x)
	if err != nil {
		return Exception{}, fmt.Errorf("alert: encode exception: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO alert_exceptions (body) VALUES (?)`, string(body))
	if err != nil {
		return Exception{}, fmt.Errorf("alert: add exception: %w", err)
	}
	x.ID, _ = res.LastInsertId()
	return x, s.loadExceptions(ctx)
}

// Exceptions lists the exceptions visible to tenants (nil: all); global
// exceptions are visible to everyone.
func (s *Store) Exceptions(tenants []string) []Exception {
	xs := s.exceptions.Load()
	if xs == nil {
		return nil
	}
	var out []Exception
	for _, x := range *xs {
		if tenants == nil || x.Tenant == "" || slices.Contains(tenants, x.Tenant) {
			c := *x
			c.prefixes = nil
			out = append(out, c)
		}
	}
	return out
}

// DeleteException removes an exception. Alerts it suppressed stay
// suppressed; new findings are no longer suppressed by it.
func (s *Store) DeleteException(ctx context.Context, tenants []string, id int64) error {
	found := false
	for _, x := range s.Exceptions(tenants) {
		if x.ID == id && (tenants == nil || x.Tenant != "") {
			found = true
		}
	}
	if !found {
		return ErrNotFound
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM alert_exceptions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("alert: delete exception: %w", err)
	}
	return s.loadExceptions(ctx)
}
