package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLSOptions describes the syslog-over-TLS server side.
type TLSOptions struct {
	CertFile, KeyFile string // empty: generated under Dir on first start
	ClientCAFile      string // CA that signs client certificates (mutual TLS)
	ClientAuth        string // none, request, require
	Dir               string // where a generated certificate is kept
}

// ServerTLSConfig builds the listener's tls.Config, generating a
// self-signed server certificate on first start when none is configured.
// It returns the certificate file in use so start-up can print it.
func ServerTLSConfig(o TLSOptions) (*tls.Config, string, error) {
	certFile, keyFile := o.CertFile, o.KeyFile
	if certFile == "" && keyFile == "" {
		certFile, keyFile = filepath.Join(o.Dir, "server.crt"), filepath.Join(o.Dir, "server.key")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := generateSelfSigned(certFile, keyFile); err != nil {
				return nil, "", err
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("load TLS certificate %s: %w", certFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, "", fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("client CA %s: no PEM certificates", o.ClientCAFile)
		}
		cfg.ClientCAs = pool
	}
	switch o.ClientAuth {
	case "require":
		if cfg.ClientCAs == nil {
			return nil, "", errors.New("syslog.tls.client_auth=require needs syslog.tls.client_ca_file")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case "request", "":
		if cfg.ClientCAs != nil {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, certFile, nil
}

func generateSelfSigned(certFile, keyFile string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return fmt.Errorf("tls dir: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mamori " + host, Organization: []string{"Mamori"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", host},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	return nil
}
