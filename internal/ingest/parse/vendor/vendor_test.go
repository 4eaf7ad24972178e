package vendor

import (
	"os"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// fixedNow is the clock for classic syslog stamps in tests.
var fixedNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	now = func() time.Time { return fixedNow }
	os.Exit(m.Run())
}

type tcase struct {
	name   string
	app    string
	msg    string
	format string            // "" means no match expected
	want   map[string]string // fields that must have these values
	absent []string          // fields that must not be set
	ts     string            // expected e.Timestamp (RFC 3339, UTC) when set
}

func run(t *testing.T, cases []tcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e event.Event
			f, ok := Parse(c.app, c.msg, &e)
			if c.format == "" {
				if ok {
					t.Fatalf("matched %q, want no match; fields %v", f, e.Fields)
				}
				if len(e.Fields) != 0 {
					t.Fatalf("no match but fields set: %v", e.Fields)
				}
				return
			}
			if !ok || f != c.format {
				t.Fatalf("Parse = %q, %v; want %q", f, ok, c.format)
			}
			for k, v := range c.want {
				if got, _ := e.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range c.absent {
				if v, ok := e.Get(k); ok {
					t.Errorf("%s = %q, want unset", k, v)
				}
			}
			if c.ts != "" {
				if got := e.Timestamp.UTC().Format(time.RFC3339Nano); got != c.ts {
					t.Errorf("timestamp = %s, want %s", got, c.ts)
				}
			}
			checkSorted(t, &e)
		})
	}
}

func checkSorted(t *testing.T, e *event.Event) {
	t.Helper()
	if len(e.Fields) > maxSlots*3/4 {
		t.Fatalf("%d fields: close to out's %d slots; raise maxSlots", len(e.Fields), maxSlots)
	}
	for i := 1; i < len(e.Fields); i++ {
		if e.Fields[i-1].Name >= e.Fields[i].Name {
			t.Fatalf("fields not sorted/unique at %q, %q", e.Fields[i-1].Name, e.Fields[i].Name)
		}
	}
	for _, f := range e.Fields {
		if f.Value == "" {
			t.Fatalf("empty value for %q", f.Name)
		}
	}
}

var iptablesCases = []tcase{
	{
		name: "ufw block", app: "kernel", format: FormatIptables,
		msg: "[12345.678901] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=54321 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
		want: map[string]string{
			"source.ip": "203.0.113.9", "destination.ip": "192.0.2.10", "source.port": "51234", "destination.port": "22",
			"network.transport": "tcp", "event.action": "block", "event.type": "denied", "observer.product": "ufw",
			"iptables.in": "eth0", "iptables.prefix": "[UFW BLOCK]", "iptables.tcp.flags": "SYN", "iptables.fragment_flags": "DF",
			"network.direction": "ingress", "destination.mac": "52-54-00-12-34-56", "source.mac": "52-54-00-AB-CD-EF",
			"observer.ingress.interface.name": "eth0", "iptables.ttl": "49", "network.type": "ipv4", "event.category": "network",
		},
		absent: []string{"iptables.out"},
	},
	{
		name: "custom prefix udp", app: "kernel", format: FormatIptables,
		msg:  "DROP-IN: IN=ens3 OUT= MAC=fa:16:3e:00:00:01:fa:16:3e:00:00:02:08:00 SRC=198.51.100.23 DST=10.0.0.4 LEN=78 TOS=0x00 PREC=0x00 TTL=117 ID=4660 PROTO=UDP SPT=137 DPT=137 LEN=58",
		want: map[string]string{"event.action": "drop", "network.transport": "udp", "destination.port": "137", "iptables.length": "78", "observer.product": "iptables", "iptables.prefix": "DROP-IN"},
	},
	{
		name: "accept output", app: "kernel", format: FormatIptables,
		msg:  "IPTABLES-ACCEPT: IN= OUT=eth0 SRC=10.0.0.4 DST=93.184.216.34 LEN=52 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=443 WINDOW=502 RES=0x00 ACK PSH URGP=0 UID=1000 GID=1000",
		want: map[string]string{"event.action": "accept", "event.type": "allowed", "network.direction": "egress", "iptables.tcp.flags": "ACK PSH", "iptables.uid": "1000"},
	},
	{
		name: "icmp with embedded packet", app: "kernel", format: FormatIptables,
		msg:    "[UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.1 DST=192.0.2.10 LEN=88 TOS=0x00 PREC=0xC0 TTL=63 ID=1 PROTO=ICMP TYPE=3 CODE=3 [SRC=192.0.2.10 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=2 PROTO=UDP SPT=5353 DPT=53 LEN=40 ]",
		want:   map[string]string{"source.ip": "198.51.100.1", "destination.ip": "192.0.2.10", "network.transport": "icmp", "iptables.icmp.type": "3", "iptables.icmp.code": "3"},
		absent: []string{"source.port", "destination.port"},
	},
	{
		name: "icmp echo id", app: "kernel", format: FormatIptables,
		msg:  "[UFW ALLOW] IN=eth0 OUT= SRC=198.51.100.1 DST=192.0.2.10 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=777 DF PROTO=ICMP TYPE=8 CODE=0 ID=4242 SEQ=1",
		want: map[string]string{"iptables.id": "777", "iptables.icmp.id": "4242", "iptables.icmp.seq": "1", "event.action": "allow"},
	},
	{
		name: "ipv6", app: "kernel", format: FormatIptables,
		msg:  "[UFW BLOCK] IN=eth0 OUT= MAC=33:33:00:00:00:fb:52:54:00:12:34:56:86:dd SRC=fe80::5054:ff:fe12:3456 DST=ff02::fb LEN=110 TC=0 HOPLIMIT=255 FLOWLBL=12345 PROTO=UDP SPT=5353 DPT=5353 LEN=70",
		want: map[string]string{"source.ip": "fe80::5054:ff:fe12:3456", "network.type": "ipv6", "iptables.hop_limit": "255", "iptables.flow_label": "12345"},
	},
	{
		name: "file line with classic prefix", format: FormatIptables,
		msg:  "Nov 25 10:00:00 fw01 kernel: [ 1234.567890] [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=40 TOS=0x00 PREC=0x00 TTL=240 ID=9 PROTO=TCP SPT=4444 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0",
		want: map[string]string{"host.name": "fw01", "destination.port": "3389", "iptables.prefix": "[UFW BLOCK]"},
		ts:   "2026-11-25T10:00:00Z",
	},
	{
		name: "numeric proto", app: "kernel", format: FormatIptables,
		msg:    "FW-DROP IN=eth1 OUT=eth0 SRC=198.51.100.7 DST=10.1.1.1 LEN=64 TOS=0x00 PREC=0x00 TTL=60 ID=0 PROTO=47",
		want:   map[string]string{"network.iana_number": "47", "event.action": "drop"},
		absent: []string{"network.transport", "network.direction"},
	},
	// Negative cases.
	{name: "prose with SRC=", app: "", msg: "the config option SRC=1.2.3.4 was set by admin for IN=foo"},
	{name: "kernel other", app: "kernel", msg: "[  0.000000] Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115)"},
	{name: "no DST", app: "kernel", msg: "[UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 LEN=40 PROTO=TCP"},
	{name: "bad ip", app: "kernel", msg: "[UFW BLOCK] IN=eth0 OUT= SRC=foo DST=bar PROTO=TCP"},
}

