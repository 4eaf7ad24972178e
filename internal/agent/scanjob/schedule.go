package scanjob

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Schedule scans req every interval until ctx ends, and then returns nil.
// The first scan comes after a random delay within one interval and every
// later one after the interval ±10 %, so that a fleet started together
// does not scan a shared storage together. A tick that finds a scan
// running (an on-demand one) is skipped and counted in BusySkips.
// Restarting the agent restarts the schedule (the agent may keep the time
// of the last scan if long intervals must survive restarts).
func (r *Runner) Schedule(ctx context.Context, every time.Duration, req Request) error {
	if every <= 0 {
		return fmt.Errorf("%w: %s", ErrInterval, every)
	}
	if req.Reason == "" {
		req.Reason = "schedule"
	}
	wait := rand.N(every)
	for {
		if err := sleep(ctx, wait); err != nil {
			return nil
		}
		_, err := r.Scan(ctx, req)
		switch {
		case errors.Is(err, ErrBusy):
			r.count(func(c *Counters) { c.BusySkips++ })
			r.log.Info("scheduled scan skipped: another scan is running", "reason", req.Reason)
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.log.Warn("scheduled scan", "reason", req.Reason, "err", err)
		}
		wait = every - every/10 + rand.N(every/5+1)
	}
}
