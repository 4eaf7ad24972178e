package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/state"
)

// mtlsEnv is the API behind a plain and a mutual-TLS listener, like the
// server runs it, with an agent CA and an enroll token of tenant acme.
type mtlsEnv struct {
	s            *Server
	plain, agent *httptest.Server
	ca           *fleet.CA
	enroll       string
	admin        string
}

func newMTLSEnv(t *testing.T) *mtlsEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, fl := testState(t, dir)
	ca, _, err := fleet.OpenCA(filepath.Join(dir, "agent-ca"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddTenant(ctx, "acme", 0); err != nil {
		t.Fatal(err)
	}
	e := &mtlsEnv{ca: ca}
	if e.enroll, _, err = st.CreateToken(ctx, state.TokenEnroll, "acme", "enroll"); err != nil {
		t.Fatal(err)
	}
	if e.admin, _, err = st.CreateToken(ctx, state.TokenAdmin, "", "admin"); err != nil {
		t.Fatal(err)
	}
	e.s = &Server{State: st, Fleet: fl, AgentCA: ca, Metrics: NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)}
	h := e.s.Handler()
	e.plain = httptest.NewServer(h)
	t.Cleanup(e.plain.Close)
	e.agent = httptest.NewUnstartedServer(h)
	srvCert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e.agent.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	e.agent.StartTLS()
	t.Cleanup(e.agent.Close)
	e.s.AgentsTLSURL = func(*http.Request) string { return e.agent.URL }
	return e
}

type enrolled struct {
	EnrollResponse
	key *ecdsa.PrivateKey
}

// enrollAgent enrolls with a fresh P-256 key's request (none when
// withCSR is false).
func (e *mtlsEnv) enrollAgent(t *testing.T, withCSR bool) enrolled {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := EnrollRequest{Info: fleet.Info{Hostname: "pc1"}}
	if withCSR {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agt_someone_else"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		req.CSR = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	code, body := e.do(t, http.DefaultClient, "POST", e.plain.URL+"/api/v1/agents/enroll", e.enroll, req)
	if code != http.StatusCreated {
		t.Fatalf("enroll: %d %s", code, body)
	}
	var out enrolled
	if err := json.Unmarshal(body, &out.EnrollResponse); err != nil {
		t.Fatal(err)
	}
	out.key = key
	return out
}

func (e *mtlsEnv) do(t *testing.T, hc *http.Client, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// client is an HTTPS client of the agents listener trusting only the
// agent CA, presenting certPEM with key (none when certPEM is empty).
func (e *mtlsEnv) client(t *testing.T, certPEM string, key any) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}
	if certPEM != "" {
		blk, _ := pem.Decode([]byte(certPEM))
		tc.Certificates = []tls.Certificate{{Certificate: [][]byte{blk.Bytes}, PrivateKey: key}}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func TestEnrollIssuesClientCertificate(t *testing.T) {
	e := newMTLSEnv(t)
	a := e.enrollAgent(t, true)
	if a.Certificate == "" || a.CA != string(e.ca.CertPEM()) || a.TLSURL != e.agent.URL {
		t.Fatalf("enroll answer: cert %v, ca %v, tls_url %q", a.Certificate != "", a.CA != "", a.TLSURL)
	}
	blk, _ := pem.Decode([]byte(a.Certificate))
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != a.AgentID {
		t.Errorf("CN %q, agent %s: taken from the request?", c.Subject.CommonName, a.AgentID)
	}
	if got, _ := e.s.Fleet.Get(a.AgentID); got.CertSerial != fleet.SerialString(c.SerialNumber) {
		t.Errorf("recorded serial %q, certificate %s", got.CertSerial, c.SerialNumber.Text(16))
	}
	// Without a request: a bearer credential only.
	if b := e.enrollAgent(t, false); b.Certificate != "" || b.TLSURL != "" || b.Credential == "" {
		t.Errorf("bearer-only enrollment: %+v", b.EnrollResponse)
	}
	// A bad request enrolls nobody.
	before := e.s.Fleet.Count()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, rsaKey)
	for _, csr := range []string{"garbage", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))} {
		code, body := e.do(t, http.DefaultClient, "POST", e.plain.URL+"/api/v1/agents/enroll", e.enroll, EnrollRequest{CSR: csr})
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != http.StatusBadRequest || p.Field != "csr" {
			t.Errorf("bad csr: %d %s", code, body)
		}
	}
	if n := e.s.Fleet.Count(); n != before {
		t.Errorf("refused enrollments left %d agents", n-before)
	}
}

