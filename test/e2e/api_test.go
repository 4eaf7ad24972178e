package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTenantsTokensIsolation(t *testing.T) {
	s := startServer(t, "")
	for _, name := range []string{"acme", "beta"} {
		if code, err := s.api("POST", "/api/v1/tenants", "", strings.NewReader(`{"name":"`+name+`","retention":"90d"}`), nil); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v", name, code, err)
		}
	}
	tok := map[string]string{}
	for _, k := range []string{"acme/ingest", "beta/ingest", "acme/read"} {
		tenant, kind, _ := strings.Cut(k, "/")
		var r struct {
			Token string `json:"token"`
		}
		if code, err := s.api("POST", "/api/v1/tenants/"+tenant+"/tokens", "", strings.NewReader(`{"kind":"`+kind+`"}`), &r); err != nil || code != 201 {
			t.Fatalf("token %s: %d %v", k, code, err)
		}
		tok[k] = r.Token
	}
	post := func(token, tenant, body string) int {
		path := "/api/v1/ingest"
		if tenant != "" {
			path += "?tenant=" + tenant
		}
		code, err := s.api("POST", path, token, strings.NewReader(body), nil)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if c := post(tok["acme/ingest"], "", `{"message":"iso-acme secret","source":{"ip":"10.1.1.1"}}`+"\n"+`{"message":"iso-acme two"}`); c != 202 {
		t.Fatalf("acme ingest: %d", c)
	}
	if c := post(tok["beta/ingest"], "", `{"message":"iso-beta secret"}`); c != 202 {
		t.Fatalf("beta ingest: %d", c)
	}
	if c := post(tok["beta/ingest"], "acme", `{"message":"iso-beta into acme"}`); c != 403 {
		t.Fatalf("beta token writing into acme: %d, want 403", c)
	}
	if c := post("mmr_notatoken_notatoken", "", `{"message":"x"}`); c != 401 {
		t.Fatalf("unknown token: %d, want 401", c)
	}
	s.waitCount("iso-acme OR iso-beta", 3, 20*time.Second)

	// The acme read token sees only acme, even when it asks for beta.
	var r searchResp
	code, _ := s.api("GET", "/api/v1/events?q=secret&from=-1h", tok["acme/read"], nil, &r)
	if code != 200 || r.Total != 1 || !strings.Contains(fmt.Sprint(r.Events), "iso-acme") {
		t.Fatalf("acme read: %d total=%d %v", code, r.Total, r.Events)
	}
	code, _ = s.api("GET", "/api/v1/events?q=secret&from=-1h&tenant=beta", tok["acme/read"], nil, &r)
	if code != 403 {
		t.Fatalf("acme read token asking for beta: %d, want 403", code)
	}
	// Raw LogsQL is confined to the caller's tenant too.
	code, _ = s.api("GET", "/api/v1/events?lang=logsql&q="+url.QueryEscape(`"iso-beta"`)+"&from=-1h", tok["acme/read"], nil, &r)
	if code != 200 || r.Total != 0 {
		t.Fatalf("logsql for beta's data with acme's token: %d total=%d", code, r.Total)
	}
	// An ingest token cannot read.
	code, _ = s.api("GET", "/api/v1/events?q=secret", tok["acme/ingest"], nil, &r)
	if code != 403 {
		t.Fatalf("ingest token reading: %d, want 403", code)
	}
	// Nested JSON became ECS fields; CIDR search works.
	r, _ = s.search(`source.ip:10.0.0.0/8`, url.Values{"tenant": {"acme"}})
	if r.Total != 1 {
		t.Fatalf("CIDR search: %d (%s)", r.Total, r.LogsQL)
	}
	// Stats pipe.
	r, code = s.search(`iso-acme OR iso-beta | stats count() by tenant`, nil)
	if code != 200 || len(r.Rows) != 2 {
		t.Fatalf("stats by tenant: %d %+v", code, r.Rows)
	}
	// Unauthenticated endpoints reveal nothing; others need a token.
	for _, p := range []string{"/api/v1/events", "/api/v1/tenants", "/api/v1/openapi.json"} {
		code, _ := s.api("GET", p, "bad-token-bad-token", nil, nil)
		if code != 401 {
			t.Errorf("%s with a bad token: %d", p, code)
		}
	}
}

func TestIngestBadInput(t *testing.T) {
	s := startServer(t, "")
	// JSON that is not an object, broken JSON, and plain text: all stored.
	body := "[1,2,3]\n{\"broken\": \n\"just a string\"\nbad-input plain line\n"
	var ans struct {
		Accepted int `json:"accepted"`
		Unparsed int `json:"unparsed"`
	}
	if code, err := s.api("POST", "/api/v1/ingest", "", strings.NewReader(body), &ans); err != nil || code != 202 {
		t.Fatalf("ingest: %d %v", code, err)
	}
	if ans.Accepted != 4 || ans.Unparsed < 3 {
		t.Fatalf("accepted %d unparsed %d, want 4 and ≥3", ans.Accepted, ans.Unparsed)
	}
	if got := s.waitCount("event.kind:unparsed", uint64(ans.Unparsed), 20*time.Second); got != uint64(ans.Unparsed) {
		t.Fatalf("unparsed searchable: %d of %d", got, ans.Unparsed)
	}
	// gzip body.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintln(zw, `{"message":"gzipped-body ok"}`)
	zw.Close()
	code, err := s.apiWithHeader("POST", "/api/v1/ingest", bytes.NewReader(gz.Bytes()), map[string]string{"Content-Encoding": "gzip"})
	if err != nil || code != 202 {
		t.Fatalf("gzip ingest: %d %v", code, err)
	}
	s.waitCount("gzipped-body", 1, 20*time.Second)

	// Garbage on the TLS port: the server survives and keeps serving.
	c, err := net.Dial("tcp", s.addr.SyslogTLS)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("this is not a TLS client hello\n\x00\x01\x02"))
	c.Close()
	// A TCP client that stops mid-frame: the partial frame is stored.
	c, err = net.Dial("tcp", s.addr.SyslogTCP)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "120 <13>1 2026-11-25T10:00:00Z h app - - - midframe-cut")
	c.Close()
	// An oversized LF frame is stored (truncated), the next frame too.
	c, _ = net.Dial("tcp", s.addr.SyslogTCP)
	fmt.Fprintf(c, "<13>oversized-frame %s\n<13>after-oversized ok\n", strings.Repeat("x", 70<<10))
	c.Close()
	// TLS still works after the garbage.
	tc, err := tls.Dial("tcp", s.addr.SyslogTLS, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS after garbage: %v", err)
	}
	fmt.Fprintf(tc, "<13>after-garbage tls ok\n")
	tc.Close()
	for _, q := range []string{"midframe-cut", "oversized-frame", "after-oversized", `"after-garbage"`} {
		if got := s.waitCount(q, 1, 20*time.Second); got != 1 {
			t.Errorf("%s: %d events, want 1", q, got)
		}
	}
	// Metrics count what happened.
	code, _ = s.api("GET", "/metrics", "", nil, nil)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	m := s.metrics()
	for _, want := range []string{`mamori_ingest_frame_errors_total{reason="truncated",source="syslog-tcp"} 1`,
		`mamori_ingest_frame_errors_total{reason="too_large",source="syslog-tcp"} 1`,
		`mamori_ingest_frame_errors_total{reason="tls_handshake",source="syslog-tls"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
