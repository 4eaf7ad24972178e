package update

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Each test here plays an attacker who controls the network path (the
// fetcher) and, where stated, some keys, against metadata built by a real
// Repo. Each attack must be refused with the sentinel that names it.

// forged is a set of metadata a test re-signs and serves in place of the
// repository's.
type forged struct {
	t    testing.TB
	e    *env
	f    *fetcher
	ts   *metadata.Metadata[metadata.TimestampType]
	snap *metadata.Metadata[metadata.SnapshotType]
}

func (e *env) forge(f *fetcher) *forged {
	ts, snap := e.current()
	return &forged{t: e.t, e: e, f: f, ts: ts, snap: snap}
}

// role returns the repository's current metadata of a targets role.
func (fg *forged) role(role string) *metadata.Metadata[metadata.TargetsType] {
	mf := fg.snap.Signed.Meta[role+".json"]
	m, err := metadata.Targets().FromBytes(fg.e.metaFile(fmt.Sprintf("%d.%s.json", mf.Version, role)))
	if err != nil {
		fg.t.Fatal(err)
	}
	return m
}

// serveRole signs m (version bumped) with keys, serves it and lists it in
// the forged snapshot.
func (fg *forged) serveRole(role string, m *metadata.Metadata[metadata.TargetsType], keys ...ed25519.PrivateKey) {
	m.Signed.Version += 1000
	b := signWith(fg.t, m, keys...)
	fg.f.set(fmt.Sprintf("metadata/%d.%s.json", m.Signed.Version, role), b)
	fg.snap.Signed.Meta[role+".json"] = metaFile(m.Signed.Version, b)
}

// serveSnapshot signs the forged snapshot (version bumped) and lists it in
// the forged timestamp.
func (fg *forged) serveSnapshot(keys ...ed25519.PrivateKey) {
	fg.snap.Signed.Version += 1000
	b := signWith(fg.t, fg.snap, keys...)
	fg.f.set(fmt.Sprintf("metadata/%d.snapshot.json", fg.snap.Signed.Version), b)
	fg.ts.Signed.Meta["snapshot.json"] = metaFile(fg.snap.Signed.Version, b)
}

// serveTimestamp signs the forged timestamp (version bumped) and serves it.
func (fg *forged) serveTimestamp(keys ...ed25519.PrivateKey) []byte {
	fg.ts.Signed.Version += 1000
	b := signWith(fg.t, fg.ts, keys...)
	fg.f.set("metadata/timestamp.json", b)
	return b
}

// upToDate returns an env with main at version 1 and a client that
// installed it, then publishes version 2.
func upToDate(t *testing.T, opts ...func(*RepoOptions)) (*env, *fetcher, *Client, *Installed) {
	e := newEnv(t, opts...)
	v1, _ := Canonical(genRecords(1, 500))
	e.publish("main", v1)
	f := newFetcher(e.repo)
	c := e.client(f)
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.publish("main", mutateSet(2, v1, 5, 20))
	return e, f, c, in
}

func wantTUF(t *testing.T, err error, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %q does not carry the TUF error %T", err, target)
	}
}

// recovers checks that after the attack the client still updates from the
// genuine repository (the forged files did not poison its state).
func recovers(t *testing.T, e *env, f *fetcher, c *Client, have *Installed) {
	t.Helper()
	f.mu.Lock()
	clear(f.override)
	f.mutate = nil
	f.mu.Unlock()
	in, err := c.Update(bg, nil, "main", have)
	if err != nil {
		t.Fatalf("client did not recover after the attack: %v", err)
	}
	e.sameContent(in, "main", uint64(len(e.repo.Releases("main"))))
}

// recoversAfterRotation: an attack that used the real timestamp key has
// fast-forwarded the client's trusted timestamp (TUF persists each verified
// step), so the genuine, lower-numbered timestamps now look like rollbacks.
// TUF's way out is a root rotation that replaces the online keys: the
// client then forgets its timestamp and snapshot (5.3.11) and follows.
func recoversAfterRotation(t *testing.T, e *env, f *fetcher, c *Client, have *Installed) {
	t.Helper()
	f.mu.Lock()
	clear(f.override)
	f.mu.Unlock()
	if _, err := c.Update(bg, nil, "main", have); !errors.Is(err, ErrRollback) {
		t.Fatalf("before the rotation: %v, want ErrRollback", err)
	}
	online, err := GenerateOnlineKeys(filepath.Join(t.TempDir(), "online-new"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.repo.RotateRoot(bg, e.root, e.root, online); err != nil {
		t.Fatal(err)
	}
	recovers(t, e, f, c, have)
}

func TestRejectTimestampSignedByWrongKey(t *testing.T) {
	e, f, c, in := upToDate(t)
	fg := e.forge(f)
	fg.serveTimestamp(randomKey(t))
	_, err := c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrVerify)
	wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
	recovers(t, e, f, c, in)
}

func TestRejectSnapshotSignedByWrongKey(t *testing.T) {
	e, f, c, in := upToDate(t)
	fg := e.forge(f)
	// The attacker holds the timestamp key, so the hash in the timestamp
	// matches: only the snapshot signature check stands in the way.
	fg.serveSnapshot(randomKey(t))
	fg.serveTimestamp(e.online.Timestamp)
	_, err := c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrVerify)
	wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
	recoversAfterRotation(t, e, f, c, in)
}