func TestIptables(t *testing.T) { run(t, iptablesCases) }

var pfsenseCases = []tcase{
	{
		name: "ipv4 tcp block", app: "filterlog", format: FormatPfsense,
		msg: "5,,,1000000103,igb1,match,block,in,4,0x0,,242,40385,0,none,6,tcp,44,198.51.100.7,192.0.2.10,51234,22,0,S,2947817126,,1024,,mss",
		want: map[string]string{
			"rule.id": "1000000103", "pfsense.rule_number": "5", "observer.ingress.interface.name": "igb1", "event.reason": "match",
			"event.action": "block", "event.type": "denied", "network.direction": "ingress", "network.type": "ipv4",
			"network.transport": "tcp", "network.iana_number": "6", "source.ip": "198.51.100.7", "destination.ip": "192.0.2.10",
			"source.port": "51234", "destination.port": "22", "pfsense.tcp.flags": "S", "pfsense.ttl": "242", "pfsense.tcp.options": "mss",
			"observer.vendor": "Netgate", "observer.product": "pfSense",
		},
	},
	{
		name: "ipv4 udp pass out", app: "filterlog", format: FormatPfsense,
		msg:  "77,,,1419879453,em0,match,pass,out,4,0x0,,64,0,0,DF,17,udp,76,192.0.2.10,198.51.100.53,12345,53,56",
		want: map[string]string{"event.action": "pass", "event.type": "allowed", "network.direction": "egress", "observer.egress.interface.name": "em0", "destination.port": "53", "pfsense.data_length": "56"},
	},
	{
		name: "ipv4 icmp request", app: "filterlog", format: FormatPfsense,
		msg:  "4,,,1000000103,igb0,match,block,in,4,0x0,,56,12345,0,none,1,icmp,84,203.0.113.5,192.0.2.1,request,12345,1",
		want: map[string]string{"network.transport": "icmp", "pfsense.icmp.type": "request", "pfsense.icmp.id": "12345", "pfsense.icmp.seq": "1"},
	},
	{
		name: "ipv4 icmp unreachport", app: "filterlog", format: FormatPfsense,
		msg:  "4,,,1000000103,igb0,match,block,in,4,0xc0,,64,4321,0,none,1,icmp,96,192.0.2.1,198.51.100.9,unreachport,198.51.100.9,17,33434",
		want: map[string]string{"pfsense.icmp.destination_ip": "198.51.100.9", "pfsense.icmp.protocol_id": "17", "pfsense.icmp.port": "33434"},
	},
	{
		name: "ipv6 tcp", app: "filterlog", format: FormatPfsense,
		msg:  "9,,,1000000105,igb1,match,block,in,6,0x00,0x00000,57,tcp,6,40,2001:db8::7,2001:db8:1::10,51000,443,0,S,123456,,64800,,mss;sackOK",
		want: map[string]string{"network.type": "ipv6", "source.ip": "2001:db8::7", "destination.ip": "2001:db8:1::10", "destination.port": "443", "pfsense.hop_limit": "57", "network.iana_number": "6"},
	},
	{
		name: "ipv6 icmpv6", app: "filterlog", format: FormatPfsense,
		msg:  "9,,,1000000105,igb1,match,pass,in,6,0x00,0x00000,255,ICMPv6,58,32,fe80::1,ff02::1:ff00:1",
		want: map[string]string{"network.transport": "ipv6-icmp", "network.iana_number": "58"},
	},
	{
		name: "carp", app: "filterlog", format: FormatPfsense,
		msg:  "61,,,1000002665,igb2,match,pass,out,4,0x10,,255,0,0,none,112,carp,36,192.0.2.2,224.0.0.18,advertise,255,1,2,0,1",
		want: map[string]string{"pfsense.carp.type": "advertise", "pfsense.carp.vhid": "1", "pfsense.carp.advskew": "0"},
	},
	{
		name: "file line", format: FormatPfsense,
		msg:  "Nov 25 10:00:01 pfsense filterlog[12345]: 5,,,1000000103,igb1,match,block,in,4,0x0,,242,40385,0,none,6,tcp,44,198.51.100.7,192.0.2.10,51234,22,0,S,2947817126,,1024,,mss",
		want: map[string]string{"host.name": "pfsense", "destination.port": "22"},
	},
	{name: "not csv", app: "filterlog", msg: "this is not, a filter log line, in,4"},
	{name: "bad action", app: "filterlog", msg: "5,,,1000000103,igb1,match,explode,in,4,0x0,,242,40385,0,none,6,tcp,44,198.51.100.7,192.0.2.10,51234,22"},
	{name: "csv without app", msg: "1,2,3,4,5,6,in,out,7"},
}

func TestPfsense(t *testing.T) { run(t, pfsenseCases) }

