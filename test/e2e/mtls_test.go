package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentIdentity is the part of the agent's agent.json this test reads.
type agentIdentity struct {
	AgentID    string `json:"agent_id"`
	Credential string `json:"credential"`
	CertPEM    string `json:"cert_pem"`
	KeyPEM     string `json:"key_pem"`
	CAPEM      string `json:"ca_pem"`
	TLSURL     string `json:"tls_url"`
}

// agentCall GETs url with hc, with a bearer credential when given; it
// returns the status and the problem code of a refusal.
func agentCall(hc *http.Client, url, bearer string) (int, string, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &p)
	return resp.StatusCode, p.Code, nil
}

// tlsClient talks to the agents' TLS listener trusting only caPEM, with
// the client certificate cert when it has one.
func tlsClient(t *testing.T, caPEM []byte, cert *tls.Certificate) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	tc := &tls.Config{RootCAs: roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
}

// foreignClientCert is a client certificate for cn from a CA the server
// never saw.
func foreignClientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Mamori agent CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// TestMTLSAgent: the real server (agents TLS listener on an ephemeral
// port) and the real agent. The agent enrolls over plain HTTP with a
// certificate request, keeps its key, and from then on talks mutual TLS
// only: the server sees it authenticate by certificate, a bandage reaches
// it. A certificate from another CA does not get in. With
// agents.require_mtls the bearer credential alone is refused on the plain
// listener while the agent keeps working; removing the agent revokes its
// certificate.
func TestMTLSAgent(t *testing.T) {
	e := startAgentEnv(t)
	s := e.s
	if s.addr.AgentsTLS == "" {
		t.Fatal("no agents_tls address in run/addresses.json")
	}

	// What the agent keeps: its own key, the certificate issued for it
	// (CN set by the server), the pinned CA, the TLS URL; mode 0600.
	var id agentIdentity
	for deadline := time.Now().Add(10 * time.Second); id.CertPEM == ""; time.Sleep(100 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(e.dir, "agent.json"))
		if err == nil {
			_ = json.Unmarshal(b, &id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent identity without a certificate: %s\n%s", b, e.out.String())
		}
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "agent.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent.json mode: %v %v", fi.Mode(), err)
	}
	if id.TLSURL != "https://"+s.addr.AgentsTLS || id.KeyPEM == "" || id.AgentID != e.id {
		t.Fatalf("identity: tls_url %q (listener %s), key %v, id %s/%s", id.TLSURL, s.addr.AgentsTLS, id.KeyPEM != "", id.AgentID, e.id)
	}
	caDir := filepath.Join(s.data, "keys", "agent-ca")
	caPEM, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	if err != nil || string(caPEM) != id.CAPEM {
		t.Fatalf("pinned CA differs from the server's ca.crt: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(caDir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode: %v %v", fi.Mode(), err)
	}
	blk, _ := pem.Decode([]byte(id.CertPEM))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != e.id {
		t.Errorf("client certificate CN %q: %v", leaf.Subject.CommonName, err)
	}
	serial := leaf.SerialNumber.Text(16)

	// The server's view: the heartbeats come by certificate.
	var view struct {
		Auth       string `json:"auth"`
		CertSerial string `json:"cert_serial"`
	}
	for deadline := time.Now().Add(15 * time.Second); view.Auth != "mtls"; time.Sleep(200 * time.Millisecond) {
		if _, err := s.api("GET", "/api/v1/agents/"+e.id, "", nil, &view); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never authenticated by certificate: %+v\n%s", view, e.out.String())
		}
	}
	if view.CertSerial != serial {
		t.Errorf("fleet records serial %s, certificate has %s", view.CertSerial, serial)
	}

	// A bandage reaches the agent over mutual TLS.
	e.mamori(t, "pattern", "publish", "--channel", "bandage", corpus(t, "malware-patterns/eicar/sigs/eicar.hdb"))
	s.waitStatus(t, "bandage", 1, func(p protection) bool { return p.Active == 1 })

	agentCert, err := tls.X509KeyPair([]byte(id.CertPEM), []byte(id.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	mtls := tlsClient(t, caPEM, &agentCert)
	desiredTLS := "https://" + s.addr.AgentsTLS + "/api/v1/agent/desired"
	desiredPlain := "http://" + s.addr.HTTP + "/api/v1/agent/desired"
	// Migration: the bearer credential still works, on both listeners.
	if code, _, err := agentCall(http.DefaultClient, desiredPlain, id.Credential); err != nil || code != 200 {
		t.Errorf("bearer on the plain listener: %d %v", code, err)
	}
	if code, _, err := agentCall(tlsClient(t, caPEM, nil), desiredTLS, id.Credential); err != nil || code != 200 {
		t.Errorf("bearer on the TLS listener: %d %v", code, err)
	}
	// Another CA's certificate for the same agent id does not get in.
	foreign := foreignClientCert(t, e.id)
	if code, _, err := agentCall(tlsClient(t, caPEM, &foreign), desiredTLS, ""); err == nil && code != 401 {
		t.Errorf("a certificate from another CA was accepted: %d", code)
	}

	// agents.require_mtls: a bearer-only request is refused; the agent,
	// back on the restarted server, still gets releases.
	s.stop()
	t.Setenv("MAMORI_AGENTS_REQUIRE_MTLS", "true")
	s.restartSamePorts()
	if code, problem, err := agentCall(http.DefaultClient, desiredPlain, id.Credential); err != nil || code != 401 || problem != "mtls_required" {
		t.Errorf("bearer-only request with require_mtls: %d %q %v", code, problem, err)
	}
	if code, _, err := agentCall(mtls, desiredTLS, ""); err != nil || code != 200 {
		t.Errorf("certificate with require_mtls: %d %v", code, err)
	}
	second := writeSigs(t, t.TempDir(), "second.hsb", "3395856ce81f2b7382dee72602f798b642f14140:68:Bandage.Second\n")
	e.mamori(t, "pattern", "publish", "--channel", "bandage", second)
	s.waitStatus(t, "bandage", 2, func(p protection) bool { return p.Active == 1 })

	// Removing the agent revokes its certificate at once.
	if code, err := s.api("DELETE", "/api/v1/agents/"+e.id, "", nil, nil); err != nil || code != 204 {
		t.Fatalf("remove agent: %d %v", code, err)
	}
	if code, _, err := agentCall(mtls, desiredTLS, ""); err != nil || code != 401 {
		t.Errorf("removed agent's certificate: %d %v", code, err)
	}
	if strings.Contains(e.out.String(), "PRIVATE KEY") {
		t.Error("the agent logged its key")
	}
}

// TestMTLSIsolation: an agent in a network namespace that talks mutual
// TLS is isolated around the address it dials — the agents' TLS listener —
// and still hears "release" there; the plain HTTP port it enrolled
// through is closed to it meanwhile.
func TestMTLSIsolation(t *testing.T) {
	n := newVethNS(t, 232)
	ns, serverIP, reach := n.name, n.serverIP, n.reach

	s := startServer(t, "", "--http", serverIP+":0", "--agents-tls", serverIP+":0")
	mamori := s.cli
	mamori("tenant", "add", "acme")
	enroll := mamori("tenant", "token", "acme", "--kind", "enroll")
	var agentOut bytes.Buffer
	ag := exec.Command("ip", "netns", "exec", ns, mamoriBin, "agent", "--dir", t.TempDir(), "--heartbeat", "1s", "--log-format", "json",
		"--server", "http://"+s.addr.HTTP, "--enroll", enroll)
	ag.Stdout, ag.Stderr = &agentOut, &agentOut
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = ag.Process.Signal(syscall.SIGTERM)
		_ = ag.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", agentOut.String())
		}
	}()
	var agentID string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var list struct {
			Agents []struct {
				ID   string `json:"id"`
				Auth string `json:"auth"`
			} `json:"agents"`
		}
		if code, err := s.api("GET", "/api/v1/agents", "", nil, &list); err == nil && code == 200 && len(list.Agents) == 1 && list.Agents[0].Auth == "mtls" {
			agentID = list.Agents[0].ID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never authenticated by certificate: %+v", list)
		}
	}

	c := s.issue(t, agentID, "isolate", `{"for":"10m","reason":"mtls e2e"}`)
	_, tlsPort := hostPort(t, s.addr.AgentsTLS)
	if c.State != "done" || !strings.Contains(string(c.Result), `"`+serverIP+`/32 tcp `+tlsPort+`"`) {
		t.Fatalf("isolate: %+v %s", c, c.Result)
	}
	if !reach(s.addr.AgentsTLS) {
		t.Error("isolated host no longer reaches the agents' TLS listener")
	}
	if reach(s.addr.HTTP) {
		t.Error("isolated host still reaches the plain HTTP port it does not use")
	}
	if c := s.issue(t, agentID, "release", `{}`); c.State != "done" || !strings.Contains(string(c.Result), `"was_isolated":true`) {
		t.Fatalf("release: %+v", c)
	}
	if !reach(s.addr.HTTP) {
		t.Error("released host does not reach the HTTP port")
	}
}
