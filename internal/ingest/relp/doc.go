// Package relp is a server for RELP, the Reliable Event Logging Protocol of
// rsyslog (omrelp) and librelp: syslog over TCP or TLS where every message is
// acknowledged once stored, so that a client resends what a crash or a broken
// connection lost.
//
// On the wire a frame is "TXNR SP COMMAND SP DATALEN [SP DATA] LF". A client
// opens the session with an open command offering relp_version, relp_software
// and commands=syslog; it then sends syslog commands, many before any answer
// (librelp's window is 128 by default), and ends with close. The server
// answers every command with "TXNR rsp DATALEN DATA", strictly in TXNR order,
// "200 OK" meaning stored; it may send the hint "0 serverclose 0" before it
// drops a session.
//
// Server reads ahead and hands the messages to a Handler in batches; the
// acknowledgements leave only once the Handler says the batch is durable. A
// slow Handler stops the reading, which pushes back on the client through TCP.
// A malformed frame cannot be skipped (its length is unknown), so it ends the
// connection after serverclose.
//
// Listen makes the listener: it clamps the TCP segment size so that librelp's
// corked sends are not held for 200 ms per window (see ListenMSS). For RELP
// over TLS, wrap it with tls.NewListener; rsyslog's omrelp must then have a
// certificate of its own (tls.myCert, tls.myPrivKey): without one librelp
// offers only anonymous Diffie-Hellman, which crypto/tls does not implement.
//
// Handler errors: by default (CloseOnError) the failed messages are left
// unacknowledged and the connection is dropped, and librelp resends them
// after reconnecting. Answering "500" instead (RespondError) loses messages
// with librelp 1.11, which drops a transaction answered 500 from its
// retransmission list.
package relp
