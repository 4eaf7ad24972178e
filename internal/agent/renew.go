package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// renewBefore is how long before its expiry a client certificate is
// renewed; renewEvery how often the agent looks.
const (
	renewBefore = 30 * 24 * time.Hour
	renewEvery  = 12 * time.Hour
)

// useCertificate makes cert the one the agent presents from the next TLS
// handshake on (the transport asks through GetClientCertificate, so a
// renewed certificate needs no new transport).
func (a *Agent) useCertificate(cert tls.Certificate) error {
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return fmt.Errorf("client certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	a.cert.Store(&cert)
	return nil
}

func (a *Agent) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if c := a.cert.Load(); c != nil {
		return c, nil
	}
	return &tls.Certificate{}, nil
}

// renewals renews the client certificate while the agent runs, in time.
func (a *Agent) renewals(ctx context.Context) {
	for {
		if c := a.cert.Load(); c != nil && time.Until(c.Leaf.NotAfter) < renewBefore {
			if err := a.Renew(ctx); err != nil {
				a.log.Warn("renew the client certificate", "err", err, "not_after", c.Leaf.NotAfter)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(renewEvery + rand.N(time.Hour)):
		}
	}
}

// Renew gets a new client certificate for a new key, over the mutual-TLS
// connection the current certificate authenticates, and uses and keeps it.
// The server then accepts only the new one.
func (a *Agent) Renew(ctx context.Context) error {
	key, csr, err := newKey()
	if err != nil {
		return err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"csr": string(csr)})
	var out struct {
		Certificate string `json:"certificate"`
		CA          string `json:"ca"`
	}
	if err := a.postJSON(ctx, "/api/v1/agent/certificate", body, &out); err != nil {
		return err
	}
	cert, err := tls.X509KeyPair([]byte(out.Certificate), []byte(kp))
	if err != nil {
		return fmt.Errorf("renewed certificate: %w", err)
	}
	if err := a.useCertificate(cert); err != nil {
		return err
	}
	a.mu.Lock()
	a.id.CertPEM, a.id.KeyPEM = out.Certificate, kp
	if out.CA != "" {
		a.id.CAPEM = out.CA
	}
	id := a.id
	a.mu.Unlock()
	// Connections made with the old certificate would now be refused.
	if tr, ok := a.o.HTTP.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	a.log.Info("client certificate renewed", "not_after", a.cert.Load().Leaf.NotAfter)
	if a.o.Dir != "" {
		return SaveIdentity(a.o.Dir, id)
	}
	return nil
}
