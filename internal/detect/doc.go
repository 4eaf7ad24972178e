// Package detect is the detection engine: a durable JetStream consumer
// ("detect") that evaluates every ingested event as it streams by — Sigma
// rules (internal/detect/sigma), their correlations and Mamori's own
// threshold rules (internal/detect/correlate), indicators of compromise
// (internal/intel) and volume baselines (internal/detect/anomaly) — and
// records what it finds as alerts (internal/alert). A batch is
// acknowledged on the bus only after its alerts are committed, so a
// restart resumes where it stopped and no event is evaluated zero times.
//
// Rules are compiled into an immutable set swapped atomically on reload
// (API, CLI, SIGHUP); a rule that does not compile is reported and
// skipped. Newly added indicators start a retro-hunt over the stored
// events, whose findings are alerts marked retro.
package detect
