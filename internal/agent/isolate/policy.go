package isolate

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrUnsupported: this platform (anything but Linux) or this kernel
	// (no nf_tables) cannot isolate.
	ErrUnsupported = errors.New("isolate: network isolation is not supported here")
	// ErrNotIsolated: Release found no isolation table to remove.
	ErrNotIsolated = errors.New("isolate: host is not isolated")
	// ErrPolicy: the policy was rejected before anything was changed (for
	// instance an empty allow list, which would cut the agent off its
	// server).
	ErrPolicy = errors.New("isolate: invalid policy")
)

// DefaultTable is the nftables table (family inet) the isolator owns.
const DefaultTable = "mamori_isolate"

// Endpoint is one address (or network) the isolated host may still talk to.
//
// In Policy.Allow it describes a destination: the host may open
// connections to Addr (to Port when non-zero), and the replies of those
// connections come back. In Policy.Inbound it describes a remote that may
// open connections to this host (to the local Port when non-zero).
type Endpoint struct {
	// Addr is the address or network; a single address is a /32 or /128
	// (see Host). IPv4-mapped IPv6 is normalized to IPv4.
	Addr netip.Prefix `json:"addr"`
	// Port restricts the rule to one port (0: any port). A port needs Proto.
	Port uint16 `json:"port,omitempty"`
	// Proto is "tcp", "udp" or "" for any protocol (ICMP included).
	Proto string `json:"proto,omitempty"`
}

// Host is the Endpoint of a single address.
func Host(addr netip.Addr, proto string, port uint16) Endpoint {
	addr = addr.Unmap()
	return Endpoint{Addr: netip.PrefixFrom(addr, addr.BitLen()), Proto: proto, Port: port}
}

// String is the canonical text "ADDR/BITS PROTO PORT" ("any" and 0 for
// wildcards), used in rule comments and parsed back by Status.
func (e Endpoint) String() string {
	proto := e.Proto
	if proto == "" {
		proto = "any"
	}
	return fmt.Sprintf("%s %s %d", e.Addr, proto, e.Port)
}

func parseEndpoint(s string) (Endpoint, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Endpoint{}, fmt.Errorf("endpoint %q: want ADDR/BITS PROTO PORT", s)
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil {
		return Endpoint{}, err
	}
	port, err := strconv.ParseUint(f[2], 10, 16)
	if err != nil {
		return Endpoint{}, err
	}
	e := Endpoint{Addr: p, Port: uint16(port), Proto: f[1]}
	if e.Proto == "any" {
		e.Proto = ""
	}
	return e.normalize()
}

func (e Endpoint) normalize() (Endpoint, error) {
	if !e.Addr.IsValid() {
		return e, fmt.Errorf("%w: endpoint without a valid address", ErrPolicy)
	}
	if a := e.Addr.Addr(); a.Is4In6() {
		bits := e.Addr.Bits() - 96
		if bits < 0 {
			return e, fmt.Errorf("%w: endpoint %s: IPv4-mapped prefix shorter than /96", ErrPolicy, e.Addr)
		}
		e.Addr = netip.PrefixFrom(a.Unmap(), bits)
	}
	if e.Addr.Bits() == 0 {
		return e, fmt.Errorf("%w: endpoint %s would allow every address", ErrPolicy, e.Addr)
	}
	e.Addr = e.Addr.Masked()
	e.Proto = strings.ToLower(e.Proto)
	switch e.Proto {
	case "", "tcp", "udp":
	default:
		return e, fmt.Errorf("%w: endpoint %s: protocol %q (want tcp, udp or empty)", ErrPolicy, e.Addr, e.Proto)
	}
	if e.Port != 0 && e.Proto == "" {
		return e, fmt.Errorf("%w: endpoint %s: port %d needs a protocol (tcp or udp)", ErrPolicy, e.Addr, e.Port)
	}
	return e, nil
}

// Policy is what stays reachable while the host is isolated. Everything
// else (in, out and forwarded, IPv4 and IPv6) is dropped, loopback excepted.
type Policy struct {
	// Allow lists the Mamori server(s): outbound connections to these, and
	// their replies, pass. It must not be empty.
	Allow []Endpoint `json:"allow"`
	// Inbound lists remotes that may open connections to this host (for
	// example a responder's workstation); usually empty.
	Inbound []Endpoint `json:"inbound,omitempty"`
	// AllowDNS lists resolvers the host may query (UDP and TCP port 53).
	AllowDNS []netip.Addr `json:"allow_dns,omitempty"`
	// AllowDHCP lets DHCPv4 (UDP 68→67) and DHCPv6 (UDP 546→547) through,
	// to any address, so the lease can be renewed while isolated.
	AllowDHCP bool `json:"allow_dhcp,omitempty"`
	// Until is when the isolation lifts by itself; zero means until
	// Release. The kernel stops enforcing the table at Until even if the
	// agent is not running; Run or Restore then removes it.
	Until time.Time `json:"until,omitzero"`
	// Reason is recorded with the table (truncated there) and in the
	// state file.
	Reason string `json:"reason,omitempty"`
}

