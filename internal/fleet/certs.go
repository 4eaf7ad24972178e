package fleet

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
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

// Sentinel errors of the agent certificate authority.
var (
	ErrCSR = errors.New("invalid certificate request")
	ErrCA  = errors.New("agent CA unusable")
)

// Validity periods. Client certificates are not renewed automatically
// yet: an agent enrolls again before its certificate expires.
const (
	ClientCertValidity = 365 * 24 * time.Hour
	ServerCertValidity = 365 * 24 * time.Hour
	caValidity         = 10 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so an agent whose clock is a little
	// behind the server's accepts what it was just given.
	clockSkew = 5 * time.Minute
	maxCSR    = 16 << 10
)

// Files of the CA in its directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CA is the agent certificate authority: it issues each enrolled agent a
// client certificate for the key the agent generated, and the agents' TLS
// listener its server certificate. Agents pin its certificate at
// enrollment and trust nothing else for that listener.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	now  func() time.Time
}

// OpenCA loads the CA kept in dir (ca.crt, ca.key), creating an ECDSA
// P-256 CA there on first use. created reports that it was just made.
func OpenCA(dir string, now func() time.Time) (ca *CA, created bool, err error) {
	if now == nil {
		now = time.Now
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		ca, err := parseCA(certPEM, keyPEM, now)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", dir, err)
		}
		return ca, false, nil
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return nil, false, fmt.Errorf("%w: %w", ErrCA, cerr)
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return nil, false, fmt.Errorf("%w: %w", ErrCA, kerr)
	default:
		// Never replace half a CA: enrolled agents pinned the old one.
		return nil, false, fmt.Errorf("%w: %s holds only one of %s and %s; restore the other from a backup", ErrCA, dir, CACertFile, CAKeyFile)
	}
	ca, certPEM, keyPEM, err = newCA(now)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrCA, err)
	}
	// The key first: a crash in between leaves no certificate without its key.
	if err := writeExclusive(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := writeExclusive(certPath, certPEM, 0o600); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func writeExclusive(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCA, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrCA, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %w", ErrCA, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrCA, err)
	}
	return nil
}

func newCA(now func() time.Time) (*CA, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrCA, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	t := now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Mamori agent CA", Organization: []string{"Mamori"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              t.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrCA, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrCA, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	ca, err := parseCA(certPEM, keyPEM, now)
	return ca, certPEM, keyPEM, err
}

func parseCA(certPEM, keyPEM []byte, now func() time.Time) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s is not a PEM certificate", ErrCA, CACertFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCA, CACertFile, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%w: %s is not a PEM key", ErrCA, CAKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCA, CAKeyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %s: unsupported key %T", ErrCA, CAKeyFile, k)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: %s does not belong to %s", ErrCA, CAKeyFile, CACertFile)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrCA, CACertFile)
	}
	return &CA{cert: cert, key: signer, pem: certPEM, now: now}, nil
}

// Cert is the CA certificate.
func (c *CA) Cert() *x509.Certificate { return c.cert }

// CertPEM is the CA certificate in PEM, what agents pin.
func (c *CA) CertPEM() []byte { return c.pem }

// Pool is a pool holding only the CA certificate.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Issued reports whether chain, a verified chain of a TLS peer, ends at
// this CA.
func (c *CA) Issued(chain []*x509.Certificate) bool {
	return len(chain) > 1 && chain[len(chain)-1].Equal(c.cert)
}

// ParseCSR reads a PEM PKCS#10 request and checks it: its signature (the
// requester holds the key) and its key type (ECDSA P-256 or P-384, or
// Ed25519). Its subject and extensions are not used: the CA decides them.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	if len(b) > maxCSR {
		return nil, fmt.Errorf("%w: over %d bytes", ErrCSR, maxCSR)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || (blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST") {
		return nil, fmt.Errorf("%w: not a PEM CERTIFICATE REQUEST", ErrCSR)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: ECDSA curve %s not accepted; use P-256", ErrCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: %T keys not accepted; use ECDSA P-256 or Ed25519", ErrCSR, csr.PublicKey)
	}
	return csr, nil
}

// IssueClient signs a client certificate for agent id with the key of
// csr (checked by ParseCSR): subject CN = id whatever the request says,
// client authentication only, ClientCertValidity. serial is what the
// fleet records (SerialString).
func (c *CA) IssueClient(csr *x509.CertificateRequest, id string) (certPEM []byte, serial string, notAfter time.Time, err error) {
	sn, err := randomSerial()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	t := c.now().UTC()
	notAfter = c.capped(t.Add(ClientCertValidity))
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: id, Organization: []string{"Mamori agents"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("issue client certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), SerialString(sn), notAfter.Truncate(time.Second), nil
}

// IssueServer makes the agents' TLS listener a key and a certificate for
// names and ips (server authentication only, ServerCertValidity). The
// key lives in memory only: the server makes a new one at every start.
func (c *CA) IssueServer(names []string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	sn, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	t := c.now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "mamori agents", Organization: []string{"Mamori"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              c.capped(t.Add(ServerCertValidity)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// capped keeps what the CA issues within its own validity.
func (c *CA) capped(t time.Time) time.Time {
	if t.After(c.cert.NotAfter) {
		return c.cert.NotAfter
	}
	return t
}

// SerialString is the form in which the fleet records a certificate's
// serial number (lower-case hex).
func SerialString(n *big.Int) string { return n.Text(16) }

// randomSerial is a positive 127-bit serial: unguessable, and under the
// 20 bytes RFC 5280 allows.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
