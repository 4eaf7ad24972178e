// Package bus owns Mamori's durable event bus: NATS JetStream, either a
// server embedded in-process (file storage under the data dir) or an external
// NATS cluster. Listeners publish parsed events in batches (one message per
// batch); consumers (the events store, later detection) read with durable
// pull consumers and acknowledge only what they have made durable themselves.
//
// The stream uses interest retention with discard-new: a message stays until
// every consumer acknowledged it, and when consumers fall so far behind that
// the stream hits its byte limit, publishing fails with ErrFull, which
// listeners turn into backpressure.
package bus