// Validate reports whether the policy would be accepted by Apply, as an
// error wrapping ErrPolicy.
func (p Policy) Validate() error {
	_, err := p.normalize(time.Now())
	return err
}

// normalize returns the canonical policy (IPv4-mapped addresses unmapped,
// prefixes masked, duplicates removed) or an error wrapping ErrPolicy.
func (p Policy) normalize(now time.Time) (Policy, error) {
	if len(p.Allow) == 0 {
		return p, fmt.Errorf("%w: empty allow list would cut the agent off its server", ErrPolicy)
	}
	var err error
	out := Policy{AllowDHCP: p.AllowDHCP, Until: p.Until, Reason: p.Reason}
	if out.Allow, err = normalizeEndpoints(p.Allow); err != nil {
		return p, err
	}
	if out.Inbound, err = normalizeEndpoints(p.Inbound); err != nil {
		return p, err
	}
	seen := map[netip.Addr]bool{}
	for _, a := range p.AllowDNS {
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" {
			return p, fmt.Errorf("%w: DNS resolver %q is not a usable address", ErrPolicy, a)
		}
		a = a.Unmap()
		if !seen[a] {
			seen[a] = true
			out.AllowDNS = append(out.AllowDNS, a)
		}
	}
	if !p.Until.IsZero() {
		if !p.Until.After(now) {
			return p, fmt.Errorf("%w: until %s is not in the future", ErrPolicy, p.Until.Format(time.RFC3339))
		}
		out.Until = p.Until.Round(0).UTC()
	}
	return out, nil
}

func normalizeEndpoints(in []Endpoint) ([]Endpoint, error) {
	var out []Endpoint
	seen := map[Endpoint]bool{}
	for _, e := range in {
		e, err := e.normalize()
		if err != nil {
			return nil, err
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out, nil
}

// Status is the isolation as read back from the live ruleset.
type Status struct {
	// Isolated: the table is present (it may be Expired).
	Isolated bool
	// Table is the nftables table name (family inet).
	Table string
	// Policy is decoded from the table's rule comments: the allow lists,
	// Until and Reason (truncated to fit a rule comment).
	Policy Policy
	// AppliedAt is when Apply installed the table.
	AppliedAt time.Time
	// Expired: Until has passed, so the kernel no longer enforces the
	// table; Run or Restore removes it.
	Expired bool
	// KernelExpiry: the table carries its own expiry ("meta time", Linux
	// 5.4 and later), enforced by the kernel even without a running agent.
	KernelExpiry bool
	// Dropped counts the packets the table has dropped.
	Dropped uint64
}

// The metadata comment on the final drop rule of the output chain, read
// back by Status. A rule comment (nftables userdata) holds at most 255
// bytes, NUL included.
const (
	metaPrefix     = "mamori-isolate v1"
	maxCommentLen  = 254
	commentAllow   = "allow "
	commentInbound = "inbound "
	commentDNS     = "dns "
	commentDHCP    = "dhcp"
)

type tableMeta struct {
	Until     time.Time
	AppliedAt time.Time
	Reason    string
}

func (m tableMeta) comment() string {
	until := "none"
	if !m.Until.IsZero() {
		until = m.Until.UTC().Format(time.RFC3339Nano)
	}
	s := fmt.Sprintf("%s until=%s applied=%s reason=", metaPrefix, until, m.AppliedAt.UTC().Format(time.RFC3339Nano))
	reason := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(m.Reason, "?"))
	for len(s)+len(reason) > maxCommentLen {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	return s + reason
}

func parseMeta(s string) (tableMeta, bool) {
	rest, ok := strings.CutPrefix(s, metaPrefix+" ")
	if !ok {
		return tableMeta{}, false
	}
	var m tableMeta
	head, reason, _ := strings.Cut(rest, "reason=")
	m.Reason = reason
	for f := range strings.FieldsSeq(head) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "until":
			if v != "none" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return tableMeta{}, false
				}
				m.Until = t
			}
		case "applied":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return tableMeta{}, false
			}
			m.AppliedAt = t
		}
	}
	return m, true
}