func TestRejectTargetsSignedByWrongKey(t *testing.T) {
	e, f, c, in := upToDate(t)
	fg := e.forge(f)
	fg.serveRole(metadata.TARGETS, fg.role(metadata.TARGETS), randomKey(t))
	fg.serveSnapshot(e.online.Snapshot)
	fg.serveTimestamp(e.online.Timestamp)
	_, err := c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrVerify)
	wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
	recoversAfterRotation(t, e, f, c, in)
}

func TestRejectRootBelowThreshold(t *testing.T) {
	e := newEnv(t) // root threshold 2 of 3
	root, err := metadata.Root().FromBytes(e.repo.Root())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("pinned root with 1 of 2 signatures", func(t *testing.T) {
		b := signWith(t, root, e.root.Keys[0])
		_, err := NewClient(b, newFetcher(e.repo), ClientOptions{Now: e.clock.Now, Logger: quiet})
		wantErr(t, err, ErrVerify)
		wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
	})
	t.Run("new root signed by 1 of 2 old keys", func(t *testing.T) {
		e.publish("main", genRecords(1, 10))
		f := newFetcher(e.repo)
		c := e.client(f)
		next, err := GenerateRootKeys(filepath.Join(t.TempDir(), "k"), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Signed by the attacker's new key and one stolen old key.
		nr, err := buildRoot(2, e.clock.Now().Add(time.Hour), next, e.online, &RootKeys{Keys: e.root.Keys[:1], Threshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := nr.ToBytes(false)
		f.set("metadata/2.root.json", b)
		_, err = c.Update(bg, nil, "main", nil)
		wantErr(t, err, ErrVerify)
		wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
		if v := rootVersion(t, c.TrustedRoot()); v != 1 {
			t.Fatalf("client moved to root %d", v)
		}
	})
	t.Run("new root not signed by its own keys", func(t *testing.T) {
		e.publish("main", genRecords(2, 10))
		f := newFetcher(e.repo)
		c := e.client(f)
		nr, err := buildRoot(2, e.clock.Now().Add(time.Hour), e.root, e.online, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Re-threshold the root role to 3 but keep only 2 signatures.
		nr.Signed.Roles[metadata.ROOT].Threshold = 3
		b := signWith(t, nr, e.root.Keys[0], e.root.Keys[1])
		f.set("metadata/2.root.json", b)
		_, err = c.Update(bg, nil, "main", nil)
		wantErr(t, err, ErrVerify)
	})
}

func TestRejectExpiredMetadata(t *testing.T) {
	long := func(o *RepoOptions) {
		o.TimestampExpiry, o.SnapshotExpiry, o.TargetsExpiry, o.RootExpiry = 30*24*time.Hour, 30*24*time.Hour, 30*24*time.Hour, 365*24*time.Hour
	}
	cases := []struct {
		name string
		opt  func(*RepoOptions)
	}{
		{"timestamp", func(o *RepoOptions) { long(o); o.TimestampExpiry = 24 * time.Hour }},
		{"snapshot", func(o *RepoOptions) { long(o); o.SnapshotExpiry = 24 * time.Hour }},
		{"targets", func(o *RepoOptions) { long(o); o.TargetsExpiry = 24 * time.Hour }},
		{"root", func(o *RepoOptions) { long(o); o.RootExpiry = 24 * time.Hour }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			v1, _ := Canonical(genRecords(1, 50))
			e.publish("main", v1)
			e.publish(BandageChannel, genRecords(3, 1))
			f := newFetcher(e.repo)
			warm := e.client(f) // trusts the metadata before it expires
			in, err := warm.Update(bg, nil, "main", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := warm.Update(bg, nil, BandageChannel, nil); err != nil {
				t.Fatal(err)
			}
			// The repository stops re-signing (frozen, or an attacker
			// replays the last good metadata) and a day and more pass.
			e.clock.Advance(25 * time.Hour)
			_, err = warm.Update(bg, nil, "main", in)
			wantErr(t, err, ErrExpired)
			_, err = warm.Update(bg, nil, BandageChannel, nil)
			wantErr(t, err, ErrExpired)
			_, err = e.client(f).Update(bg, nil, "main", nil) // no cache
			wantErr(t, err, ErrExpired)
		})
	}
}

func TestRejectTimestampRollback(t *testing.T) {
	e, f, c, in := upToDate(t)
	old := e.repo.Timestamp()
	e.publish("main", genRecords(3, 100))
	in, err := c.Update(bg, nil, "main", in)
	if err != nil {
		t.Fatal(err)
	}
	f.set("metadata/timestamp.json", old)
	_, err = c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrRollback)
	recovers(t, e, f, c, in)
}

func TestRejectReplayOfOldTimestampEvent(t *testing.T) {
	e, _, c, in := upToDate(t)
	old := e.repo.Timestamp() // genuine, signed, unexpired — and superseded
	e.publish("main", genRecords(4, 100))
	in, err := c.Update(bg, e.repo.Timestamp(), "main", in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Update(bg, old, "main", in)
	wantErr(t, err, ErrRollback)
}

func TestRejectSnapshotRollback(t *testing.T) {
	e, f, c, in := upToDate(t)
	in, err := c.Update(bg, nil, "main", in) // trusts snapshot N
	if err != nil {
		t.Fatal(err)
	}
	// With the timestamp key, point a newer timestamp at snapshot N-1.
	fg := e.forge(f)
	sv := fg.ts.Signed.Meta["snapshot.json"].Version - 1
	b := e.metaFile(fmt.Sprintf("%d.snapshot.json", sv))
	fg.ts.Signed.Meta["snapshot.json"] = metaFile(sv, b)
	fg.serveTimestamp(e.online.Timestamp)
	_, err = c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrRollback)
	wantTUF(t, err, &metadata.ErrBadVersionNumber{})
	recovers(t, e, f, c, in)
}

func TestRejectTargetsRollback(t *testing.T) {
	e, f, c, in := upToDate(t)
	in, err := c.Update(bg, nil, "main", in) // trusts targets M
	if err != nil {
		t.Fatal(err)
	}
	// With the snapshot and timestamp keys, list targets M-1 again (it
	// offered version 1 only, so the agent would stay on old patterns).
	fg := e.forge(f)
	tv := fg.snap.Signed.Meta["targets.json"].Version - 1
	fg.snap.Signed.Meta["targets.json"] = metaFile(tv, e.metaFile(fmt.Sprintf("%d.targets.json", tv)))
	fg.serveSnapshot(e.online.Snapshot)
	fg.serveTimestamp(e.online.Timestamp)
	_, err = c.Update(bg, nil, "main", in)
	wantErr(t, err, ErrRollback)
	wantTUF(t, err, &metadata.ErrBadVersionNumber{})
	recoversAfterRotation(t, e, f, c, in)
}

func TestRejectReleaseRollback(t *testing.T) {
	// An agent restarted without its metadata cache is handed the genuine,
	// still valid metadata of an older release: it must not go back.
	e, f, c, in := upToDate(t)
	old := e.repo.Timestamp()
	e.publish("main", genRecords(5, 100))
	in, err := c.Update(bg, nil, "main", in)
	if err != nil {
		t.Fatal(err)
	}
	f.set("metadata/timestamp.json", old)
	_, err = e.client(f).Update(bg, nil, "main", in)
	wantErr(t, err, ErrRollback)
}

func TestRejectMixAndMatch(t *testing.T) {
	e, f, _, in := upToDate(t)
	_, snap := e.current()
	tv := snap.Signed.Meta["targets.json"].Version
	t.Run("targets of another release", func(t *testing.T) {
		f.set(fmt.Sprintf("metadata/%d.targets.json", tv), e.metaFile(fmt.Sprintf("%d.targets.json", tv-1)))
		_, err := e.client(f).Update(bg, nil, "main", in)
		wantErr(t, err, ErrVerify)
		wantTUF(t, err, &metadata.ErrLengthOrHashMismatch{})
		clear(f.override)
	})
	t.Run("snapshot of another release", func(t *testing.T) {
		sv := snap.Signed.Version
		f.set(fmt.Sprintf("metadata/%d.snapshot.json", sv), e.metaFile(fmt.Sprintf("%d.snapshot.json", sv-1)))
		_, err := e.client(f).Update(bg, nil, "main", in)
		wantErr(t, err, ErrVerify)
		wantTUF(t, err, &metadata.ErrLengthOrHashMismatch{})
		clear(f.override)
	})
}

// blobOf returns the blob path of the latest main release's target.
func blobOf(e *env, channel string, delta bool) string {
	rels := e.repo.Releases(channel)
	rel := rels[len(rels)-1]
	if delta {
		return "blobs/" + rel.Deltas[0].SHA256
	}
	return "blobs/" + rel.Full.SHA256
}

func TestRejectTargetBytesDiffer(t *testing.T) {
	e, f, c, _ := upToDate(t)
	full := blobOf(e, "main", false)
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
		want error
	}{
		{"one bit flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }, ErrVerify},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrVerify},
		{"one byte longer", func(b []byte) []byte { return append(b, 0) }, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.mutate = func(path string, b []byte) []byte {
				if path == full {
					return tc.mut(b)
				}
				return b
			}
			f.mu.Unlock()
			_, err := c.Update(bg, nil, "main", nil)
			wantErr(t, err, tc.want)
		})
	}
	recovers(t, e, f, c, nil)
}

func TestRejectOversizedFile(t *testing.T) {
	e, _, _, _ := upToDate(t)
	var served atomic.Int64
	h := Handler(e.repo)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/declared/metadata/timestamp.json":
			w.Header().Set("Content-Length", "100000000")
			w.WriteHeader(http.StatusOK)
			// Nothing useful follows; the client must not wait for it.
		case "/endless/metadata/timestamp.json":
			// No length: an endless body.
			buf := make([]byte, 32<<10)
			for i := 0; i < 3200; i++ { // up to 100 MiB
				n, err := w.Write(buf)
				served.Add(int64(n))
				if err != nil {
					return
				}
			}
		default:
			http.StripPrefix("/ok", h).ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	hc := &http.Client{Transport: countingTransport{http.DefaultTransport, &read}}
	for _, tc := range []struct{ prefix string }{{"/declared/"}, {"/endless/"}} {
		t.Run(tc.prefix, func(t *testing.T) {
			read.Store(0)
			hf := &HTTPFetcher{BaseURL: srv.URL + tc.prefix, Client: hc}
			c, err := NewClient(e.repo.Root(), &rootProbe404{hf}, ClientOptions{Now: e.clock.Now, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Update(bg, nil, "main", nil)
			wantErr(t, err, ErrTooLarge)
			if n := read.Load(); n > 16<<10+1 {
				t.Fatalf("fetcher read %d body bytes, limit 16 KiB", n)
			}
		})
	}
	t.Run("signed blob length bounds the download", func(t *testing.T) {
		hf := &HTTPFetcher{BaseURL: srv.URL + "/ok/", Client: hc}
		tampered := &fetcher{inner: hf, override: map[string][]byte{}}
		full := blobOf(e, "main", false)
		tampered.mutate = func(path string, b []byte) []byte { return b }
		c, err := NewClient(e.repo.Root(), tampered, ClientOptions{Now: e.clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		// The genuine length passes; serve it one byte longer through a
		// server that declares the longer length.
		srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/"+full {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				b := append(rec.Body.Bytes(), 'x')
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				_, _ = w.Write(b)
				return
			}
			h.ServeHTTP(w, r)
		}))
		defer srv2.Close()
		tampered.inner = &HTTPFetcher{BaseURL: srv2.URL, Client: hc}
		_, err = c.Update(bg, nil, "main", nil)
		wantErr(t, err, ErrTooLarge)
	})
	t.Run("timestamp event over the limit", func(t *testing.T) {
		c := e.client(newFetcher(e.repo))
		_, err := c.Update(bg, make([]byte, 20<<10), "main", nil)
		wantErr(t, err, ErrTooLarge)
	})
}

// rootProbe404 answers the root probe itself so an oversized-response test
// reaches the timestamp.
type rootProbe404 struct{ Fetcher }

func (r *rootProbe404) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	if path == "metadata/2.root.json" {
		return nil, ErrNotFound
	}
	return r.Fetcher.Get(ctx, path, max)
}

type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestRejectBandageKeySigningMainTarget(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 100))
	e.publish(BandageChannel, genRecords(2, 2))
	evil, _ := Canonical(genRecords(66, 3))
	blob := EncodeFull("main", 99, evil)
	sum := sha256.Sum256(blob)
	f := newFetcher(e.repo)
	f.set("blobs/"+hex.EncodeToString(sum[:]), blob)
	custom := func(channel string) *json.RawMessage {
		cs := ContentHash(evil)
		b, _ := json.Marshal(targetCustom{Channel: channel, Version: 99, Kind: kindFull,
			ContentSHA256: hex.EncodeToString(cs[:]), Records: len(evil), PublishedAt: e.clock.Now()})
		raw := json.RawMessage(b)
		return &raw
	}
	evilTarget := func(channel string) *metadata.TargetFiles {
		return &metadata.TargetFiles{Length: int64(len(blob)), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: custom(channel)}
	}

	t.Run("main target in bandage.json", func(t *testing.T) {
		// The bandage signer is compromised; the pipeline (snapshot and
		// timestamp keys) publishes whatever it signs.
		fg := e.forge(f)
		b := fg.role(bandageRole)
		b.Signed.Targets["main/99/full"] = evilTarget("main")
		fg.serveRole(bandageRole, b, e.online.Bandage)
		fg.serveSnapshot(e.online.Snapshot)
		fg.serveTimestamp(e.online.Timestamp)

		c := e.client(f)
		_, err := c.Update(bg, nil, BandageChannel, nil)
		wantErr(t, err, ErrVerify)
		// Main never consults the bandage role: the forged target is not
		// even seen, and main installs its genuine latest.
		in, err := c.Update(bg, nil, "main", nil)
		if err != nil {
			t.Fatal(err)
		}
		e.sameContent(in, "main", 1)
		_, err = c.UpdateTo(bg, nil, "main", 99, in)
		wantErr(t, err, ErrNotFound)
		clear(f.override)
	})
	t.Run("bandage path labelled as main content", func(t *testing.T) {
		fg := e.forge(f)
		b := fg.role(bandageRole)
		b.Signed.Targets["bandage/99/full"] = evilTarget("main")
		fg.serveRole(bandageRole, b, e.online.Bandage)
		fg.serveSnapshot(e.online.Snapshot)
		fg.serveTimestamp(e.online.Timestamp)
		_, err := e.client(f).Update(bg, nil, BandageChannel, nil)
		wantErr(t, err, ErrVerify)
		clear(f.override)
	})
	t.Run("bandage.json signed by the targets key", func(t *testing.T) {
		// Only the delegated key may sign the delegated role.
		fg := e.forge(f)
		fg.serveRole(bandageRole, fg.role(bandageRole), e.online.Targets)
		fg.serveSnapshot(e.online.Snapshot)
		fg.serveTimestamp(e.online.Timestamp)
		_, err := e.client(f).Update(bg, nil, BandageChannel, nil)
		wantErr(t, err, ErrVerify)
		wantTUF(t, err, &metadata.ErrUnsignedMetadata{})
		clear(f.override)
	})
}

