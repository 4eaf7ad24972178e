package intel

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// schema: one row per indicator, its sources as a JSON array (always read
// and written whole, with the indicator). expires is the last source's
// expiry in Unix seconds (0: never), for purging in SQL if ever needed.
const schema = `
CREATE TABLE IF NOT EXISTS intel_indicators (
	tenant  TEXT NOT NULL,
	type    TEXT NOT NULL,
	value   TEXT NOT NULL,
	sources TEXT NOT NULL,
	expires INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	PRIMARY KEY (tenant, type, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS intel_indicators_expires ON intel_indicators(expires) WHERE expires > 0;
`

const upsertSQL = `INSERT INTO intel_indicators (tenant, type, value, sources, expires, updated)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, type, value) DO UPDATE SET sources = excluded.sources, expires = excluded.expires, updated = excluded.updated`

// Store keeps the indicators: all of them in memory and persisted in
// SQLite. The in-memory copy is the matcher's (one copy, pointer-free, see
// rec): Get and List read it. Writers are serialized; readers (List, Get,
// Match) run concurrently with them.
type Store struct {
	db  *sql.DB
	log *slog.Logger
	now func() time.Time
	m   *Matcher

	wmu sync.Mutex // one writer at a time, for the whole read-modify-write

	mu      sync.Mutex // guards onAdded
	onAdded []func([]*Indicator)
}

