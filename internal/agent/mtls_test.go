package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/update"
)

// fakeServer enrolls like the real one (the agent CA signs the request)
// and serves /api/v1/agent/desired on a mutual-TLS listener, noting who
// called.
type fakeServer struct {
	plain, tls *httptest.Server
	ca         *fleet.CA

	mu      sync.Mutex
	callers []string // client certificate CN, or "bearer" for an Authorization header
}

func newFakeServer(t *testing.T, now func() time.Time) *fakeServer {
	t.Helper()
	dir := t.TempDir()
	root, err := update.GenerateRootKeys(filepath.Join(dir, "root"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	online, err := update.GenerateOnlineKeys(filepath.Join(dir, "online"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := update.InitRepo(filepath.Join(dir, "update"), root, online, update.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := fleet.OpenCA(filepath.Join(dir, "ca"), now)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ca: ca}
	f.tls = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if len(r.TLS.PeerCertificates) > 0 {
			f.callers = append(f.callers, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		if r.Header.Get("Authorization") != "" {
			f.callers = append(f.callers, "bearer")
		}
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"channels":{}}`))
	}))
	srvCert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f.tls.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	f.tls.StartTLS()
	t.Cleanup(f.tls.Close)
	f.plain = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req enrollRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		resp := enrollResponse{AgentID: "agt_1", Tenant: "acme", Credential: "mma_secret", Root: repo.Root()}
		if req.CSR != "" {
			csr, err := fleet.ParseCSR([]byte(req.CSR))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			cert, _, _, err := ca.IssueClient(csr, "agt_1")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			resp.Certificate, resp.CA, resp.TLSURL = string(cert), string(ca.CertPEM()), f.tls.URL
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(f.plain.Close)
	return f
}

func (f *fakeServer) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.callers...)
}

// TestMutualTLSAfterEnrollment: the agent keeps its key, talks to the TLS
// URL with its certificate (no bearer on the wire), trusts only the
// pinned CA, isolates around the address it dials, and saves the URL it
// enrolled with.
func TestMutualTLSAfterEnrollment(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t, nil)
	id, err := Enroll(ctx, http.DefaultClient, f.plain.URL, "mmr_token", fleet.Info{Hostname: "pc1"})
	if err != nil {
		t.Fatal(err)
	}
	if id.CertPEM == "" || !strings.Contains(id.KeyPEM, "PRIVATE KEY") || id.TLSURL != f.tls.URL || id.Server != f.plain.URL {
		t.Fatalf("identity: %+v", id)
	}
	dir := t.TempDir()
	a, err := New(id, Options{Dir: dir, Heartbeat: -1, VerifyOnly: true, NoCommands: true, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.desired(ctx); err != nil {
		t.Fatalf("desired over mutual TLS: %v", err)
	}
	if got := f.seen(); len(got) != 1 || got[0] != "agt_1" {
		t.Errorf("server saw %v, want the certificate of agt_1 and no bearer", got)
	}
	eps, err := a.serverEndpoints(ctx)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(f.tls.URL, "https://"))
	if err != nil || len(eps) != 1 || strconv.Itoa(int(eps[0].Port)) != port || a.serverHost != "127.0.0.1:"+port {
		t.Errorf("isolation endpoints %v (%v), dialled host %s; want the TLS port %s", eps, err, a.serverHost, port)
	}
	if err := a.saveIdentity(); err != nil {
		t.Fatal(err)
	}
	saved, err := LoadIdentity(dir)
	if err != nil || saved.Server != f.plain.URL || saved.TLSURL != f.tls.URL || saved.KeyPEM != id.KeyPEM {
		t.Errorf("saved identity: server %q tls %q (%v)", saved.Server, saved.TLSURL, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, identityFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v (%v)", fi.Mode(), err)
	}

	// Only the pinned CA is trusted for the TLS URL.
	other := newFakeServer(t, nil)
	forged := id
	forged.CAPEM = string(other.ca.CertPEM())
	b, err := New(forged, Options{Heartbeat: -1, VerifyOnly: true, NoCommands: true, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.desired(ctx); err == nil {
		t.Error("server certificate accepted from a CA the agent did not pin")
	}
}

// TestExpiredCertificateFallsBackToBearer: an agent whose certificate
// expired (renewal is not automatic yet) keeps talking to the URL it
// enrolled with, by its bearer credential.
func TestExpiredCertificateFallsBackToBearer(t *testing.T) {
	past := time.Now().Add(-2 * fleet.ClientCertValidity)
	f := newFakeServer(t, func() time.Time { return past })
	id, err := Enroll(context.Background(), http.DefaultClient, f.plain.URL, "mmr_token", fleet.Info{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(id, Options{Heartbeat: -1, VerifyOnly: true, NoCommands: true, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if a.base != f.plain.URL || a.auth != "Bearer mma_secret" {
		t.Errorf("base %q, auth %q", a.base, a.auth)
	}
}