func TestRejectCorruptedDelta(t *testing.T) {
	e, f, c, in := upToDate(t)
	delta := blobOf(e, "main", true)
	t.Run("bit flip", func(t *testing.T) {
		f.mu.Lock()
		f.mutate = func(path string, b []byte) []byte {
			if path == delta {
				b[len(b)-3] ^= 1
			}
			return b
		}
		f.mu.Unlock()
		_, err := c.Update(bg, nil, "main", in)
		wantErr(t, err, ErrVerify)
		f.mu.Lock()
		f.mutate = nil
		f.mu.Unlock()
	})
	t.Run("installed content is not the delta's base", func(t *testing.T) {
		// Same version and claimed hash, but one record lost locally.
		damaged := *in
		damaged.Records = in.Records[1:]
		_, err := c.Update(bg, nil, "main", &damaged)
		wantErr(t, err, ErrDelta)
		if c.lastKind != "" {
			t.Fatalf("installed via %s despite the error", c.lastKind)
		}
	})
	recovers(t, e, f, c, in)
}

func TestRejectMalformedMetadata(t *testing.T) {
	e, f, c, in := upToDate(t)
	for _, b := range []string{``, `null`, `[]`, `{}`, `{"signed":5}`, `{"signed":{"_type":5}}`,
		`{"signed":{"_type":"timestamp"}}`, `{"signed":{"_type":"snapshot"},"signatures":[]}`,
		`{"signed":{"_type":"timestamp","version":"x"},"signatures":[]}`, `{"signatures":[{"keyid":1}],"signed":{"_type":"timestamp"}}`} {
		_, err := c.Update(bg, []byte(b), "main", in)
		if !errors.Is(err, ErrVerify) {
			t.Errorf("timestamp %q: error %v, want ErrVerify", b, err)
		}
		_, err = NewClient([]byte(b), f, ClientOptions{})
		if !errors.Is(err, ErrVerify) {
			t.Errorf("root %q: error %v, want ErrVerify", b, err)
		}
	}
	recovers(t, e, f, c, in)
}
