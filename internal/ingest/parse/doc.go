// Package parse turns one received message into a normalized event.Event.
//
// It owns format detection and the generic parsers:
//
//   - the syslog envelope: RFC 5424 and RFC 3164 (via go-syslog, best
//     effort), rsyslog's RSYSLOG_ForwardFormat (RFC 3164 layout with an
//     ISO-8601 time), BSD lines without <PRI> as read from files, a UTF-8 BOM
//     before MSG, year inference for RFC 3164 stamps;
//   - CEF and LEEF 1.0/2.0 (hand-written, no regexp);
//   - JSON objects: Suricata EVE, Zeek JSON logs, the Windows event shape
//     produced by internal/ingest/evtx (passed through) and generic JSON
//     (flattened to dotted keys), plus the rsyslog "@cee:" cookie;
//   - key=value lines, with FortiGate mapped to ECS.
//
// Vendor line formats (iptables, Cisco ASA, sshd, ...) live in the sibling
// package vendor and are reached through vendorParse (vendor_hook.go).
//
// The mapping from each format to ECS field names is documented in
// docs/FIELDS.md. Parse never panics and never drops input: text nothing
// understood is kept as message with event.kind "unparsed".
package parse
