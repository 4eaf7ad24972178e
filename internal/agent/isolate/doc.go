// Package isolate is the endpoint agent's network isolation ("contain the
// suspicious PC"): on Linux, an nftables table owned by Mamori that drops
// all traffic except to and from the Mamori server, loopback and, when the
// policy says so, DNS to named resolvers and DHCP. Other platforms get
// ErrUnsupported (isolate_other.go) so the agent still builds there.
//
// # What it owns
//
// One table, "inet mamori_isolate" (Options.Table), in the network
// namespace of the agent (or Options.NetNSFd), and the state file
// Options.StateFile. It never reads or changes any other table. Everything
// goes through netlink (github.com/google/nftables); the nft(8) binary is
// not needed.
//
// # The table
//
// Three base chains, filter type, policy drop, hooks input, output and
// forward (containers and VMs routed by the host are cut too):
//
//	[meta time >= Until accept]               kernel-side expiry, see below
//	iif/oif lo accept                         loopback
//	icmpv6 types 130-136, 143 accept          neighbour and multicast listener discovery
//	ct state related + icmp/icmpv6 accept     ICMP errors of tracked flows
//	Allow:   out: daddr [proto] [dport] accept
//	         in:  ct state established + saddr [proto] [sport] accept
//	Inbound: in:  saddr [proto] [dport] accept
//	         out: ct state established + daddr [proto] [sport] accept
//	AllowDNS: udp and tcp 53 to the resolver, replies back (established)
//	AllowDHCP: udp 68→67 and 546→547 out, 67→68 and 547→546 in
//	counter drop                              (the output chain's carries the metadata comment)
//
// There is no blanket "ct state established accept": a connection to
// anything else opened before the isolation (a C2 session) is cut, not
// grandfathered in by conntrack. Each rule carries a comment ("allow
// 192.0.2.10/32 tcp 443", ...) and the output chain's last one the
// metadata ("mamori-isolate v1 until=... applied=... reason=..."); Status
// decodes the live table from those, so "nft list ruleset" and Status
// show the same thing.
//
// # Why this design
//
// One table, replaced atomically. Apply queues "add table; delete table;
// add table, chains, rules" and sends it as one netlink batch, which
// nf_tables commits as a single transaction or rejects whole: the host is
// never half-isolated, applying twice replaces the table and never
// duplicates rules, and a rejected Apply leaves the previous state (and
// the previous state file) exactly as it was.
//
// Family inet: one table covers IPv4 and IPv6 (ARP, a separate family, is
// untouched; it carries no payload).
//
// Priority: a drop in any base chain is final, whatever the table and the
// order, so a single drop table is sufficient; conversely our accept only
// ends our own chain and does not override another table's drop. Priority
// therefore does not decide who "wins"; it decides what we see. Our chains
// run at filter-10 (-10): after conntrack (-200), so ct state is known in
// the output hook, and after destination NAT (-100), so we judge where a
// packet really goes, not the address an application (or malware adding a
// DNAT rule) asked for; and just before the usual filter chains (0).
//
// Expiry: with Until set, each chain starts with "meta time >= Until
// accept" (Linux 5.4 and later; older kernels reject it, and Apply then
// retries without it), so the kernel stops enforcing the table at Until
// even if the agent is dead; Run removes the table (and the state file)
// at Until, and Restore removes a table found expired.
//
// Persistence: the table outlives the agent process; a restarted agent
// calls Restore, which finds it and re-arms the expiry. A reboot empties
// the ruleset: the state file (written, atomically, before the table, and
// removed before the table on Release, so a crash errs on the side of
// isolation without undoing a release) lets Restore apply it again. Run
// also re-applies the table at once when it disappears while the host
// should be isolated ("nft flush ruleset", a restart of nftables.service,
// iptables-nft-restore, an intruder), watching nf_tables events, and
// reports it through Options.OnReapply; a Release by another process is
// recognized (its state file is gone) and not undone.
//
// # Limits
//
//   - Local root (or CAP_NET_ADMIN) can delete the table; Run puts it back
//     within milliseconds, but root can stop the agent first. Root can
//     also send and receive through AF_PACKET raw sockets (CAP_NET_RAW),
//     which bypass the inet hooks entirely, load kernel modules, or move
//     the wall clock past Until (both the kernel-side expiry and Run use
//     the wall clock). Isolation contains unprivileged malware and slows
//     down a privileged one; it does not contain a kernel-level intruder.
//   - Other tables still apply: if the host's own firewall (firewalld,
//     Docker's chains, a local policy) drops traffic to the server, the
//     isolated agent is cut off too, and nothing here can override that.
//     Their accepts, in turn, cannot open holes in the isolation.
//   - Only the namespace it is applied in, and routed traffic: containers
//     in other namespaces routed through the host are dropped in forward,
//     but macvlan/ipvlan interfaces, SR-IOV functions and VMs bridged at
//     layer 2 (no br_netfilter) never reach these hooks.
//   - AllowDNS lets queries through the resolver, which is a channel (DNS
//     tunnelling); prefer no resolver and server addresses resolved before
//     isolating. AllowDHCP accepts UDP 67/68 (546/547) to and from any
//     address; only a process allowed to bind those privileged ports can
//     use it.
//   - IPv6: neighbour discovery and MLD are accepted to and from any
//     address (without them nothing is reachable over IPv6). An allow list
//     naming only the server's IPv4 address blocks all other IPv6 traffic:
//     list its IPv6 addresses too when the agent may use them. Extension
//     headers are handled by the kernel (the transport header is found
//     past them; conntrack reassembles fragments before our chains).
//   - Unprivileged malware can still reach the server itself through the
//     allowed port; the server must treat an isolated agent as hostile.
//
// The tests build real network namespaces and veth pairs (ip(8), root) and
// check connectivity before, during and after isolation, over IPv4 and
// IPv6; they skip without root, ip(8) or nf_tables, and fail instead under
// MAMORI_REQUIRE_ALL=1.
package isolate
