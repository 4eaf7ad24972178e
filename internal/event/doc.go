// Package event owns Mamori's normalized event: one Go type whose field names
// are Elastic Common Schema (ECS) names, plus the tenant, the ingest source and
// the original message kept verbatim. Every other package that handles events
// (ingest, bus, store, query, detect) speaks this type; it imports nothing of
// Mamori's own.
package event
