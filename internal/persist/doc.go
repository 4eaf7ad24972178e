// Package persist owns the path from the bus to the events store: a durable
// JetStream consumer that writes each delivered batch to the store and
// acknowledges it only after the store reports the rows durable. A crash
// therefore replays unacknowledged batches; rows of a replayed batch that
// are already stored (found by event.id) are skipped, so nothing is stored
// twice.
package persist
