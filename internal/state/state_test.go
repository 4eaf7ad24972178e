package state

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, p
}

func TestTenantsTokensMappings(t *testing.T) {
	ctx := context.Background()
	d, path := openTest(t)
	acme, err := d.AddTenant(ctx, "acme", 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddTenant(ctx, "acme", 0); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate tenant: %v", err)
	}
	for _, bad := range []string{"", "Acme", "a b", "-x", "../etc"} {
		if _, err := d.AddTenant(ctx, bad, 0); !errors.Is(err, ErrInvalidName) {
			t.Errorf("name %q accepted: %v", bad, err)
		}
	}
	secret, tok, err := d.CreateToken(ctx, TokenIngest, "acme", "fw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.LookupToken(ctx, secret)
	if err != nil || got.Tenant != "acme" || got.Kind != TokenIngest || got.ID != tok.ID {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if _, err := d.LookupToken(ctx, secret+"x"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("wrong secret accepted: %v", err)
	}
	if _, _, err := d.CreateToken(ctx, TokenIngest, "nobody", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for unknown tenant: %v", err)
	}
	if _, err := d.AddTokenSecret(ctx, "short", TokenAdmin, "", ""); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := d.AddMapping(ctx, "acme", MapCIDR, "10.1.2.3/16"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddMapping(ctx, "acme", MapCIDR, "10.1.0.0/16"); !errors.Is(err, ErrExists) {
		t.Fatalf("same CIDR twice (normalized): %v", err)
	}
	if _, err := d.AddMapping(ctx, "acme", MapCIDR, "nope"); !errors.Is(err, ErrInvalidSource) {
		t.Fatalf("bad cidr: %v", err)
	}
	// Reopen: everything persisted.
	d.Close()
	d2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if id, err := d2.TenantID("acme"); err != nil || id != acme.ID {
		t.Fatalf("tenant id after reopen: %d %v", id, err)
	}
	if tt, _ := d2.Tenant("acme"); tt.Retention != 7*24*time.Hour {
		t.Fatalf("retention %v", tt.Retention)
	}
	ms, err := d2.Mappings(ctx)
	if err != nil || len(ms) != 1 || ms[0].Value != "10.1.0.0/16" {
		t.Fatalf("mappings: %+v %v", ms, err)
	}
	if _, err := d2.LookupToken(ctx, secret); err != nil {
		t.Fatal(err)
	}
}
