// Package framing splits a syslog byte stream received over TCP or TLS into
// frames, as described by RFC 6587 (Transmission of Syslog Messages over TCP).
//
// Two framings exist on the wire and real senders mix them, so a Reader
// decides per frame:
//
//   - octet counting (RFC 6587 §3.4.1, RFC 5425 §4.3): "MSG-LEN SP SYSLOG-MSG",
//     used by logger --octet-count, rsyslog omfwd TCP_Framing="octet-counted",
//     syslog-ng syslog() and loggen. Senders disagree on whether a trailing LF
//     is counted: logger excludes it (and sends none), rsyslog and syslog-ng
//     include it. Both are accepted.
//   - non-transparent framing (RFC 6587 §3.4.2): the message ends at LF, used by
//     logger --tcp, rsyslog's default forwarding and syslog-ng network(). NUL is
//     accepted as a delimiter too, as some older senders use it.
//
// The Reader is bufio-like and zero-copy: a returned frame aliases the Reader's
// buffer and is valid only until the next call to Next. See Reader.Next for the
// exact rules and for every error case.
package framing
