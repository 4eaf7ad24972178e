package sigma

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

func sourcesOf(e *event.Event) string {
	var s sources
	route(e, &s)
	var cats []string
	for _, c := range s.cats[:s.nc] {
		if c.variant != "" {
			cats = append(cats, c.cat+":"+c.variant)
		} else {
			cats = append(cats, c.cat)
		}
	}
	svcs := slices.Clone(s.svcs[:s.ns])
	slices.Sort(cats)
	slices.Sort(svcs)
	return fmt.Sprintf("%s|%s|%s", strings.Join(s.prods[:s.np], ","), strings.Join(cats, ","), strings.Join(svcs, ","))
}

func parseLine(t *testing.T, l string) *event.Event {
	t.Helper()
	e := &event.Event{}
	parse.New().Parse([]byte(l), e)
	return e
}

func TestRouting(t *testing.T) {
	cases := []struct{ line, want string }{
		{`<4>Nov 25 10:00:00 fw1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.9 DST=192.0.2.10 LEN=60 PROTO=TCP SPT=51234 DPT=22`, "mamori|firewall|"},
		{`<190>Nov 25 10:00:00 proxy1 squid: 1732521600.123     45 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html`, "mamori|proxy|"},
		{`<134>Nov 25 10:00:00 web1 nginx: 198.51.100.25 - - [25/Nov/2026:10:00:03 +0000] "POST /api/login HTTP/2.0" 401 17 "-" "x"`, "mamori|webserver|nginx"},
		{`<38>Nov 25 10:00:00 host1 sshd[123]: Failed password for root from 192.0.2.7 port 4242 ssh2`, "mamori,linux||auth,sshd,syslog"},
		{`<86>Nov 25 10:00:03 host1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash`, "mamori,linux||auth,sudo,syslog"},
		{`<14>Nov 25 10:00:04 host1 clamd[55]: /tmp/eicar.com: Eicar-Signature FOUND`, "mamori,linux|antivirus|clamav,syslog"},
		{`<22>Nov 25 10:00:00 mail1 postfix/smtpd[2001]: connect from mail.example.com[192.0.2.1]`, "mamori,linux||syslog"},
		{`{"ts":1591367999.3,"uid":"C1","id.orig_h":"192.168.4.76","id.orig_p":1,"id.resp_h":"192.168.4.1","id.resp_p":53,"query":"x.com","_path":"dns"}`, "mamori,zeek|dns|dns"},
		{`{"timestamp":"2017-04-07T22:24:37.251547+0100","event_type":"dns","src_ip":"192.168.2.14","dns":{"type":"query","rrname":"a.org","rrtype":"A"}}`, "mamori|dns|"},
		{`type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exe="/bin/cat" key="k"`, "mamori,linux||auditd"},
		{`date=2026-11-25 time=10:00:02 devname="FG100" devid="FG1" logid="0100044547" type="event" subtype="system" action="Add" cfgpath="user.local"`, "mamori,fortigate|firewall|event"},
		{`date=2026-11-25 time=10:00:03 devname="FG100" devid="FG1" logid="0316013056" type="utm" subtype="webfilter" hostname="m.example" url="/p.exe" action="blocked"`, "mamori,fortigate|firewall,proxy|"},
		{`{"winlog.channel":"Microsoft-Windows-Sysmon/Operational","winlog.event_id":13,"@timestamp":"2025-01-01T00:00:00Z"}`, "mamori,windows|registry_event,registry_set|sysmon"},
		{`{"winlog.channel":"Security","winlog.event_id":4688,"@timestamp":"2025-01-01T00:00:00Z"}`, "mamori,windows|process_creation:audit|security"},
		{`{"winlog.channel":"Microsoft-Windows-PowerShell/Operational","winlog.event_id":4104,"@timestamp":"2025-01-01T00:00:00Z"}`, "mamori,windows|ps_script|powershell"},
		{`{"winlog.channel":"Windows PowerShell","winlog.event_id":400,"@timestamp":"2025-01-01T00:00:00Z"}`, "mamori,windows|ps_classic_start|powershell-classic"},
		{`{"winlog.channel":"Microsoft-Windows-Windows Defender/Operational","winlog.event_id":1116,"@timestamp":"2025-01-01T00:00:00Z"}`, "mamori,windows||windefend"},
	}
	for _, c := range cases {
		if got := sourcesOf(parseLine(t, c.line)); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.line, got, c.want)
		}
	}
}

