package anomaly

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrSnapshot reports snapshot bytes Restore cannot use.
var ErrSnapshot = errors.New("invalid anomaly snapshot")

// snapshotMagic starts every snapshot; the digit is the format version.
const snapshotMagic = "mamori-anomaly-snapshot 1\n"

type snapState struct {
	Tenants []snapTenant
}

type snapTenant struct {
	Name    string
	Next    int64
	Newest  time.Time
	Total   [openSlots]uint32
	Streams []snapStream
}

type snapStream struct {
	Name   string
	By     []string
	Groups []snapGroup // most recently seen first
}

type snapGroup struct {
	Key      string
	LastEval int64
	Open     [openSlots]uint32
	Pre      uint8
	Thr, Exp [openSlots]float32
	Base     baseline
	Ep       episode
}

// Snapshot encodes the whole state (baselines, open minutes, episodes) so
// that a restarted detector continues where this one stopped. The bytes
// are the same for the same state.
func (d *Detector) Snapshot() ([]byte, error) {
	d.mu.Lock()
	st := snapState{Tenants: make([]snapTenant, 0, len(d.order))}
	for _, t := range d.order {
		st2 := snapTenant{Name: t.name, Next: t.next, Newest: t.newest, Total: t.total}
		for si, gs := range t.streams {
			s := &d.streams[si]
			ss := snapStream{Name: s.Name, By: s.By, Groups: make([]snapGroup, 0, len(gs.groups))}
			for g := gs.head; g != nil; g = g.next {
				ss.Groups = append(ss.Groups, snapGroup{Key: g.key, LastEval: g.lastEval, Open: g.open, Pre: g.pre, Thr: g.thr, Exp: g.exp, Base: g.base, Ep: g.ep})
			}
			st2.Streams = append(st2.Streams, ss)
		}
		st.Tenants = append(st.Tenants, st2)
	}
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	err := gob.NewEncoder(&buf).Encode(&st)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("encode anomaly snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore replaces the detector's state with a snapshot's. State of
// streams no longer configured, or whose By fields changed, is dropped
// (logged); streams new in the configuration start empty. Signals not yet
// returned by Advance are discarded. Errors wrap ErrSnapshot and leave the
// detector unchanged.
func (d *Detector) Restore(b []byte) error {
	rest, ok := bytes.CutPrefix(b, []byte(snapshotMagic))
	if !ok {
		return fmt.Errorf("%w: not a snapshot of this version (expected %q header)", ErrSnapshot, strings.TrimSpace(snapshotMagic))
	}
	var st snapState
	if err := gob.NewDecoder(bytes.NewReader(rest)).Decode(&st); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tenants := map[string]*tenant{}
	var order []*tenant
	for _, sn := range st.Tenants {
		if _, dup := tenants[sn.Name]; dup {
			return fmt.Errorf("%w: tenant %q appears twice", ErrSnapshot, sn.Name)
		}
		t, err := d.restoreTenant(sn)
		if err != nil {
			return err
		}
		tenants[t.name] = t
		order = append(order, t)
	}
	slices.SortFunc(order, func(a, b *tenant) int { return strings.Compare(a.name, b.name) })
	d.tenants, d.order, d.pending = tenants, order, nil
	return nil
}

func (d *Detector) restoreTenant(sn snapTenant) (*tenant, error) {
	t := &tenant{name: sn.Name, started: true, next: sn.Next, newest: sn.Newest, total: sn.Total,
		streams: make([]*groupSet, len(d.streams))}
	for i := range t.streams {
		t.streams[i] = &groupSet{groups: map[string]*group{}}
	}
	for _, ss := range sn.Streams {
		si := slices.IndexFunc(d.streams, func(s compiledStream) bool { return s.Name == ss.Name })
		if si < 0 || !slices.Equal(d.streams[si].By, ss.By) {
			d.cfg.Logger.Info("anomaly: dropping snapshot state of a stream that is gone or regrouped",
				"tenant", sn.Name, "stream", ss.Name)
			continue
		}
		gs := t.streams[si]
		if len(gs.groups) > 0 {
			return nil, fmt.Errorf("%w: tenant %q: stream %q appears twice", ErrSnapshot, sn.Name, ss.Name)
		}
		for _, sg := range ss.Groups {
			if len(gs.groups) >= d.cfg.MaxGroups {
				break // least recently seen last: these are the ones to lose
			}
			if err := checkGroup(sg, len(ss.By), sn.Next); err != nil {
				return nil, fmt.Errorf("%w: tenant %q stream %q: %w", ErrSnapshot, sn.Name, ss.Name, err)
			}
			if _, dup := gs.groups[sg.Key]; dup {
				return nil, fmt.Errorf("%w: tenant %q stream %q: group %q appears twice", ErrSnapshot, sn.Name, ss.Name, sg.Key)
			}
			g := &group{key: sg.Key, lastEval: sg.LastEval, open: sg.Open, pre: sg.Pre, thr: sg.Thr, exp: sg.Exp, base: sg.Base, ep: sg.Ep}
			if len(ss.By) > 0 {
				g.values = strings.Split(g.key, "\x00")
			}
			if g.ep.Active {
				t.active++
			}
			gs.groups[g.key] = g
			// Appending at the tail keeps the snapshot's recency order.
			g.prev = gs.tail
			if gs.tail != nil {
				gs.tail.next = g
			} else {
				gs.head = g
			}
			gs.tail = g
		}
	}
	return t, nil
}

var errGroup = errors.New("inconsistent group")

// checkGroup rejects what the detector never produces and could not
// handle: keys that do not split into the By values, positions outside
// the window, episodes in the tenant's future.
func checkGroup(g snapGroup, nBy int, next int64) error {
	horizon := next + openSlots
	switch {
	case g.LastEval > horizon || g.Ep.LastBreach > horizon || g.Ep.Start > horizon:
		return fmt.Errorf("%w: minutes beyond the tenant's clock", errGroup)
	case nBy == 0 && g.Key != "":
		return fmt.Errorf("%w: key %q in a stream without by fields", errGroup, g.Key)
	case nBy > 0 && strings.Count(g.Key, "\x00") != nBy-1:
		return fmt.Errorf("%w: key %q does not hold %d values", errGroup, g.Key, nBy)
	case int(g.Base.RingN) > shortLen || int(g.Base.RingPos) >= shortLen:
		return fmt.Errorf("%w: short-term window position %d/%d out of range", errGroup, g.Base.RingPos, g.Base.RingN)
	case g.Ep.Active && g.Ep.ID == "":
		return fmt.Errorf("%w: open episode without id", errGroup)
	}
	return nil
}
