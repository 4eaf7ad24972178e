// Package correlate owns the stateful half of Sigma detection: Sigma
// correlation rules (specification v2: event_count, value_count, temporal,
// temporal_ordered, plus value_sum and value_avg from v2.1) evaluated over
// the stream of single-rule matches, and Mamori's own threshold rules, which
// ship as Sigma YAML under rules/ (see Builtin).
//
// The single-event matcher (internal/detect/sigma) hands correlation
// documents over raw; Parse turns one into a Rule. New validates a set of
// rules against each other (references, chaining, cycles) and returns an
// Engine. The detection engine calls Observe for every event that matched a
// base rule the Engine references; Observe returns the correlations that
// fired.
//
// # Windows and time
//
// Everything is in event time (Match.Time), separately per tenant and per
// group-by tuple. Each (rule, tenant) pair keeps a watermark: the newest
// match time it has seen. A match older than watermark − timespan is too
// late for any window and is dropped (Stats.Late); anything newer is placed
// in its group's window even when it arrives out of order.
//
// # When a rule fires
//
// Conditions come in two kinds, and the kind decides when they are checked:
//
//   - Monotone conditions (only gt/gte, or a temporal rule without "not"):
//     adding events can only make them true, so they are checked on every
//     arrival over the sliding window (newest − timespan, newest] of the
//     group. The first time the condition holds, the rule fires once; the
//     events of that window are consumed, and the group cannot fire again
//     until one full timespan after the firing (a continuing brute force
//     yields one firing per timespan per group, never one per event).
//     Matches dated at or before the firing are dropped as late.
//   - Bounded conditions (any lt, lte or eq, or "not" in a temporal
//     expression): whether "at most N" holds is only known once the window
//     is over. These use windows anchored at the group's first match,
//     [first, first + timespan), evaluated exactly once when the (rule,
//     tenant) watermark passes their end — by a later Observe of the same
//     rule and tenant, or by Tick. Only groups that saw at least one match
//     exist, so "too few events" means "too few, but more than zero".
//
// A bounded window closes when the watermark of its rule and tenant passes
// its end, and only Observe of that rule and tenant, or Tick, moves that
// watermark: a detection engine that wants "too few" rules to fire on a
// quiet stream must call Tick. Windows close in the order they opened, so a
// window opened by an out-of-order match may close up to one timespan late.
//
// # Matches
//
// A match lacking a group-by field (or condition.field for value_count,
// value_sum, value_avg; or a number there for the sums) is ignored by that
// correlation (Stats.Ignored), as SQL-style backends drop null groups.
// Aliases resolve a group-by name to a field per referenced rule; the alias
// may be keyed by the referenced rule's name or id. temporal_ordered treats
// equal times as ordered.
//
// # Chaining
//
// A correlation may reference another one. Each firing of the inner rule
// becomes a match of the outer one, at the firing's Last time, whose field
// values are the inner firing's group-by values (so the outer group-by must
// use names the inner rule groups by) and whose event ids are the inner
// firing's. Reference cycles are rejected by New. With generate: false (the
// Sigma default) the referenced rules are building blocks: SuppressBase
// reports them, and their own firings carry Firing.Suppressed.
//
// # Bounded state
//
// Options.MaxGroups caps groups per rule and tenant (the least recently
// updated group is evicted; an evicted bounded window is dropped, not
// evaluated). Options.MaxEventsPerGroup caps remembered matches per group,
// raised to threshold+1 for rules with a higher count threshold so that the
// cap never decides a firing. Beyond the cap the oldest matches are
// forgotten: counts and sums still include them (until the window passes
// the oldest remembered match, so they may briefly over-count), distinct
// values and EventIDs lose them. Groups expire once their window lies
// entirely before watermark − timespan. Measured cost: about 160 bytes for
// a group with one match, 510 bytes for a value_count group with ten
// (BenchmarkGroupMemory).
package correlate
