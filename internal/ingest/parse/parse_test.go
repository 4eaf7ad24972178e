package parse

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mamori-soc/mamori/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// ingested is the fixed receive time used by the tests.
var ingested = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)

// noVendor replaces the vendor hook with a stub for the duration of a test,
// so golden files describe this package alone.
func noVendor(t testing.TB) {
	old := vendorParse
	vendorParse = func(string, string, *event.Event) (string, bool) { return "", false }
	t.Cleanup(func() { vendorParse = old })
}

func newEvent() *event.Event {
	return &event.Event{ID: "id1", Tenant: "t1", Source: "test", Ingested: ingested}
}

// golden is the JSON form of a parse outcome kept in testdata/golden.
type golden struct {
	Input       string            `json:"input"`
	Format      string            `json:"format"`
	Unparsed    bool              `json:"unparsed,omitempty"`
	InvalidUTF8 bool              `json:"invalid_utf8,omitempty"`
	Timestamp   string            `json:"timestamp"`
	Original    string            `json:"original"`
	Fields      map[string]string `json:"fields"`
}

func outcome(input string, r Result, e *event.Event) golden {
	g := golden{Input: input, Format: r.Format, Unparsed: r.Unparsed, InvalidUTF8: r.InvalidUTF8,
		Timestamp: e.Timestamp.UTC().Format(time.RFC3339Nano), Original: e.Original, Fields: map[string]string{}}
	for _, f := range e.Fields {
		g.Fields[f.Name] = f.Value
	}
	return g
}

// checkInvariants asserts what must hold for every parsed event.
func checkInvariants(t testing.TB, raw []byte, r Result, e *event.Event) {
	t.Helper()
	if err := invariantErr(raw, r, e); err != nil {
		t.Fatalf("input %q: %v", raw, err)
	}
}

func invariantErr(raw []byte, r Result, e *event.Event) error {
	if !utf8.ValidString(e.Original) {
		return fmt.Errorf("Original is not valid UTF-8: %q", e.Original)
	}
	if utf8.Valid(raw) && e.Original != string(raw) {
		return fmt.Errorf("Original not verbatim: %q != %q", e.Original, raw)
	}
	if r.InvalidUTF8 == utf8.Valid(raw) {
		return fmt.Errorf("InvalidUTF8=%v for valid=%v", r.InvalidUTF8, utf8.Valid(raw))
	}
	for i, f := range e.Fields {
		if f.Name == "" || f.Value == "" {
			return fmt.Errorf("empty field %d: %+v", i, f)
		}
		if i > 0 && e.Fields[i-1].Name >= f.Name {
			return fmt.Errorf("fields not sorted/unique at %d: %q then %q", i, e.Fields[i-1].Name, f.Name)
		}
		if !utf8.ValidString(f.Name) || !utf8.ValidString(f.Value) {
			return fmt.Errorf("field %q not valid UTF-8: %q", f.Name, f.Value)
		}
	}
	if e.Timestamp.IsZero() {
		return fmt.Errorf("zero timestamp")
	}
	k := e.Value(event.FieldKind)
	if k == "" {
		return fmt.Errorf("event.kind unset")
	}
	if r.Unparsed != (k == event.KindUnparsed) {
		return fmt.Errorf("Unparsed=%v but event.kind=%q", r.Unparsed, k)
	}
	if r.Unparsed && r.Format != "" {
		return fmt.Errorf("Unparsed with format %q", r.Format)
	}
	if !r.Unparsed && r.Format == "" {
		return fmt.Errorf("parsed without format")
	}
	return nil
}

type tcase struct {
	name string
	in   string
}

