// Package logship ships an endpoint's local log files to the server's
// ingest pipeline, the way a SOC wants them: nothing lost, nothing sent
// twice in normal operation, nothing half-sent.
//
// Files are followed by polling (portable, and immune to the event storms
// of a busy log directory). The offset of each file is committed to a
// state file only after the server accepted the batch that ends there, so
// a crash or a server outage resends from the last accepted line
// (at-least-once). A file renamed away by log rotation is read to its end
// before the new file is started; a file truncated in place is read again
// from its start, and counted (seen when the file is shorter than the
// offset at the next poll: a truncated file that grew past the old offset
// within one poll is not noticed, as with every offset-based follower). A
// line longer than MaxLine is split into MaxLine pieces and counted, never
// dropped. A file seen for the first time is read from its
// end unless FromStart is set, so that enrolling an agent does not flood
// the SOC with years of history.
package logship
