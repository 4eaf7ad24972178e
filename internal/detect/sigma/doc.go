// Package sigma owns the Sigma rule engine: it loads SigmaHQ rule files
// unmodified, compiles them once into an immutable, indexed Ruleset, and
// tells for one event which rules match.
//
// The package is pure: rules in, compiled set out, events in, matching
// rules out. It does not consume the bus, write alerts or keep state across
// events; correlation documents (`correlation:`) are kept raw for the
// correlation engine (internal/detect/correlate) to interpret.
//
// How a rule reaches an event:
//
//   - Load/Parse read YAML (multi-document too), compile every detection
//     into matchers (wildcards, modifiers, regexps, CIDRs, numbers are
//     precompiled) and a condition tree. A rule that cannot compile is a
//     *LoadError and is skipped; loading never stops on a bad rule.
//   - The pipeline (PIPELINE.md) routes a rule to a bucket by its logsource
//     and maps its Sigma field names to the event field names our parsers
//     produce (winlog.event_data.X, ECS names, vendor namespaces). A
//     logsource Mamori has no events for compiles but stays dormant.
//   - Match computes the event's logsource keys once, and in each bucket a
//     literal index per field (litindex.go: Aho–Corasick, Wu–Manber or a
//     q-gram filter, by the size of the set) yields the rules each of whose
//     need groups (up to two sets of necessary literals, ruleset.go) had a
//     hit; keyword literals take one pass over the haystacks for all the
//     buckets visited. Only those rules, and rules without needs, are
//     evaluated fully.
//
// A Ruleset is safe for concurrent use by many goroutines.
package sigma