var asaCases = []tcase{
	{
		name: "302013 built inbound", format: FormatASA,
		msg: "%ASA-6-302013: Built inbound TCP connection 1234567 for outside:198.51.100.7/51234 (198.51.100.7/51234) to inside:10.0.0.5/443 (203.0.113.10/443)",
		want: map[string]string{
			"asa.message_id": "302013", "event.code": "302013", "log.level": "informational", "event.severity": "6",
			"source.ip": "198.51.100.7", "source.port": "51234", "destination.ip": "10.0.0.5", "destination.port": "443",
			"destination.nat.ip": "203.0.113.10", "destination.nat.port": "443", "network.transport": "tcp",
			"network.direction": "inbound", "asa.connection_id": "1234567", "event.action": "connection-built",
			"observer.ingress.interface.name": "outside", "observer.egress.interface.name": "inside", "observer.vendor": "Cisco",
		},
		absent: []string{"source.nat.ip"},
	},
	{
		name: "302013 built outbound swaps", app: "%ASA-6-302013", format: FormatASA,
		msg:    "Built outbound TCP connection 99 for outside:93.184.216.34/443 (93.184.216.34/443) to inside:10.0.0.5/51234 (203.0.113.10/40001)",
		want:   map[string]string{"source.ip": "10.0.0.5", "source.port": "51234", "source.nat.ip": "203.0.113.10", "source.nat.port": "40001", "destination.ip": "93.184.216.34", "destination.port": "443", "network.direction": "outbound"},
		absent: []string{"destination.nat.ip"},
	},
	{
		name: "302015 udp idfw user", format: FormatASA,
		msg:  "%ASA-6-302015: Built outbound UDP connection 42 for outside:8.8.8.8/53 (8.8.8.8/53) to inside:10.0.0.5/5353 (203.0.113.10/5353)(LOCAL\\alice)",
		want: map[string]string{"network.transport": "udp", "user.name": "alice", "user.domain": "LOCAL"},
	},
	{
		name: "302014 teardown", format: FormatASA,
		msg:  "<166>Nov 25 2026 10:00:05: %ASA-6-302014: Teardown TCP connection 1234567 for outside:198.51.100.7/51234 to inside:10.0.0.5/443 duration 0:01:05 bytes 12345 TCP FINs",
		want: map[string]string{"event.action": "connection-teardown", "event.duration": "65000000000", "network.bytes": "12345", "event.reason": "TCP FINs", "source.ip": "198.51.100.7", "destination.port": "443"},
	},
	{
		name: "302014 without colon", format: FormatASA,
		msg:  "%ASA-6-302014 Teardown TCP connection 5 for outside:198.51.100.7/1 to inside:10.0.0.5/2 duration 1:00:00 bytes 0 SYN Timeout (bob)",
		want: map[string]string{"event.duration": "3600000000000", "event.reason": "SYN Timeout", "user.name": "bob"},
	},
	{
		name: "106023 deny", format: FormatASA,
		msg:  "%ASA-4-106023: Deny tcp src outside:198.51.100.7/1234 dst inside:10.0.0.5/22 by access-group \"outside_access_in\" [0x0, 0x0]",
		want: map[string]string{"event.action": "deny", "event.type": "denied", "source.ip": "198.51.100.7", "source.port": "1234", "destination.ip": "10.0.0.5", "destination.port": "22", "rule.name": "outside_access_in", "log.level": "warning", "network.transport": "tcp"},
	},
	{
		name: "106023 icmp", format: FormatASA,
		msg:    "%ASA-4-106023: Deny icmp src outside:198.51.100.7 dst inside:10.0.0.5 (type 8, code 0) by access-group \"outside_in\" [0x0, 0x0]",
		want:   map[string]string{"network.transport": "icmp", "source.ip": "198.51.100.7", "destination.ip": "10.0.0.5", "rule.name": "outside_in"},
		absent: []string{"source.port"},
	},
	{
		name: "106001", format: FormatASA,
		msg:  "%ASA-2-106001: Inbound TCP connection denied from 198.51.100.7/4444 to 10.0.0.5/3389 flags SYN  on interface outside",
		want: map[string]string{"log.level": "critical", "source.ip": "198.51.100.7", "destination.port": "3389", "asa.tcp_flags": "SYN", "observer.ingress.interface.name": "outside", "network.direction": "inbound", "event.type": "denied"},
	},
	{
		name: "106006", format: FormatASA,
		msg:  "%ASA-2-106006: Deny inbound UDP from 198.51.100.7/137 to 10.0.0.5/137 on interface outside",
		want: map[string]string{"network.transport": "udp", "destination.port": "137", "observer.ingress.interface.name": "outside"},
	},
	{
		name: "106100 permitted", format: FormatASA,
		msg:  "%ASA-6-106100: access-list inside_access_in permitted tcp inside/10.0.0.5(51234) -> outside/93.184.216.34(443) hit-cnt 1 first hit [0x91c26a3, 0x0]",
		want: map[string]string{"event.action": "permitted", "event.type": "allowed", "rule.name": "inside_access_in", "source.port": "51234", "destination.ip": "93.184.216.34", "asa.hit_count": "1"},
	},
	{
		name: "113004 aaa ok", format: FormatASA,
		msg:  "%ASA-6-113004: AAA user authentication Successful : server =  10.1.1.1 : user = alice",
		want: map[string]string{"event.category": "authentication", "event.outcome": "success", "user.name": "alice", "asa.aaa_server": "10.1.1.1"},
	},
	{
		name: "113005 aaa rejected", format: FormatASA,
		msg:  "%ASA-6-113005: AAA user authentication Rejected : reason = AAA failure : server = 10.1.1.1 : user = alice : user IP = 198.51.100.7",
		want: map[string]string{"event.outcome": "failure", "event.reason": "AAA failure", "source.ip": "198.51.100.7", "user.name": "alice"},
	},
	{
		name: "605005 login permitted", format: FormatASA,
		msg:  "%ASA-6-605005: Login permitted from 10.0.0.2/51234 to inside:10.0.0.1/ssh for user \"admin\"",
		want: map[string]string{"event.action": "login", "event.outcome": "success", "user.name": "admin", "source.ip": "10.0.0.2", "destination.ip": "10.0.0.1", "network.protocol": "ssh"},
	},
	{
		name: "605004 login denied", format: FormatASA,
		msg:  "%ASA-6-605004: Login denied from 198.51.100.7/40000 to outside:203.0.113.1/443 for user \"root\"",
		want: map[string]string{"event.outcome": "failure", "user.name": "root", "destination.port": "443"},
	},
	{
		name: "710003", format: FormatASA,
		msg:  "%ASA-3-710003: TCP access denied by ACL from 198.51.100.7/40000 to outside:203.0.113.1/22",
		want: map[string]string{"event.action": "deny", "log.level": "error", "destination.port": "22", "source.ip": "198.51.100.7"},
	},
	{
		name: "111010 command", format: FormatASA,
		msg:  "%ASA-5-111010: User 'admin', running 'CLI' from IP 10.0.0.2, executed 'write memory'",
		want: map[string]string{"user.name": "admin", "asa.command": "write memory", "source.ip": "10.0.0.2", "event.category": "configuration"},
	},
	{
		name: "305011 xlate", format: FormatASA,
		msg:  "%ASA-6-305011: Built dynamic TCP translation from inside:10.0.0.5/51234 to outside:203.0.113.10/40001",
		want: map[string]string{"source.ip": "10.0.0.5", "source.nat.ip": "203.0.113.10", "source.nat.port": "40001"},
	},
	{
		name: "302020 icmp", format: FormatASA,
		msg:  "%ASA-6-302020: Built inbound ICMP connection for faddr 198.51.100.7/0 gaddr 203.0.113.10/0 laddr 10.0.0.5/0 type 8 code 0",
		want: map[string]string{"source.ip": "198.51.100.7", "destination.ip": "10.0.0.5", "destination.nat.ip": "203.0.113.10", "asa.icmp_type": "8"},
	},
	{
		name: "ftd 430003", format: FormatASA,
		msg:  "%FTD-1-430003: DeviceUUID: 1234, AccessControlRuleAction: Block, SrcIP: 198.51.100.7, DstIP: 10.0.0.5, SrcPort: 40000, DstPort: 445, Protocol: tcp, IngressInterface: outside, EgressInterface: inside, IngressZone: OUT, EgressZone: IN, ACPolicy: Default, AccessControlRuleName: Block-SMB",
		want: map[string]string{"observer.product": "ftd", "event.action": "block", "event.type": "denied", "destination.port": "445", "rule.name": "Block-SMB", "observer.ingress.zone": "OUT"},
	},
	{
		name: "unknown id still matches", format: FormatASA,
		msg:  "%ASA-5-199001: Reload command executed from Telnet (remote 10.0.0.2).",
		want: map[string]string{"asa.message_id": "199001", "log.level": "notification"},
	},
	{name: "not asa", msg: "discount of 50%ASA-like offers today only"},
	{name: "bad id", msg: "%ASA-6-30201: Built inbound TCP connection"},
}