// cases is the table of hand-written inputs; each has a golden file
// testdata/golden/<name>.json (go test -update rewrites them).
var cases = []tcase{
	// --- syslog envelope
	{"rfc5424_sd", `<36>1 2026-11-25T17:50:45.688797+00:00 vm soc-test - TEST01 [timeQuality tzKnown="1" isSynced="0"][origin@32473 ip="127.0.0.1"] udp rfc5424 hello`},
	{"rfc5424_rsyslog_leading_space", "<22>1 2026-11-25T17:51:42+00:00 vm postfix - - -  NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied\n"},
	{"rfc5424_bom", "<38>1 2026-11-25T17:52:46+00:00 localhost prg00000 1234 - - \xef\xbb\xbfseq: 0000000000, thread: 0000"},
	{"rfc5424_nil_everything", "<14>1 - - - - - -"},
	{"rfc5424_sd_escapes", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\"ication" eventID="1011\]x"] An application event`},
	{"rfc5424_offset", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."},
	{"rfc5424_broken_sd", `<38>1 2026-11-25T17:52:46+00:00 localhost prg00000 1234 - [bad no close`},
	{"rfc5424_header_only_partial", "<38>1 2026-11-25T17:52:46+00:00 localhost"},
	{"rfc5424_trailing_crlf_nul", "<13>1 2026-11-25T17:50:47.714913+00:00 vm soc-test - - - tcp line one\r\n\x00"},
	{"rfc3164_basic", "<19>Nov 25 17:50:46 vm soc-test: udp rfc3164 hello"},
	{"rfc3164_pid", "<38>Nov  5 17:52:33 vm sshd[123]: Failed password for root from 192.0.2.7 port 4242 ssh2"},
	{"rfc3164_year_rollover", "<38>Dec 31 23:59:59 vm cron[1]: from last year"},
	{"rfc3164_tomorrow", "<38>Nov 26 10:00:00 vm app: clock slightly ahead"},
	{"rfc3164_forwardformat", "<22>2026-11-25T17:51:42+00:00 vm postfix/smtpd: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied"},
	{"rfc3164_forwardformat_notag", "<25>2026-11-25T17:51:42.635452+00:00 vm clamd /var/spool/x/eicar.com: Eicar-Test-Signature FOUND"},
	{"rfc3164_no_host", "<13>Nov 25 17:52:33 app[12]: no host here"},
	{"rfc3164_year_in_stamp", "<166>Nov 25 2026 10:01:02 fw1 : %ASA-6-302013: Built outbound TCP connection"},
	{"rfc3164_cisco_counter", "<189>237: *Jan  8 19:46:03.295: %SYS-5-CONFIG_I: Configured from console by console"},
	{"rfc3164_pri_only", "<13>hello world without header"},
	{"bsd_file_line", "Nov 25 17:52:33 vm sshd[4242]: Accepted publickey for alice from 192.0.2.9 port 5555 ssh2"},
	{"bsd_file_iso", "2026-11-25T17:52:33.123456+01:00 vm sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls"},
	{"plain_prose", "2026-11-25 10:00:00,123 INFO some application said hello"},
	{"empty", ""},
	{"bom_only", "\xef\xbb\xbf"},
	{"invalid_utf8", "<13>1 2026-11-25T17:50:47Z vm app - - - bad \xff\xfe bytes"},
	{"invalid_utf8_unparsed", "\xc3\x28 broken"},
	// --- CEF
	{"cef_basic", `CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232`},
	{"cef_syslog", `<134>Nov 25 17:00:00 host1 CEF:0|Trend Micro|Deep Security Manager|20.0|600|User Signed In|3|src=10.52.116.160 suser=admin target=admin msg=User signed in from 2001:db8::5 rt=Nov 25 2026 16:59:58 UTC`},
	{"cef_escapes", `CEF:0|Sec\|urity|threat\\manager|1.0|100|detected a \| in message|10|src=10.0.0.1 act=blocked a \= dst=1.1.1.1 msg=line1\nline2 path=C:\\Windows\\x`},
	{"cef_labels", `CEF:0|Palo Alto Networks|PAN-OS|9.1|TRAFFIC|end|3|rt=1795623600000 src=10.1.1.1 dst=8.8.8.8 spt=50000 dpt=53 proto=UDP act=allow cs1Label=Rule cs1=allow-dns cs2Label=Source User cs2=corp\\bob cn1Label=SessionID cn1=12345 in=100 out=200 request=http://example.com/a/b?x=1 requestMethod=GET fileHash=44d88612fea8a8f36de82e1278abb02f outcome=Success`},
	{"cef_after_tag", `<14>Nov 25 17:00:00 host1 ArcSight: CEF:1|V|P|1|sig|Name with spaces|Very-High|start=Nov 25 2026 16:00:00.123 +0100 end=1795622400000 duser=bob shost=ws1 dhost=srv1 url=http://x/?a=b c=d`},
	{"cef_repeated_key", `CEF:0|V|P|1|1|n|5|src=1.1.1.1 src=2.2.2.2 cs1=v1`},
	{"cef_no_ext", `CEF:0|V|P|1|1|just a name|Low`},
	{"cef_bad_version", `CEF:x|V|P|1|1|n|5|src=1.1.1.1`},
	// --- LEEF
	{"leef1", "LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.0\tdst=172.50.123.1\tsev=5\tcat=anomaly\tsrcPort=81\tdstPort=21\tusrName=joe.black\tproto=6\tdevTime=1795622400000"},
	{"leef2_caret", "<13>Nov 25 17:00:00 fw LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=192.0.2.0^dst=172.50.123.1^sev=5^cat=anomaly^msg=There are spaces^in the message^devTime=Nov 25 2026 16:00:00^devTimeFormat=MMM dd yyyy HH:mm:ss"},
	{"leef2_hex", "LEEF:2.0|IBM|QRadar|7.4|Login|x09|src=10.0.0.5\tusrName=alice\taction=denied\tidentSrc=10.0.0.5\tdevTime=2026-11-25T16:00:00.000+0100\tdevTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ"},
	{"leef1_spaces", "LEEF:1.0|Vendor|Product|1|Evt|src=1.2.3.4 dst=5.6.7.8 msg=hello world proto=TCP"},
	// --- JSON
	{"eve_alert", `{"timestamp": "2017-04-07T22:24:37.251547+0100", "flow_id": 586497171462735, "pcap_cnt": 53381, "event_type": "alert", "src_ip": "192.168.2.14", "src_port": 50096, "dest_ip": "209.53.113.5", "dest_port": 80, "proto": "TCP", "metadata": {"flowbits": ["http.dottedquadhost"]}, "tx_id": 4, "alert": {"action": "allowed", "gid": 1, "signature_id": 2018358, "rev": 10, "signature": "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1", "category": "Potentially Bad Traffic", "severity": 2}, "app_proto": "http"}`},
	{"eve_dns", `{"timestamp":"2026-11-25T10:00:00.000000+0000","flow_id":1,"event_type":"dns","src_ip":"10.0.0.2","src_port":5353,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{"type":"query","id":1,"rrname":"evil.example","rrtype":"A","tx_id":0}}`},
	{"eve_dns_v3", `{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"dns","src_ip":"10.0.0.2","dest_ip":"10.0.0.1","proto":"UDP","dns":{"version":3,"type":"request","queries":[{"rrname":"v3.example","rrtype":"AAAA"}]}}`},
	{"eve_http", `{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"http","src_ip":"10.0.0.2","src_port":40000,"dest_ip":"93.184.216.34","dest_port":80,"proto":"TCP","http":{"hostname":"example.com","url":"/index.html?q=1","http_user_agent":"curl/8.0","http_method":"GET","protocol":"HTTP/1.1","status":200,"length":1256}}`},
	{"eve_fileinfo", `{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"fileinfo","src_ip":"1.2.3.4","dest_ip":"10.0.0.2","proto":"TCP","fileinfo":{"filename":"/eicar.com","magic":"EICAR virus test files","state":"CLOSED","md5":"44d88612fea8a8f36de82e1278abb02f","sha1":"3395856ce81f2b7382dee72602f798b642f14140","sha256":"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f","stored":false,"size":68,"tx_id":0}}`},
	{"eve_flow", `{"timestamp":"2026-11-25T10:00:00.000000+0000","event_type":"flow","src_ip":"10.0.0.2","src_port":1,"dest_ip":"10.0.0.3","dest_port":2,"proto":"TCP","flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":180,"bytes_toclient":120,"start":"2026-11-25T09:59:59.000000+0000","end":"2026-11-25T10:00:00.000000+0000","state":"closed","reason":"timeout","alerted":false}}`},
	{"eve_tls_smtp", `{"timestamp":"2026-11-25T10:00:00Z","event_type":"smtp","src_ip":"10.0.0.2","dest_ip":"10.0.0.3","proto":"TCP","smtp":{"helo":"x","mail_from":"<a@example.com>","rcpt_to":["<b@example.com>","<c@example.com>"]},"email":{"status":"PARSE_DONE","from":"A <a@example.com>","to":["b@example.com"],"subject":"hi"}}`},
	{"zeek_conn", `{"ts":1521911720.600737,"uid":"CUM0KZ3MLUfNB0cl11","id.orig_h":"192.168.4.76","id.orig_p":46378,"id.resp_h":"31.3.245.133","id.resp_p":80,"proto":"tcp","service":"http","duration":0.25,"orig_bytes":77,"resp_bytes":295,"conn_state":"SF","missed_bytes":0,"history":"ShADadFf","orig_pkts":6,"resp_pkts":4,"_path":"conn"}`},
	{"zeek_dns_iso", `{"_path":"dns","_write_ts":"2018-03-24T17:15:25.396445Z","ts":"2018-03-24T17:15:25.396014Z","uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":5353,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"example.com","qtype_name":"A","rcode_name":"NOERROR","answers":["93.184.216.34"],"TTLs":[3600.0]}`},
	{"zeek_notice", `{"_path":"notice","ts":"2018-03-24T17:15:20.629574Z","uid":"CmC9kY1X0u9nP78KZc","id.orig_h":"10.164.94.120","id.orig_p":39611,"id.resp_h":"10.47.3.200","id.resp_p":443,"proto":"tcp","note":"SSL::Invalid_Server_Cert","msg":"SSL certificate validation failed","actions":["Notice::ACTION_LOG"],"email_dest":[]}`},
	{"json_generic_nested", `{"@timestamp":"2026-11-25T10:00:00.5Z","message":"user login","source":{"ip":"10.0.0.1","port":5555},"user":{"name":"alice"},"tags":["a","b"],"obj_arr":[{"x":1},{"x":2}],"n":null,"empty":"","b":true,"esc":"tab\there \u00e9 \ud83d\ude00"}`},
	{"json_generic_epoch_msg", `  {"time":1795600800123,"msg":"epoch ms","level":"warn","host":"web1"}`},
	{"json_bad_time", `{"timestamp":"not a time","msg":"x"}`},
	{"json_winlog_shape", `{"@timestamp":"2019-03-19T23:34:25.894341Z","event.code":"4624","event.kind":"event","event.provider":"Microsoft-Windows-Security-Auditing","host.name":"PC01.example.corp","winlog.channel":"Security","winlog.computer_name":"PC01.example.corp","winlog.event_data.TargetUserName":"bob","winlog.event_id":4624,"winlog.provider_name":"Microsoft-Windows-Security-Auditing","winlog.record_id":1234}`},
	{"json_broken", `{"a":1,"b":`},
	{"json_broken_syslog", `<13>1 2026-11-25T17:50:47Z vm app - - - {"a":tru}`},
	{"json_array", `[1,2,3]`},
	{"json_string", `"just a string"`},
	{"json_number", `42`},
	{"json_trailing", `{"a":"b"} trailing`},
	{"json_cee", `<13>Nov 25 17:00:00 host app: @cee: {"msg":"structured","pid":42}`},
	{"json_bom", "\xef\xbb\xbf{\"message\":\"bom json\"}"},
	// --- key=value
	{"fortigate_traffic_deny", `date=2026-11-25 time=10:00:00 devname="FG100" devid="FG100E1234567890" eventtime=1795600800000000000 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.0.0.1 srcport=51515 srcintf="port1" dstip=203.0.113.9 dstport=443 dstintf="wan1" policyid=7 policyname="block all" sessionid=1234 proto=6 action="deny" service="HTTPS" sentbyte=0 rcvdbyte=0 user="bob" msg="Denied by \"policy\" 7"`},
	{"fortigate_syslog_av", `<189>date=2026-11-25 time=10:05:00 devname="FG100" devid="FG100E1234567890" logid="0211008192" type="utm" subtype="virus" eventtype="infected" level="warning" srcip=10.0.0.5 dstip=198.51.100.7 srcport=50000 dstport=80 proto=6 action="blocked" service="HTTP" hostname="eicar.example" url="/download/eicar.com?x=1" filename="eicar.com" virus="EICAR_TEST_FILE" quarskip="File-was-not-quarantined"`},
	{"fortigate_webfilter_in_syslog", `<189>Nov 25 10:06:00 FG100 date=2026-11-25 time=10:06:00 devname="FG100" devid="FGT" logid="0316013056" type="utm" subtype="webfilter" action="passthrough" srcip=10.0.0.5 dstip=1.2.3.4 hostname="news.example" url="https://news.example/a" proto=6`},
	{"kv_generic", `src=10.1.1.1 dst=10.2.2.2 spt=1000 dpt=22 action=accept user=root rule=ssh-in`},
	{"kv_prose_rejected", `the user logged in from a=b while c=d happened and more words follow here`},
	// --- nothing
	{"unparsed_text", `just some text that is not structured`},
	{"syslog_unknown_body", `<30>Nov 25 17:00:00 host daemon[1]: something happened that nobody parses`},
}

func TestParseGolden(t *testing.T) {
	noVendor(t)
	p := New()
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if seen[c.name] {
				t.Fatalf("duplicate case name")
			}
			seen[c.name] = true
			e := newEvent()
			r := p.Parse([]byte(c.in), e)
			checkInvariants(t, []byte(c.in), r, e)
			got := outcome(c.in, r, e)
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			path := filepath.Join(dir, c.name+".json")
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("no golden file (run go test -update): %v", err)
			}
			if !bytes.Equal(want, b) {
				t.Errorf("output differs from %s (run go test -update after checking):\n--- got\n%s\n--- want\n%s", path, b, want)
			}
		})
	}
}

