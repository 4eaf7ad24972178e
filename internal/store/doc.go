// Package store is Mamori's events store: normalized events (internal/event)
// are written to, queried from and expired out of a VictoriaLogs engine.
//
// Two engines sit behind the one Store interface:
//
//   - the embedded engine (OpenEmbedded) runs VictoriaLogs' storage library
//     (github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage) inside the
//     Mamori process, under a data directory;
//   - the HTTP engine (OpenVictoriaLogs) talks to a VictoriaLogs single-node
//     server or to a VictoriaLogs cluster (a node started with -storageNode).
//
// Both engines store an event as the same row (see the Field* constants and
// docs/STORE.md): _time is the event timestamp, _msg the verbatim message,
// every ECS field keeps its dotted name, and tenant, event.id,
// event.ingested and mamori.source are added. The stream fields are tenant,
// mamori.source and observer.product. Queries are LogsQL; the same query
// returns the same rows on both engines.
//
// Tenants are isolated by the engine: the TenantResolver maps a tenant name
// to a numeric id that is used as the VictoriaLogs AccountID (ProjectID is
// always 0), and every query runs with the AccountIDs of the tenants it was
// given and nothing else.
//
// Durability: the embedded engine's Write returns once the rows are fsynced
// (group commit: concurrent writers share one flush); the HTTP engine's
// Write returns once the server accepted the rows and made them searchable
// (/internal/force_flush), and optionally once it saved them to disk
// (HTTPOptions.SyncToDisk). See docs/STORE.md for the measured costs.
//
// Retention: DeleteBefore runs a VictoriaLogs delete task for the tenant and
// waits for it; in addition the cut-off is applied to every later query of
// this Store, so expired rows are unqueryable as soon as DeleteBefore was
// called, even while the engine is still deleting them.
package store
