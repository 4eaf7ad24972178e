// Package vendor parses the plain-text log lines of common network and
// server products into ECS fields on an event.Event.
//
// It owns the line formats whose structure lives in the message body rather
// than in a syslog or JSON envelope:
//
//   - "iptables": netfilter LOG lines (IN= OUT= SRC= DST= PROTO= …), incl. UFW prefixes
//   - "pfsense": pfSense/OPNsense filterlog CSV, IPv4 and IPv6, TCP/UDP/ICMP/CARP
//   - "cisco_asa": Cisco ASA / FTD "%ASA-n-nnnnnn:" messages
//   - "panos": Palo Alto PAN-OS TRAFFIC and THREAT CSV logs
//   - "postfix": Postfix MTA logs (smtpd, smtp, qmgr, cleanup, lmtp, pickup, bounce…)
//   - "sshd": OpenSSH server authentication and session logs
//   - "squid": Squid native access.log
//   - "apache_access" / "nginx_access": NCSA common/combined (and vhost_combined) access logs
//
// The single entry point is Parse. The caller (internal/ingest/parse)
// removes the syslog envelope and passes the APP-NAME/TAG and the body; for
// file lines it passes app "" and the whole line, and Parse strips a classic
// "Mmm dd hh:mm:ss host tag[pid]: " or RFC 3339 prefix itself (setting
// host.name, and @timestamp when still unset; classic stamps get the current
// year and UTC).
//
// Fields with an ECS home use the event.Field* names; the rest keep their
// vendor names under a namespace per format (iptables.*, pfsense.*, asa.*,
// panos.*, postfix.*, sshd.*, squid.*). docs/FIELDS.md lists the mapping.
//
// Speed: parsers avoid regexp and write into an out (out.go), a stack
// buffer indexed by each field name's rank among all names the package uses
// (fields.go registers them); Parse commits it to the event in one sorted,
// linear merge instead of one sorted insertion per field. Values are
// substrings of the input where possible, so most lines parse without
// allocating. Adding a field: add it to fields.go (reg) and set it with
// o.set.
//
// Tests: table tests per format (vendor_test.go), golden files
// (testdata/golden/<format>.txt → <format>.golden.json; regenerate with
// go test -run 'TestGolden$|TestWriteFuzzCorpus' -update), FuzzParse with a
// seed corpus under testdata/fuzz/FuzzParse, and BenchmarkParse.
package vendor
