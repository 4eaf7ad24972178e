package rollout

import (
	"context"
	"database/sql"
	"errors"
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
	// StateSuperseded: a newer release of the channel started before this
	// one reached 100 %; the agents it reached may keep it only under a pin.
	StateSuperseded = "superseded"
)

// Sentinel errors.
var (
	ErrInvalidPolicy  = errors.New("invalid policy")
	ErrUnknownVersion = errors.New("no such release")
	ErrRolledBack     = errors.New("release was rolled back")
)

// Options configure a Controller.
type Options struct {
	Stages []int         // percentages, ascending, ending at 100 (default 1, 10, 50, 100)
	Soak   time.Duration // time in a stage before advancing (default 10 min)
	// PerTenant applies each stage's percentage within every tenant
	// rather than across the whole fleet: every customer then has its
	// own canary (at least one agent) before the release goes further,
	// and no customer gets it whole while another has none.
	PerTenant bool
	// Gates are the health gates (nil: DefaultGates; a zero Gates judges
	// refusals only).
	Gates  *Gates
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

// Publisher publishes a rollback and lists releases (update.Repo).
type Publisher interface {
	Publish(ctx context.Context, channel string, recs update.Records, opts update.PublishOptions) (update.Release, error)
	RefreshTimestamp(ctx context.Context) error
	Releases(channel string) []update.Release
}

// Controller runs rollouts. Safe for concurrent use.
type Controller struct {
	db    *sql.DB
	fleet *fleet.Fleet
	pub   Publisher
	o     Options
	gates Gates

	mu   sync.Mutex
	cur  map[string]*Rollout // channel → the latest release's rollout
	all  map[string]*Rollout // "channel/version" → every rollout kept
	good map[string]uint64   // channel → the last version that reached 100 %
	// policies: tenant → channel → policy (latest is not stored).
	policies map[string]map[string]Policy
	// hist caches each channel's release history for the policies;
	// dropped at every publish and halt.
	hist map[string]*history
	// lastTick is when Tick last looked for delays that ran out.
	lastTick time.Time
	// rank orders the agents by ring (then id) within their scope (the
	// fleet, or their tenant with PerTenant), rebuilt at most every
	// rankTTL: thousands of agents ask at once after a nudge. scopeSize
	// counts the agents of each scope, scopeOf names an agent's.
	rank      map[string]int
	scopeOf   map[string]string
	scopeSize map[string]int
	rankAt    time.Time
}

const rankTTL = 2 * time.Second

// Open returns a controller whose rollouts and policies live in db
// (creating its tables), resuming those kept there.
func Open(ctx context.Context, db *sql.DB, fl *fleet.Fleet, pub Publisher, o Options) (*Controller, error) {
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
	c := &Controller{db: db, fleet: fl, pub: pub, o: o, gates: DefaultGates(),
		cur: map[string]*Rollout{}, all: map[string]*Rollout{}, good: map[string]uint64{},
		policies: map[string]map[string]Policy{}, hist: map[string]*history{}, lastTick: o.Now()}
	if o.Gates != nil {
		c.gates = *o.Gates
	}
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	return c, nil
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
	var last uint64
	if rels := c.pub.Releases(channel); len(rels) > 0 {
		last = rels[len(rels)-1].Version
	}
	rel, err := c.pub.Publish(ctx, channel, recs, opts)
	if err != nil {
		return rel, Rollout{}, err
	}
	if prev := c.all[key(rel.Channel, rel.Version)]; prev != nil {
		return rel, *prev, nil // identical content: the repository returned the existing release
	}
	if rel.Version <= last {
		// Identical content to a release published before rollouts were
		// kept: it is out already, starting its rings now would hold
		// agents back.
		return rel, Rollout{Channel: rel.Channel, Version: rel.Version, Stage: len(c.o.Stages) - 1, Percent: 100, State: StateDone}, nil
	}
	return rel, c.started(context.WithoutCancel(ctx), rel, fastLane), nil
}

func key(channel string, version uint64) string { return fmt.Sprintf("%s/%d", channel, version) }

// started registers a release's rollout; c.mu held.
func (c *Controller) started(ctx context.Context, rel update.Release, fastLane bool) Rollout {
	delete(c.hist, rel.Channel)
	if prev := c.cur[rel.Channel]; prev != nil && prev.State == StateRolling {
		if prev.Percent >= 100 {
			// In its last soak, on every agent without a refusal or a
			// breach so far: good enough to be the base to roll back to.
			prev.State = StateDone
			c.good[rel.Channel] = prev.Version
		} else {
			prev.State, prev.Reason = StateSuperseded, fmt.Sprintf("superseded by version %d at the %d %% stage", rel.Version, prev.Percent)
		}
		c.save(ctx, prev)
	}
	r := &Rollout{Channel: rel.Channel, Version: rel.Version, Base: c.good[rel.Channel], StageAt: c.o.Now().UTC(), State: StateRolling,
		FastLane: fastLane, admitted: map[string]bool{}}
	if fastLane {
		r.Stage = len(c.o.Stages) - 1
	}
	r.Percent = c.o.Stages[r.Stage]
	// The fast lane (exact-hash bandages, rollbacks) is done at once; any
	// other release at 100 % still has its last soak under the gates.
	if fastLane {
		r.State = StateDone
		c.good[rel.Channel] = rel.Version
	}
	c.cur[rel.Channel] = r
	c.all[key(rel.Channel, rel.Version)] = r
	c.save(ctx, r)
	return *r
}

// Get returns the rollout of a release.
func (c *Controller) Get(channel string, version uint64) (Rollout, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.all[key(channel, version)]
	if !ok {
		return Rollout{}, false
	}
	return *r, true
}

// Desired returns, per channel under a rollout or a policy of the agent's
// tenant, the version agent id may have active (0: none yet, keep what it
// has). Channels absent from the map follow the latest.
//
// The ring decision is the release when the agent is in the rings
// reached, else the base. A policy then picks among the versions the rings
// have let this agent have (see decide): version numbers do not order
// content once rollbacks exist, so "the lesser of ring and policy" is
// computed on what the rings allow rather than on the numbers alone.
func (c *Controller) Desired(id string) map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]uint64{}
	for ch, r := range c.cur {
		switch {
		case r.State == StateDone:
		case r.State == StateRolling && (r.admitted[id] || c.inRings(id, r.Percent)):
			r.admitted[id] = true
			out[ch] = r.Version
		default:
			out[ch] = r.Base
		}
	}
	if len(c.policies) == 0 {
		return out
	}
	a, ok := c.fleet.Get(id)
	if !ok {
		return out
	}
	for ch, p := range c.policies[a.Tenant] {
		ring, gated := out[ch]
		out[ch] = c.decide(id, a.Active[ch].Version, ch, p, ring, gated)
	}
	return out
}

