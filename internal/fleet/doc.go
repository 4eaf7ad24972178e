// Package fleet owns the server's view of the endpoint agents: who is
// enrolled (tenant, host, platform, agent version, rollout ring), when each
// was last heard from and how healthy it says it is, and which pattern
// release each has verified and made active, and when — with its health at
// that moment, the baseline the rollout's health gates compare what it
// reports afterwards with (Activations). From the installs it
// computes the number the SOC sells: for a release and a tenant, how long
// after publication each share of the tenant's agents was protected (time
// to protect, p50/p99/100%).
//
// The registry is held in memory (10,000 agents heartbeating and a release
// reaching all of them within a second must not queue on SQLite) and
// written behind to the state database in tables named fleet_*, in one
// transaction per flush. A crash loses at most the last flush interval of
// heartbeats, installs and health baselines; enrollments are written
// through.
//
// The agent CA (certs.go, kept in <data>/keys/agent-ca) issues each agent
// that sends a certificate request at enrollment a client certificate for
// the key it generated; the registry records its serial, so removing an
// agent (or issuing it a new certificate) revokes the old one at once,
// without a revocation list.
//
// It imports no other Mamori package: the API authenticates agents and
// calls in; the update server reads ring assignments from here.
package fleet
