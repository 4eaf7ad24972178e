// Package rollout owns how a pattern release reaches the fleet: in rings
// (by default 1 % → 10 % → 50 % → 100 % of a channel's agents), advancing
// only after a soak time in which no agent of the rings reached so far
// refused the release (verification, load or self-test failure: what a
// poison pattern looks like from the fleet), and halting with an automatic
// rollback — a new release carrying the last good content, sent to every
// agent at once — at the first refusal. Exact-hash bandages take the fast
// lane (straight to 100 %): the server already refused any hash of a
// known-clean file and a hash cannot cost CPU.
//
// Agents learn what they may install from Desired (the API serves it at
// GET /api/v1/agent/desired); the controller nudges them after each stage
// change by re-signing the timestamp, which the push stream delivers.
// Releases published through Controller.Publish are gated from the moment
// their timestamp is pushed.
//
// State is in memory: a restarted server resumes the latest release of
// each channel at 100 % (the conservative choice would hold it; see
// docs/AGENT.md).
package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

// Rollout states.
const (
	StateRolling = "rolling"
	StateDone    = "done"
	StateHalted  = "halted"
)

// Options configure a Controller.
type Options struct {
	Stages []int         // percentages, ascending, ending at 100 (default 1, 10, 50, 100)
	Soak   time.Duration // time in a stage before advancing (default 10 min)
	Now    func() time.Time
	Logger *slog.Logger
}

