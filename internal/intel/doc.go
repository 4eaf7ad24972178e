// Package intel owns Mamori's threat intelligence: the indicator model
// (IPs, CIDRs, domains, URLs, hashes, e-mail addresses, file names, each
// with every source that reported it), their normalization, the store
// (in memory plus SQLite persistence in tables named intel_*), the matcher
// that checks every ingested event against all loaded indicators at ingest
// speed, the feed parsers (STIX 2.1 with its own patterning parser, MISP
// feeds, abuse.ch CSV layouts, plain lists, manual entries) and the LogsQL
// query builder for retro-hunts over stored events.
//
// It imports only internal/event of Mamori's own packages; the bus
// consumer, the API, the CLI and alerting call into it.
//
// Normalization (see Normalize):
//   - IPv4/IPv6: canonical text of net/netip (IPv4-mapped IPv6 becomes
//     IPv4; zones are rejected). A CIDR whose length covers the whole
//     address becomes a single-address indicator; host bits are masked.
//   - domain: lower case, trailing dot and a leading "*." removed. A domain
//     indicator matches the domain and every subdomain.
//   - url: scheme and host lower case, userinfo and fragment dropped, the
//     default port (80, 443) removed, an empty path becomes "/", a missing
//     scheme becomes "http://"; path and query are kept byte for byte.
//     Matching ignores the scheme (http and https of the same host and
//     path are one resource for a hunt).
//   - md5/sha1/sha256: lower-case hex of the exact length.
//   - email: lower case, "mailto:" and angle brackets removed.
//   - filename: the base name of what was given, lower case (Windows names
//     are case-insensitive and dominate the feeds).
//
// Defanged values ("hxxp://evil[.]com", "1.2.3[.]4") are refanged first.
package intel