// Gated reports whether Desired may answer anything but "the latest of
// every channel" for some agent: a rollout not done, or a policy. When it
// is false agents may skip asking (the push stream tells them). Like
// Desired it waits for a publish in progress to be registered.
func (c *Controller) Gated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.policies) > 0 {
		return true
	}
	for _, r := range c.cur {
		if r.State != StateDone {
			return true
		}
	}
	return false
}

// allows reports whether the rings let agent id have version v of ch
// ("" asks for an agent no ring has reached).
func (c *Controller) allows(id, ch string, v uint64) bool {
	r := c.all[key(ch, v)]
	switch {
	case r == nil:
		return true // published before rollouts were kept
	case r.State == StateDone:
		return true
	case r.admitted[id]:
		return true // rolling, or halted or superseded where it went already
	case r.State == StateRolling && c.cur[ch] == r && id != "":
		return c.inRings(id, r.Percent)
	}
	return false
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
		c.scopeOf = make(map[string]string, len(agents))
		c.scopeSize = map[string]int{}
		for _, a := range agents {
			scope := ""
			if c.o.PerTenant {
				scope = a.Tenant
			}
			c.rank[a.ID], c.scopeOf[a.ID] = c.scopeSize[scope], scope
			c.scopeSize[scope]++
		}
		c.rankAt = c.o.Now()
	}
	i, ok := c.rank[id]
	n := int(math.Ceil(float64(pct) / 100 * float64(c.scopeSize[c.scopeOf[id]])))
	return ok && i < n
}

// Tick advances, completes or halts the rollouts; call it every second or
// so. A halt publishes the base content as a new release to everyone.
func (c *Controller) Tick(ctx context.Context) {
	c.mu.Lock()
	nudge := c.delaysDue()
	var halts []*Rollout
	for _, r := range c.cur {
		if r.State != StateRolling {
			continue
		}
		p := c.fleet.Protection("", r.Channel, r.Version, time.Time{})
		if p.Failed > 0 {
			r.State, r.Reason = StateHalted, fmt.Sprintf("%d agents refused the release at the %d %% stage", p.Failed, r.Percent)
		} else if reason, ok := c.breach(r); ok {
			r.State, r.Reason = StateHalted, reason
		}
		if r.State == StateHalted {
			delete(c.hist, r.Channel)
			c.save(ctx, r)
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
		if r.Percent >= 100 {
			// The last soak, at 100 %, passed: the gates watched the
			// whole fleet once before the release counts as good.
			r.State = StateDone
			c.good[r.Channel] = r.Version
			c.save(ctx, r)
			c.o.Logger.Info("rollout done", "channel", r.Channel, "version", r.Version)
			continue
		}
		r.Stage++
		r.Percent, r.StageAt, nudge = c.o.Stages[r.Stage], c.o.Now().UTC(), true
		c.save(ctx, r)
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
		delete(c.hist, r.Channel)
		c.save(ctx, r)
		c.mu.Unlock()
	}
	if nudge {
		if err := c.pub.RefreshTimestamp(ctx); err != nil {
			c.o.Logger.Warn("nudge agents", "err", err)
		}
	}
}

// breach judges the health gates on every agent that has r active and
// reported health since; c.mu held.
func (c *Controller) breach(r *Rollout) (string, bool) {
	for _, a := range c.fleet.Activations(r.Channel, r.Version) {
		if !a.AfterAt.After(a.At) {
			continue // nothing reported since the activation yet
		}
		if b, ok := c.gates.Judge(a.Before, a.After, a.FailedAt.After(a.At)); ok {
			return fmt.Sprintf("health gate: agent %s (tenant %s) %s since activating the release, at the %d %% stage",
				a.Agent, a.Tenant, b, r.Percent), true
		}
	}
	return "", false
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