// Rollout is one release's progress.
type Rollout struct {
	Channel  string    `json:"channel"`
	Version  uint64    `json:"version"`
	Base     uint64    `json:"base"` // the last good version agents outside the rings keep (0: none)
	Stage    int       `json:"stage"`
	Percent  int       `json:"percent"`
	StageAt  time.Time `json:"stage_at"`
	State    string    `json:"state"`
	FastLane bool      `json:"fast_lane,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// RolledBackTo is the release published to undo this one (halted).
	RolledBackTo uint64 `json:"rolled_back_to,omitempty"`
	// admitted are the agents let in so far: they stay in even when new
	// enrollments shift the ring order, so no agent flaps back and forth.
	admitted map[string]bool
}

// Publisher publishes a rollback (update.Repo).
type Publisher interface {
	Publish(ctx context.Context, channel string, recs update.Records, opts update.PublishOptions) (update.Release, error)
	RefreshTimestamp(ctx context.Context) error
}

// Controller runs rollouts. Safe for concurrent use.
type Controller struct {
	fleet *fleet.Fleet
	pub   Publisher
	o     Options

	mu   sync.Mutex
	cur  map[string]*Rollout // channel → the latest release's rollout
	all  map[string]*Rollout // "channel/version" → every rollout since start
	good map[string]uint64   // channel → the last version that reached 100 %
	// rank orders the agents by ring (then id), rebuilt at most every
	// rankTTL: thousands of agents ask at once after a nudge.
	rank   map[string]int
	rankAt time.Time
}

const rankTTL = 2 * time.Second

// New returns a controller.
func New(fl *fleet.Fleet, pub Publisher, o Options) *Controller {
	if len(o.Stages) == 0 {
		o.Stages = []int{1, 10, 50, 100}
	}
	if o.Soak <= 0 {
		o.Soak = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{fleet: fl, pub: pub, o: o, cur: map[string]*Rollout{}, all: map[string]*Rollout{}, good: map[string]uint64{}}
}

// Publish publishes a release through the repository and starts its
// rollout, atomically for Desired: the repository pushes the new timestamp
// to the agents before Publish returns, and an agent asking what it may
// install meanwhile waits here, so no agent outside the rings ever sees the
// release ungated. fastLane sends it to every agent at once (exact-hash
// bandages, rollbacks).
func (c *Controller) Publish(ctx context.Context, channel string, recs update.Records, opts update.PublishOptions, fastLane bool) (update.Release, Rollout, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rel, err := c.pub.Publish(ctx, channel, recs, opts)
	if err != nil {
		return rel, Rollout{}, err
	}
	if prev := c.all[key(rel.Channel, rel.Version)]; prev != nil {
		return rel, *prev, nil // identical content: the repository returned the existing release
	}
	return rel, c.started(rel, fastLane), nil
}

func key(channel string, version uint64) string { return fmt.Sprintf("%s/%d", channel, version) }

// started registers a release's rollout; c.mu held.
func (c *Controller) started(rel update.Release, fastLane bool) Rollout {
	r := &Rollout{Channel: rel.Channel, Version: rel.Version, Base: c.good[rel.Channel], StageAt: c.o.Now(), State: StateRolling,
		FastLane: fastLane, admitted: map[string]bool{}}
	if fastLane {
		r.Stage = len(c.o.Stages) - 1
	}
	r.Percent = c.o.Stages[r.Stage]
	if r.Percent >= 100 {
		r.State = StateDone
		c.good[rel.Channel] = rel.Version
	}
	c.cur[rel.Channel] = r
	c.all[key(rel.Channel, rel.Version)] = r
	return *r
}

// Get returns the rollout of a release published since the server started.
func (c *Controller) Get(channel string, version uint64) (Rollout, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.all[key(channel, version)]
	if !ok {
		return Rollout{}, false
	}
	return *r, true
}

// Desired returns, per channel under a rollout, the version agent id may
// have active: the release when the agent is in the rings reached, else
// the base (0: nothing yet). Channels absent from the map follow the latest.
func (c *Controller) Desired(id string) map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{}
	for ch, r := range c.cur {
		if r.State == StateDone {
			continue
		}
		if r.State == StateRolling && (r.admitted[id] || c.inRings(id, r.Percent)) {
			r.admitted[id] = true
			out[ch] = r.Version
		} else {
			out[ch] = r.Base
		}
	}
	return out
}

// inRings reports whether agent id is among the first pct % of all agents
// ordered by ring (then id): the canary ring always holds at least one
// agent, however small the fleet.
func (c *Controller) inRings(id string, pct int) bool {
	if c.rank == nil || c.o.Now().Sub(c.rankAt) > rankTTL || len(c.rank) != c.fleet.Count() {
		agents := c.fleet.List("")
		sort.Slice(agents, func(i, j int) bool {
			if agents[i].Ring != agents[j].Ring {
				return agents[i].Ring < agents[j].Ring
			}
			return agents[i].ID < agents[j].ID
		})
		c.rank = make(map[string]int, len(agents))
		for i, a := range agents {
			c.rank[a.ID] = i
		}
		c.rankAt = c.o.Now()
	}
	i, ok := c.rank[id]
	n := int(math.Ceil(float64(pct) / 100 * float64(len(c.rank))))
	return ok && i < n
}

// Tick advances, completes or halts the rollouts; call it every second or
// so. A halt publishes the base content as a new release to everyone.
func (c *Controller) Tick(ctx context.Context) {
	c.mu.Lock()
	var nudge bool
	var halts []*Rollout
	for _, r := range c.cur {
		if r.State != StateRolling {
			continue
		}
		p := c.fleet.Protection("", r.Channel, r.Version, time.Time{})
		if p.Failed > 0 {
			r.State, r.Reason = StateHalted, fmt.Sprintf("%d agents refused the release at the %d %% stage", p.Failed, r.Percent)
			halts = append(halts, r)
			continue
		}
		// Advance after the soak, once every agent of the rings reached so
		// far has reported on the release (an agent that stays silent holds
		// the stage for at most three soaks).
		waited := c.o.Now().Sub(r.StageAt)
		inRings := int(math.Ceil(float64(r.Percent) / 100 * float64(p.Agents)))
		if waited < c.o.Soak || (p.Active+p.Failed < inRings && waited < 3*c.o.Soak) {
			continue
		}
		r.Stage++
		r.Percent, r.StageAt, nudge = c.o.Stages[r.Stage], c.o.Now(), true
		if r.Percent >= 100 {
			r.State = StateDone
			c.good[r.Channel] = r.Version
		}
		c.o.Logger.Info("rollout advanced", "channel", r.Channel, "version", r.Version, "percent", r.Percent)
	}
	c.mu.Unlock()
	for _, r := range halts {
		c.o.Logger.Error("rollout halted; rolling back", "channel", r.Channel, "version", r.Version, "reason", r.Reason, "to", r.Base)
		if r.Base == 0 {
			nudge = true // nothing to roll back to: agents outside the rings just stay empty
			continue
		}
		rel, _, err := c.Publish(ctx, r.Channel, nil, update.PublishOptions{RollbackTo: r.Base}, true) // to everyone at once
		if err != nil {
			c.o.Logger.Error("rollback publish failed", "channel", r.Channel, "err", err)
			continue
		}
		c.mu.Lock()
		r.RolledBackTo = rel.Version
		c.mu.Unlock()
	}
	if nudge {
		if err := c.pub.RefreshTimestamp(ctx); err != nil {
			c.o.Logger.Warn("nudge agents", "err", err)
		}
	}
}

// Run ticks every interval until ctx ends.
func (c *Controller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Tick(ctx)
		}
	}
}