// TestParseSpotChecks states the most important expectations explicitly,
// so a careless -update cannot bless a regression.
func TestParseSpotChecks(t *testing.T) {
	noVendor(t)
	p := New()
	type want map[string]string
	checks := []struct {
		in     string
		format string
		ts     string // RFC 3339, "" = Ingested
		fields want
	}{
		{`<36>1 2026-11-25T17:50:45.688797+00:00 vm soc-test - TEST01 [timeQuality tzKnown="1" isSynced="0"][origin@32473 ip="127.0.0.1"] udp rfc5424 hello`,
			"rfc5424", "2026-11-25T17:50:45.688797Z", want{
				"log.syslog.facility.code": "4", "log.syslog.severity.code": "4", "host.name": "vm", "log.syslog.appname": "soc-test",
				"process.name": "soc-test", "log.syslog.msgid": "TEST01", "log.syslog.structured_data.origin@32473.ip": "127.0.0.1",
				"log.syslog.structured_data.timeQuality.tzKnown": "1", "message": "udp rfc5424 hello", "event.kind": "event"}},
		{"<22>1 2026-11-25T17:51:42+00:00 vm postfix - - -  NOQUEUE: reject\n", "rfc5424", "2026-11-25T17:51:42Z",
			want{"message": "NOQUEUE: reject", "log.syslog.appname": "postfix"}},
		{"<38>1 2026-11-25T17:52:46+00:00 localhost prg00000 1234 - - \xef\xbb\xbfseq: 1", "rfc5424", "2026-11-25T17:52:46Z",
			want{"message": "seq: 1", "process.pid": "1234"}},
		{"<22>2026-11-25T17:51:42+00:00 vm postfix/smtpd: NOQUEUE: x", "rfc3164", "2026-11-25T17:51:42Z",
			want{"log.syslog.appname": "postfix/smtpd", "host.name": "vm", "message": "NOQUEUE: x"}},
		{"<38>Nov  5 17:52:33 vm sshd[123]: Failed", "rfc3164", "2026-11-05T17:52:33Z",
			want{"process.pid": "123", "process.name": "sshd"}},
		{"<38>Dec 31 23:59:59 vm cron[1]: x", "rfc3164", "2025-12-31T23:59:59Z", want{}},
		{"<38>Nov 25 17:52:33 vm sshd[7]: sshd started", "rfc3164", "2026-11-25T17:52:33Z", want{"process.name": "sshd", "message": "sshd started"}},
		{"<38>Nov 25 17:52:33 vm sshd started", "rfc3164", "2026-11-25T17:52:33Z", want{"message": "sshd started", "host.name": "vm"}},
		{"<38>Nov 26 10:00:00 vm app: x", "rfc3164", "2026-11-26T10:00:00Z", want{}},
		{"<38>Nov 27 10:00:00 vm app: x", "rfc3164", "2025-11-27T10:00:00Z", want{}},
		{`CEF:0|Sec\|urity|threat\\manager|1.0|100|n|10|src=10.0.0.1 act=blocked a \= dst=1.1.1.1 msg=line1\nline2`, "cef", "",
			want{"observer.vendor": "Sec|urity", "observer.product": `threat\manager`, "event.action": "blocked a =", "destination.ip": "1.1.1.1", "message": "line1\nline2", "event.severity": "10", "source.ip": "10.0.0.1"}},
		{`CEF:0|V|P|1|1|n|5|rt=1795623600000 cs1Label=Rule cs1=allow-dns cs2Label=Source User cs2=x`, "cef", "2026-11-25T16:20:00Z",
			want{"cef.Rule": "allow-dns", "cef.Source_User": "x"}},
		{"LEEF:2.0|L|S|1.0|41|^|src=192.0.2.0^msg=a^b^devTime=Nov 25 2026 16:00:00^devTimeFormat=MMM dd yyyy HH:mm:ss", "leef", "2026-11-25T16:00:00Z",
			want{"source.ip": "192.0.2.0", "message": "a^b", "event.code": "41"}},
		{"LEEF:2.0|IBM|Q|7|Login|x09|usrName=alice\tdevTime=2026-11-25T16:00:00.000+0100\tdevTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ", "leef", "2026-11-25T15:00:00Z",
			want{"user.name": "alice"}},
		{`{"timestamp":"2017-04-07T22:24:37.251547+0100","event_type":"alert","src_ip":"1.1.1.1","proto":"TCP","alert":{"signature":"S","signature_id":7,"category":"C","severity":2}}`,
			"suricata", "2017-04-07T21:24:37.251547Z", want{"event.kind": "alert", "rule.name": "S", "rule.id": "7", "rule.category": "C", "event.severity": "2",
				"network.transport": "tcp", "source.ip": "1.1.1.1", "event.category": "intrusion_detection"}},
		{`{"ts":1521911720.600737,"uid":"C1","id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":80,"proto":"tcp","history":"Sh"}`,
			"zeek", "2018-03-24T17:15:20.600737Z", want{"source.ip": "1.1.1.1", "destination.port": "80", "zeek.uid": "C1", "zeek.history": "Sh"}},
		{`{"a":{"b":{"c":"d"}},"source":{"ip":"1.2.3.4"},"arr":[1,"x",true]}`, "json", "", want{"a.b.c": "d", "source.ip": "1.2.3.4", "arr": "1,x,true"}},
		{`date=2026-11-25 time=10:00:00 devname="FG" devid="X" logid="1" type="traffic" subtype="forward" srcip=1.1.1.1 dstip=2.2.2.2 srcport=1 dstport=2 action="deny" proto=17 tz="+0100" policyid=3`,
			"fortigate", "2026-11-25T09:00:00Z", want{"event.action": "deny", "event.outcome": "failure", "event.category": "network", "network.transport": "udp",
				"observer.hostname": "FG", "fortigate.type": "traffic", "rule.id": "3"}},
	}
	for _, c := range checks {
		e := newEvent()
		r := p.Parse([]byte(c.in), e)
		checkInvariants(t, []byte(c.in), r, e)
		if r.Format != c.format {
			t.Errorf("%q: format %q, want %q", c.in, r.Format, c.format)
		}
		wantTS := ingested
		if c.ts != "" {
			wantTS, _ = time.Parse(time.RFC3339Nano, c.ts)
		}
		if !e.Timestamp.Equal(wantTS) {
			t.Errorf("%q: timestamp %v, want %v", c.in, e.Timestamp, wantTS)
		}
		for k, v := range c.fields {
			if got := e.Value(k); got != v {
				t.Errorf("%q: %s = %q, want %q", c.in, k, got, v)
			}
		}
	}
}

