package rollout

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/update"
)

// Policy modes.
const (
	PolicyLatest = "latest" // follow the rings to the latest release (the default)
	PolicyPin    = "pin"    // stay on one version
	PolicyDelay  = "delay"  // take a release only once it is Delay old
)

// MaxDelay bounds a delay policy: beyond it a tenant is better served by a
// pin, which says what it holds.
const MaxDelay = 30 * 24 * time.Hour

// Policy is a tenant's choice for one channel.
type Policy struct {
	Mode      string
	Version   uint64        // pin
	Delay     time.Duration // delay
	UpdatedAt time.Time
}

// PolicyStatus is a tenant's policy for a channel and what it means now.
type PolicyStatus struct {
	Tenant       string    `json:"tenant"`
	Channel      string    `json:"channel"`
	Mode         string    `json:"mode"`
	Version      uint64    `json:"version,omitempty"` // pin
	Delay        string    `json:"delay,omitempty"`   // delay, e.g. "6h"
	DelaySeconds int64     `json:"delay_seconds,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
	// Target is the version the policy gives the tenant's agents now,
	// once the rings have reached them (0: none yet; agents keep theirs).
	Target uint64 `json:"target,omitempty"`
	// Next is the next release a delay will let in, at NextAt.
	Next   uint64    `json:"next,omitempty"`
	NextAt time.Time `json:"next_at,omitzero"`
	// RolledBackBy: the pinned version was rolled back (halted, or stepped
	// over by this rollback release); the pin holds nonetheless.
	RolledBackBy uint64 `json:"rolled_back_by,omitempty"`
	Note         string `json:"note,omitempty"`
}

// SetPolicy sets tenant's policy for channel, writes it through and nudges
// the agents to ask again. A pin must name a release that exists and was
// not rolled back (ErrUnknownVersion, ErrRolledBack); a delay is 1 minute
// to MaxDelay.
func (c *Controller) SetPolicy(ctx context.Context, tenant, channel string, p Policy) (PolicyStatus, error) {
	switch p.Mode {
	case PolicyLatest:
		p = Policy{Mode: PolicyLatest}
	case PolicyPin:
		if p.Version == 0 {
			return PolicyStatus{}, fmt.Errorf("%w: a pin needs a version", ErrInvalidPolicy)
		}
		p.Delay = 0
	case PolicyDelay:
		if p.Delay < time.Minute || p.Delay > MaxDelay {
			return PolicyStatus{}, fmt.Errorf("%w: delay %s is not between 1m and %s", ErrInvalidPolicy, fmtDelay(p.Delay), fmtDelay(MaxDelay))
		}
		p.Version = 0
	default:
		return PolicyStatus{}, fmt.Errorf("%w: mode %q is not latest, pin or delay", ErrInvalidPolicy, p.Mode)
	}
	p.UpdatedAt = c.o.Now().UTC()
	c.mu.Lock()
	if p.Mode == PolicyPin {
		h := c.history(channel)
		if _, ok := h.rels[p.Version]; !ok {
			c.mu.Unlock()
			return PolicyStatus{}, fmt.Errorf("%w: %s has no version %d", ErrUnknownVersion, channel, p.Version)
		}
		if by, bad := h.undone[p.Version]; bad {
			c.mu.Unlock()
			return PolicyStatus{}, fmt.Errorf("%w: %s version %d was rolled back%s; pin the version rolled back to instead", ErrRolledBack, channel, p.Version, byRelease(by))
		}
	}
	if err := c.savePolicy(ctx, tenant, channel, p); err != nil {
		c.mu.Unlock()
		return PolicyStatus{}, err
	}
	c.setPolicy(tenant, channel, p)
	st := c.policyStatus(tenant, channel)
	c.mu.Unlock()
	c.o.Logger.Info("pattern policy set", "tenant", tenant, "channel", channel, "mode", p.Mode, "version", p.Version, "delay", p.Delay)
	if err := c.pub.RefreshTimestamp(ctx); err != nil {
		c.o.Logger.Warn("nudge agents", "err", err)
	}
	return st, nil
}

func byRelease(v uint64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(" (by version %d)", v)
}

// setPolicy updates the in-memory policies; c.mu held (or not yet shared).
func (c *Controller) setPolicy(tenant, channel string, p Policy) {
	if p.Mode == PolicyLatest {
		delete(c.policies[tenant], channel)
		if len(c.policies[tenant]) == 0 {
			delete(c.policies, tenant)
		}
		return
	}
	if c.policies[tenant] == nil {
		c.policies[tenant] = map[string]Policy{}
	}
	c.policies[tenant][channel] = p
}

// Policy returns tenant's policy for channel and what it means now.
func (c *Controller) Policy(tenant, channel string) PolicyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.policyStatus(tenant, channel)
}

// Policies returns the policies other than latest set for channel, by
// tenant.
func (c *Controller) Policies(channel string) []PolicyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []PolicyStatus
	for t, ps := range c.policies {
		if _, ok := ps[channel]; ok {
			out = append(out, c.policyStatus(t, channel))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// policyStatus; c.mu held.
func (c *Controller) policyStatus(tenant, channel string) PolicyStatus {
	p, ok := c.policies[tenant][channel]
	if !ok {
		p = Policy{Mode: PolicyLatest}
	}
	st := PolicyStatus{Tenant: tenant, Channel: channel, Mode: p.Mode, UpdatedAt: p.UpdatedAt}
	h := c.history(channel)
	switch p.Mode {
	case PolicyLatest:
		if n := len(h.order); n > 0 {
			st.Target = h.order[n-1]
		}
	case PolicyPin:
		st.Version, st.Target = p.Version, p.Version
		if by, bad := h.undone[p.Version]; bad {
			st.RolledBackBy = by
			st.Note = fmt.Sprintf("version %d was rolled back%s; the pin holds it on the agents that have it. To follow the rollback: mamori pattern pin --latest --channel %s --tenant %s",
				p.Version, byRelease(by), channel, tenant)
		} else if r := c.all[key(channel, p.Version)]; r != nil && r.State == StateRolling {
			st.Note = fmt.Sprintf("version %d is still rolling out (%d %% stage): agents outside the rings keep version %d until it reaches them", p.Version, r.Percent, r.Base)
		}
	case PolicyDelay:
		st.Delay, st.DelaySeconds = fmtDelay(p.Delay), int64(p.Delay/time.Second)
		st.Target = c.delayed("", 0, channel, p.Delay, 0, false, h)
		cutoff := c.o.Now().Add(-p.Delay)
		for _, v := range h.order {
			if _, bad := h.undone[v]; !bad && v > st.Target && h.effective(v).After(cutoff) {
				st.Next, st.NextAt = v, h.effective(v).Add(p.Delay).UTC()
				break
			}
		}
	}
	return st
}

// decide applies policy p of agent id (which has version have active) to
// channel ch, given the ring decision (gated false: none, follow the
// latest); c.mu held.
func (c *Controller) decide(id string, have uint64, ch string, p Policy, ring uint64, gated bool) uint64 {
	h := c.history(ch)
	switch p.Mode {
	case PolicyPin:
		// The pin wins over a later rollback of the pinned version, but
		// never spreads a release past the rings it reached: an agent not
		// let in keeps that rollout's base meanwhile.
		if c.allows(id, ch, p.Version) {
			return p.Version
		}
		if r := c.all[key(ch, p.Version)]; r != nil {
			return r.Base
		}
		return 0
	case PolicyDelay:
		return c.delayed(id, have, ch, p.Delay, ring, gated, h)
	}
	return ring
}

// delayed is the version a delay of d gives agent id (which has version
// have active): the newest release the rings allow it that was not rolled
// back and whose content was published at least d ago. A rollback release
// carries old content, so its age is that content's: it is taken at once
// when that is old enough — a delay never keeps a rolled-back release in
// place. An agent keeps a newer release it already had (a delay set later
// does not move agents back), unless that release was rolled back; then,
// with nothing old enough, it follows the rings (the rollback itself).
// c.mu held.
func (c *Controller) delayed(id string, have uint64, ch string, d time.Duration, ring uint64, gated bool, h *history) uint64 {
	cutoff := c.o.Now().Add(-d)
	var best uint64
	for _, v := range h.order {
		if _, bad := h.undone[v]; bad || (gated && v > ring) || h.effective(v).After(cutoff) || !c.allows(id, ch, v) {
			continue
		}
		best = v
	}
	_, haveBad := h.undone[have]
	_, known := h.rels[have]
	switch {
	case known && !haveBad && have > best && (!gated || have <= ring):
		return have
	case best == 0 && haveBad:
		if gated {
			return ring
		}
		return h.newestGood()
	}
	return best
}

// history is what the policies need to know of a channel's releases.
type history struct {
	rels  map[uint64]update.Release
	order []uint64 // ascending
	// undone maps each rolled-back version to the release that undid it
	// (0: halted with nothing to roll back to): halted rollouts, and every
	// version a rollback release stepped back over.
	undone map[uint64]uint64
}

// history returns ch's history, cached until the next publish or halt;
// c.mu held.
func (c *Controller) history(ch string) *history {
	if h := c.hist[ch]; h != nil {
		return h
	}
	h := &history{rels: map[uint64]update.Release{}, undone: map[uint64]uint64{}}
	rels := c.pub.Releases(ch)
	for _, rel := range rels {
		h.rels[rel.Version] = rel
		h.order = append(h.order, rel.Version)
	}
	sort.Slice(h.order, func(i, j int) bool { return h.order[i] < h.order[j] })
	for _, r := range c.all {
		if r.Channel == ch && r.State == StateHalted {
			h.undone[r.Version] = r.RolledBackTo
		}
	}
	for _, v := range h.order {
		if b := h.rels[v].RollbackOf; b != 0 {
			for _, w := range h.order {
				if _, seen := h.undone[w]; !seen && w > b && w < v {
					h.undone[w] = v
				}
			}
		}
	}
	c.hist[ch] = h
	return h
}

// effective is when v's content was first published: a rollback release's
// is that of the version it restored.
func (h *history) effective(v uint64) time.Time {
	for range len(h.order) { // bounded: a chain cannot be longer than the channel
		rel, ok := h.rels[v]
		if !ok {
			return time.Time{}
		}
		if rel.RollbackOf == 0 || rel.RollbackOf >= v {
			return rel.PublishedAt
		}
		v = rel.RollbackOf
	}
	return time.Time{}
}

func (h *history) newestGood() uint64 {
	for i := len(h.order) - 1; i >= 0; i-- {
		if _, bad := h.undone[h.order[i]]; !bad {
			return h.order[i]
		}
	}
	return 0
}

// delaysDue reports whether a delay policy let a new release in since the
// last call, so the agents must be nudged to ask; c.mu held.
func (c *Controller) delaysDue() bool {
	now, since := c.o.Now(), c.lastTick
	c.lastTick = now
	for _, ps := range c.policies {
		for ch, p := range ps {
			if p.Mode != PolicyDelay {
				continue
			}
			h := c.history(ch)
			for _, v := range h.order {
				if at := h.effective(v).Add(p.Delay); at.After(since) && !at.After(now) {
					return true
				}
			}
		}
	}
	return false
}

// fmtDelay prints a delay the way configuration durations are written:
// 6h, 90m → 1h30m, 2d.
func fmtDelay(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
