//go:build linux

package isolate

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

const (
	// chainPriority places our base chains after conntrack (-200), so that
	// ct state is known in the output hook, and after destination NAT
	// (-100), so that we judge the final destination of a packet rather
	// than the one the application asked for; and just before the
	// conventional filter chains (0). Priority does not decide who "wins":
	// a drop in any base chain is final whatever the order, and our accept
	// only ends our own chain (see doc.go).
	chainPriority nftables.ChainPriority = -10

	// metaKeyTimeNS is NFT_META_TIME_NS (Linux 5.4), the wall clock in
	// nanoseconds since the epoch, host byte order; x/sys/unix lacks it.
	metaKeyTimeNS expr.MetaKey = 30

	loopbackIfindex = 1 // LOOPBACK_IFINDEX: "lo" in every network namespace

	chainInput   = "input"
	chainOutput  = "output"
	chainForward = "forward"

	commentExpiry = "expiry"
)

// rule is one nftables rule: its match expressions, verdict and comment.
type rule struct {
	exprs   []expr.Any
	comment string
}

func match(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func cmpEq(data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}}
}

func nfproto(family byte) []expr.Any {
	return append([]expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}}, cmpEq([]byte{family})...)
}

func l4proto(proto byte) []expr.Any {
	return append([]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}}, cmpEq([]byte{proto})...)
}

func protoNumber(name string) byte {
	if name == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// addr matches the source (src) or destination address against a prefix,
// family included: "ip saddr 192.0.2.0/24" or "ip6 daddr 2001:db8::1".
func addr(p netip.Prefix, src bool) []expr.Any {
	var fam byte
	var off uint32
	switch {
	case p.Addr().Is4() && src:
		fam, off = unix.NFPROTO_IPV4, 12
	case p.Addr().Is4():
		fam, off = unix.NFPROTO_IPV4, 16
	case src:
		fam, off = unix.NFPROTO_IPV6, 8
	default:
		fam, off = unix.NFPROTO_IPV6, 24
	}
	n := (p.Bits() + 7) / 8
	want := p.Masked().Addr().AsSlice()[:n]
	out := nfproto(fam)
	out = append(out, &expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n),
	})
	if p.Bits()%8 != 0 {
		mask := make([]byte, n)
		for i := range mask {
			mask[i] = 0xff
		}
		mask[n-1] = byte(0xff << (8 - p.Bits()%8))
		out = append(out, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: uint32(n), Mask: mask, Xor: make([]byte, n),
		})
	}
	return append(out, cmpEq(want)...)
}

// port matches the TCP/UDP source (src) or destination port.
func port(p uint16, src bool) []expr.Any {
	off := uint32(2)
	if src {
		off = 0
	}
	return append([]expr.Any{&expr.Payload{
		DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2,
	}}, cmpEq(binaryutil.BigEndian.PutUint16(p))...)
}

// ctState matches when the connection tracking state has any of the bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func iface(key expr.MetaKey, index uint32) []expr.Any {
	return append([]expr.Any{&expr.Meta{Key: key, Register: 1}}, cmpEq(binaryutil.NativeEndian.PutUint32(index))...)
}

// expiredAt matches once the wall clock reaches t ("meta time >= t"): the
// kernel itself stops enforcing the table at Until, agent or no agent.
// The clock is loaded in host order and compared big-endian, as nft does.
func expiredAt(t int64) []expr.Any {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(t))
	return []expr.Any{
		&expr.Meta{Key: metaKeyTimeNS, Register: 1},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: b},
	}
}

// icmpv6Control matches ICMPv6 types 130-136: multicast listener discovery
// (130-132: query, report, done) and neighbour discovery (133-136: router
// and neighbour solicitation and advertisement). Without neighbour
// discovery no IPv6 address, the server's included, is reachable; without
// MLD reports a snooping switch may stop forwarding the solicitations.
// MLDv2 reports (143) have their own rule.
func icmpv6Control(lo, hi byte) []expr.Any {
	typ := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}}
	if lo == hi {
		typ = append(typ, cmpEq([]byte{lo})...)
	} else {
		typ = append(typ,
			&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{lo}},
			&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{hi}})
	}
	return match(nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), typ)
}

var (
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
	drop   = &expr.Verdict{Kind: expr.VerdictDrop}
)