func TestUnparsedAndInvalidUTF8(t *testing.T) {
	noVendor(t)
	p := New()
	raw := []byte("\xc3\x28 broken")
	e := newEvent()
	r := p.Parse(raw, e)
	if !r.Unparsed || !r.InvalidUTF8 || r.Format != "" {
		t.Fatalf("result %+v", r)
	}
	if e.Value("event.original_base64") != "wyggYnJva2Vu" {
		t.Errorf("base64 = %q", e.Value("event.original_base64"))
	}
	if !strings.Contains(e.Value("error.message"), "invalid UTF-8") {
		t.Errorf("error.message = %q", e.Value("error.message"))
	}
	if e.Original != "\uFFFD( broken" {
		t.Errorf("Original = %q", e.Original)
	}
	e = newEvent()
	r = p.Parse([]byte(`[1,2]`), e)
	if !r.Unparsed || !strings.Contains(e.Value("error.message"), "JSON array is not an object") {
		t.Errorf("array: %+v %q", r, e.Value("error.message"))
	}
	e = newEvent()
	r = p.Parse([]byte(`{"a":`), e)
	if !r.Unparsed || !strings.Contains(e.Value("error.message"), "invalid JSON") || e.Value("message") != `{"a":` {
		t.Errorf("broken: %+v %v", r, e.Fields)
	}
}

