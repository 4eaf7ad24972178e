package ingest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
)

// ErrUnmapped means no mapping claims a source and unmapped traffic is
// rejected by configuration.
var ErrUnmapped = errors.New("source not mapped to any tenant")

// Mappings is the router's table, rebuilt whenever a mapping changes.
type Mappings struct {
	CIDRs        map[string]string // prefix → tenant
	CertSubjects map[string]string // subject (RFC 2253 string or CN) → tenant
}

type route struct {
	prefixes []prefixRoute // longest first
	subjects map[string]string
}

type prefixRoute struct {
	p      netip.Prefix
	tenant string
}

// Router assigns each source to a tenant. Order: TLS client certificate
// subject, then the listener's own tenant, then the longest matching source
// CIDR, then the default tenant (or ErrUnmapped when configured to reject).
type Router struct {
	Default string // empty: reject unmapped
	table   atomic.Pointer[route]
}

// NewRouter returns a router with an empty table.
func NewRouter(defaultTenant string) *Router {
	r := &Router{Default: defaultTenant}
	r.table.Store(&route{subjects: map[string]string{}})
	return r
}

// Load replaces the mapping table.
func (r *Router) Load(m Mappings) error {
	t := &route{subjects: map[string]string{}}
	for c, tenant := range m.CIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("mapping %q: %w", c, err)
		}
		t.prefixes = append(t.prefixes, prefixRoute{p.Masked(), tenant})
	}
	sort.Slice(t.prefixes, func(i, j int) bool { return t.prefixes[i].p.Bits() > t.prefixes[j].p.Bits() })
	for s, tenant := range m.CertSubjects {
		t.subjects[s] = tenant
	}
	r.table.Store(t)
	return nil
}

// Resolve returns the tenant for a source.
func (r *Router) Resolve(listenerTenant string, remote netip.Addr, cert *x509.Certificate) (string, error) {
	t := r.table.Load()
	if cert != nil {
		if tenant, ok := t.subjects[cert.Subject.String()]; ok {
			return tenant, nil
		}
		if tenant, ok := t.subjects["CN="+cert.Subject.CommonName]; ok {
			return tenant, nil
		}
		if tenant, ok := t.subjects[cert.Subject.CommonName]; ok {
			return tenant, nil
		}
	}
	if listenerTenant != "" {
		return listenerTenant, nil
	}
	remote = remote.Unmap()
	for _, pr := range t.prefixes {
		if pr.p.Contains(remote) {
			return pr.tenant, nil
		}
	}
	if r.Default == "" {
		return "", fmt.Errorf("%w: %s", ErrUnmapped, strings.TrimSpace(remote.String()))
	}
	return r.Default, nil
}
