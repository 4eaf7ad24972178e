package update

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var bg = context.Background()

func TestClientFullThenDeltaThenNoop(t *testing.T) {
	e := newEnv(t)
	v1, _ := Canonical(genRecords(1, 2000))
	e.publish("main", v1)
	f := newFetcher(e.repo)
	c := e.client(f)

	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 1)
	if c.lastKind != kindFull {
		t.Fatalf("first install via %q, want full", c.lastKind)
	}

	e.publish("main", mutateSet(2, v1, 10, 30))
	in2, err := c.Update(bg, e.repo.Timestamp(), "main", in)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in2, "main", 2)
	if c.lastKind != kindDelta {
		t.Fatalf("second install via %q, want delta", c.lastKind)
	}

	// Nothing new: the same Installed comes back, nothing but the root
	// probe (a 404) and the timestamp is fetched.
	f.reset()
	in3, err := c.Update(bg, nil, "main", in2)
	if err != nil || in3 != in2 {
		t.Fatalf("no-op update: %v, same=%v", err, in3 == in2)
	}
	if _, paths := f.reset(); fmt.Sprint(paths) != "[metadata/2.root.json metadata/timestamp.json]" {
		t.Fatalf("no-op update fetched %v", paths)
	}
}

func TestClientFollowsChannelsIndependently(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 500))
	e.publish(BandageChannel, genRecords(2, 3))
	e.publish("cleanup", genRecords(3, 20))
	c := e.client(newFetcher(e.repo))
	got := map[string]*Installed{}
	for _, ch := range []string{"main", BandageChannel, "cleanup"} {
		in, err := c.Update(bg, nil, ch, nil)
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		e.sameContent(in, ch, 1)
		got[ch] = in
	}
	e.publish(BandageChannel, genRecords(4, 5))
	for _, ch := range []string{"main", BandageChannel, "cleanup"} {
		in, err := c.Update(bg, nil, ch, got[ch])
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		want := uint64(1)
		if ch == BandageChannel {
			want = 2
		}
		e.sameContent(in, ch, want)
	}
}

func TestClientUpdateToPinnedVersion(t *testing.T) {
	e := newEnv(t)
	v1, _ := Canonical(genRecords(1, 300))
	e.publish("main", v1)
	v2 := mutateSet(2, v1, 5, 5)
	e.publish("main", v2)
	e.publish("main", mutateSet(3, v2, 5, 5))
	c := e.client(newFetcher(e.repo))
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 3)
	// Pinning back to 2 (kept in the window with its full blob).
	in2, err := c.UpdateTo(bg, nil, "main", 2, in)
	if err != nil {
		t.Fatal(err)
	}
	e.sameContent(in2, "main", 2)
	// Version 1 is outside the default window of 3? No: 3 releases kept.
	if _, err := c.UpdateTo(bg, nil, "main", 1, in2); err != nil {
		t.Fatal(err)
	}
	e.publish("main", genRecords(9, 10))
	_, err = c.UpdateTo(bg, nil, "main", 1, in2)
	wantErr(t, err, ErrNotFound)
	_, err = c.Update(bg, nil, "nosuch", nil)
	wantErr(t, err, ErrNotFound)
}

