package correlate

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrSnapshot is returned by Restore for data it cannot use.
var ErrSnapshot = errors.New("correlation snapshot unusable")

// snapshotVersion changes whenever the encoded layout does.
const snapshotVersion = 1

// The gob mirror of the engine's window state.
type snapState struct {
	Version int
	Rules   []snapRule
}

type snapRule struct {
	ID, Fingerprint string
	Tenants         []snapTenant
}

type snapTenant struct {
	Name   string
	WM     int64
	Groups []snapGroup // oldest first
}

type snapGroup struct {
	Key                    string
	Vals                   []string
	Entries                []snapEntry
	Newest, Floor, Blocked int64
	Start                  int64
	Overflow               int
	OverflowSum            float64
	Distinct               map[string]int
	Sum                    float64
	PerRule                []int32
}

type snapEntry struct {
	T   int64
	Src int32
	ID  string
	Val string
	Num float64
	IDs []string
}

// fingerprint identifies what a rule's state means: a rule edited between
// save and restore (other window, condition, group-by or references) starts
// afresh instead of inheriting windows counted under other terms.
func fingerprint(r *Rule) string {
	return fmt.Sprintf("%s|%v|%v|%d|%s|%v|%v", r.Type, r.Rules, r.GroupBy, r.Timespan, r.Condition.Field, r.Condition.Predicates, r.Aliases)
}

// Snapshot encodes the open windows of every rule, so that a restart (or a
// rule reload) does not forget a brute force half counted.
func (e *Engine) Snapshot() ([]byte, error) {
	st := snapState{Version: snapshotVersion}
	for _, c := range e.rules {
		sr := snapRule{ID: c.rule.ID, Fingerprint: fingerprint(c.rule)}
		c.mu.Lock()
		for _, name := range slices.Sorted(maps.Keys(c.tenants)) {
			ts := c.tenants[name]
			stn := snapTenant{Name: ts.name, WM: ts.wm}
			for g := ts.head; g != nil; g = g.next {
				sg := snapGroup{Key: g.key, Vals: g.vals, Newest: g.newest, Floor: g.floor, Blocked: g.blocked, Start: g.start,
					Overflow: g.overflow, OverflowSum: g.overflowSum, Distinct: g.distinct, Sum: g.sum, PerRule: g.perRule}
				for _, en := range g.entries {
					sg.Entries = append(sg.Entries, snapEntry{T: en.t, Src: en.src, ID: en.id, Val: en.val, Num: en.num, IDs: en.ids})
				}
				stn.Groups = append(stn.Groups, sg)
			}
			sr.Tenants = append(sr.Tenants, stn)
		}
		var buf bytes.Buffer
		err := gob.NewEncoder(&buf).Encode(sr) // copies everything while the rule is locked
		c.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("correlation snapshot: %w", err)
		}
		var back snapRule
		if err := gob.NewDecoder(&buf).Decode(&back); err != nil {
			return nil, fmt.Errorf("correlation snapshot: %w", err)
		}
		st.Rules = append(st.Rules, back)
	}
	var out bytes.Buffer
	if err := gob.NewEncoder(&out).Encode(st); err != nil {
		return nil, fmt.Errorf("correlation snapshot: %w", err)
	}
	return out.Bytes(), nil
}

// Restore loads the windows of a Snapshot into rules with the same id and
// definition; state of rules that no longer exist or changed is dropped.
// It returns how many groups were restored. Restore is meant for a fresh
// engine, before the first Observe.
func (e *Engine) Restore(b []byte) (int, error) {
	var st snapState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if st.Version != snapshotVersion {
		return 0, fmt.Errorf("%w: version %d, want %d", ErrSnapshot, st.Version, snapshotVersion)
	}
	byID := map[string]*compiled{}
	for _, c := range e.rules {
		byID[c.rule.ID] = c
	}
	restored := 0
	for _, sr := range st.Rules {
		c := byID[sr.ID]
		if c == nil || sr.Fingerprint != fingerprint(c.rule) {
			continue
		}
		c.mu.Lock()
		for _, stn := range sr.Tenants {
			ts := &tenantState{name: stn.Name, wm: stn.WM, groups: map[string]*group{}}
			for _, sg := range stn.Groups {
				if (c.rule.Type == Temporal || c.rule.Type == TemporalOrdered) && len(sg.PerRule) != len(c.rule.Rules) {
					continue
				}
				g := &group{key: sg.Key, vals: sg.Vals, newest: sg.Newest, floor: sg.Floor, blocked: sg.Blocked, start: sg.Start,
					overflow: sg.Overflow, overflowSum: sg.OverflowSum, distinct: sg.Distinct, sum: sg.Sum, perRule: sg.PerRule}
				if c.rule.Type == ValueCount && g.distinct == nil {
					g.distinct = map[string]int{}
				}
				for _, en := range sg.Entries {
					g.entries = append(g.entries, entry{t: en.T, src: en.Src, id: en.ID, val: en.Val, num: en.Num, ids: en.IDs})
				}
				ts.add(g)
				restored++
			}
			c.tenants[stn.Name] = ts
		}
		c.mu.Unlock()
	}
	e.stats.groups.Add(int64(restored))
	return restored, nil
}