func TestASA(t *testing.T) { run(t, asaCases) }

const panTraffic = "1,2026/11/25 10:00:00,012501002341,TRAFFIC,end,2561,2026/11/25 09:59:58,10.130.146.205,93.184.216.34,203.0.113.20,93.184.216.34,Allow-Web,example\\alice,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Log-Forward,2026/11/25 09:59:58,72568134,1,49583,443,50464,443,0x40441a,tcp,allow,7312,2228,5084,22,2026/11/25 09:59:26,16,business-and-economy,,7253419119627122716,0x8000000000000000,10.0.0.0-10.255.255.255,United States,,12,10,tcp-rst-from-client,0,0,0,0,,PA-VM,from-policy,,,0,,0,,N/A,0,0,0,0,90431d13-81da-4129-8bc5-ce968fa06b76,0,0,,,,,,,"

const panThreatURL = `1,2026/11/25 10:01:00,012501002341,THREAT,url,2561,2026/11/25 10:00:59,10.0.0.5,93.184.216.34,203.0.113.20,93.184.216.34,Allow-Web,example\bob,,web-browsing,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Log-Forward,2026/11/25 10:00:59,1234,1,51000,80,40000,80,0x40b000,tcp,block-url,"example.com/path/a,b.html?x=1",(9999),gambling,informational,client-to-server,7253419119627122717,0x8000000000000000,10.0.0.0-10.255.255.255,United States,,text/html,0,,,1,"Mozilla/5.0 (X11; Linux x86_64)",,,"http://ref.example/",,,,,0,0,0,0,,PA-VM,,,,get,0,,0,,N/A,N/A,AppThreat-8700-7900,0x0,0,4294967295,,"gambling,low-risk",a8f5e0c4-3b2a-4c1d-9e8f-0123456789ab,0,,,,,,,,`

const panThreatVuln = "1,2026/11/25 10:02:00,012501002341,THREAT,vulnerability,2561,2026/11/25 10:01:59,198.51.100.7,10.0.0.5,0.0.0.0,0.0.0.0,Inbound-DMZ,,,web-browsing,vsys1,untrust,dmz,ethernet1/1,ethernet1/3,Log-Forward,2026/11/25 10:01:59,5678,1,44321,80,0,0,0x2000,tcp,reset-both,\"login.php\",Apache Log4j Remote Code Execution Vulnerability(91991),any,critical,client-to-server,7253419119627122718,0x8000000000000000,United States,10.0.0.0-10.255.255.255,,,1234567890,,,0,,,,,,,,,0,0,0,0,,PA-VM,,,,,0,,0,,N/A,code-execution,AppThreat-8700-7900,0x0,0,4294967295,,,b1c2d3e4-0000-4000-8000-000000000001,0,,,,"

