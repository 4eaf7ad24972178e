package update

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestKeysGenerateLoadAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "offline")
	rk, err := GenerateRootKeys(dir, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v", st.Mode().Perm())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	got, err := LoadRootKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Threshold != 2 || len(got.Keys) != 3 || !got.Keys[0].Equal(rk.Keys[0]) {
		t.Fatalf("loaded %d keys threshold %d", len(got.Keys), got.Threshold)
	}
	if _, err := GenerateRootKeys(dir, 3, 2); !errors.Is(err, ErrKeys) {
		t.Fatalf("second generate in the same dir: %v, want ErrKeys (no overwrite)", err)
	}
	if _, err := GenerateRootKeys(t.TempDir(), 2, 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("threshold above key count: %v", err)
	}
	online := filepath.Join(t.TempDir(), "online")
	ok, err := GenerateOnlineKeys(online)
	if err != nil {
		t.Fatal(err)
	}
	ok2, err := LoadOnlineKeys(online)
	if err != nil || !ok2.Bandage.Equal(ok.Bandage) || !ok2.Timestamp.Equal(ok.Timestamp) {
		t.Fatalf("online keys did not round-trip: %v", err)
	}
	// A key readable by others is refused, and the error does not print it.
	name := filepath.Join(online, "targets.key")
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOnlineKeys(online)
	if !errors.Is(err, ErrKeys) || strings.Contains(err.Error(), "PRIVATE") {
		t.Fatalf("world-readable key: %v", err)
	}
}

func TestInitOpenRepo(t *testing.T) {
	e := newEnv(t)
	if _, err := InitRepo(e.dir, e.root, e.online, e.opts); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second init: %v, want ErrInvalid", err)
	}
	v1, _ := Canonical(genRecords(1, 100))
	e.publish("main", v1)
	e.publish(BandageChannel, recs("bandage-one"))
	ts := e.repo.Timestamp()
	r2, err := OpenRepo(e.dir, e.online, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Timestamp(), ts) || !bytes.Equal(r2.Root(), e.repo.Root()) {
		t.Fatal("reopened repository serves different metadata")
	}
	if got := r2.Releases("main"); len(got) != 1 || got[0].ContentSHA256 != e.repo.Releases("main")[0].ContentSHA256 {
		t.Fatalf("reopened releases %+v", got)
	}
	c := e.client(newFetcher(e.repo))
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Publishing after reopening diffs against the decoded latest version.
	e.repo = r2
	e.publish("main", mutateSet(2, v1, 3, 3))
	c.f = newFetcher(r2)
	if in, err = c.Update(bg, nil, "main", in); err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 2)
	if c.lastKind != kindDelta {
		t.Fatalf("update after reopen via %s", c.lastKind)
	}

	other, _ := GenerateOnlineKeys(filepath.Join(t.TempDir(), "other"))
	if _, err := OpenRepo(e.dir, other, e.opts); !errors.Is(err, ErrKeys) {
		t.Fatalf("open with untrusted keys: %v, want ErrKeys", err)
	}
	mixed := *e.online
	mixed.Bandage = other.Bandage
	if _, err := OpenRepo(e.dir, &mixed, e.opts); !errors.Is(err, ErrKeys) {
		t.Fatalf("open with another bandage key: %v, want ErrKeys", err)
	}
	if _, err := OpenRepo(t.TempDir(), e.online, e.opts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open an empty dir: %v, want ErrNotFound", err)
	}
	// Root keys never land in the repository directory.
	filepath.Walk(e.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a private key", path)
			}
		}
		return nil
	})
}

func TestOpenRepoSignsReleasesTheMetadataMissed(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 50))
	tsPath := filepath.Join(e.dir, "metadata", "timestamp.json")
	before, _ := os.ReadFile(tsPath)
	e.publish("main", genRecords(2, 50))
	// A crash after the release and its blobs were written but before the
	// timestamp that makes them current.
	if err := os.WriteFile(tsPath, before, 0o640); err != nil {
		t.Fatal(err)
	}
	r2, err := OpenRepo(e.dir, e.online, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.repo = r2
	in, err := e.client(newFetcher(r2)).Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 2)
}

