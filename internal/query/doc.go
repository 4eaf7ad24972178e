// Package query turns what a SOC analyst types into LogsQL, the query
// language of VictoriaLogs (v1.52.1), where Mamori keeps its events: _time is
// the event time, _msg the raw message, and ECS field names (source.ip,
// user.name, ...) are columns of string values.
//
// Translate handles the analyst language, a Lucene/KQL-like syntax:
//
//	mimikatz                          -> i("mimikatz")
//	"failed password"                 -> i("failed password")
//	user.name:root                    -> user.name:="root"
//	source.ip:10.0.0.0/8              -> source.ip:ipv4_range("10.0.0.0/8")
//	destination.port:[1 TO 1024]      -> destination.port:range[1, 1024]
//	error | stats count() by host.name -> i("error") | stats by (host.name) count()
//
// Free text and "text" fields (message, process.command_line, ...) match
// words case-insensitively; other fields match the exact value,
// case-sensitively. Every value is written into the LogsQL as a quoted
// string literal, so no input can add filters, pipes or options. Errors are
// *Error values carrying the byte position of the problem.
//
// ValidateLogsQL checks raw LogsQL from an expert: it must parse, and it must
// not use query options, subqueries or the pipes that read outside the
// selected rows (join, union, stream_context, block_stats, blocks_count,
// query_stats), so that the time range and tenant filter the caller adds
// (Query.AddTimeFilter, Query.AddExtraFilters) cannot be escaped.
//
// Neither function adds the time range or the tenant: that is the caller's
// job, on the parsed logstorage.Query. The language, its semantics and the
// expert-mode rules are described with examples in SEARCH.md (docs/).
package query