// TestExistingFieldsKept checks that fields the caller set before Parse
// survive (unless Parse sets the same name).
func TestExistingFieldsKept(t *testing.T) {
	e := newEvent()
	e.Set("zz.caller", "x")
	New().Parse([]byte("<13>1 2026-11-25T17:50:47Z vm app - - - hi"), e)
	if e.Value("zz.caller") != "x" || e.Value("message") != "hi" {
		t.Fatalf("fields %v", e.Fields)
	}
}

func TestVendorHookCalled(t *testing.T) {
	noVendor(t)
	var gotApp, gotMsg string
	vendorParse = func(app, msg string, e *event.Event) (string, bool) {
		gotApp, gotMsg = app, msg
		if app == "sshd" {
			e.Set("source.ip", "192.0.2.7")
			return "sshd", true
		}
		return "", false
	}
	e := newEvent()
	r := New().Parse([]byte("<38>Nov 25 17:52:33 vm sshd: Failed password for root from 192.0.2.7 port 4242 ssh2\n"), e)
	if r.Format != "sshd" || gotApp != "sshd" || gotMsg != "Failed password for root from 192.0.2.7 port 4242 ssh2" {
		t.Fatalf("r=%+v app=%q msg=%q", r, gotApp, gotMsg)
	}
	if e.Value("source.ip") != "192.0.2.7" || e.Value("host.name") != "vm" || e.Value("event.kind") != "event" {
		t.Fatalf("fields %v", e.Fields)
	}
	if !e.Timestamp.Equal(time.Date(2026, 11, 25, 17, 52, 33, 0, time.UTC)) {
		t.Fatalf("ts %v", e.Timestamp)
	}
	// iptables-like text must reach the vendor hook before the generic kv parser.
	e = newEvent()
	New().Parse([]byte("<4>Nov 25 17:52:33 vm kernel: [123.456] IN=eth0 OUT= MAC=00 SRC=1.2.3.4 DST=5.6.7.8 LEN=60 PROTO=TCP SPT=1 DPT=2"), e)
	if gotApp != "kernel" || !strings.HasPrefix(gotMsg, "[123.456] IN=eth0") {
		t.Fatalf("vendor hook not given the kernel line: app=%q msg=%q", gotApp, gotMsg)
	}
}