func TestPublishComposedDeltasEqualDirectDiffs(t *testing.T) {
	e := newEnv(t)
	cur, _ := Canonical(genRecords(1, 3000))
	e.publish("main", cur)
	for i := range 34 {
		if i == 20 {
			if _, err := e.repo.Publish(bg, "main", nil, PublishOptions{RollbackTo: 12}); err != nil {
				t.Fatal(err)
			}
			cur, _ = e.repo.Content("main", 21)
			continue
		}
		cur = mutateSet(uint64(i+10), cur, 5+i%7, 20)
		e.publish("main", cur)
	}
	rels := e.repo.Releases("main")
	last := rels[len(rels)-1]
	if last.Version != 35 || len(last.Deltas) != MaxDeltaChain {
		t.Fatalf("latest %d has %d deltas, want %d", last.Version, len(last.Deltas), MaxDeltaChain)
	}
	for _, d := range last.Deltas {
		b, err := os.ReadFile(filepath.Join(e.dir, "blobs", d.SHA256))
		if err != nil {
			t.Fatal(err)
		}
		dd, err := DecodeDelta(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		rm, add, err := e.repo.Diff("main", d.From, last.Version)
		if err != nil {
			t.Fatal(err)
		}
		if !equalRecords(dd.Removed, rm) || !equalRecords(dd.Added, add) {
			t.Fatalf("delta %d→%d: composed lists differ from the direct diff", d.From, last.Version)
		}
		base, _ := e.repo.Content("main", d.From)
		if _, err := dd.Apply(base); err != nil {
			t.Fatalf("delta %d→%d: %v", d.From, last.Version, err)
		}
	}
}

func TestPublishIdempotentRollbackAndInvalid(t *testing.T) {
	e := newEnv(t)
	r1 := e.publish("main", recs("b", "a"))
	r1b := e.publish("main", recs("a", "b", "a"))
	if r1b.Version != 1 || len(e.repo.Releases("main")) != 1 {
		t.Fatalf("same content made version %d", r1b.Version)
	}
	e.publish("main", recs("a", "c"))
	r3, err := e.repo.Publish(bg, "main", nil, PublishOptions{RollbackTo: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r3.Version != 3 || r3.RollbackOf != 1 || r3.ContentSHA256 != r1.ContentSHA256 {
		t.Fatalf("rollback release %+v", r3)
	}
	for name, tc := range map[string]struct {
		ch   string
		recs Records
		opt  PublishOptions
	}{
		"channel":          {"Main", recs("a"), PublishOptions{}},
		"newline":          {"main", recs("a\nb"), PublishOptions{}},
		"rollback records": {"main", recs("a"), PublishOptions{RollbackTo: 1}},
		"rollback unknown": {"main", nil, PublishOptions{RollbackTo: 9}},
	} {
		if _, err := e.repo.Publish(bg, tc.ch, tc.recs, tc.opt); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	rm, add, err := e.repo.Diff("main", 1, 2)
	if err != nil || !equalRecords(rm, recs("b")) || !equalRecords(add, recs("c")) {
		t.Fatalf("Diff: %q %q %v", rm, add, err)
	}
	if _, _, err := e.repo.Diff("main", 1, 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Diff to an unknown version: %v", err)
	}
}

func TestMetadataWindowAndRoles(t *testing.T) {
	e := newEnv(t)
	cur, _ := Canonical(genRecords(1, 2000))
	for i := range 5 {
		cur = mutateSet(uint64(i), cur, 3, 10)
		e.publish("main", cur)
		e.publish(BandageChannel, genRecords(uint64(50+i), 1))
	}
	_, snap := e.current()
	load := func(role string) *metadata.Metadata[metadata.TargetsType] {
		m, err := metadata.Targets().FromBytes(e.metaFile(fmt.Sprintf("%d.%s.json", snap.Signed.Meta[role+".json"].Version, role)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	names := func(m *metadata.Metadata[metadata.TargetsType]) []string {
		var out []string
		for n := range m.Signed.Targets {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	top, band := load(metadata.TARGETS), load(bandageRole)
	want := []string{"main/3/full", "main/4/full", "main/5/delta-1", "main/5/delta-2", "main/5/delta-3", "main/5/delta-4", "main/5/full"}
	if got := names(top); !slices.Equal(got, want) {
		t.Fatalf("targets.json lists %v, want %v", got, want)
	}
	// Bandage: only the latest, and no delta for a one-record set.
	if got := names(band); !slices.Equal(got, []string{"bandage/5/full"}) {
		t.Fatalf("bandage.json lists %v", got)
	}
	d := top.Signed.Delegations
	if d == nil || len(d.Roles) != 1 || d.Roles[0].Name != bandageRole || !d.Roles[0].Terminating ||
		!slices.Equal(d.Roles[0].Paths, bandagePaths) || d.Roles[0].KeyIDs[0] != keyID(e.online.Bandage) {
		t.Fatalf("delegation %+v", d)
	}
	if top.Signatures[0].KeyID != keyID(e.online.Targets) || band.Signatures[0].KeyID != keyID(e.online.Bandage) {
		t.Fatal("roles signed by the wrong keys")
	}
	// Custom metadata of a delta target.
	var cu targetCustom
	if err := json.Unmarshal(*top.Signed.Targets["main/5/delta-4"].Custom, &cu); err != nil {
		t.Fatal(err)
	}
	rel := e.repo.Releases("main")[4]
	if cu.Channel != "main" || cu.Version != 5 || cu.Kind != kindDelta || cu.From != 4 ||
		cu.ContentSHA256 != rel.ContentSHA256 || cu.Records != rel.Records || !cu.PublishedAt.Equal(rel.PublishedAt) {
		t.Fatalf("custom %+v", cu)
	}
	sum, _ := hex.DecodeString(rel.Full.SHA256)
	if !bytes.Equal(top.Signed.Targets["main/5/full"].Hashes["sha256"], sum) || top.Signed.Targets["main/5/full"].Length != rel.Full.Length {
		t.Fatal("full target hash or length differs from the release")
	}
}

func TestConsistentSnapshotFilesAreImmutable(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 10))
	_, snap := e.current()
	name := fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)
	before := e.metaFile(name)
	tname := fmt.Sprintf("%d.targets.json", snap.Signed.Meta["targets.json"].Version)
	tbefore := e.metaFile(tname)
	for i := range 3 {
		e.publish("main", genRecords(uint64(i+2), 10))
		if err := e.repo.RefreshTimestamp(bg); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(before, e.metaFile(name)) || !bytes.Equal(tbefore, e.metaFile(tname)) {
		t.Fatal("a versioned metadata file changed")
	}
}

func TestRefreshTimestampKeepsAgentsVerifying(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 10))
	e.publish(BandageChannel, genRecords(2, 1))
	c := e.client(newFetcher(e.repo))
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := e.repo.Subscribe()
	defer cancel()
	// 40 days without a publish, refreshed hourly: every role would have
	// expired (targets after 30 days, snapshot after 7) without renewal.
	for range 40 * 24 {
		e.clock.Advance(time.Hour)
		if err := e.repo.RefreshTimestamp(bg); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ts := <-ch:
		if !bytes.Equal(ts, e.repo.Timestamp()) {
			t.Fatal("subscriber did not get the latest timestamp")
		}
	default:
		t.Fatal("refresh did not notify")
	}
	if got, err := c.Update(bg, nil, "main", in); err != nil || got != in {
		t.Fatalf("after 40 days of refreshes: %v", err)
	}
	if _, err := c.Update(bg, nil, BandageChannel, nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(25 * time.Hour) // refresh stopped
	_, err = c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrExpired)
}

func TestSubscribeFanOut(t *testing.T) {
	e := newEnv(t)
	fast, cancelFast := e.repo.Subscribe()
	slow, cancelSlow := e.repo.Subscribe()
	var seen [][]byte
	for i := range 5 {
		e.publish("main", genRecords(uint64(i), 3))
		seen = append(seen, <-fast)
	}
	for i, ts := range seen[:4] {
		if bytes.Equal(ts, seen[i+1]) {
			t.Fatal("fast subscriber got a repeated timestamp")
		}
	}
	// The slow one never read: it holds only the latest.
	if got := <-slow; !bytes.Equal(got, e.repo.Timestamp()) {
		t.Fatal("slow subscriber did not get the latest timestamp")
	}
	select {
	case <-slow:
		t.Fatal("slow subscriber has a backlog")
	default:
	}
	cancelSlow()
	cancelSlow() // idempotent
	if _, ok := <-slow; ok {
		t.Fatal("cancelled channel not closed")
	}
	e.publish("main", genRecords(99, 3)) // must not block or panic
	<-fast
	cancelFast()
}
