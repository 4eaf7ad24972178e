// Package agent is the endpoint agent (`mamori agent`): it enrolls with a
// server once (an enroll token buys a per-agent credential and the pattern
// repository's trusted root, pinned from then on), follows the server's
// push stream of signed timestamps, fetches and verifies each new pattern
// release with the TUF client of internal/update (usually a small delta),
// loads it in a guarded way — compile with a time budget, then a self-test
// that the engine still finds the EICAR test file and stays silent on
// known-clean files (its own binary, system binaries) — and only then makes
// it the active set. A set that fails is refused and the last good one
// stays active, with no network needed to revert. Every outcome is
// reported to the server (time to protect), with heartbeats carrying the
// agent's health.
//
// Network isolation is in the sub-package isolate. Not yet here: scheduled
// and on-change scanning, quarantine and cleanup steps, sample upload and
// log shipping (see docs/AGENT.md).
package agent