var panosCases = []tcase{
	{
		name: "traffic end", app: "", format: FormatPanos, msg: panTraffic,
		want: map[string]string{
			"observer.serial_number": "012501002341", "panos.type": "TRAFFIC", "panos.subtype": "end", "source.ip": "10.130.146.205",
			"destination.ip": "93.184.216.34", "source.nat.ip": "203.0.113.20", "source.nat.port": "50464", "rule.name": "Allow-Web",
			"panos.rule": "Allow-Web", "user.name": "alice", "user.domain": "example", "network.application": "ssl",
			"observer.ingress.zone": "trust", "observer.egress.zone": "untrust", "observer.ingress.interface.name": "ethernet1/2",
			"panos.session_id": "72568134", "source.port": "49583", "destination.port": "443", "network.transport": "tcp",
			"event.action": "allow", "network.bytes": "7312", "source.bytes": "2228", "destination.bytes": "5084",
			"network.packets": "22", "source.packets": "12", "destination.packets": "10", "event.duration": "16000000000",
			"event.reason": "tcp-rst-from-client", "observer.hostname": "PA-VM", "rule.uuid": "90431d13-81da-4129-8bc5-ce968fa06b76",
			"event.type": "end", "event.dataset": "panos.traffic", "panos.url_category": "business-and-economy",
		},
		ts: "2026-11-25T09:59:58Z",
	},
	{
		name: "traffic with syslog junk before", app: "", format: FormatPanos,
		msg:  "Nov 25 10:00:00 PA-VM " + panTraffic,
		want: map[string]string{"source.ip": "10.130.146.205", "panos.session_id": "72568134", "host.name": "PA-VM"},
	},
	{
		name: "threat url quoted commas", format: FormatPanos, msg: panThreatURL,
		want: map[string]string{
			"panos.subtype": "url", "event.action": "block-url", "event.type": "denied", "url.original": "example.com/path/a,b.html?x=1",
			"url.domain": "example.com", "url.path": "/path/a,b.html", "url.query": "x=1", "panos.threat.id": "9999",
			"panos.url_category": "gambling", "log.level": "informational", "panos.direction": "client-to-server",
			"http.response.mime_type": "text/html", "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
			"http.request.referrer": "http://ref.example/", "http.request.method": "get", "event.category": "web",
			"rule.uuid": "a8f5e0c4-3b2a-4c1d-9e8f-0123456789ab", "user.name": "bob",
		},
	},
	{
		name: "threat vulnerability", format: FormatPanos, msg: panThreatVuln,
		want: map[string]string{
			"panos.threat.name": "Apache Log4j Remote Code Execution Vulnerability", "panos.threat.id": "91991",
			"log.level": "critical", "event.severity": "5", "event.category": "intrusion_detection", "panos.misc": "login.php",
			"event.action": "reset-both", "event.type": "denied", "panos.threat.subcategory": "code-execution",
			"rule.uuid": "b1c2d3e4-0000-4000-8000-000000000001",
		},
		absent: []string{"source.nat.ip", "destination.nat.ip", "destination.nat.port"},
	},
	{name: "traffic word in prose", msg: "heavy ,TRAFFIC, on the highway, 10.0.0.1, 10.0.0.2"},
	{name: "truncated", msg: "1,2026/11/25 10:00:00,012501002341,TRAFFIC,end,2561,2026/11/25 09:59:58,10.130.146.205"},
}

func TestPanos(t *testing.T) { run(t, panosCases) }

