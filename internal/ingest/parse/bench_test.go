package parse

import (
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
)

// Typical messages of each format. Each iteration parses into a fresh
// event, as the ingest pipeline does (so allocs/op include the event's
// Original copy and Fields slice).
var (
	benchRFC5424 = []byte(`<36>1 2026-11-25T17:50:45.688797+00:00 vm soc-test - TEST01 [timeQuality tzKnown="1" isSynced="0"][origin@32473 ip="127.0.0.1"] udp rfc5424 hello from the benchmark`)
	benchRFC3164 = []byte(`<38>Nov 25 17:52:33 vm sshd[4242]: Failed password for root from 192.0.2.7 port 4242 ssh2`)
	benchCEF     = []byte(`<134>Nov 25 17:00:00 host1 CEF:0|Palo Alto Networks|PAN-OS|9.1|TRAFFIC|end|3|rt=1795623600000 src=10.1.1.1 dst=8.8.8.8 spt=50000 dpt=53 proto=UDP act=allow cs1Label=Rule cs1=allow-dns suser=corp\\bob in=100 out=200 msg=session ended normally`)
	benchLEEF    = []byte("<13>Nov 25 17:00:00 qradar LEEF:2.0|IBM|QRadar|7.4|Login|x09|src=10.0.0.5\tdst=10.0.0.9\tsrcPort=50000\tdstPort=443\tusrName=alice\tsev=5\tcat=Authentication\tproto=6\tdevTime=Nov 25 2026 16:00:00")
	benchEVE     = []byte(`{"timestamp": "2017-04-07T22:24:37.251547+0100", "flow_id": 586497171462735, "pcap_cnt": 53381, "event_type": "alert", "src_ip": "192.168.2.14", "src_port": 50096, "dest_ip": "209.53.113.5", "dest_port": 80, "proto": "TCP", "metadata": {"flowbits": ["http.dottedquadhost"]}, "tx_id": 4, "alert": {"action": "allowed", "gid": 1, "signature_id": 2018358, "rev": 10, "signature": "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1", "category": "Potentially Bad Traffic", "severity": 2}, "app_proto": "http"}`)
	benchKV      = []byte(`date=2026-11-25 time=10:00:00 devname="FG100" devid="FG100E1234567890" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.0.0.1 srcport=51515 srcintf="port1" dstip=203.0.113.9 dstport=443 dstintf="wan1" policyid=7 sessionid=1234 proto=6 action="deny" service="HTTPS" sentbyte=0 rcvdbyte=0 user="bob"`)
)

func benchParse(b *testing.B, raw []byte, format string) {
	p := New()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		e := &event.Event{Ingested: ingested}
		if r := p.Parse(raw, e); r.Format != format {
			b.Fatalf("format %q, want %q", r.Format, format)
		}
	}
}

func BenchmarkParseRFC5424(b *testing.B) { noVendor(b); benchParse(b, benchRFC5424, "rfc5424") }
func BenchmarkParseRFC3164(b *testing.B) { noVendor(b); benchParse(b, benchRFC3164, "rfc3164") }
func BenchmarkParseCEF(b *testing.B)     { benchParse(b, benchCEF, "cef") }
func BenchmarkParseLEEF(b *testing.B)    { benchParse(b, benchLEEF, "leef") }
func BenchmarkParseJSONEVE(b *testing.B) { benchParse(b, benchEVE, "suricata") }
func BenchmarkParseKV(b *testing.B)      { benchParse(b, benchKV, "fortigate") }

// BenchmarkParseSSHDVendor is an RFC 3164 line parsed by the sshd vendor
// parser through the hook.
func BenchmarkParseSSHDVendor(b *testing.B) { benchParse(b, benchRFC3164, "sshd") }

// BenchmarkParseRFC5424GoSyslog measures the go-syslog fallback path (a
// header the fast path refuses: 7 fraction digits).
func BenchmarkParseRFC5424GoSyslog(b *testing.B) {
	noVendor(b)
	benchParse(b, []byte(`<36>1 2026-11-25T17:50:45.6887970+00:00 vm soc-test - TEST01 [origin@32473 ip="127.0.0.1"] fallback`), "rfc5424")
}
