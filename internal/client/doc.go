// Package client is the Go client of Mamori's HTTP API used by the CLI:
// connection settings, bearer authentication, problem-details errors, and
// the file sender behind `mamori ingest`.
package client