var postfixCases = []tcase{
	{
		name: "connect", app: "postfix/smtpd", format: FormatPostfix,
		msg:  "connect from mail.example.com[192.0.2.1]",
		want: map[string]string{"event.action": "connect", "source.domain": "mail.example.com", "source.ip": "192.0.2.1", "process.name": "postfix/smtpd", "event.dataset": "postfix.log", "event.category": "email"},
	},
	{
		name: "disconnect unknown", app: "postfix/smtpd", format: FormatPostfix,
		msg:    "disconnect from unknown[203.0.113.9] ehlo=1 auth=0/1 quit=1 commands=2/3",
		want:   map[string]string{"event.action": "disconnect", "source.ip": "203.0.113.9", "postfix.commands": "ehlo=1 auth=0/1 quit=1 commands=2/3"},
		absent: []string{"source.domain"},
	},
	{
		name: "client sasl", app: "postfix/smtpd", format: FormatPostfix,
		msg:  "3F2A81C0E1: client=mail.example.com[192.0.2.1], sasl_method=PLAIN, sasl_username=alice@example.com",
		want: map[string]string{"email.local_id": "3F2A81C0E1", "source.ip": "192.0.2.1", "source.domain": "mail.example.com", "user.name": "alice@example.com", "postfix.sasl_method": "PLAIN", "event.action": "client"},
	},
	{
		name: "cleanup message-id", app: "postfix/cleanup", format: FormatPostfix,
		msg:  "3F2A81C0E1: message-id=<20261125100000.3F2A81C0E1@example.com>",
		want: map[string]string{"email.message_id": "20261125100000.3F2A81C0E1@example.com", "email.local_id": "3F2A81C0E1"},
	},
	{
		name: "qmgr from", app: "postfix/qmgr", format: FormatPostfix,
		msg:  "3F2A81C0E1: from=<alice@example.com>, size=1234, nrcpt=1 (queue active)",
		want: map[string]string{"email.from.address": "alice@example.com", "postfix.size": "1234", "postfix.nrcpt": "1", "event.action": "queued"},
	},
	{
		name: "smtp sent", app: "postfix/smtp", format: FormatPostfix,
		msg: "3F2A81C0E1: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK 1732521600 abc123 - gsmtp)",
		want: map[string]string{
			"email.to.address": "bob@example.net", "destination.domain": "mx.example.net", "destination.ip": "198.51.100.5", "destination.port": "25",
			"postfix.delay": "1.2", "postfix.delays": "0.1/0/0.5/0.6", "postfix.dsn": "2.0.0", "postfix.status": "sent", "event.outcome": "success",
			"postfix.status_text": "250 2.0.0 OK 1732521600 abc123 - gsmtp", "event.action": "sent", "postfix.relay": "mx.example.net[198.51.100.5]:25",
		},
	},
	{
		name: "smtp bounced", app: "postfix/smtp", format: FormatPostfix,
		msg:  "4Wb1Zx3Jk9z9sWN: to=<nobody@example.org>, relay=mx.example.org[198.51.100.6]:25, delay=0.5, delays=0.01/0/0.3/0.2, dsn=5.1.1, status=bounced (host mx.example.org[198.51.100.6] said: 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command))",
		want: map[string]string{"email.local_id": "4Wb1Zx3Jk9z9sWN", "event.outcome": "failure", "postfix.status": "bounced", "postfix.dsn": "5.1.1"},
	},
	{
		name: "lmtp deferred", app: "postfix/lmtp", format: FormatPostfix,
		msg:    "ABCDEF1234: to=<carol@example.com>, relay=private/dovecot-lmtp, delay=300, delays=0/0/300/0, dsn=4.4.2, status=deferred (conversation with private/dovecot-lmtp timed out)",
		want:   map[string]string{"postfix.status": "deferred", "event.outcome": "failure", "postfix.relay": "private/dovecot-lmtp"},
		absent: []string{"destination.ip"},
	},
	{
		name: "noqueue reject", app: "postfix/smtpd", format: FormatPostfix,
		msg: "NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@example.org>: Relay access denied; from=<spam@example.biz> to=<x@example.org> proto=ESMTP helo=<bad.example>",
		want: map[string]string{
			"event.action": "reject", "event.outcome": "failure", "source.ip": "203.0.113.9", "postfix.stage": "RCPT",
			"postfix.response_code": "554", "postfix.dsn": "5.7.1", "email.from.address": "spam@example.biz", "email.to.address": "x@example.org",
			"postfix.proto": "ESMTP", "postfix.helo": "bad.example", "event.reason": "554 5.7.1 <x@example.org>: Relay access denied",
		},
		absent: []string{"email.local_id"},
	},
	{
		name: "pickup", app: "postfix/pickup", format: FormatPostfix,
		msg:  "9B1C2D3E4F: uid=1000 from=<alice>",
		want: map[string]string{"postfix.uid": "1000", "email.from.address": "alice"},
	},
	{
		name: "bounce", app: "postfix/bounce", format: FormatPostfix,
		msg:  "4Wb1Zx3Jk9z9sWN: sender non-delivery notification: 4Wb1Zy0Abcz9sWP",
		want: map[string]string{"event.action": "bounce-notification", "postfix.bounce_queue_id": "4Wb1Zy0Abcz9sWP"},
	},
	{
		name: "removed", app: "postfix/qmgr", format: FormatPostfix,
		msg: "3F2A81C0E1: removed", want: map[string]string{"event.action": "removed"},
	},
	{
		name: "sasl failure", app: "postfix/smtpd", format: FormatPostfix,
		msg:  "warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
		want: map[string]string{"event.action": "sasl-authentication-failed", "event.outcome": "failure", "source.ip": "203.0.113.9", "log.level": "warning"},
	},
	{
		name: "rsyslog tag postfix", app: "postfix", format: FormatPostfix,
		msg:  "/smtpd[2345]: connect from unknown[203.0.113.9]",
		want: map[string]string{"process.name": "postfix/smtpd", "process.pid": "2345", "source.ip": "203.0.113.9"},
	},
	{
		name: "file line", format: FormatPostfix,
		msg:  "Nov 25 10:00:02 mx1 postfix/smtp[3456]: 3F2A81C0E1: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 OK)",
		want: map[string]string{"host.name": "mx1", "process.pid": "3456", "postfix.status": "sent"},
	},
	{
		name: "multi-instance", app: "postfix-out/smtp", format: FormatPostfix,
		msg:  "3F2A81C0E1: to=<bob@example.net>, relay=none, delay=30, dsn=4.4.1, status=deferred (connect to example.net[198.51.100.5]:25: Connection timed out)",
		want: map[string]string{"postfix.relay": "none", "postfix.status": "deferred"},
	},
	{name: "postfix empty", app: "postfix/smtpd", msg: "   "},
}

func TestPostfix(t *testing.T) { run(t, postfixCases) }

