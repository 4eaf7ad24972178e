// Package api owns Mamori's HTTP API: authentication by bearer token,
// tenant scoping (the caller's tenants travel in the request context down to
// the store), ingest, search, tenants and tokens, health and metrics.
// Errors are RFC 9457 problem details with a stable code.
package api
