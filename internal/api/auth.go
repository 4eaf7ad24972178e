package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/mamori-soc/mamori/internal/state"
)

// Principal is the authenticated caller.
type Principal struct {
	Kind   string // state.TokenAdmin, TokenIngest, TokenRead
	Tenant string // empty for admin
	Name   string
}

type ctxKey int

const principalKey ctxKey = 0

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the caller carried by ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// IsAdmin reports whether the caller may act on every tenant.
func (p Principal) IsAdmin() bool { return p.Kind == state.TokenAdmin }

// CanRead reports whether the caller may read tenant's data.
func (p Principal) CanRead(tenant string) bool {
	return p.IsAdmin() || (p.Kind == state.TokenRead && p.Tenant == tenant)
}

// scope returns the tenants a read request covers: the requested ones the
// caller may read, or all the caller may read when none is requested.
func (s *Server) scope(p Principal, requested []string) ([]string, error) {
	if !p.IsAdmin() {
		if p.Kind != state.TokenRead {
			return nil, errForbidden
		}
		for _, t := range requested {
			if t != p.Tenant {
				return nil, errForbidden
			}
		}
		return []string{p.Tenant}, nil
	}
	if len(requested) > 0 {
		for _, t := range requested {
			if _, ok := s.State.Tenant(t); !ok {
				return nil, errUnknownTenant
			}
		}
		return slices.Compact(slices.Sorted(slices.Values(requested))), nil
	}
	var all []string
	for _, t := range s.State.Tenants() {
		all = append(all, t.Name)
	}
	return all, nil
}

var (
	errForbidden     = errors.New("forbidden")
	errUnknownTenant = errors.New("unknown tenant")
)

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if v, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// authenticate wraps h: no valid token, no entry.
func (s *Server) authenticate(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret := bearer(r)
		if secret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mamori"`)
			writeProblem(w, http.StatusUnauthorized, CodeUnauthorized, "missing bearer token (Authorization: Bearer <token>; the CLI reads MAMORI_TOKEN)")
			return
		}
		tok, err := s.State.LookupToken(r.Context(), secret)
		if err != nil {
			if errors.Is(err, state.ErrInvalidToken) {
				s.Metrics.AuthFailures.Inc()
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori", error="invalid_token"`)
				writeProblem(w, http.StatusUnauthorized, CodeUnauthorized, "unknown or revoked token")
				return
			}
			writeProblem(w, http.StatusInternalServerError, CodeInternal, "token lookup failed")
			s.Logger.Error("token lookup failed", "err", err)
			return
		}
		p := Principal{Kind: tok.Kind, Tenant: tok.Tenant, Name: tok.Name}
		h(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

func requireAdmin(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	p, _ := PrincipalFrom(r.Context())
	if !p.IsAdmin() {
		writeProblem(w, http.StatusForbidden, CodeForbidden, "this endpoint needs an admin token")
		return p, false
	}
	return p, true
}