func TestFieldMapping(t *testing.T) {
	win := Logsource{Product: "windows", Category: "process_creation"}
	cases := []struct {
		ls      Logsource
		variant string
		field   string
		want    string
	}{
		{win, "", "Image", "winlog.event_data.Image"},
		{win, variantAudit, "Image", "winlog.event_data.NewProcessName"},
		{win, variantAudit, "ParentImage", "winlog.event_data.ParentProcessName"},
		{win, variantAudit, "CommandLine", "winlog.event_data.CommandLine"},
		{win, "", "EventID", "winlog.event_id"},
		{win, "", "Channel", "winlog.channel"},
		{win, "", "Provider_Name", "winlog.provider_name"},
		{win, "", "Computer", "winlog.computer_name"},
		{Logsource{Product: "windows", Service: "windefend"}, "", "ThreatName", "winlog.event_data.ThreatName,winlog.event_data.Threat Name"},
		{Logsource{Category: "webserver"}, "", "cs-uri-query", "url.query"},
		{Logsource{Category: "webserver"}, "", "c-ip", "source.ip"},
		{Logsource{Category: "proxy"}, "", "c-uri", "url.original"},
		{Logsource{Category: "proxy"}, "", "c-useragent", "user_agent.original"},
		{Logsource{Category: "dns"}, "", "query", "dns.question.name"},
		{Logsource{Category: "firewall"}, "", "dst_port", "destination.port"},
		{Logsource{Product: "zeek", Service: "dns"}, "", "id.resp_p", "destination.port"},
		{Logsource{Product: "zeek", Service: "x509"}, "", "certificate.serial", "zeek.certificate.serial"},
		{Logsource{Product: "fortigate", Service: "event"}, "", "cfgpath", "fortigate.cfgpath"},
		{Logsource{Product: "linux", Service: "auditd"}, "", "exe", "kv.exe"},
		{Logsource{Product: "mamori"}, "", "source.ip", "source.ip"},
		{Logsource{Category: "proxy"}, "", "url.domain", "url.domain"},
	}
	for _, c := range cases {
		if got := strings.Join(mapField(c.ls, c.variant, c.field), ","); got != c.want {
			t.Errorf("%s %s %s: %s, want %s", c.ls, c.variant, c.field, got, c.want)
		}
	}
}

// TestPipelineEndToEnd: hand-written rules of each non-Windows logsource
// fire on parsed lines through the field mapping, and only there.
func TestPipelineEndToEnd(t *testing.T) {
	rules := `title: proxy
id: p
logsource: {category: proxy}
detection:
  s: {c-uri|endswith: '/nc.exe', cs-method: GET}
  condition: s
---
title: web
id: w
logsource: {category: webserver}
detection:
  s: {cs-uri-query|contains: '../../', sc-status: 200}
  condition: s
---
title: dns
id: d
logsource: {category: dns}
detection:
  s: {query|endswith: '.ngrok.io'}
  condition: s
---
title: fw
id: f
logsource: {category: firewall}
detection:
  s: {dst_port: 445, src_ip|cidr: 198.51.100.0/24}
  condition: s
---
title: sshd keywords
id: k
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password for root']
  condition: keywords
---
title: auditd
id: a
logsource: {product: linux, service: auditd}
detection:
  s: {type: SYSCALL, exe|endswith: '/cat', key: sshd_config}
  condition: s
---
title: fortigate
id: g
logsource: {product: fortigate, service: event}
detection:
  s: {action: Add, cfgpath: user.local}
  condition: s
---
title: mamori ecs
id: m
logsource: {product: mamori}
detection:
  s: {email.local_id: 3F2A81C0E1}
  condition: s
`
	rs := mustParse(t, rules, Options{})
	_, lines := func() ([]*event.Event, []*event.Event) { return nil, parseLines(t, "testdata/stream.log") }()
	fired := map[string][]int{}
	for i, e := range lines {
		rs.Match(e, func(r *Rule) { fired[r.ID] = append(fired[r.ID], i) })
	}
	// Line indexes (0-based, comments skipped) of testdata/stream.log.
	want := map[string][]int{"p": {12}, "w": {14}, "d": {27}, "f": {2}, "k": {17}, "a": {30}, "g": {5}, "m": {23}}
	if fmt.Sprint(fired) != fmt.Sprint(want) {
		t.Errorf("fired %v\nwant  %v", fired, want)
	}
}

func TestLookup(t *testing.T) {
	rs := mustParse(t, `title: x
id: l
logsource: {product: windows, category: process_creation}
detection:
  s: {Image|endswith: '\cmd.exe'}
  condition: s
`, Options{})
	r := rs.Rules()[0]
	sec := parseLine(t, `{"winlog.channel":"Security","winlog.event_id":4688,"winlog.event_data.NewProcessName":"C:\\cmd.exe","winlog.computer_name":"h1","@timestamp":"2025-01-01T00:00:00Z"}`)
	sysmon := parseLine(t, `{"winlog.channel":"Microsoft-Windows-Sysmon/Operational","winlog.event_id":1,"winlog.event_data.Image":"C:\\x\\cmd.exe","@timestamp":"2025-01-01T00:00:00Z"}`)
	for _, c := range []struct {
		e     *event.Event
		field string
		want  string
	}{{sec, "Image", `C:\cmd.exe`}, {sec, "Computer", "h1"}, {sysmon, "Image", `C:\x\cmd.exe`}} {
		if v, ok := rs.Lookup(c.e, r, c.field); !ok || v != c.want {
			t.Errorf("Lookup %s = %q %v, want %q", c.field, v, ok, c.want)
		}
		if !matches(rs, c.e) && c.field == "Image" {
			t.Errorf("rule should match %v", c.e.Fields)
		}
	}
	if _, ok := rs.Lookup(sysmon, r, "User"); ok {
		t.Error("absent field found")
	}
}
