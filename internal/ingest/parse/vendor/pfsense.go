package vendor

// pfsense: the filterlog CSV of pfSense (and OPNsense), e.g.
//
//	5,,,1000000103,igb1,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,198.51.100.7,192.0.2.10,51234,22,0,S,1234567,,64240,,mss;sackOK;TS;nop;wscale
//
// Common: rule, sub rule, anchor, tracker, interface, reason, action,
// direction, IP version. IPv4: TOS, ECN, TTL, ID, offset, flags, protocol id,
// protocol text. IPv6: class, flow label, hop limit, protocol text, protocol
// id. Then length, source, destination and protocol data (TCP/UDP ports, TCP
// flags…, ICMP type and its data, CARP).

func parsePfsense(msg string, o *out) bool {
	var f [40]string
	n := splitCSV(trimSpace(msg), f[:])
	if n < 9 || !isDigits(f[0]) {
		return false
	}
	action, dir, ver := f[6], f[7], f[8]
	switch action {
	case "pass", "block", "reject", "match", "scrub", "nat", "rdr", "binat":
	default:
		return false
	}
	if dir != "in" && dir != "out" {
		return false
	}
	var tos, ecn, ttl, id, off, flags, protoID, proto, length, src, dst, class, flow, hop string
	p := 0 // index of the first protocol-data field
	switch ver {
	case "4":
		if n < 20 {
			return false
		}
		tos, ecn, ttl, id, off, flags, protoID, proto = f[9], f[10], f[11], f[12], f[13], f[14], f[15], f[16]
		length, src, dst = f[17], f[18], f[19]
		p = 20
	case "6":
		if n < 17 {
			return false
		}
		class, flow, hop, proto, protoID = f[9], f[10], f[11], f[12], f[13]
		length, src, dst = f[14], f[15], f[16]
		p = 17
	default:
		return false
	}
	if !isIP(src) || !isIP(dst) {
		return false
	}
	get := func(i int) string {
		if p+i < n {
			return f[p+i]
		}
		return ""
	}

	setFirewall(o, "Netgate", "pfSense", "pfsense.log")
	o.set(fAction, action)
	if t := allowDeny(action); t != "" {
		o.set(fType, t)
	} else {
		o.set(fType, "connection")
	}
	o.set(fEventReason, f[5])
	o.set(fRuleID, f[3])
	if dir == "in" {
		o.set(fNetworkDirection, "ingress")
		o.set(fObserverIngressIface, f[4])
	} else {
		o.set(fNetworkDirection, "egress")
		o.set(fObserverEgressIface, f[4])
	}
	if ver == "4" {
		o.set(fNetworkType, "ipv4")
	} else {
		o.set(fNetworkType, "ipv6")
	}
	o.set(fNetworkTransport, transport(proto))
	if isDigits(protoID) {
		o.set(fNetworkIANANumber, protoID)
	}
	o.set(fSourceIP, src)
	o.set(fDestIP, dst)

	o.set(fPfsenseAnchor, f[2])
	o.set(fPfsenseInterface, f[4])
	o.set(fPfsenseRuleNumber, f[0])
	o.set(fPfsenseSubRuleNumber, f[1])
	o.set(fPfsenseLength, length)
	o.set(fPfsenseTos, tos)
	o.set(fPfsenseEcn, ecn)
	o.set(fPfsenseTtl, ttl)
	o.set(fPfsenseId, id)
	o.set(fPfsenseOffset, off)
	o.set(fPfsenseFlags, flags)
	o.set(fPfsenseClass, class)
	o.set(fPfsenseFlowLabel, flow)
	o.set(fPfsenseHopLimit, hop)

	switch protoID {
	case "6", "17", "132": // TCP, UDP, SCTP
		o.set(fSourcePort, port(get(0)))
		o.set(fDestPort, port(get(1)))
		o.set(fPfsenseDataLength, get(2))
		if protoID == "6" {
			o.set(fPfsenseTcpFlags, get(3))
			o.set(fPfsenseTcpSeq, get(4))
			o.set(fPfsenseTcpAck, get(5))
			o.set(fPfsenseTcpWindow, get(6))
			o.set(fPfsenseTcpUrg, get(7))
			o.set(fPfsenseTcpOptions, get(8))
		}
	case "1": // ICMP
		typ := get(0)
		o.set(fPfsenseIcmpType, typ)
		switch typ {
		case "request", "reply", "tstamp":
			o.set(fPfsenseIcmpId, get(1))
			o.set(fPfsenseIcmpSeq, get(2))
		case "tstampreply":
			o.set(fPfsenseIcmpId, get(1))
			o.set(fPfsenseIcmpSeq, get(2))
			o.set(fPfsenseIcmpOtime, get(3))
			o.set(fPfsenseIcmpRtime, get(4))
			o.set(fPfsenseIcmpTtime, get(5))
		case "unreachproto":
			o.set(fPfsenseIcmpDestinationIp, ip(get(1)))
			o.set(fPfsenseIcmpProtocolId, get(2))
		case "unreachport":
			o.set(fPfsenseIcmpDestinationIp, ip(get(1)))
			o.set(fPfsenseIcmpProtocolId, get(2))
			o.set(fPfsenseIcmpPort, port(get(3)))
		case "needfrag":
			o.set(fPfsenseIcmpDestinationIp, ip(get(1)))
			o.set(fPfsenseIcmpMtu, get(2))
		default:
			o.set(fPfsenseIcmpDescription, get(1))
		}
	case "112": // CARP
		o.set(fPfsenseCarpType, get(0))
		o.set(fPfsenseCarpTtl, get(1))
		o.set(fPfsenseCarpVhid, get(2))
		o.set(fPfsenseCarpVersion, get(3))
		o.set(fPfsenseCarpAdvskew, get(4))
		o.set(fPfsenseCarpAdvbase, get(5))
	}
	return true
}
