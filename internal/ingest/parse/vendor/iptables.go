package vendor

import (
	"strings"
)

// iptables: netfilter LOG/NFLOG target lines, e.g.
//
//	[12345.678901] [UFW BLOCK] IN=eth0 OUT= MAC=… SRC=1.2.3.4 DST=5.6.7.8 LEN=60 TOS=0x00
//	PREC=0x00 TTL=64 ID=0 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0

// indexIN finds "IN=" at the start of a word.
func indexIN(s string) int {
	off := 0
	for {
		i := strings.Index(s[off:], "IN=")
		if i < 0 {
			return -1
		}
		j := off + i
		if j == 0 || s[j-1] == ' ' || s[j-1] == ']' || s[j-1] == ':' {
			return j
		}
		off = j + 3
	}
}

type iptKV struct {
	in, out, physin, physout, mac, src, dst, length, tos, prec, ttl, id, ipflags      string
	proto, spt, dpt, window, res, tcpflags, urgp, icmpType, icmpCode, icmpID, icmpSeq string
	mark, uid, gid, tc, hoplimit, flowlbl                                             string
	hasOut                                                                            bool
}

func parseIptables(msg string, o *out) bool {
	start := indexIN(msg)
	if start < 0 {
		return false
	}
	var kv iptKV
	flagsStart, flagsEnd := -1, -1 // run of bare TCP flag words after RES=
	inTCPFlags, inIPFlags, afterProto := false, false, false
	for i := start; i < len(msg); {
		c := msg[i]
		if c == ' ' {
			i++
			continue
		}
		if c == '[' || c == '(' {
			// "[SRC=… ]": the packet quoted by an ICMP error; "(0102…)":
			// IP options after OPT. Skip either.
			close := byte(']')
			if c == '(' {
				close = ')'
			}
			j := strings.IndexByte(msg[i:], close)
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		j, eq := i, -1
		for j < len(msg) && msg[j] != ' ' {
			if msg[j] == '=' && eq < 0 {
				eq = j
			}
			j++
		}
		if eq < 0 {
			// A bare flag word.
			if inTCPFlags {
				if flagsStart < 0 {
					flagsStart = i
				}
				flagsEnd = j
			} else if inIPFlags && kv.ipflags == "" && msg[i:j] != "OPT" {
				kv.ipflags = msg[i:j]
			}
			i = j
			continue
		}
		k, v := msg[i:eq], msg[eq+1:j]
		i = j
		inIPFlags, inTCPFlags = false, false
		switch k {
		case "IN":
			kv.in = v
		case "OUT":
			kv.out, kv.hasOut = v, true
		case "PHYSIN":
			kv.physin = v
		case "PHYSOUT":
			kv.physout = v
		case "MAC":
			kv.mac = v
		case "SRC":
			if kv.src == "" {
				kv.src = v
			}
		case "DST":
			if kv.dst == "" {
				kv.dst = v
			}
		case "LEN":
			if kv.length == "" {
				kv.length = v
			}
		case "TOS":
			kv.tos = v
		case "PREC":
			kv.prec = v
		case "TTL":
			kv.ttl = v
		case "TC":
			kv.tc = v
		case "HOPLIMIT":
			kv.hoplimit = v
		case "FLOWLBL":
			kv.flowlbl = v
			inIPFlags = true
		case "ID":
			if afterProto {
				kv.icmpID = v
			} else {
				kv.id = v
				inIPFlags = true
			}
		case "PROTO":
			kv.proto = v
			afterProto = true
		case "SPT":
			kv.spt = v
		case "DPT":
			kv.dpt = v
		case "WINDOW":
			kv.window = v
		case "RES":
			kv.res = v
			inTCPFlags = true
		case "URGP":
			kv.urgp = v
		case "TYPE":
			kv.icmpType = v
		case "CODE":
			kv.icmpCode = v
		case "SEQ":
			kv.icmpSeq = v
		case "MARK":
			kv.mark = v
		case "UID":
			kv.uid = v
		case "GID":
			kv.gid = v
		}
	}
	if !kv.hasOut || !isIP(kv.src) || !isIP(kv.dst) || kv.proto == "" {
		return false
	}

	prefix := trimSpace(msg[:start])
	// Drop a kernel timestamp "[ 1234.567890]".
	if len(prefix) > 2 && prefix[0] == '[' {
		if j := strings.IndexByte(prefix, ']'); j > 0 && isKernelTime(prefix[1:j]) {
			prefix = trimSpace(prefix[j+1:])
		}
	}
	if i := strings.Index(prefix, "kernel: "); i >= 0 {
		prefix = trimSpace(prefix[i+8:])
	}
	prefix = strings.TrimRight(prefix, ": ")

	product := "iptables"
	if strings.Contains(prefix, "UFW") {
		product = "ufw"
	}
	setFirewall(o, "Netfilter", product, "iptables.log")
	if a := iptAction(prefix); a != "" {
		o.set(fAction, a)
		o.set(fType, allowDeny(a))
	} else {
		o.set(fType, "connection")
	}
	o.set(fSourceIP, kv.src)
	o.set(fDestIP, kv.dst)
	o.set(fSourcePort, port(kv.spt))
	o.set(fDestPort, port(kv.dpt))
	if t := transport(kv.proto); t != "" {
		o.set(fNetworkTransport, t)
	} else if isDigits(kv.proto) {
		o.set(fNetworkIANANumber, kv.proto)
	}
	if strings.IndexByte(kv.src, ':') >= 0 {
		o.set(fNetworkType, "ipv6")
	} else {
		o.set(fNetworkType, "ipv4")
	}
	switch {
	case kv.in != "" && kv.out == "":
		o.set(fNetworkDirection, "ingress")
	case kv.in == "" && kv.out != "":
		o.set(fNetworkDirection, "egress")
	}
	o.set(fObserverIngressIface, kv.in)
	o.set(fObserverEgressIface, kv.out)
	if len(kv.mac) == 41 { // dst(6):src(6):ethertype(2)
		o.set(fDestMAC, ecsMAC(kv.mac[:17]))
		o.set(fSourceMAC, ecsMAC(kv.mac[18:35]))
	}

	o.set(fIptablesFragmentFlags, kv.ipflags)
	o.set(fIptablesGid, kv.gid)
	o.set(fIptablesIcmpCode, kv.icmpCode)
	o.set(fIptablesIcmpId, kv.icmpID)
	o.set(fIptablesIcmpSeq, kv.icmpSeq)
	o.set(fIptablesIcmpType, kv.icmpType)
	o.set(fIptablesId, kv.id)
	o.set(fIptablesIn, kv.in)
	o.set(fIptablesLength, kv.length)
	o.set(fIptablesMac, kv.mac)
	o.set(fIptablesMark, kv.mark)
	o.set(fIptablesOut, kv.out)
	o.set(fIptablesPhysin, kv.physin)
	o.set(fIptablesPhysout, kv.physout)
	o.set(fIptablesPrecedence, kv.prec)
	o.set(fIptablesPrefix, prefix)
	o.set(fIptablesTcpFlags, spanOf(msg, flagsStart, flagsEnd))
	o.set(fIptablesTcpReservedBits, kv.res)
	o.set(fIptablesTcpWindow, kv.window)
	o.set(fIptablesTos, kv.tos)
	o.set(fIptablesTtl, kv.ttl)
	o.set(fIptablesHopLimit, kv.hoplimit)
	o.set(fIptablesFlowLabel, kv.flowlbl)
	o.set(fIptablesTrafficClass, kv.tc)
	o.set(fIptablesUid, kv.uid)
	return true
}

func spanOf(s string, i, j int) string {
	if i < 0 || j > len(s) || i >= j {
		return ""
	}
	return s[i:j]
}

func isKernelTime(s string) bool {
	s = trimSpace(s)
	dot := strings.IndexByte(s, '.')
	return dot > 0 && isDigits(s[:dot]) && isDigits(s[dot+1:])
}

// iptAction reads the action from a log prefix such as "[UFW BLOCK]",
// "DROP-IN:" or "iptables-accept".
func iptAction(p string) string {
	switch {
	case p == "":
		return ""
	case containsFold(p, "block"):
		return "block"
	case containsFold(p, "drop"):
		return "drop"
	case containsFold(p, "reject"):
		return "reject"
	case containsFold(p, "deny"), containsFold(p, "denied"):
		return "deny"
	case containsFold(p, "allow"):
		return "allow"
	case containsFold(p, "accept"):
		return "accept"
	case containsFold(p, "audit"):
		return "audit"
	}
	return ""
}

// ecsMAC turns "aa:bb:cc:dd:ee:ff" into ECS form "AA-BB-CC-DD-EE-FF".
func ecsMAC(m string) string {
	if len(m) != 17 {
		return ""
	}
	var b [17]byte
	for i := 0; i < 17; i++ {
		c := m[i]
		if i%3 == 2 {
			if c != ':' && c != '-' {
				return ""
			}
			b[i] = '-'
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
		case c >= 'a' && c <= 'f':
			c -= 'a' - 'A'
		default:
			return ""
		}
		b[i] = c
	}
	return string(b[:])
}
