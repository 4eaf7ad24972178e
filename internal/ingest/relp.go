package ingest

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/mamori-soc/mamori/internal/ingest/relp"
)

// RELPHandler returns the relp.Handler that makes RELP lossless: a batch of
// frames is acknowledged to the sender only once it is durable on the bus.
func (l *Listeners) RELPHandler(listenerTenant string) relp.Handler {
	return func(ctx context.Context, conn relp.ConnInfo, msgs [][]byte) error {
		var cert *x509.Certificate
		if conn.TLS != nil && len(conn.TLS.PeerCertificates) > 0 {
			cert = conn.TLS.PeerCertificates[0]
		}
		tenant, err := l.Router.Resolve(listenerTenant, addrOf(conn.RemoteAddr), cert)
		if err != nil {
			if l.Metrics != nil {
				l.Metrics.Rejected.WithLabelValues(SourceRELP, "unmapped").Add(float64(len(msgs)))
			}
			return fmt.Errorf("relp: %w", err)
		}
		t, err := l.Pipeline.Submit(ctx, Origin{Tenant: tenant, Source: SourceRELP}, msgs)
		if err != nil {
			return fmt.Errorf("relp: %w", err)
		}
		return t.Wait(ctx)
	}
}