// Option configures a Store.
type Option func(*Store)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithClock sets the clock used for expiry (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open creates the intel_* tables in db when missing (SQLite, driver
// "sqlite") and loads every stored indicator into memory and the matcher.
func Open(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	s := &Store{db: db, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "intel")
	s.m = NewMatcher(s.now)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("intel: create tables: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT tenant, type, value, sources FROM intel_indicators`)
	if err != nil {
		return nil, fmt.Errorf("intel: load indicators: %w", err)
	}
	defer rows.Close()
	loaded := make([]*Indicator, 0, 1024)
	skipped := 0
	for rows.Next() {
		ind := &Indicator{}
		var typ, sources string
		if err := rows.Scan(&ind.Tenant, &typ, &ind.Value, &sources); err != nil {
			return nil, fmt.Errorf("intel: load indicators: %w", err)
		}
		ind.Type = Type(typ)
		if err := json.Unmarshal([]byte(sources), &ind.Sources); err != nil {
			skipped++
			s.log.Warn("skipping stored indicator with unreadable sources", "indicator", ind.Key().String(), "err", err)
			continue
		}
		if _, _, _, _, ok := keyOf(ind.Type, ind.Value); !ok {
			skipped++
			s.log.Warn("skipping stored indicator of unknown type or bad value", "indicator", ind.Key().String())
			continue
		}
		loaded = append(loaded, ind)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intel: load indicators: %w", err)
	}
	s.m.Replace(loaded)
	s.log.Info("indicators loaded", "count", len(loaded), "skipped", skipped)
	return s, nil
}

// Matcher returns the store's matcher (always current with the store).
func (s *Store) Matcher() *Matcher { return s.m }

// Match is s.Matcher().Match.
func (s *Store) Match(e *event.Event, fn func(Hit)) { s.m.Match(e, fn) }

// Len is the number of indicators.
func (s *Store) Len() int { return s.m.Len() }

// OnAdded registers fn to be called after every Add that created
// indicators or gave existing ones a new or updated source, with those
// indicators in their merged state (e.g. to start a retro-hunt). fn runs on
// the caller's goroutine after the data is committed; it must not block
// for long and must not modify the indicators.
func (s *Store) OnAdded(fn func(added []*Indicator)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAdded = append(s.onAdded, fn)
}

// AddResult counts what Add did.
type AddResult struct {
	New       int // indicators that did not exist
	Updated   int // existing indicators that got a new or changed source
	Unchanged int // reports identical to what was stored
}

// Add upserts indicators: an existing indicator (same tenant, type and
// value) merges the sources (see mergeSources), a new one is created. Every
// indicator is validated first; if one is invalid nothing is written and
// the error names it. One transaction per call.
func (s *Store) Add(ctx context.Context, inds []Indicator) (AddResult, error) {
	var res AddResult
	batch := make(map[Key]*Indicator, len(inds))
	order := make([]Key, 0, len(inds))
	for i := range inds {
		ind := inds[i].Clone()
		if err := ind.Validate(); err != nil {
			return res, fmt.Errorf("intel: add: indicator %d: %w", i, err)
		}
		k := ind.Key()
		if prev, ok := batch[k]; ok {
			prev.Sources, _ = mergeSources(prev.Sources, ind.Sources)
			continue
		}
		batch[k] = ind
		order = append(order, k)
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	changed := make([]*Indicator, 0, len(order))
	x := s.m.snap.Load() // current: writers hold wmu
	for _, k := range order {
		ind := batch[k]
		id, ok := x.get(k)
		if !ok {
			res.New++
			changed = append(changed, ind)
			continue
		}
		merged, diff := mergeSources(x.decode(id).Sources, ind.Sources)
		if !diff {
			res.Unchanged++
			continue
		}
		res.Updated++
		ind.Sources = merged
		changed = append(changed, ind)
	}
	if len(changed) == 0 {
		return res, nil
	}
	if err := s.write(ctx, changed); err != nil {
		return AddResult{}, err
	}
	s.mu.Lock()
	callbacks := slices.Clone(s.onAdded)
	s.mu.Unlock()
	s.m.Update(changed, nil)
	for _, fn := range callbacks {
		fn(changed)
	}
	return res, nil
}

// write upserts the indicators in one transaction with one prepared
// statement (the fast path SQLite offers for bulk loads), in primary-key
// order so the B-tree grows by appends instead of random page splits
// (a third faster for a million rows).
func (s *Store) write(ctx context.Context, inds []*Indicator) error {
	inds = slices.Clone(inds)
	slices.SortFunc(inds, func(a, b *Indicator) int { return compareKeys(a.Key(), b.Key()) })
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("intel: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, upsertSQL)
	if err != nil {
		return fmt.Errorf("intel: prepare upsert: %w", err)
	}
	defer stmt.Close()
	now := s.now().Unix()
	for _, ind := range inds {
		src, err := json.Marshal(ind.Sources)
		if err != nil {
			return fmt.Errorf("intel: encode %s: %w", ind.Key(), err)
		}
		var exp int64
		if e := ind.Expires(); !e.IsZero() {
			exp = e.Unix()
		}
		if _, err := stmt.ExecContext(ctx, ind.Tenant, string(ind.Type), ind.Value, string(src), exp, now); err != nil {
			return fmt.Errorf("intel: store %s: %w", ind.Key(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("intel: commit: %w", err)
	}
	return nil
}

// Remove deletes indicators by key and returns how many existed. Keys are
// normalized first, so a key typed by a person works.
func (s *Store) Remove(ctx context.Context, keys ...Key) (int, error) {
	norm := make([]Key, 0, len(keys))
	for _, k := range keys {
		t, v, err := Normalize(k.Type, k.Value)
		if err != nil {
			return 0, fmt.Errorf("intel: remove %s: %w", k, err)
		}
		norm = append(norm, Key{Tenant: k.Tenant, Type: t, Value: v})
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	x := s.m.snap.Load()
	present := norm[:0]
	for _, k := range norm {
		if _, ok := x.get(k); ok {
			present = append(present, k)
		}
	}
	if len(present) == 0 {
		return 0, nil
	}
	if err := s.delete(ctx, present); err != nil {
		return 0, err
	}
	s.m.Update(nil, present)
	return len(present), nil
}

func (s *Store) delete(ctx context.Context, keys []Key) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("intel: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	stmt, err := tx.PrepareContext(ctx, `DELETE FROM intel_indicators WHERE tenant = ? AND type = ? AND value = ?`)
	if err != nil {
		return fmt.Errorf("intel: prepare delete: %w", err)
	}
	defer stmt.Close()
	for _, k := range keys {
		if _, err := stmt.ExecContext(ctx, k.Tenant, string(k.Type), k.Value); err != nil {
			return fmt.Errorf("intel: delete %s: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("intel: commit: %w", err)
	}
	return nil
}

// Get returns a copy of one indicator; the key is normalized first.
func (s *Store) Get(_ context.Context, k Key) (*Indicator, error) {
	t, v, err := Normalize(k.Type, k.Value)
	if err != nil {
		return nil, fmt.Errorf("intel: get %s: %w", k, err)
	}
	k.Type, k.Value = t, v
	x := s.m.snap.Load()
	id, ok := x.get(k)
	if !ok {
		return nil, fmt.Errorf("intel: %s: %w", k, ErrNotFound)
	}
	return x.decode(id), nil
}

// Filter selects indicators for List. Zero fields do not filter.
type Filter struct {
	Tenant         string // exactly this tenant ("" does not filter; see GlobalOnly)
	GlobalOnly     bool   // only indicators for all tenants
	Type           Type
	Source         string // reported by this source
	Contains       string // value contains this (case-insensitive)
	IncludeExpired bool   // also indicators whose sources all expired
	After          *Key   // cursor: keys sorting after this one
	Limit          int    // 0: no limit
}

// List returns copies of the matching indicators sorted by tenant, type
// and value.
func (s *Store) List(_ context.Context, f Filter) ([]*Indicator, error) {
	now := s.now()
	sec, ns := now.Unix(), int32(now.Nanosecond())
	contains := strings.ToLower(f.Contains)
	x := s.m.snap.Load()
	var ids []uint32
	x.each(func(id uint32) bool {
		k, r := x.keyFor(id), &x.recs[id]
		switch {
		case f.Tenant != "" && k.Tenant != f.Tenant,
			f.GlobalOnly && k.Tenant != "",
			f.Type != "" && k.Type != f.Type,
			contains != "" && !strings.Contains(k.Value, contains),
			!f.IncludeExpired && !r.active(sec, ns),
			f.After != nil && compareKeys(k, *f.After) <= 0,
			f.Source != "" && !slices.ContainsFunc(x.decode(id).Sources, func(r SourceRef) bool { return r.Source == f.Source }):
			return true
		}
		ids = append(ids, id)
		return true
	})
	slices.SortFunc(ids, func(a, b uint32) int { return compareKeys(x.keyFor(a), x.keyFor(b)) })
	if f.Limit > 0 && len(ids) > f.Limit {
		ids = ids[:f.Limit]
	}
	out := make([]*Indicator, len(ids))
	for i, id := range ids {
		out[i] = x.decode(id)
	}
	return out, nil
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
}

// ExpireResult counts what Expire did.
type ExpireResult struct {
	Purged         int // indicators whose sources had all expired, deleted
	SourcesDropped int // expired sources removed from indicators still active
}

// Expire deletes the indicators whose sources have all expired at now and
// drops expired sources from the others. Expired indicators already stopped
// matching; this reclaims their memory and rows.
func (s *Store) Expire(ctx context.Context, now time.Time) (ExpireResult, error) {
	var res ExpireResult
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var purge []Key
	var trimmed []*Indicator
	sec, ns := now.Unix(), int32(now.Nanosecond())
	x := s.m.snap.Load()
	x.each(func(id uint32) bool {
		r := &x.recs[id]
		if !r.active(sec, ns) {
			k := x.keyFor(id)
			k.Value = strings.Clone(k.Value)
			purge = append(purge, k)
			return true
		}
		if r.flags&fSomeExpire == 0 {
			return true
		}
		if c := x.decode(id); slices.ContainsFunc(c.Sources, func(r SourceRef) bool { return !r.Active(now) }) {
			before := len(c.Sources)
			c.Sources = slices.DeleteFunc(c.Sources, func(r SourceRef) bool { return !r.Active(now) })
			res.SourcesDropped += before - len(c.Sources)
			trimmed = append(trimmed, c)
		}
		return true
	})
	if len(purge) > 0 {
		if err := s.delete(ctx, purge); err != nil {
			return ExpireResult{}, err
		}
	}
	if len(trimmed) > 0 {
		if err := s.write(ctx, trimmed); err != nil {
			return ExpireResult{}, err
		}
	}
	s.m.Update(trimmed, purge)
	res.Purged = len(purge)
	if res.Purged > 0 || res.SourcesDropped > 0 {
		s.log.Info("expired indicators purged", "purged", res.Purged, "sources_dropped", res.SourcesDropped)
	}
	return res, nil
}
