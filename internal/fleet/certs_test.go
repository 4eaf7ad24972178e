package fleet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func csrPEM(t *testing.T, key crypto.Signer, cn string, dns ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestOpenCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent-ca")
	ca, created, err := OpenCA(dir, nil)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if !ca.Cert().IsCA || ca.Cert().PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA certificate: IsCA %v, %v", ca.Cert().IsCA, ca.Cert().PublicKeyAlgorithm)
	}
	again, created, err := OpenCA(dir, nil)
	if err != nil || created || !again.Cert().Equal(ca.Cert()) {
		t.Fatalf("reopen: created %v, same %v, %v", created, again.Cert().Equal(ca.Cert()), err)
	}
	// Half a CA is never replaced: agents pinned the old certificate.
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenCA(dir, nil); !errors.Is(err, ErrCA) {
		t.Errorf("half a CA: %v", err)
	}
}

func TestParseCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := csrPEM(t, p256, "x")
	// A request whose signature does not match its key: the requester
	// does not hold it.
	blk, _ := pem.Decode(good)
	tampered := append([]byte(nil), blk.Bytes...)
	tampered[len(tampered)-5] ^= 0xff
	for _, tt := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ecdsa p256", good, true},
		{"ed25519", csrPEM(t, ed, "x"), true},
		{"rsa refused", csrPEM(t, rsaKey, "x"), false},
		{"p521 refused", csrPEM(t, p521, "x"), false},
		{"bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), false},
		{"not pem", []byte("hello"), false},
		{"a certificate, not a request", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes}), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSR(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ok %v, err %v", tt.ok, err)
			}
			if err != nil && !errors.Is(err, ErrCSR) {
				t.Errorf("not ErrCSR: %v", err)
			}
		})
	}
}

func TestIssueClient(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ca, _, err := OpenCA(t.TempDir(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The request asks for another identity and a server name: the CA
	// decides both.
	csr, err := ParseCSR(csrPEM(t, key, "agt_admin", "soc.example"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, serial, notAfter, err := ca.IssueClient(csr, "agt_1")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "agt_1" || len(c.DNSNames) != 0 {
		t.Errorf("subject %q, names %v", c.Subject.CommonName, c.DNSNames)
	}
	if SerialString(c.SerialNumber) != serial || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %s, certificate %s", serial, c.SerialNumber)
	}
	if !c.NotAfter.Equal(now.Add(ClientCertValidity)) || !notAfter.Equal(c.NotAfter) {
		t.Errorf("not after %s (returned %s)", c.NotAfter, notAfter)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate is not for the requester's key")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	// Never usable as the server's certificate.
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now}); err == nil {
		t.Error("client certificate verifies for server authentication")
	}
	_, serial2, _, _ := ca.IssueClient(csr, "agt_1")
	if serial2 == serial {
		t.Error("two certificates share a serial")
	}
}

func TestCertificateAuthAndRevocation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	f, db := openFleet(t, path, nil)
	a, _, err := f.Enroll(ctx, "acme", Info{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := f.Enroll(ctx, "acme", Info{})
	if _, ok := f.AuthenticateCert(a.ID, ""); ok {
		t.Fatal("an agent without a certificate authenticated by one")
	}
	notAfter := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	if err := f.SetCertificate(ctx, a.ID, "aa01", notAfter); err != nil {
		t.Fatal(err)
	}
	if ten, ok := f.AuthenticateCert(a.ID, "aa01"); !ok || ten != "acme" {
		t.Fatalf("authenticate: %q %v", ten, ok)
	}
	if _, ok := f.AuthenticateCert(b.ID, "aa01"); ok {
		t.Error("another agent's serial authenticated")
	}
	if err := f.SetCertificate(ctx, "agt_nope", "bb", notAfter); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
	f.NoteAuth(a.ID, AuthMTLS)
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Serial and last authentication survive a restart.
	db.Close()
	f, db = openFleet(t, path, nil)
	defer db.Close()
	got, _ := f.Get(a.ID)
	if got.CertSerial != "aa01" || got.Auth != AuthMTLS || !got.CertNotAfter.Equal(notAfter) {
		t.Errorf("after reopen: %+v", got)
	}
	// A new certificate supersedes the old one; removal revokes both.
	_ = f.SetCertificate(ctx, a.ID, "aa02", notAfter)
	if _, ok := f.AuthenticateCert(a.ID, "aa01"); ok {
		t.Error("superseded certificate authenticated")
	}
	if _, ok := f.AuthenticateCert(a.ID, "aa02"); !ok {
		t.Error("current certificate refused")
	}
	if err := f.Remove(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.AuthenticateCert(a.ID, "aa02"); ok {
		t.Error("removed agent's certificate authenticated")
	}
}

// TestMigrateOldRegistry: a registry written before certificates were
// recorded opens with its agents intact.
func TestMigrateOldRegistry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	_, db := openFleet(t, path, nil)
	if _, err := db.SQL().ExecContext(ctx, `DROP TABLE fleet_agents`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE fleet_agents (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, cred_hash BLOB NOT NULL UNIQUE,
		info TEXT NOT NULL, ring INTEGER NOT NULL, enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, health TEXT NOT NULL DEFAULT '{}');
		INSERT INTO fleet_agents(id, tenant, cred_hash, info, ring, enrolled_at, last_seen) VALUES ('agt_old', 'acme', x'00', '{}', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, db := openFleet(t, path, nil)
	defer db.Close()
	a, ok := f.Get("agt_old")
	if !ok || a.CertSerial != "" || a.Auth != "" {
		t.Fatalf("old agent: %+v %v", a, ok)
	}
	if err := f.SetCertificate(ctx, "agt_old", "cc", time.Now()); err != nil {
		t.Fatal(err)
	}
}
