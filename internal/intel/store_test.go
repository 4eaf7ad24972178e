package intel

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	now := t0
	clock := WithClock(func() time.Time { return now })
	s, err := Open(ctx, openDB(t, path), clock)
	if err != nil {
		t.Fatal(err)
	}
	var added [][]string
	s.OnAdded(func(inds []*Indicator) {
		var ks []string
		for _, i := range inds {
			ks = append(ks, i.Key().String())
		}
		added = append(added, ks)
	})

	manual, err := ParseManual("ip", "203.0.113.9")
	if err != nil {
		t.Fatal(err)
	}
	manual.Sources = []SourceRef{{Source: "NTT-CERT", Confidence: 80, TLP: "TLP:AMBER", Expires: t0.Add(7 * 24 * time.Hour)}}
	res, err := s.Add(ctx, []Indicator{
		manual,
		{Type: TypeDomain, Value: "Evil.Example.", Sources: []SourceRef{{Source: "vendor-lab", Confidence: 60, FirstSeen: t0.Add(-time.Hour)}}},
		{Type: TypeDomain, Value: "evil.example", Sources: []SourceRef{{Source: "hotline", Confidence: 30}}}, // same key in one batch
		{Type: TypeSHA256, Value: "275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F", Tenant: "acme", Sources: []SourceRef{{Source: "acme-soc", Confidence: 90}}},
		{Type: TypeIPv4, Value: "192.0.2.50", Sources: []SourceRef{{Source: "old", Confidence: 10, Expires: t0.Add(-time.Minute)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != (AddResult{New: 4}) {
		t.Errorf("first Add: %+v", res)
	}
	// Upsert: a new source merges, the same report again changes nothing.
	res, err = s.Add(ctx, []Indicator{
		{Type: TypeDomain, Value: "evil.example", Sources: []SourceRef{{Source: "vendor-lab", Confidence: 70, FirstSeen: t0}}},
		{Type: TypeCIDR, Value: "203.0.113.9/32", Sources: []SourceRef{{Source: "NTT-CERT", Confidence: 80, TLP: "amber", Expires: t0.Add(7 * 24 * time.Hour)}}},
	})
	if err != nil || res != (AddResult{Updated: 1, Unchanged: 1}) {
		t.Errorf("second Add: %+v %v", res, err)
	}
	if len(added) != 2 || !slices.Equal(added[1], []string{"domain:evil.example"}) {
		t.Errorf("OnAdded calls %v", added)
	}
	got, err := s.Get(ctx, Key{Type: TypeDomain, Value: "EVIL.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Sources) != 2 || got.Sources[0].Confidence != 70 || !got.Sources[0].FirstSeen.Equal(t0.Add(-time.Hour)) || got.Confidence(now) != 70 {
		t.Errorf("merged sources %+v (want vendor-lab updated to 70 keeping the earlier first_seen, plus hotline)", got.Sources)
	}
	if _, err := s.Add(ctx, []Indicator{{Type: TypeIPv4, Value: "999.1.1.1", Sources: []SourceRef{{Source: "x"}}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid indicator: %v", err)
	}
	if _, err := s.Add(ctx, []Indicator{{Type: TypeIPv4, Value: "192.0.2.1"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("indicator without source: %v", err)
	}

	// Reopen from the file: same content, matching works, tenant scope kept.
	s2, err := Open(ctx, openDB(t, path), clock)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 4 {
		t.Fatalf("reopened store has %d indicators, want 4", s2.Len())
	}
	again, err := s2.Get(ctx, Key{Type: TypeDomain, Value: "evil.example"})
	if err != nil || !equalIndicator(again, got) {
		t.Errorf("reopened indicator differs:\n%+v\n%+v (%v)", again, got, err)
	}
	e := ev("globex", "dns.question.name", "www.evil.example", "destination.ip", "203.0.113.9",
		"file.hash.sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", "source.ip", "192.0.2.50")
	if h := hits(s2.Matcher(), e); !slices.Equal(h, []string{"destination.ip=203.0.113.9->ipv4:203.0.113.9", "dns.question.name=www.evil.example->domain:evil.example"}) {
		t.Errorf("globex hits %q (acme's hash and the expired IP must not match)", h)
	}
	e.Tenant = "acme"
	if h := hits(s2.Matcher(), e); len(h) != 3 {
		t.Errorf("acme hits %q, want 3", h)
	}

	// List: filters, order, cursor.
	all, _ := s2.List(ctx, Filter{IncludeExpired: true})
	var ks []string
	for _, i := range all {
		ks = append(ks, i.Key().String())
	}
	if !slices.Equal(ks, []string{"domain:evil.example", "ipv4:192.0.2.50", "ipv4:203.0.113.9", "acme/sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}) {
		t.Errorf("List order %v", ks)
	}
	active, _ := s2.List(ctx, Filter{})
	if len(active) != 3 {
		t.Errorf("List without expired: %d", len(active))
	}
	page, _ := s2.List(ctx, Filter{IncludeExpired: true, Limit: 2, After: &Key{Type: TypeDomain, Value: "evil.example"}})
	if len(page) != 2 || page[0].Value != "192.0.2.50" {
		t.Errorf("page after evil.example: %v", page)
	}
	bySource, _ := s2.List(ctx, Filter{Source: "NTT-CERT", Type: TypeIPv4})
	if len(bySource) != 1 || bySource[0].TLP(now) != TLPAmber {
		t.Errorf("by source: %+v", bySource)
	}

	// Expire: the expired IP is purged; after the NTT expiry, so is that one.
	now = t0.Add(8 * 24 * time.Hour)
	er, err := s2.Expire(ctx, now)
	if err != nil || er.Purged != 2 {
		t.Errorf("Expire: %+v %v", er, err)
	}
	n, err := s2.Remove(ctx, Key{Type: TypeDomain, Value: "evil.example"}, Key{Type: TypeDomain, Value: "absent.example"})
	if err != nil || n != 1 {
		t.Errorf("Remove: %d %v", n, err)
	}
	if _, err := s2.Get(ctx, Key{Type: TypeDomain, Value: "evil.example"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	if h := hits(s2.Matcher(), e); len(h) != 1 {
		t.Errorf("after expire and remove, acme hits %q, want only the hash", h)
	}
	s3, err := Open(ctx, openDB(t, path), clock)
	if err != nil || s3.Len() != 1 {
		t.Errorf("after reopen: %d indicators (%v), want 1", s3.Len(), err)
	}
}

func equalIndicator(a, b *Indicator) bool {
	if a.Key() != b.Key() || len(a.Sources) != len(b.Sources) {
		return false
	}
	for i := range a.Sources {
		if !sameSource(a.Sources[i], b.Sources[i]) {
			return false
		}
	}
	return true
}
