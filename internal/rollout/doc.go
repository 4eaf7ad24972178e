// Package rollout owns how a pattern release reaches the fleet: in rings
// (by default 1 % → 10 % → 50 % → 100 % of a channel's agents), advancing
// only after a soak time in which no agent of the rings reached so far
// refused the release (verification, load or self-test failure: what a
// poison pattern looks like from the fleet) or broke a health gate (see
// Gates: false positives on known-clean files, engine restarts, scan
// errors, CPU per scan, a failing self-test — each judged against the
// agent's own health before it activated the release), and halting with an
// automatic rollback — a new release carrying the last good content, sent
// to every agent at once — at the first refusal or breach. The last stage,
// 100 %, has its soak too: the release counts as good (the base of the
// next rollout) only once the whole fleet ran it that long. Exact-hash
// bandages take the fast lane (straight to 100 %): the server already
// refused any hash of a known-clean file and a hash cannot cost CPU.
//
// Agents learn what they may install from Desired (the API serves it at
// GET /api/v1/agent/desired); the controller nudges them after each stage
// change by re-signing the timestamp, which the push stream delivers.
// Releases published through Controller.Publish are gated from the moment
// their timestamp is pushed.
//
// Tenants may set a policy per channel (Policy): follow the latest
// release (the default), pin a version, or delay releases by some hours.
// A policy only ever picks a version the rings have let the agent have,
// and a delay never keeps a rolled-back release in place; a pin does, by
// the customer's choice, and says so in its status (see docs/AGENT.md).
//
// Rollouts and policies are kept in the state database (tables named
// rollout_*), written through at every change: a restarted server resumes
// each rollout at its stage, with its soak clock (the time the server was
// down counts as soaked), a halted one stays halted, and the agents that
// had reported on a release stay let in.
package rollout
