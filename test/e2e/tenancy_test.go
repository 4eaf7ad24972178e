package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA makes a CA and a client certificate signed by it.
func testCA(t *testing.T, dir, clientCN string) (caFile string, client tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caFile = filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: clientCN, Organization: []string{"Beta Corp"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestSourceMapping maps sources to tenants the four ways: TLS client
// certificate subject, the listener's own tenant (config file), source CIDR
// and, for anything else, the default tenant.
func TestSourceMapping(t *testing.T) {
	dir := t.TempDir()
	caFile, clientCert := testCA(t, dir, "fw1.beta.example")
	cfg := filepath.Join(dir, "mamori.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
syslog:
  tls:
    client_ca_file: %s
    client_auth: request
relp:
  tenant: gamma
`, caFile))
	s := startServer(t, filepath.Join(dir, "data"), "--config", cfg)
	for _, name := range []string{"alpha", "beta"} {
		if code, _ := s.api("POST", "/api/v1/tenants", "", strings.NewReader(`{"name":"`+name+`"}`), nil); code != 201 {
			t.Fatalf("create %s: %d", name, code)
		}
	}
	// 127.0.0.0/8 → alpha; the certificate's CN → beta.
	if code, _ := s.api("POST", "/api/v1/tenants/alpha/sources", "", strings.NewReader(`{"kind":"cidr","value":"127.0.0.0/8"}`), nil); code != 201 {
		t.Fatalf("map cidr: %d", code)
	}
	if code, _ := s.api("POST", "/api/v1/tenants/beta/sources", "", strings.NewReader(`{"kind":"cert_subject","value":"CN=fw1.beta.example"}`), nil); code != 201 {
		t.Fatalf("map subject: %d", code)
	}
	if code, _ := s.api("POST", "/api/v1/tenants/beta/sources", "", strings.NewReader(`{"kind":"cidr","value":"not-a-cidr"}`), nil); code != 400 {
		t.Fatalf("bad cidr: %d, want 400", code)
	}
	// Plain TCP from 127.0.0.1 → alpha by CIDR.
	c, err := net.Dial("tcp", s.addr.SyslogTCP)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<13>map-by-cidr hello\n")
	c.Close()
	// TLS with a client certificate → beta by subject (beats the CIDR).
	tc, err := tls.Dial("tcp", s.addr.SyslogTLS, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "<13>map-by-cert hello\n")
	tc.Close()
	// TLS without a certificate → alpha by CIDR.
	tc, err = tls.Dial("tcp", s.addr.SyslogTLS, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "<13>map-tls-nocert hello\n")
	tc.Close()
	for q, want := range map[string]string{"map-by-cidr": "alpha", "map-by-cert": "beta", "map-tls-nocert": "alpha"} {
		s.waitCount(q, 1, 20*time.Second)
		r, _ := s.search(q+" | stats count() by tenant", nil)
		if len(r.Rows) != 1 || r.Rows[0]["tenant"] != want {
			t.Errorf("%s landed in %v, want %s", q, r.Rows, want)
		}
	}
	// The RELP listener's own tenant (from the config file) was created.
	var tl struct {
		Tenants []struct{ Name string } `json:"tenants"`
	}
	s.api("GET", "/api/v1/tenants", "", nil, &tl)
	if !strings.Contains(fmt.Sprint(tl.Tenants), "gamma") {
		t.Fatalf("listener tenant gamma missing: %v", tl.Tenants)
	}
}

// TestRejectUnmapped: with tenants.reject_unmapped, traffic no mapping
// claims is refused and counted, not filed under a default tenant.
func TestRejectUnmapped(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mamori.yaml")
	writeFile(t, cfg, "tenants:\n  reject_unmapped: true\n")
	s := startServer(t, filepath.Join(dir, "data"), "--config", cfg)
	c, err := net.Dial("tcp", s.addr.SyslogTCP)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<13>unmapped-rejected hello\n")
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.metrics(), `mamori_ingest_rejected_total{reason="unmapped",source="syslog-tcp"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("unmapped connection not counted as rejected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r, _ := s.search("unmapped-rejected", url.Values{"limit": {"0"}}); r.Total != 0 {
		t.Fatalf("unmapped event stored: %d", r.Total)
	}
}