func TestAuthenticateAgentCertificate(t *testing.T) {
	e := newMTLSEnv(t)
	a := e.enrollAgent(t, true)
	mtls := e.client(t, a.Certificate, a.key)
	desired := e.agent.URL + "/api/v1/agent/desired"
	agentView := func() fleet.Agent {
		var v fleet.Agent
		_, body := e.do(t, http.DefaultClient, "GET", e.plain.URL+"/api/v1/agents/"+a.AgentID, e.admin, nil)
		_ = json.Unmarshal(body, &v)
		return v
	}

	if code, body := e.do(t, mtls, "GET", desired, "", nil); code != 200 {
		t.Fatalf("valid certificate: %d %s", code, body)
	}
	if v := agentView(); v.Auth != fleet.AuthMTLS {
		t.Errorf("auth %q after a certificate request", v.Auth)
	}
	// The bearer credential still works (migration) and is recorded.
	if code, _ := e.do(t, http.DefaultClient, "GET", e.plain.URL+"/api/v1/agent/desired", a.Credential, nil); code != 200 {
		t.Errorf("bearer: %d", code)
	}
	if v := agentView(); v.Auth != fleet.AuthBearer {
		t.Errorf("auth %q after a bearer request", v.Auth)
	}

	// A certificate from another CA, even for this agent's id: refused.
	otherCA, _, _ := fleet.OpenCA(t.TempDir(), nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	forged, _, _, err := otherCA.IssueClient(csr, a.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(t, e.client(t, string(forged), key), "GET", desired, "", nil); code == 200 {
		t.Error("a certificate from another CA was accepted")
	}

	// A new certificate for the agent supersedes the old one.
	newPEM, serial, notAfter, err := e.ca.IssueClient(csr, a.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.Fleet.SetCertificate(context.Background(), a.AgentID, serial, notAfter); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(t, e.client(t, a.Certificate, a.key), "GET", desired, "", nil); code != 401 {
		t.Errorf("superseded certificate: %d", code)
	}
	renewed := e.client(t, string(newPEM), key)
	if code, _ := e.do(t, renewed, "GET", desired, "", nil); code != 200 {
		t.Errorf("current certificate: %d", code)
	}

	// require_mtls: the bearer alone is refused, on either listener.
	e.s.RequireMTLS = true
	for _, c := range []struct {
		hc  *http.Client
		url string
	}{{http.DefaultClient, e.plain.URL + "/api/v1/agent/desired"}, {e.client(t, "", nil), desired}} {
		code, body := e.do(t, c.hc, "GET", c.url, a.Credential, nil)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if code != 401 || p.Code != CodeMTLSRequired {
			t.Errorf("bearer with require_mtls at %s: %d %s", c.url, code, body)
		}
	}
	if code, _ := e.do(t, renewed, "GET", desired, "", nil); code != 200 {
		t.Errorf("certificate with require_mtls: %d", code)
	}
	e.s.RequireMTLS = false

	// Removing the agent revokes its certificate at once.
	if code, body := e.do(t, http.DefaultClient, "DELETE", e.plain.URL+"/api/v1/agents/"+a.AgentID, e.admin, nil); code != 204 {
		t.Fatalf("remove: %d %s", code, body)
	}
	if code, _ := e.do(t, renewed, "GET", desired, "", nil); code != 401 {
		t.Errorf("removed agent's certificate: %d", code)
	}
	if code, _ := e.do(t, http.DefaultClient, "DELETE", e.plain.URL+"/api/v1/agents/"+a.AgentID, e.admin, nil); code != 404 {
		t.Errorf("second remove: %d", code)
	}
}
