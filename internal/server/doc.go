// Package server assembles `mamori serve`: state database, bus, events
// store, the bus→store persister, the ingest pipeline and listeners, the HTTP
// API and the retention job, started in dependency order and stopped in
// reverse so that nothing acknowledged is lost on Ctrl-C.
package server