func TestConcurrentParse(t *testing.T) {
	p := New()
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- true }()
			for i := 0; i < 300; i++ {
				c := cases[i%len(cases)]
				e := newEvent()
				r := p.Parse([]byte(c.in), e)
				if err := invariantErr([]byte(c.in), r, e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// TestFinishMatchesSet compares finish with repeated event.Set calls on
// random field sequences (duplicates, shared prefixes, odd bytes).
func TestFinishMatchesSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "log.syslog.structured_data.x.y", "log.syslog.structured_data.x.z", "log.syslog.facility.code",
		"log.syslog.facility.name", "event.kind", "event.code", "Z", "@timestamp", "_x", "~", "é", "", "source.ip", "source.port",
		"abcdefghijklmnop", "abcdefghijklmnopq", "abcdefghijklmnop\x00", "zeek.id.orig_h"}
	sc := new(scratch)
	for iter := 0; iter < 3000; iter++ {
		sc.reset() // as Parse does per message
		n := rng.IntN(90)
		var got, want event.Event
		want.Set("pre", "existing")
		got.Set("pre", "existing")
		for i := 0; i < n; i++ {
			name := names[rng.IntN(len(names))]
			if rng.IntN(4) == 0 {
				name += fmt.Sprint(rng.IntN(30))
			}
			v := fmt.Sprint(i)
			want.Set(name, v)
			add(&got, name, v)
		}
		finish(&got, sc)
		if fmt.Sprint(got.Fields) != fmt.Sprint(want.Fields) {
			t.Fatalf("iter %d:\n got %v\nwant %v", iter, got.Fields, want.Fields)
		}
		// A few more after a finish take the insertion path.
		for i := 0; i < rng.IntN(6); i++ {
			name := names[rng.IntN(len(names))]
			want.Set(name, "late")
			add(&got, name, "late")
		}
		finish(&got, sc)
		if fmt.Sprint(got.Fields) != fmt.Sprint(want.Fields) {
			t.Fatalf("iter %d (late):\n got %v\nwant %v", iter, got.Fields, want.Fields)
		}
	}
}

