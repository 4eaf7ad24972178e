// Package state owns Mamori's state database: tenants, API tokens and the
// mappings that assign log sources to tenants. It is SQLite (modernc.org/sqlite,
// pure Go) under the data dir; schema migrations are applied on open.
package state
