package rollout

import (
	"context"
	"fmt"
	"time"
)

const schema = `
CREATE TABLE IF NOT EXISTS rollout_releases (
	channel TEXT NOT NULL,
	version INTEGER NOT NULL,
	base INTEGER NOT NULL,
	stage INTEGER NOT NULL,
	percent INTEGER NOT NULL,
	stage_at_ms INTEGER NOT NULL,
	state TEXT NOT NULL,
	fast_lane INTEGER NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	rolled_back_to INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (channel, version)
);
CREATE TABLE IF NOT EXISTS rollout_policies (
	tenant TEXT NOT NULL,
	channel TEXT NOT NULL,
	mode TEXT NOT NULL,
	version INTEGER NOT NULL DEFAULT 0,
	delay_seconds INTEGER NOT NULL DEFAULT 0,
	updated_at_ms INTEGER NOT NULL,
	PRIMARY KEY (tenant, channel)
);`

// load creates the tables and resumes the rollouts and policies kept.
func (c *Controller) load(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("rollout schema: %w", err)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT channel, version, base, stage, percent, stage_at_ms, state, fast_lane, reason, rolled_back_to
		FROM rollout_releases ORDER BY channel, version`)
	if err != nil {
		return fmt.Errorf("load rollouts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &Rollout{admitted: map[string]bool{}}
		var at int64
		if err := rows.Scan(&r.Channel, &r.Version, &r.Base, &r.Stage, &r.Percent, &at, &r.State, &r.FastLane, &r.Reason, &r.RolledBackTo); err != nil {
			return fmt.Errorf("load rollouts: %w", err)
		}
		r.StageAt = time.UnixMilli(at).UTC()
		c.restage(r)
		// The agents that reported on the release had been let in: they
		// stay in (the rest of the admitted set was who had asked, which
		// recomputes the same while the fleet does not change).
		for _, id := range c.fleet.Reached(r.Channel, r.Version) {
			r.admitted[id] = true
		}
		c.all[key(r.Channel, r.Version)] = r
		c.cur[r.Channel] = r // ascending versions: the last one stays
		if r.State == StateDone {
			c.good[r.Channel] = r.Version
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load rollouts: %w", err)
	}
	prows, err := c.db.QueryContext(ctx, `SELECT tenant, channel, mode, version, delay_seconds, updated_at_ms FROM rollout_policies`)
	if err != nil {
		return fmt.Errorf("load policies: %w", err)
	}
	defer prows.Close()
	for prows.Next() {
		var tenant, channel string
		var p Policy
		var delay, at int64
		if err := prows.Scan(&tenant, &channel, &p.Mode, &p.Version, &delay, &at); err != nil {
			return fmt.Errorf("load policies: %w", err)
		}
		p.Delay, p.UpdatedAt = time.Duration(delay)*time.Second, time.UnixMilli(at).UTC()
		c.setPolicy(tenant, channel, p)
	}
	return prows.Err()
}

// restage maps a kept rollout onto the configured stages, which may have
// changed across the restart: to the first stage that exposes at least as
// many agents (never fewer: those let in stay in anyway).
func (c *Controller) restage(r *Rollout) {
	if r.Stage < len(c.o.Stages) && c.o.Stages[r.Stage] == r.Percent {
		return
	}
	for i, p := range c.o.Stages {
		if p >= r.Percent {
			r.Stage, r.Percent = i, p
			return
		}
	}
	r.Stage, r.Percent = len(c.o.Stages)-1, 100
}

// save writes r through; c.mu held. A failure is logged, not returned:
// the rollout goes on in memory and the next change writes it again.
func (c *Controller) save(ctx context.Context, r *Rollout) {
	_, err := c.db.ExecContext(ctx, `INSERT INTO rollout_releases(channel, version, base, stage, percent, stage_at_ms, state, fast_lane, reason, rolled_back_to)
		VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(channel, version) DO UPDATE SET base = excluded.base, stage = excluded.stage, percent = excluded.percent,
			stage_at_ms = excluded.stage_at_ms, state = excluded.state, fast_lane = excluded.fast_lane, reason = excluded.reason,
			rolled_back_to = excluded.rolled_back_to`,
		r.Channel, r.Version, r.Base, r.Stage, r.Percent, r.StageAt.UnixMilli(), r.State, r.FastLane, r.Reason, r.RolledBackTo)
	if err != nil {
		c.o.Logger.Error("rollout state not saved; a restart would lose it", "channel", r.Channel, "version", r.Version, "state", r.State, "err", err)
	}
}

// savePolicy writes (or, for latest, deletes) a tenant's policy.
func (c *Controller) savePolicy(ctx context.Context, tenant, channel string, p Policy) error {
	var err error
	if p.Mode == PolicyLatest {
		_, err = c.db.ExecContext(ctx, `DELETE FROM rollout_policies WHERE tenant = ? AND channel = ?`, tenant, channel)
	} else {
		_, err = c.db.ExecContext(ctx, `INSERT OR REPLACE INTO rollout_policies(tenant, channel, mode, version, delay_seconds, updated_at_ms) VALUES (?,?,?,?,?,?)`,
			tenant, channel, p.Mode, p.Version, int64(p.Delay/time.Second), p.UpdatedAt.UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("save policy: %w", err)
	}
	return nil
}
