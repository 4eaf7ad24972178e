package query

import (
	"regexp"
	"strconv"
	"strings"
)

// LogsQL names of the VictoriaLogs built-in fields Mamori maps to.
const (
	timeField = "_time" // @timestamp
	msgField  = "_msg"  // event.original: the raw message verbatim
)

// textFields are searched like free text: `field:word` is a case-insensitive
// word/phrase match (LogsQL i(...)) instead of an exact match. These are the
// ECS fields that hold prose or command lines, where an analyst looks for a
// word inside the value rather than for the whole value. Everything else is a
// keyword field: exact, case-sensitive (as Elasticsearch keyword fields).
var textFields = map[string]bool{
	msgField:                      true,
	"message":                     true,
	"error.message":               true,
	"event.reason":                true,
	"rule.description":            true,
	"process.command_line":        true,
	"process.parent.command_line": true,
	"email.subject":               true,
	"user_agent.original":         true,
	"http.request.body.content":   true,
	"http.response.body.content":  true,
}

// IsTextField reports whether field (an analyst name such as
// "process.command_line") is searched by words rather than by exact value.
func IsTextField(field string) bool {
	return textFields[mapField(field)]
}

// mapField maps an analyst field name to its storage name.
func mapField(name string) string {
	switch name {
	case "@timestamp", timeField:
		return timeField
	case "event.original", msgField:
		return msgField
	}
	return name
}

// analystFieldRe is what the analyst language accepts as a field name in
// `field:value` (the first char excludes digits and '-' so that `10:23:45`
// or `-x:y` are not read as fields).
var analystFieldRe = regexp.MustCompile(`^[A-Za-z_@][A-Za-z0-9_.@-]*$`)

// pipeFieldRe is a field name inside a pipe (stats by, fields, sort, top).
var pipeFieldRe = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// plainFieldRe: field names that can go unquoted into LogsQL.
var plainFieldRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$`)

// logsqlKeywords are words with a meaning somewhere in LogsQL v1.52.1
// (filter functions, logical operators, pipe names and pipe keywords, stats
// and math function names). A field name whose first dot-separated segment is
// one of them is quoted, so that e.g. `in.foo` is never read as `in(...)`.
var logsqlKeywords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		and or not options if by as from now offset
		contains_all contains_any json_array_contains_any contains_common_case eq_field
		equals_common_case exact i in ipv4_range ipv6_range le_field len_range lt_field
		pattern_match pattern_match_full pattern_match_prefix pattern_match_suffix range re seq
		string_range value_type day_range week_range
		after asc at before case default desc drop_duplicates hits inner keep_const_fields
		keep_original_fields limit max_value_len max_values_per_field on partition prefix
		preserve_keys prettify rank result_prefix rows skip_empty_results switch time_window with
		block_stats blocks_count coalesce collapse_nums copy cp decolorize del delete drop
		drop_empty_fields extract extract_regexp eval facets field_names field_values fields
		filter first format generate_sequence hash head join json_array_concat json_array_len
		keep last len math mv order pack_json pack_logfmt query_stats rename replace
		replace_regexp rm running_stats sample set_stream_fields skip sort split stats
		stats_remote stream_context time_add top total_stats union uniq unpack_json
		unpack_logfmt unpack_syslog unpack_words unroll where
		any avg count count_empty count_uniq count_uniq_hash field_max field_min histogram
		json_values max median min quantile rate rate_sum row_any row_max row_min stddev sum
		sum_len uniq_values values
		abs ceil exp floor ln rand round
		inf nan`) {
		m[w] = true
	}
	return m
}()

// quoteField renders a storage field name for LogsQL, quoting it unless it is
// a plain dotted identifier that cannot be mistaken for a keyword.
func quoteField(name string) string {
	if plainFieldRe.MatchString(name) {
		first, _, _ := strings.Cut(name, ".")
		if !logsqlKeywords[strings.ToLower(first)] {
			return name
		}
	}
	return strconv.Quote(name)
}

// quoteValue renders any string as a LogsQL string literal. strconv.Quote
// output is read back by the LogsQL lexer with strconv.Unquote, so every byte
// sequence round-trips and nothing in a value can end the literal early.
func quoteValue(v string) string {
	return strconv.Quote(v)
}
