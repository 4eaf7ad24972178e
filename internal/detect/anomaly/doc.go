// Package anomaly detects volume surges: per tenant, per configured stream
// (a filter on event fields) and per group (the values of the stream's
// group-by fields) it counts events per minute, keeps a seasonal and robust
// baseline of those counts and reports a Signal while a group's rate stays
// far above its baseline — the "a virus made outbound mail 10× normal"
// case.
//
// It owns:
//
//   - Stream, the YAML-friendly description of what to count and how to
//     group it, and DefaultStreams (outbound mail, mail submissions by
//     client, firewall denies by port, authentication failures by user);
//   - the baseline estimator: per group, an EWMA level and spread for each
//     of the 168 hour-of-week slots and each of the 24 hour-of-day slots
//     (day-of-week blending while a weekly slot is young), combined with
//     the median/MAD of the last hour so that a new group or a shifted
//     schedule still gets a sensible expectation;
//   - the surge rule and episodes: a minute breaches when its count
//     reaches max(K × expected, expected + Z × spread, MinCount); an
//     episode starts when at least For minutes of the last max(5, For)
//     breached — the moment the count crosses the threshold, since late
//     events can only add to it — and ends after EndAfter minutes without
//     a breach. Breaching minutes and minutes inside an episode are not
//     learned (a surge must not become the next normal), and neither are
//     minutes in which the tenant sent nothing at all (a collection gap,
//     not zero traffic);
//   - snapshots of the whole state (Snapshot, Restore);
//   - GenerateMail, a deterministic Postfix traffic generator (steady,
//     diurnal and outbreak scenarios) for tests and benchmarks.
//
// The Detector is driven by event time only: Observe reads e.Timestamp,
// a minute closes when the tenant's newest event (or an Advance call) is
// Lateness past its end, and nothing reads the wall clock unless
// Config.Now is set. It does not publish alerts: the caller turns the
// signals Advance and Drain return into alerts, deduplicating by
// Signal.ID. Memory is bounded by MaxGroups per tenant and stream (about
// 2.7 KB per group, see Stats).
package anomaly
