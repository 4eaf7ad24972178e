// Package e2e holds end-to-end tests: they build the real mamori binary,
// start `mamori serve` on ephemeral loopback ports with a temp data dir, and
// drive it only through its public interfaces with real senders (util-linux
// logger, rsyslog over TCP/TLS/RELP, openssl s_client) and the CLI.
package e2e
