package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogger drives util-linux logger over every framing it speaks and
// counts what became searchable.
func TestLogger(t *testing.T) {
	need(t, "logger")
	s := startServer(t, "")
	ctx := context.Background()
	uh, up := hostPort(t, s.addr.SyslogUDP)
	th, tp := hostPort(t, s.addr.SyslogTCP)
	cases := []struct {
		name string
		args []string
	}{
		{"udp5424", []string{"--udp", "--rfc5424", "-n", uh, "-P", up}},
		{"udp3164", []string{"--udp", "--rfc3164", "-n", uh, "-P", up}},
		{"tcplf", []string{"--tcp", "-n", th, "-P", tp}},
		{"tcpoctet", []string{"--tcp", "--octet-count", "-n", th, "-P", tp}},
	}
	const n = 50
	for _, c := range cases {
		f := filepath.Join(t.TempDir(), "lines")
		var sb strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "e2e-%s seq=%d sshd says hello\n", c.name, i)
		}
		if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-t", "e2etest", "-f", f}, c.args...)
		run(t, ctx, "logger", args...)
	}
	for _, c := range cases {
		q := "e2e-" + c.name
		if got := s.waitCount(q, n, 20*time.Second); got != n {
			t.Errorf("%s: %d of %d messages searchable", c.name, got, n)
		}
	}
	// The envelope was parsed: the tag is the app name.
	r, _ := s.search(`log.syslog.appname:e2etest AND "e2e-tcpoctet"`, nil)
	if r.Total != n {
		t.Errorf("appname field: %d of %d (logsql %s)", r.Total, n, r.LogsQL)
	}
}

// TestRsyslog forwards through a real rsyslogd: omfwd TCP (octet-counted),
// omfwd TLS with the GnuTLS and OpenSSL drivers, and omrelp.
func TestRsyslog(t *testing.T) {
	need(t, "rsyslogd")
	for _, mod := range []string{"omrelp.so", "lmnsd_gtls.so", "lmnsd_ossl.so"} {
		needFile(t, filepath.Join("/usr/lib/x86_64-linux-gnu/rsyslog", mod))
	}
	s := startServer(t, "")
	th, tp := hostPort(t, s.addr.SyslogTCP)
	_, lp := hostPort(t, s.addr.SyslogTLS)
	_, rp := hostPort(t, s.addr.RELP)
	inPort := freePort(t)
	work := t.TempDir()
	conf := fmt.Sprintf(`
global(workDirectory="%[1]s" DefaultNetstreamDriverCAFile="%[2]s")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="%[4]s" port="%[5]s" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.filename="q1" action.resumeRetryCount="-1")
  action(type="omfwd" target="127.0.0.1" port="%[6]s" protocol="tcp" StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="anon"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted" queue.type="LinkedList" queue.filename="q2" action.resumeRetryCount="-1")
  action(type="omfwd" target="127.0.0.1" port="%[6]s" protocol="tcp" StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="anon"
         template="RSYSLOG_ForwardFormat" queue.type="LinkedList" queue.filename="q3" action.resumeRetryCount="-1")
  action(type="omrelp" target="127.0.0.1" port="%[7]s" queue.type="LinkedList" queue.filename="q4" action.resumeRetryCount="-1")
}
`, work, s.addr.TLSCert, inPort, th, tp, lp, rp)
	stop := startRsyslog(t, work, conf, inPort)
	defer stop()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", inPort))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	now := time.Now().UTC().Format(time.RFC3339)
	for i := 0; i < n; i++ {
		fmt.Fprintf(c, "<22>1 %s vm postfix/smtpd 4242 - - connect from unknown[192.0.2.%d] rsyslog-e2e seq=%d\n", now, i%250, i)
	}
	c.Close()
	for _, src := range []string{"syslog-tcp", "relp"} {
		if got := s.waitCount(`rsyslog-e2e AND mamori.source:`+src, n, 60*time.Second); got != n {
			t.Errorf("rsyslog → %s: %d of %d searchable", src, got, n)
		}
	}
	// Two TLS actions (gtls and ossl) → 2n on the TLS listener.
	if got := s.waitCount(`rsyslog-e2e AND mamori.source:syslog-tls`, 2*n, 60*time.Second); got != 2*n {
		// omfwd over TCP/TLS is not an acknowledged protocol: under load,
		// rsyslog 8.2302's TLS drivers have been seen to lose a batch
		// before it reached the socket (once in CI, 256 events). Mamori's
		// part is to store everything it received without a framing error.
		m := s.metrics()
		received := metricSum(m, "mamori_ingest_events_total", `source="syslog-tls"`)
		frameErrs := metricSum(m, "mamori_ingest_frame_errors_total", `source="syslog-tls"`)
		rejected := metricSum(m, "mamori_ingest_rejected_total", `source="syslog-tls"`)
		t.Logf("rsyslog → TLS (gtls+ossl): %d of %d searchable; the TLS listener received %.0f, frame errors %.0f, rejected %.0f",
			got, 2*n, received, frameErrs, rejected)
		if uint64(received) != got || frameErrs > 0 || rejected > 0 || got < 2*n*9/10 {
			t.Errorf("rsyslog → TLS: events lost inside Mamori (received %.0f, stored %d) or far too few arrived", received, got)
		}
	}
	// Everything stored parsed as Postfix with the client IP extracted.
	all, _ := s.search(`rsyslog-e2e`, url.Values{"limit": {"0"}})
	r, _ := s.search(`rsyslog-e2e AND source.ip:192.0.2.0/24`, url.Values{"limit": {"0"}})
	if r.Total != all.Total {
		t.Errorf("parsed source.ip on %d of %d events (logsql %s)", r.Total, all.Total, r.LogsQL)
		bad, _ := s.search(`rsyslog-e2e AND NOT source.ip:*`, url.Values{"limit": {"3"}})
		t.Logf("unparsed examples: %v", bad.Events)
	}
}

// metricSum adds the values of the samples of name whose labels contain sel.
func metricSum(metrics, name, sel string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, sel) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// TestOpenSSLClient sends hand-framed octet-counted syslog through
// openssl s_client, as an operator debugging TLS would.
func TestOpenSSLClient(t *testing.T) {
	need(t, "openssl")
	s := startServer(t, "")
	var in strings.Builder
	const n = 20
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("<14>1 2026-11-25T10:00:00Z vm app - - - openssl-e2e hello over tls %d", i)
		fmt.Fprintf(&in, "%d %s", len(msg), msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", s.addr.SyslogTLS, "-quiet", "-CAfile", s.addr.TLSCert)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "DONE") {
		t.Logf("openssl: %v %s", err, out)
	}
	if got := s.waitCount("openssl-e2e", n, 20*time.Second); got != n {
		t.Fatalf("%d of %d searchable; openssl said %s", got, n, out)
	}
}

// startRsyslog runs rsyslogd with conf in work and waits until its TCP
// input on inPort accepts connections.
func startRsyslog(t *testing.T, work, conf string, inPort int) func() {
	t.Helper()
	cf := filepath.Join(work, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := exec.Command("rsyslogd", "-n", "-f", cf, "-i", filepath.Join(work, "pid"))
	out := &strings.Builder{}
	rs.Stdout, rs.Stderr = out, out
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { _ = rs.Process.Kill(); _ = rs.Wait() }
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", inPort))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			stop()
			t.Fatalf("rsyslog input not reachable: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop
}
