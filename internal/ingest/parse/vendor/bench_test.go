package vendor

import (
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

var benchLines = []struct{ name, app, msg string }{
	{"iptables", "kernel", iptablesCases[0].msg},
	{"pfsense", "filterlog", pfsenseCases[0].msg},
	{"cisco_asa/302013", "", asaCases[0].msg},
	{"cisco_asa/106023", "", asaCases[5].msg},
	{"panos/traffic", "", panTraffic},
	{"panos/threat", "", panThreatURL},
	{"postfix/smtp", "postfix/smtp", postfixCases[5].msg},
	{"postfix/reject", "postfix/smtpd", postfixCases[8].msg},
	{"sshd/failed", "sshd", sshdCases[2].msg},
	{"sshd/file_line", "", sshdCases[14].msg},
	{"squid", "", squidCases[0].msg},
	{"apache_combined", "", accessCases[1].msg},
	{"nginx_combined", "nginx", accessCases[2].msg},
	{"no_match", "", "Nov 25 10:00:00 host systemd[1]: Started Session 42 of User root."},
}

func BenchmarkParse(b *testing.B) {
	for _, bl := range benchLines {
		b.Run(bl.name, func(b *testing.B) {
			e := event.Event{Fields: make([]event.Field, 0, 64)}
			b.ReportAllocs()
			b.SetBytes(int64(len(bl.msg)))
			for b.Loop() {
				e.Fields = e.Fields[:0]
				e.Timestamp = time.Time{}
				Parse(bl.app, bl.msg, &e)
			}
		})
	}
}