func TestNameKey(t *testing.T) {
	for _, s := range []string{"", "a", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmno", "abcdefghijklmnop", "abcdefghijklmnopqrs", "\xff\x00\x01"} {
		var b [16]byte
		copy(b[:], s)
		hi, lo := nameKey(s)
		if hi != binary.BigEndian.Uint64(b[:8]) || lo != binary.BigEndian.Uint64(b[8:]) {
			t.Errorf("%q: %x %x", s, hi, lo)
		}
	}
}

// TestWithVendorParsers runs lines through the real vendor parsers: the
// envelope fields stay, the vendor format wins, and the kernel/iptables
// line is not taken by the generic key=value parser.
func TestWithVendorParsers(t *testing.T) {
	p := New()
	for _, c := range []struct {
		in, format string
		want       map[string]string
	}{
		{"<38>Nov 25 17:52:33 vm sshd[77]: Failed password for root from 192.0.2.7 port 4242 ssh2", "sshd",
			map[string]string{"host.name": "vm", "process.pid": "77", "source.ip": "192.0.2.7", "log.syslog.appname": "sshd"}},
		{"<4>Nov 25 17:52:33 vm kernel: [123.456] IN=eth0 OUT= MAC=00:11 SRC=192.0.2.1 DST=192.0.2.2 LEN=60 PROTO=TCP SPT=1234 DPT=22", "iptables",
			map[string]string{"host.name": "vm", "source.ip": "192.0.2.1", "destination.port": "22"}},
		{"Nov 25 17:52:33 vm sshd[4242]: Accepted publickey for alice from 192.0.2.9 port 5555 ssh2", "sshd",
			map[string]string{"host.name": "vm", "source.ip": "192.0.2.9"}},
		{`CEF:0|V|P|1|1|n|5|src=1.1.1.1`, "cef", map[string]string{"source.ip": "1.1.1.1"}},
	} {
		e := newEvent()
		r := p.Parse([]byte(c.in), e)
		checkInvariants(t, []byte(c.in), r, e)
		if r.Format != c.format {
			t.Errorf("%q: format %q, want %q (%v)", c.in, r.Format, c.format, e.Fields)
			continue
		}
		for k, v := range c.want {
			if got := e.Value(k); got != v {
				t.Errorf("%q: %s = %q, want %q", c.in, k, got, v)
			}
		}
		if e.Timestamp.Equal(ingested) && c.format != "cef" {
			t.Errorf("%q: no event time", c.in)
		}
	}
}
