// Package ingest owns the way in: listeners (syslog over UDP, TCP and TLS,
// RELP), the tenant router that assigns each source to a customer, and the
// pipeline that parses frames into events, batches them and publishes the
// batches to the bus. Parsers live in ingest/parse (formats) and
// ingest/parse/vendor (vendor line formats); transport framing in
// ingest/framing and ingest/relp; Windows .evtx reading in ingest/evtx.
//
// Backpressure: the pipeline counts events parsed but not yet durable on the
// bus. Past Ingest.MaxPending, Submit blocks (TCP, TLS and RELP readers stop
// reading, so senders slow down) and TrySubmit fails with ErrBusy (HTTP
// answers 503 with Retry-After; UDP datagrams are dropped and counted).
package ingest