// TestLongSequenceNoFalseRejections: 200 legitimate publishes across main
// and bandage (mixed sizes, a rollback, timestamp refreshes, the clock
// moving), with agents 1, 30 and 45 releases behind: none may be rejected
// and all must end identical to the repository.
func TestLongSequenceNoFalseRejections(t *testing.T) {
	e := newEnv(t)
	type agent struct {
		c       *Client
		channel string
		every   int // updates after every `every` publishes of its channel
		have    *Installed
		deltas  int
		fulls   int
	}
	var agents []*agent
	for _, ch := range []string{"main", BandageChannel} {
		for _, every := range []int{1, 30, 45} {
			agents = append(agents, &agent{c: e.client(newFetcher(e.repo)), channel: ch, every: every})
		}
	}
	rng := rand.New(rand.NewPCG(42, 42))
	content := map[string]Records{"main": nil, BandageChannel: nil}
	published := map[string]int{}
	update := func(a *agent, viaEvent bool) {
		t.Helper()
		var ts []byte
		if viaEvent {
			ts = e.repo.Timestamp()
		}
		prev := a.have
		in, err := a.c.Update(bg, ts, a.channel, a.have)
		if err != nil {
			t.Fatalf("%s agent (every %d) at %s/%d: %v", a.channel, a.every, a.channel, published[a.channel], err)
		}
		switch a.c.lastKind {
		case kindDelta:
			a.deltas++
		case kindFull:
			a.fulls++
		}
		if prev != nil && in.Version-prev.Version > MaxDeltaChain && a.c.lastKind == kindDelta {
			t.Fatalf("delta across %d versions", in.Version-prev.Version)
		}
		a.have = in
	}
	for i := range 200 {
		ch := "main"
		if rng.IntN(4) == 0 {
			ch = BandageChannel
		}
		var next Records
		switch cur := content[ch]; {
		case cur == nil && ch == "main":
			next, _ = Canonical(genRecords(uint64(i), 3000+rng.IntN(2000)))
		case cur == nil:
			next, _ = Canonical(genRecords(uint64(i), 1+rng.IntN(5)))
		case ch == BandageChannel:
			next = mutateSet(uint64(i), cur, rng.IntN(len(cur)+1), rng.IntN(4))
		case i == 120:
			// Once, a large change (a new engine feed).
			next = mutateSet(uint64(i), cur, rng.IntN(500), rng.IntN(2000))
		default:
			next = mutateSet(uint64(i), cur, rng.IntN(10), rng.IntN(40))
		}
		if ch == "main" && published["main"] == 60 {
			// A rollback to version 50: a new version with old content.
			rel, err := e.repo.Publish(bg, "main", nil, PublishOptions{RollbackTo: 50})
			if err != nil {
				t.Fatal(err)
			}
			if rel.RollbackOf != 50 || rel.Version != 61 {
				t.Fatalf("rollback release %+v", rel)
			}
			next, _ = e.repo.Content("main", 61)
		} else {
			e.publish(ch, next)
		}
		content[ch] = next
		published[ch] = len(e.repo.Releases(ch))
		e.clock.Advance(time.Hour)
		if i%7 == 0 {
			if err := e.repo.RefreshTimestamp(bg); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range agents {
			if a.channel == ch && published[ch]%a.every == 0 {
				update(a, i%2 == 0)
			}
		}
	}
	for _, a := range agents {
		update(a, false)
		e.sameContent(a.have, a.channel, uint64(published[a.channel]))
		t.Logf("%-7s every %2d: %3d deltas, %3d full", a.channel, a.every, a.deltas, a.fulls)
		if a.channel == "main" && a.every <= MaxDeltaChain && a.fulls != 1 {
			t.Errorf("main agent every %d took %d full blobs, want only the first", a.every, a.fulls)
		}
		if a.channel == "main" && a.every > MaxDeltaChain && a.deltas > 1 {
			t.Errorf("main agent every %d took %d deltas across more than %d versions", a.every, a.deltas, MaxDeltaChain)
		}
	}
}

func TestRootRotationFollowedByClient(t *testing.T) {
	e := newEnv(t)
	v1, _ := Canonical(genRecords(1, 200))
	e.publish("main", v1)
	f := newFetcher(e.repo)
	c := e.client(f)
	in, err := c.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}

	// Rotation 1: a new root key set, same online keys.
	next, err := GenerateRootKeys(filepath.Join(t.TempDir(), "offline2"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Two of the three old key holders suffice.
	old := &RootKeys{Keys: e.root.Keys[1:], Threshold: 2}
	if err := e.repo.RotateRoot(bg, old, next, nil); err != nil {
		t.Fatal(err)
	}
	v2 := mutateSet(2, v1, 3, 3)
	e.publish("main", v2)
	if in, err = c.Update(bg, nil, "main", in); err != nil {
		t.Fatal(err)
	}
	e.sameContent(in, "main", 2)
	if r := rootVersion(t, c.TrustedRoot()); r != 2 {
		t.Fatalf("client trusts root %d, want 2", r)
	}

	// Rotation 2: new root keys again and new online keys (recovery from an
	// online key compromise). The client, told to check roots only hourly,
	// must notice because the new timestamp does not verify.
	c2, err := NewClient(e.repo.Root(), f, ClientOptions{Now: e.clock.Now, Logger: quiet, RootCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	in2, err := c2.Update(bg, nil, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	third, err := GenerateRootKeys(filepath.Join(t.TempDir(), "offline3"), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	online, err := GenerateOnlineKeys(filepath.Join(t.TempDir(), "online2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.repo.RotateRoot(bg, next, third, online); err != nil {
		t.Fatal(err)
	}
	e.publish("main", mutateSet(3, v2, 3, 3))
	e.publish(BandageChannel, genRecords(5, 2))
	e.followsRotation(t, []*Client{c, c2}, []*Installed{in, in2}, 3, 3)
	// A repository reopened with the new online keys works; the old ones
	// are refused.
	if _, err := OpenRepo(e.dir, e.online, e.opts); err == nil {
		t.Fatal("OpenRepo accepted revoked online keys")
	}
	r2, err := OpenRepo(e.dir, online, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Publish(bg, "main", genRecords(7, 10), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(bg, nil, "main", nil); err != nil {
		t.Fatal(err)
	}
}

func TestRotateRootNeedsOldThreshold(t *testing.T) {
	e := newEnv(t)
	next, err := GenerateRootKeys(filepath.Join(t.TempDir(), "n"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	err = e.repo.RotateRoot(bg, &RootKeys{Keys: e.root.Keys[:1], Threshold: 2}, next, nil)
	wantErr(t, err, ErrKeys)
	if got := rootVersion(t, e.repo.Root()); got != 1 {
		t.Fatalf("root version %d after a refused rotation", got)
	}
}

// followsRotation checks that each client (with what it has installed)
// updates main to version mainV and the bandage channel to its version 1,
// and then trusts root version root.
func (e *env) followsRotation(t *testing.T, cs []*Client, have []*Installed, mainV uint64, root int64) {
	t.Helper()
	for i, c := range cs {
		got, err := c.Update(bg, nil, "main", have[i])
		if err != nil {
			t.Fatal(err)
		}
		e.sameContent(got, "main", mainV)
		b, err := c.Update(bg, nil, BandageChannel, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.sameContent(b, BandageChannel, 1)
		if r := rootVersion(t, c.TrustedRoot()); r != root {
			t.Fatalf("client %d trusts root %d, want %d", i, r, root)
		}
	}
}

func rootVersion(t testing.TB, b []byte) int64 {
	t.Helper()
	m, err := metadata.Root().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.Signed.Version
}

func TestClientPersistedRootSkipsChain(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 10))
	next, _ := GenerateRootKeys(filepath.Join(t.TempDir(), "n"), 2, 2)
	if err := e.repo.RotateRoot(bg, e.root, next, nil); err != nil {
		t.Fatal(err)
	}
	f := newFetcher(e.repo)
	c := e.client(f) // pinned to the current root (2)
	if _, err := c.Update(bg, nil, "main", nil); err != nil {
		t.Fatal(err)
	}
	_, paths := f.reset()
	if paths[0] != "metadata/3.root.json" {
		t.Fatalf("first fetch %q, want the probe for root 3", paths[0])
	}
}

// TestForkedClientsConcurrently: forks share verified state; updating them
// in parallel must neither race (go test -race) nor let one see another's
// state.
func TestForkedClientsConcurrently(t *testing.T) {
	e := newEnv(t)
	e.publish("main", genRecords(1, 100))
	e.publish(BandageChannel, genRecords(2, 1))
	proto := e.client(newFetcher(e.repo))
	have, err := proto.Update(bg, nil, BandageChannel, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(BandageChannel, genRecords(3, 2))
	ts := e.repo.Timestamp()
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			c := proto.Fork(nil)
			if i%2 == 0 {
				c = proto.Fork(newFetcher(e.repo))
			}
			in, err := c.Update(bg, ts, BandageChannel, have)
			if err == nil && in.Version != 2 {
				err = fmt.Errorf("fork installed version %d", in.Version)
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The prototype itself did not move.
	if got, err := proto.Update(bg, nil, BandageChannel, have); err != nil || got.Version != 2 || proto.lastKind != kindFull {
		t.Fatalf("prototype: %v", err)
	}
}
