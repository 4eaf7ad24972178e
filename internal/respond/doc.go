// Package respond owns the measures the SOC takes on a customer's
// endpoints: commands issued to one agent (isolate the host, lift the
// isolation, scan paths, quarantine or restore a file, upload a
// quarantined sample to the lab), their queue, their delivery and their
// outcome.
//
// A command is written to the state database before anyone is told about
// it, so a restart of the server or an agent that is offline loses
// nothing: the agent collects what is pending each time it connects. While
// it is connected it is nudged at once (OnIssue feeds the agent's push
// stream: a nudge carries no payload, the agent then fetches its pending
// commands with its own credential). Each command has an expiry: an
// isolation ordered for an incident yesterday must not cut a PC off the
// network when it comes back from a week in a drawer. Commands are
// tenant-scoped like everything else: an agent sees only its own, an
// analyst only those of tenants they may write.
package respond