// chainRules returns the rules of the three base chains for a normalized
// policy. Each rule ends in accept except the last of each chain (counter,
// drop); the chains' policy is drop as well.
//
// With kernelExpiry (and a Until) each chain starts with "meta time >=
// Until accept", so the kernel stops enforcing the table at Until even if
// no agent is running to remove it.
func chainRules(p Policy, m tableMeta, kernelExpiry bool) map[string][]rule {
	var in, out, fwd []rule
	acc := func(dst *[]rule, comment string, parts ...[]expr.Any) {
		*dst = append(*dst, rule{exprs: append(match(parts...), accept), comment: comment})
	}
	if kernelExpiry && !p.Until.IsZero() {
		ns := p.Until.UnixNano()
		for _, dst := range []*[]rule{&in, &out, &fwd} {
			acc(dst, commentExpiry, expiredAt(ns))
		}
	}
	acc(&in, "loopback", iface(expr.MetaKeyIIF, loopbackIfindex))
	acc(&out, "loopback", iface(expr.MetaKeyOIF, loopbackIfindex))
	for _, dst := range []*[]rule{&in, &out} {
		acc(dst, "ipv6 neighbour and multicast listener discovery", icmpv6Control(130, 136))
		acc(dst, "ipv6 multicast listener report v2", icmpv6Control(143, 143))
	}
	// ICMP errors (unreachable, packet too big, time exceeded) about
	// tracked flows; they may come from any router on the path. Only
	// ICMP: "related" also covers helper expectations (FTP data...) of
	// connections that were open before the isolation.
	for _, proto := range []byte{unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6} {
		acc(&in, "icmp errors", ctState(expr.CtStateBitRELATED), l4proto(proto))
		acc(&out, "icmp errors", ctState(expr.CtStateBitRELATED), l4proto(proto))
	}
	established := ctState(expr.CtStateBitESTABLISHED)
	l4 := func(e Endpoint, src bool) []expr.Any {
		if e.Proto == "" {
			return nil
		}
		parts := l4proto(protoNumber(e.Proto))
		if e.Port != 0 {
			parts = append(parts, port(e.Port, src)...)
		}
		return parts
	}
	for _, e := range p.Allow {
		c := commentAllow + e.String()
		acc(&out, c, addr(e.Addr, false), l4(e, false))
		acc(&in, c, established, addr(e.Addr, true), l4(e, true))
	}
	for _, e := range p.Inbound {
		c := commentInbound + e.String()
		acc(&in, c, addr(e.Addr, true), l4(e, false))
		acc(&out, c, established, addr(e.Addr, false), l4(e, true))
	}
	for _, a := range p.AllowDNS {
		c := commentDNS + a.String()
		pfx := netip.PrefixFrom(a, a.BitLen())
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			acc(&out, c, addr(pfx, false), l4proto(proto), port(53, false))
			acc(&in, c, established, addr(pfx, true), l4proto(proto), port(53, true))
		}
	}
	if p.AllowDHCP {
		// Not conntrack-based: offers and acks are broadcast or come from
		// an address the client did not send to.
		udp := l4proto(unix.IPPROTO_UDP)
		acc(&out, commentDHCP, nfproto(unix.NFPROTO_IPV4), udp, port(68, true), port(67, false))
		acc(&in, commentDHCP, nfproto(unix.NFPROTO_IPV4), udp, port(67, true), port(68, false))
		acc(&out, commentDHCP, nfproto(unix.NFPROTO_IPV6), udp, port(546, true), port(547, false))
		acc(&in, commentDHCP, nfproto(unix.NFPROTO_IPV6), udp, port(547, true), port(546, false))
	}
	final := func(comment string) rule {
		return rule{exprs: []expr.Any{&expr.Counter{}, drop}, comment: comment}
	}
	in = append(in, final("drop"))
	out = append(out, final(m.comment()))
	fwd = append(fwd, final("drop"))
	return map[string][]rule{chainInput: in, chainOutput: out, chainForward: fwd}
}

// addTable queues, on c, the replacement of the whole table: create it if
// absent, delete it (with every chain and rule, ours or anyone's), create
// it again with our chains and rules. Flush sends the lot as one netlink
// batch, which nf_tables commits as a single transaction or not at all.
func addTable(c *nftables.Conn, name string, p Policy, m tableMeta, kernelExpiry bool) *nftables.Table {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	hooks := map[string]*nftables.ChainHook{
		chainInput:   nftables.ChainHookInput,
		chainOutput:  nftables.ChainHookOutput,
		chainForward: nftables.ChainHookForward,
	}
	rules := chainRules(p, m, kernelExpiry)
	for _, name := range []string{chainInput, chainOutput, chainForward} {
		policy := nftables.ChainPolicyDrop
		ch := c.AddChain(&nftables.Chain{
			Name:     name,
			Table:    t,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  hooks[name],
			Priority: nftables.ChainPriorityRef(chainPriority),
			Policy:   &policy,
		})
		for _, r := range rules[name] {
			c.AddRule(&nftables.Rule{
				Table:    t,
				Chain:    ch,
				Exprs:    r.exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
			})
		}
	}
	return t
}
