package anomaly

import (
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// TestDefaultStreamsMatchParsedEvents: real lines of each kind the
// default streams are for, through the real parser, land in the intended
// stream and group (and nowhere else).
func TestDefaultStreamsMatchParsedEvents(t *testing.T) {
	const (
		sent    = "<22>2026-03-02T10:00:01.000000+00:00 mail1 postfix/smtp[3001]: 4F1A2B3C4D: to=<b@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)"
		bounced = "<22>2026-03-02T10:00:01.000000+00:00 mail2 postfix/smtp[3001]: 4F1A2B3C4D: to=<b@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host said: 550 5.1.1 unknown)"
		// rsyslog's RFC 5424 template cuts the tag at the slash.
		client = "<22>1 2026-03-02T10:00:01.000000Z mail1 postfix - - - /smtpd[1201]: 4F1A2B3C4D: client=ws-012.corp.example[10.1.0.22]"
		local  = "<22>2026-03-02T10:00:01.000000+00:00 mail1 postfix/local[3001]: 4F1A2B3C4D: to=<alice@corp.example>, relay=local, delay=0.1, delays=0.05/0/0/0.05, dsn=2.0.0, status=sent (delivered to mailbox)"
		ufw    = "<4>Mar  2 10:00:01 fw1 kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.5 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51234 DPT=3389 WINDOW=29200 RES=0x00 SYN URGP=0"
		sshd   = "<38>Mar  2 10:00:01 web1 sshd[2211]: Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2"
	)
	for _, tc := range []struct {
		name string
		line string
		want map[string]map[string]string // stream → group values
	}{
		{"delivered", sent, map[string]map[string]string{"mail-outbound": {}, "mail-outbound-by-host": {"host.name": "mail1"}}},
		{"bounced", bounced, map[string]map[string]string{"mail-outbound": {}, "mail-outbound-by-host": {"host.name": "mail2"}}},
		{"submission", client, map[string]map[string]string{"mail-submissions-by-source": {"source.ip": "10.1.0.22"}}},
		{"local delivery is not outbound", local, map[string]map[string]string{}},
		{"firewall deny", ufw, map[string]map[string]string{"firewall-denies-by-port": {"destination.port": "3389"}}},
		{"ssh failure", sshd, map[string]map[string]string{"auth-failures-by-user": {"user.name": "admin"}}},
	} {
		d := newDetector(t, Config{})
		var e event.Event
		e.Ingested = time.Date(2026, 3, 2, 10, 0, 5, 0, time.UTC)
		parse.New().Parse([]byte(tc.line), &e)
		d.Observe("acme", &e)
		tn := d.tenants["acme"]
		for si, s := range d.streams {
			gs := tn.streams[si].groups
			want, ok := tc.want[s.Name]
			if !ok {
				if len(gs) != 0 {
					t.Errorf("%s: counted in %s", tc.name, s.Name)
				}
				continue
			}
			if len(gs) != 1 {
				t.Errorf("%s: %d groups in %s after one matching event (fields %v)", tc.name, len(gs), s.Name, e.Fields)
				continue
			}
			for _, g := range gs {
				for j, f := range s.By {
					if g.values[j] != want[f] {
						t.Errorf("%s: %s group %s=%q, want %q", tc.name, s.Name, f, g.values[j], want[f])
					}
				}
			}
		}
	}
}
