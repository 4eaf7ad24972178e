package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/fleet"
)

// agentsTLS is the agents' mutual-TLS listener: the API again, with a
// server certificate issued by the agent CA (which agents pin at
// enrollment) and their client certificates verified when given.
type agentsTLS struct {
	ca    *fleet.CA
	ln    net.Listener // plain TCP; tls.NewListener wraps it to serve
	tc    *tls.Config
	url   string // agents.tls_url, or "" to derive it
	host  string // the bound IP, "" when bound to every address
	port  string
	certs *serverCert
	log   *slog.Logger
}

// openAgentsTLS opens (creating on first start) the agent CA in
// <data>/keys/agent-ca and binds the listener.
func openAgentsTLS(cfg config.Config, log *slog.Logger) (*agentsTLS, error) {
	dir := filepath.Join(cfg.Data, "keys", "agent-ca")
	ca, created, err := fleet.OpenCA(dir, nil)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("agent CA created; back it up with the data dir: enrolled agents trust only it", "dir", dir)
	}
	ln, err := net.Listen("tcp", cfg.Agents.TLSAddr)
	if err != nil {
		return nil, bindErr("agents TLS", cfg.Agents.TLSAddr, "agents.tls_addr", err)
	}
	t := &agentsTLS{ca: ca, ln: ln, url: cfg.Agents.TLSURL, log: log}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	t.port = port
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		t.host = host
	}
	names, ips := certNames(t.host, cfg.Agents.TLSNames, cfg.Agents.TLSURL)
	t.certs = &serverCert{ca: ca, names: names, ips: ips}
	if _, err := t.certs.get(nil); err != nil {
		ln.Close()
		return nil, err
	}
	t.tc = &tls.Config{
		GetCertificate: t.certs.get,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      ca.Pool(),
		MinVersion:     tls.VersionTLS12,
		// HTTP/1.1 only: the push stream takes over its connection
		// (hijack), which HTTP/2 does not allow.
		NextProtos: []string{"http/1.1"},
	}
	return t, nil
}

// listener is the TLS listener to serve.
func (t *agentsTLS) listener() net.Listener { return tls.NewListener(t.ln, t.tc) }

// urlFor is the https URL given to an agent enrolling by r: agents.tls_url
// when set, else the bound address, or — bound to every address — the
// host the agent reached this server by.
func (t *agentsTLS) urlFor(r *http.Request) string {
	if t.url != "" {
		return t.url
	}
	host := t.host
	if host == "" {
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		} else {
			host = r.Host
		}
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	if leaf := t.certs.leaf(); leaf != nil && leaf.VerifyHostname(host) != nil {
		t.log.Warn("the agents' TLS URL names a host the listener's certificate does not cover; agents will not connect: set agents.tls_names or agents.tls_url",
			"host", host)
	}
	return "https://" + net.JoinHostPort(host, t.port)
}

// certNames are the names and addresses the server certificate covers:
// the bound IP (every local address when bound to all), loopback, the host
// name, localhost, and the configured extras (names or IPs, and the host
// of agents.tls_url).
func certNames(bound string, extra []string, tlsURL string) ([]string, []net.IP) {
	names := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	if bound != "" {
		ips = append(ips, net.ParseIP(bound))
	} else if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, n.IP)
			}
		}
	}
	if tlsURL != "" {
		if u, err := url.Parse(tlsURL); err == nil && u.Hostname() != "" {
			extra = append(slices.Clone(extra), u.Hostname())
		}
	}
	for _, e := range extra {
		if ip := net.ParseIP(e); ip != nil {
			ips = append(ips, ip)
		} else if e != "" {
			names = append(names, e)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var uniq []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(uniq, ip.Equal) {
			uniq = append(uniq, ip)
		}
	}
	return names, uniq
}

// serverCert is the listener's certificate, made at start and again
// before it expires (a server may run for longer than its validity).
type serverCert struct {
	ca    *fleet.CA
	names []string
	ips   []net.IP

	mu  sync.Mutex
	cur *tls.Certificate
}

// renewBefore is how long before its expiry the certificate is replaced.
const renewBefore = 30 * 24 * time.Hour

func (c *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && time.Until(c.cur.Leaf.NotAfter) > renewBefore {
		return c.cur, nil
	}
	cert, err := c.ca.IssueServer(c.names, c.ips)
	if err != nil {
		if c.cur != nil {
			return c.cur, nil // still valid for a while: try again next time
		}
		return nil, fmt.Errorf("agents TLS: %w", err)
	}
	c.cur = &cert
	return c.cur, nil
}

func (c *serverCert) leaf() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil
	}
	return c.cur.Leaf
}
