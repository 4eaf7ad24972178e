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
//   - Match computes the event's logsource keys once, and in each bucket an
//     Aho–Corasick automaton per field yields the rules whose necessary
//     literal occurs in the event (keyword literals: one automaton per
//     product, one pass over the haystacks for all its buckets); only those
//     (plus rules without a necessary literal) are evaluated fully.
//
// A Ruleset is safe for concurrent use by many goroutines.
package sigma
