package update

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestInitKeysLayoutAndNoOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	root, online, err := InitKeys(dir, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Keys) != 3 || root.Threshold != 2 || online.check() != nil {
		t.Fatalf("root %d keys threshold %d", len(root.Keys), root.Threshold)
	}
	for _, sub := range []string{RootKeysDir, OnlineKeysDir} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v mode %v, want 0700", sub, err, st.Mode().Perm())
		}
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range files {
			if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
			}
		}
	}
	// What the server reads.
	if _, err := LoadRootKeys(filepath.Join(dir, RootKeysDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOnlineKeys(filepath.Join(dir, OnlineKeysDir)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := InitKeys(dir, 3, 2); !errors.Is(err, ErrKeys) {
		t.Fatalf("second init: %v, want ErrKeys", err)
	}
	// Online keys present, root absent: refused before the root is written.
	other := t.TempDir()
	if _, err := GenerateOnlineKeys(filepath.Join(other, OnlineKeysDir)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := InitKeys(other, 3, 2); !errors.Is(err, ErrKeys) {
		t.Fatalf("init over online keys: %v, want ErrKeys", err)
	}
	if _, err := os.Stat(filepath.Join(other, RootKeysDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root keys written although init was refused: %v", err)
	}
	if _, _, err := InitKeys(t.TempDir(), 2, 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("threshold above count: %v, want ErrInvalid", err)
	}
}

func TestDescribeKeysShowsNoPrivateMaterial(t *testing.T) {
	dir := t.TempDir()
	root, online, err := InitKeys(dir, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := DescribeKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ks.RootThreshold != 2 || len(ks.Keys) != 7 {
		t.Fatalf("threshold %d, %d keys; want 2 and 7", ks.RootThreshold, len(ks.Keys))
	}
	want := map[string]string{"timestamp": keyID(online.Timestamp), "snapshot": keyID(online.Snapshot),
		"targets": keyID(online.Targets), "bandage": keyID(online.Bandage)}
	var rootIDs []string
	for _, k := range ks.Keys {
		if k.Type != "ed25519" || k.Created.IsZero() || k.File == "" {
			t.Errorf("key %+v", k)
		}
		if k.Role == "root" {
			rootIDs = append(rootIDs, k.ID)
		} else if want[k.Role] != k.ID {
			t.Errorf("%s key id %s, want %s", k.Role, k.ID, want[k.Role])
		}
	}
	for _, k := range root.Keys {
		if !slices.Contains(rootIDs, keyID(k)) {
			t.Errorf("root key %s not listed", keyID(k))
		}
	}
	out, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(slices.Clone(root.Keys), online.Timestamp, online.Snapshot, online.Targets, online.Bandage) {
		for _, secret := range []string{hex.EncodeToString(k.Seed()), base64.StdEncoding.EncodeToString(k.Seed()), hex.EncodeToString(k)} {
			if strings.Contains(strings.ToLower(string(out)), strings.ToLower(secret)) {
				t.Fatal("DescribeKeys output holds private key material")
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, OnlineKeysDir, "targets.key"))
	if blk, _ := pem.Decode(b); blk == nil || strings.Contains(string(out), base64.StdEncoding.EncodeToString(blk.Bytes)[:24]) {
		t.Fatal("DescribeKeys output holds the PEM body")
	}
	// One key directory given directly.
	ks, err = DescribeKeys(filepath.Join(dir, RootKeysDir))
	if err != nil || len(ks.Keys) != 3 || ks.RootThreshold != 2 {
		t.Fatalf("root dir alone: %v, %d keys", err, len(ks.Keys))
	}
	if _, err := DescribeKeys(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty dir: %v, want ErrNotFound", err)
	}
}

// offlineEnv is a repository whose online keys sit in <base>/online, as
// the server keeps them, with main version 1 published and a client
// holding root version 1 that installed it.
func offlineEnv(t *testing.T) (*env, string, *fetcher, *Client, *Installed) {
	t.Helper()
	e := newEnv(t)
	v1, _ := Canonical(genRecords(1, 200))
	e.publish("main", v1)
	f := newFetcher(e.repo)
	c := e.client(f)
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, filepath.Join(filepath.Dir(e.dir), "online"), f, c, in
}

// reopen stands for the server's next start: the repository opened from
// disk with the online keys of onlineDir, served by f from now on.
func (e *env) reopen(onlineDir string, f *fetcher) {
	e.t.Helper()
	online, err := LoadOnlineKeys(onlineDir)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.repo, err = OpenRepo(e.dir, online, e.opts); err != nil {
		e.t.Fatal(err)
	}
	e.online = online
	f.mu.Lock()
	f.inner = LocalFetcher(Handler(e.repo))
	f.mu.Unlock()
}

func TestRotateOnlineKeys(t *testing.T) {
	e, onlineDir, f, c, in := offlineEnv(t)
	retiredKeys := e.online
	// Two of the three root key holders come.
	holders := &RootKeys{Keys: e.root.Keys[1:], Threshold: 2}
	retired, err := RotateOnlineKeys(bg, e.dir, onlineDir, holders, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOnlineKeys(retired); err != nil {
		t.Fatalf("retired keys not kept in %s: %v", retired, err)
	}
	if _, err := os.Stat(onlineDir + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging directory left behind: %v", err)
	}
	if _, err := OpenRepo(e.dir, retiredKeys, e.opts); !errors.Is(err, ErrKeys) {
		t.Fatalf("repository opened with the retired online keys: %v", err)
	}
	e.reopen(onlineDir, f)
	if e.online.Timestamp.Equal(retiredKeys.Timestamp) || e.online.Bandage.Equal(retiredKeys.Bandage) {
		t.Fatal("online keys not replaced")
	}
	// The new root keeps all three root keys and the threshold.
	tr, err := CurrentTrust(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if tr.RootVersion != 2 || tr.RootThreshold != 2 || len(tr.KeyIDs[metadata.ROOT]) != 3 {
		t.Fatalf("trust after rotation: %+v", tr)
	}
	if !slices.Equal(tr.KeyIDs[bandageRole], []string{keyID(e.online.Bandage)}) {
		t.Fatalf("bandage delegation %v, want the new key", tr.KeyIDs[bandageRole])
	}

	// Clients holding root version 1 (one that updated before, one new)
	// follow the chain and verify releases signed by the new keys.
	v2 := mutateSet(2, e.mustContent("main", 1), 3, 3)
	e.publish("main", v2)
	e.publish(BandageChannel, genRecords(5, 2))
	fresh, err := NewClient(rootV1(t, e), f, ClientOptions{Now: e.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.followsRotation(t, []*Client{c, fresh}, []*Installed{in, nil}, 2, 2)

	// Whoever still holds the retired keys cannot sign for the clients: a
	// timestamp, or a whole chain (timestamp, snapshot, targets), signed
	// with them is refused.
	fg := e.forge(f)
	ts := fg.serveTimestamp(retiredKeys.Timestamp)
	if _, err := c.Update(bg, ts, "main", nil); !errors.Is(err, ErrVerify) {
		t.Fatalf("timestamp signed by the retired key: %v, want ErrVerify", err)
	}
	fg = e.forge(f)
	fg.serveRole(metadata.TARGETS, fg.role(metadata.TARGETS), retiredKeys.Targets)
	fg.serveSnapshot(retiredKeys.Snapshot)
	fg.serveTimestamp(e.online.Timestamp) // even with the current timestamp key
	if _, err := fresh.Update(bg, nil, "main", nil); !errors.Is(err, ErrVerify) {
		t.Fatalf("snapshot signed by the retired key: %v, want ErrVerify", err)
	}
	recovers(t, e, f, c, in)
}

func (e *env) mustContent(channel string, version uint64) Records {
	e.t.Helper()
	recs, err := e.repo.Content(channel, version)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

func rootV1(t *testing.T, e *env) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRotateOnlineKeysRefusesAndResumes(t *testing.T) {
	e, onlineDir, _, _, _ := offlineEnv(t)
	// One root key is below the threshold: nothing changes, no staging
	// directory stays.
	_, err := RotateOnlineKeys(bg, e.dir, onlineDir, &RootKeys{Keys: e.root.Keys[:1], Threshold: 2}, e.opts)
	wantErr(t, err, ErrKeys)
	if tr, _ := CurrentTrust(e.dir); tr.RootVersion != 1 {
		t.Fatalf("root version %d after a refused rotation", tr.RootVersion)
	}
	if _, err := os.Stat(onlineDir + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("untrusted staging keys left: %v", err)
	}
	// A key that is not a root key at all.
	_, err = RotateOnlineKeys(bg, e.dir, onlineDir, &RootKeys{Keys: append(e.root.Keys[:1:1], randomKey(t)), Threshold: 2}, e.opts)
	wantErr(t, err, ErrKeys)

	// Interrupted after the root was written (the new keys are trusted but
	// not yet in place): the next run finishes the swap.
	staging := onlineDir + ".new"
	next, err := GenerateOnlineKeys(staging)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.repo.ResignRoot(bg, e.root, next); err != nil {
		t.Fatal(err)
	}
	if _, err := RotateOnlineKeys(bg, e.dir, onlineDir, e.root, e.opts); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOnlineKeys(onlineDir)
	if err != nil || !got.Timestamp.Equal(next.Timestamp) {
		t.Fatalf("online keys not swapped in: %v", err)
	}
	// Staging keys nothing trusts are not taken.
	if _, err := GenerateOnlineKeys(staging); err != nil {
		t.Fatal(err)
	}
	_, err = RotateOnlineKeys(bg, e.dir, onlineDir, e.root, e.opts)
	if !errors.Is(err, ErrKeys) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("untrusted staging: %v", err)
	}
}

func TestResignRootRenewsExpiry(t *testing.T) {
	e, _, _, c, in := offlineEnv(t)
	before := e.repo.RootExpires()
	e.clock.Advance(300 * 24 * time.Hour)
	if err := e.repo.ResignRoot(bg, &RootKeys{Keys: e.root.Keys[:2], Threshold: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if after := e.repo.RootExpires(); !after.After(before.Add(299 * 24 * time.Hour)) {
		t.Fatalf("root expiry %v, was %v", after, before)
	}
	tr, err := CurrentTrust(e.dir)
	if err != nil || tr.RootVersion != 2 || len(tr.KeyIDs[metadata.ROOT]) != 3 || tr.RootThreshold != 2 {
		t.Fatalf("trust %+v, %v", tr, err)
	}
	if !slices.Equal(tr.KeyIDs[metadata.TIMESTAMP], []string{keyID(e.online.Timestamp)}) {
		t.Fatal("online keys changed by a renewal")
	}
	// Timestamp and snapshot must be fresh too at this point in time.
	if err := e.repo.RefreshTimestamp(bg); err != nil {
		t.Fatal(err)
	}
	e.publish("main", genRecords(9, 20))
	got, err := c.Update(bg, nil, "main", in)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(got, "main", 2)
	if v := rootVersion(t, c.TrustedRoot()); v != 2 {
		t.Fatalf("client trusts root %d", v)
	}
}