var sshdCases = []tcase{
	{
		name: "accepted publickey", app: "sshd", format: FormatSSHD,
		msg:  "Accepted publickey for root from 192.0.2.1 port 5555 ssh2: ED25519 SHA256:AbCdEf0123456789",
		want: map[string]string{"event.category": "authentication", "event.action": "ssh_login", "event.outcome": "success", "user.name": "root", "source.ip": "192.0.2.1", "source.port": "5555", "sshd.method": "publickey", "sshd.signature": "ED25519 SHA256:AbCdEf0123456789", "process.name": "sshd"},
	},
	{
		name: "accepted password", app: "sshd[1234]", format: FormatSSHD,
		msg:  "Accepted password for alice from 2001:db8::5 port 40022 ssh2",
		want: map[string]string{"user.name": "alice", "source.ip": "2001:db8::5", "process.pid": "1234", "sshd.method": "password"},
	},
	{
		name: "failed invalid user", app: "sshd", format: FormatSSHD,
		msg:  "Failed password for invalid user bob from 203.0.113.9 port 40022 ssh2",
		want: map[string]string{"event.outcome": "failure", "user.name": "bob", "sshd.invalid_user": "true", "source.port": "40022"},
	},
	{
		name: "failed keyboard-interactive", app: "sshd-session", format: FormatSSHD,
		msg:  "Failed keyboard-interactive/pam for root from 203.0.113.9 port 40022 ssh2",
		want: map[string]string{"sshd.method": "keyboard-interactive/pam", "user.name": "root", "process.name": "sshd-session"},
	},
	{
		name: "invalid user", app: "sshd", format: FormatSSHD,
		msg:  "Invalid user oracle from 203.0.113.9 port 41234",
		want: map[string]string{"event.action": "invalid_user", "event.outcome": "failure", "user.name": "oracle", "source.ip": "203.0.113.9"},
	},
	{
		name: "closed authenticating", app: "sshd", format: FormatSSHD,
		msg:  "Connection closed by authenticating user root 203.0.113.9 port 40022 [preauth]",
		want: map[string]string{"event.action": "connection_closed", "user.name": "root", "source.ip": "203.0.113.9", "sshd.preauth": "true"},
	},
	{
		name: "closed bare", app: "sshd", format: FormatSSHD,
		msg:    "Connection closed by 203.0.113.9 port 40022 [preauth]",
		want:   map[string]string{"source.ip": "203.0.113.9", "source.port": "40022"},
		absent: []string{"user.name"},
	},
	{
		name: "disconnected user", app: "sshd", format: FormatSSHD,
		msg:  "Disconnected from user root 192.0.2.1 port 5555",
		want: map[string]string{"event.action": "disconnected", "user.name": "root", "source.ip": "192.0.2.1"},
	},
	{
		name: "disconnected invalid", app: "sshd", format: FormatSSHD,
		msg:  "Disconnected from invalid user admin 203.0.113.9 port 40022 [preauth]",
		want: map[string]string{"user.name": "admin", "sshd.invalid_user": "true"},
	},
	{
		name: "received disconnect", app: "sshd", format: FormatSSHD,
		msg:  "Received disconnect from 203.0.113.9 port 40022:11: Bye Bye [preauth]",
		want: map[string]string{"event.action": "received_disconnect", "source.port": "40022", "sshd.disconnect_code": "11", "event.reason": "Bye Bye"},
	},
	{
		name: "pam session opened", app: "sshd", format: FormatSSHD,
		msg:  "pam_unix(sshd:session): session opened for user root(uid=0) by root(uid=0)",
		want: map[string]string{"event.category": "session", "event.type": "start", "event.action": "session_opened", "user.name": "root"},
	},
	{
		name: "pam session closed old", app: "sshd", format: FormatSSHD,
		msg:  "pam_unix(sshd:session): session closed for user alice",
		want: map[string]string{"event.action": "session_closed", "user.name": "alice"},
	},
	{
		name: "pam auth failure", app: "sshd", format: FormatSSHD,
		msg:  "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
		want: map[string]string{"event.action": "authentication_failure", "source.ip": "203.0.113.9", "user.name": "root", "event.outcome": "failure"},
	},
	{
		name: "max attempts", app: "sshd", format: FormatSSHD,
		msg:  "error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.9 port 40022 ssh2 [preauth]",
		want: map[string]string{"event.action": "max_auth_attempts_exceeded", "user.name": "admin", "log.level": "error", "source.ip": "203.0.113.9"},
	},
	{
		name: "unprefixed file line", format: FormatSSHD,
		msg:  "Nov 25 10:00:03 bastion sshd[4321]: Failed password for root from 203.0.113.9 port 40022 ssh2",
		want: map[string]string{"host.name": "bastion", "process.pid": "4321", "user.name": "root", "event.outcome": "failure"},
		ts:   "2026-11-25T10:00:03Z",
	},
	{
		name: "iso file line", format: FormatSSHD,
		msg:  "2026-11-25T10:00:03.123456+01:00 bastion sshd[4321]: Invalid user test from 203.0.113.9 port 40022",
		want: map[string]string{"host.name": "bastion", "user.name": "test"},
		ts:   "2026-11-25T09:00:03.123456Z",
	},
	{
		name: "tag after unknown prefix", format: FormatSSHD,
		msg:  "<38>1 bastion sshd[4321]: Accepted password for root from 192.0.2.1 port 5555 ssh2",
		want: map[string]string{"user.name": "root", "event.outcome": "success"},
	},
	{
		name: "connection from", app: "sshd", format: FormatSSHD,
		msg:  "Connection from 203.0.113.9 port 40022 on 192.0.2.10 port 22 rdomain \"\"",
		want: map[string]string{"source.ip": "203.0.113.9", "destination.ip": "192.0.2.10", "destination.port": "22"},
	},
	{
		name: "unable to negotiate", app: "sshd", format: FormatSSHD,
		msg:  "Unable to negotiate with 203.0.113.9 port 40022: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
		want: map[string]string{"event.action": "negotiation_failed", "source.port": "40022", "event.reason": "no matching key exchange method found. Their offer: diffie-hellman-group1-sha1"},
	},
	{
		name: "other sshd message", app: "sshd", format: FormatSSHD,
		msg:    "Server listening on 0.0.0.0 port 22.",
		want:   map[string]string{"process.name": "sshd"},
		absent: []string{"event.outcome", "source.ip"},
	},
	{name: "empty sshd", app: "sshd", msg: ""},
	{name: "prose mentioning sshd", msg: "we restarted sshd yesterday after Accepted password policy change"},
}

func TestSSHD(t *testing.T) { run(t, sshdCases) }

var squidCases = []tcase{
	{
		name: "miss", app: "", format: FormatSquid,
		msg: "1732521600.123     45 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/index.html?q=1 - HIER_DIRECT/93.184.216.34 text/html",
		want: map[string]string{
			"source.ip": "10.0.0.5", "event.duration": "45000000", "squid.result_code": "TCP_MISS", "http.response.status_code": "200",
			"http.response.bytes": "1234", "destination.bytes": "1234", "http.request.method": "GET", "url.original": "http://example.com/index.html?q=1",
			"url.domain": "example.com", "url.path": "/index.html", "url.query": "q=1", "url.scheme": "http", "squid.hierarchy_code": "HIER_DIRECT",
			"destination.ip": "93.184.216.34", "http.response.mime_type": "text/html", "event.outcome": "success", "observer.type": "proxy",
		},
		absent: []string{"user.name"},
		ts:     "2024-11-25T08:00:00.123Z",
	},
	{
		name: "connect", app: "squid", format: FormatSquid,
		msg:    "1732521601.456   1203 10.0.0.6 TCP_TUNNEL/200 5321 CONNECT www.example.org:443 alice HIER_DIRECT/www.example.org -",
		want:   map[string]string{"url.domain": "www.example.org", "destination.port": "443", "url.port": "443", "user.name": "alice", "destination.domain": "www.example.org", "http.request.method": "CONNECT"},
		absent: []string{"http.response.mime_type", "destination.ip"},
	},
	{
		name: "denied", app: "(squid-1)", format: FormatSquid,
		msg:    "1732521602.000      0 10.0.0.7 TCP_DENIED/403 3900 GET http://blocked.example/ - HIER_NONE/- text/html",
		want:   map[string]string{"event.outcome": "failure", "event.action": "denied", "http.response.status_code": "403"},
		absent: []string{"destination.ip", "destination.domain"},
	},
	{
		name: "none error", format: FormatSquid,
		msg:    "1732521603.789      0 10.0.0.8 NONE_NONE/000 0 - error:transaction-end-before-headers - HIER_NONE/- -",
		want:   map[string]string{"squid.result_code": "NONE_NONE", "squid.url": "error:transaction-end-before-headers"},
		absent: []string{"http.response.status_code", "http.request.method"},
	},
	{name: "not squid", msg: "1732521600.123 is a unix time and TCP_MISS/200 is a code"},
	{name: "squid app garbage", app: "squid", msg: "squid started"},
}

