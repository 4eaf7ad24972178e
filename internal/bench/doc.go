// Package bench owns `mamori bench`: load generators that drive a real
// `mamori serve` (started by the benchmark on loopback with a temp data dir)
// and, for comparison, a real rsyslogd, and report rates and peak memory.
package bench
