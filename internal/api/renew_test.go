package api

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/mamori-soc/mamori/internal/agent"
	"github.com/mamori-soc/mamori/internal/fleet"
)

// TestAgentRenewsItsCertificate: the real agent renews its client
// certificate over mutual TLS with a new key; the server then accepts only
// the new certificate, the agent goes on working with it without a
// restart, and keeps it in its identity.
func TestAgentRenewsItsCertificate(t *testing.T) {
	ctx := context.Background()
	e := newMTLSEnv(t)
	dir := t.TempDir()
	e.s.Releases = testRepo(t, dir)
	id, err := agent.Enroll(ctx, http.DefaultClient, e.plain.URL, e.enroll, fleet.Info{Hostname: "pc1"})
	if err != nil {
		t.Fatal(err)
	}
	agentDir := t.TempDir()
	a, err := agent.New(id, agent.Options{Dir: agentDir, VerifyOnly: true, NoCommands: true, Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := e.s.Fleet.Get(id.AgentID)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := e.s.Fleet.Get(id.AgentID)
	if after.CertSerial == "" || after.CertSerial == before.CertSerial {
		t.Fatalf("serial %q → %q", before.CertSerial, after.CertSerial)
	}
	// The old certificate is refused now; the agent's calls still work.
	desired := e.agent.URL + "/api/v1/agent/desired"
	oldKey := mustKey(t, id.KeyPEM)
	if code, _ := e.do(t, e.client(t, id.CertPEM, oldKey), "GET", desired, "", nil); code != 401 {
		t.Errorf("old certificate after renewal: %d", code)
	}
	if err := a.Sync(ctx, nil); err != nil {
		t.Errorf("the agent after renewal: %v", err)
	}
	if v, _ := e.s.Fleet.Get(id.AgentID); v.Auth != fleet.AuthMTLS {
		t.Errorf("auth %q", v.Auth)
	}
	saved, err := agent.LoadIdentity(agentDir)
	if err != nil || saved.CertPEM == id.CertPEM || saved.KeyPEM == id.KeyPEM {
		t.Fatalf("identity not updated: %v", err)
	}
	if code, _ := e.do(t, e.client(t, saved.CertPEM, mustKey(t, saved.KeyPEM)), "GET", desired, "", nil); code != 200 {
		t.Errorf("renewed certificate from the saved identity: %d", code)
	}
}

func mustKey(t *testing.T, keyPEM string) any {
	t.Helper()
	blk, _ := pem.Decode([]byte(keyPEM))
	if blk == nil {
		t.Fatal("no key PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