func TestSquid(t *testing.T) { run(t, squidCases) }

var accessCases = []tcase{
	{
		name: "apache common", format: FormatApache,
		msg:  `192.0.2.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
		want: map[string]string{"source.ip": "192.0.2.1", "user.name": "frank", "http.request.method": "GET", "url.original": "/apache_pb.gif", "url.path": "/apache_pb.gif", "http.version": "1.0", "http.response.status_code": "200", "http.response.body.bytes": "2326", "event.dataset": "apache.access", "event.outcome": "success"},
		ts:   "2000-10-10T20:55:36Z",
	},
	{
		name: "apache combined", app: "apache2", format: FormatApache,
		msg:    `192.0.2.1 - - [25/Nov/2026:10:00:00 +0100] "GET /search?q=a+b HTTP/1.1" 404 512 "http://ref.example/page" "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"`,
		want:   map[string]string{"url.query": "q=a+b", "url.path": "/search", "http.response.status_code": "404", "event.outcome": "failure", "http.request.referrer": "http://ref.example/page", "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
		absent: []string{"user.name"},
		ts:     "2026-11-25T09:00:00Z",
	},
	{
		name: "nginx combined", app: "nginx", format: FormatNginx,
		msg:    `2001:db8::1 - - [25/Nov/2026:10:00:00 +0000] "POST /api/login HTTP/2.0" 401 17 "-" "curl/8.5.0"`,
		want:   map[string]string{"source.ip": "2001:db8::1", "http.request.method": "POST", "http.version": "2.0", "event.dataset": "nginx.access", "user_agent.original": "curl/8.5.0"},
		absent: []string{"http.request.referrer"},
	},
	{
		name: "vhost combined", format: FormatApache,
		msg:  `www.example.com:443 192.0.2.1 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1024 "-" "UA"`,
		want: map[string]string{"destination.domain": "www.example.com", "destination.port": "443", "source.ip": "192.0.2.1", "url.path": "/"},
	},
	{
		name: "malformed request dash", format: FormatApache,
		msg:    `192.0.2.1 - - [25/Nov/2026:10:00:00 +0000] "-" 408 - "-" "-"`,
		want:   map[string]string{"http.response.status_code": "408", "source.ip": "192.0.2.1"},
		absent: []string{"http.request.method", "url.original", "http.response.body.bytes", "user_agent.original"},
	},
	{
		name: "binary garbage request", format: FormatApache,
		msg:    `192.0.2.1 - - [25/Nov/2026:10:00:00 +0000] "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" 400 226 "-" "-"`,
		want:   map[string]string{"http.response.status_code": "400"},
		absent: []string{"http.request.method"},
	},
	{
		name: "escaped quote in ua", app: "httpd", format: FormatApache,
		msg:  `192.0.2.1 - - [25/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "evil \"quoted\" agent"`,
		want: map[string]string{"user_agent.original": `evil "quoted" agent`},
	},
	{
		name: "hostname client", format: FormatApache,
		msg:  `client.example.net - - [25/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5`,
		want: map[string]string{"source.domain": "client.example.net"}, absent: []string{"source.ip"},
	},
	{name: "brackets in prose", msg: `I said [hello] "there" 200 ok`},
	{name: "bad date", msg: `192.0.2.1 - - [99/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326`},
	{name: "bad status", msg: `192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" abc 2326`},
}

func TestAccess(t *testing.T) { run(t, accessCases) }

var allCases = [][]tcase{iptablesCases, pfsenseCases, asaCases, panosCases, postfixCases, sshdCases, squidCases, accessCases}

// TestNoMatch covers lines that resemble none of the formats.
func TestNoMatch(t *testing.T) {
	run(t, []tcase{
		{name: "empty", msg: ""},
		{name: "plain prose", msg: "Nov 25 10:00:00 host systemd[1]: Started Session 42 of User root."},
		{name: "cron", app: "CRON", msg: "(root) CMD (run-parts /etc/cron.hourly)"},
		{name: "json", msg: `{"src":"1.2.3.4","IN":"eth0"}`},
		{name: "short", msg: "x"},
	})
}

// TestKeepsExistingTimestamp checks a file-line stamp does not override one
// the caller already set.
func TestKeepsExistingTimestamp(t *testing.T) {
	var e event.Event
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e.Timestamp = ts
	if _, ok := Parse("", "Nov 25 10:00:03 bastion sshd[4321]: Invalid user x from 203.0.113.9 port 1", &e); !ok {
		t.Fatal("no match")
	}
	if !e.Timestamp.Equal(ts) {
		t.Fatalf("timestamp changed to %v", e.Timestamp)
	}
}

func TestClassicYearRollover(t *testing.T) {
	saved := now
	defer func() { now = saved }()
	now = func() time.Time { return time.Date(2027, 1, 1, 0, 5, 0, 0, time.UTC) }
	ts, _, ok := classicStamp("Dec 31 23:59:59 host x")
	if !ok || ts.Year() != 2026 {
		t.Fatalf("got %v %v", ts, ok)
	}
}
