package update

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is an injectable, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a repository in a temp dir with its keys and clock.
type env struct {
	t      testing.TB
	dir    string
	root   *RootKeys
	online *OnlineKeys
	clock  *clock
	repo   *Repo
	opts   RepoOptions
}

func newEnv(t testing.TB, opts ...func(*RepoOptions)) *env {
	t.Helper()
	base := t.TempDir()
	rk, err := GenerateRootKeys(filepath.Join(base, "offline"), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := GenerateOnlineKeys(filepath.Join(base, "online"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: filepath.Join(base, "repo"), root: rk, online: ok, clock: newClock()}
	e.opts = RepoOptions{Now: e.clock.Now, Logger: quiet}
	for _, o := range opts {
		o(&e.opts)
	}
	e.repo, err = InitRepo(e.dir, rk, ok, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) publish(channel string, recs Records) Release {
	e.t.Helper()
	rel, err := e.repo.Publish(context.Background(), channel, recs, PublishOptions{})
	if err != nil {
		e.t.Fatalf("publish %s: %v", channel, err)
	}
	return rel
}

// fetcher serves the repository through its Handler in-process, counts
// the bytes it returns, and lets a test replace or mutate any file.
type fetcher struct {
	mu       sync.Mutex
	inner    Fetcher
	override map[string][]byte
	mutate   func(path string, b []byte) []byte
	bytes    int64
	paths    []string
}

func newFetcher(r *Repo) *fetcher {
	return &fetcher{inner: LocalFetcher(Handler(r)), override: map[string][]byte{}}
}

func (f *fetcher) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	f.mu.Lock()
	ov, has := f.override[path]
	mut := f.mutate
	f.paths = append(f.paths, path) // attempts, including 404s
	f.mu.Unlock()
	var b []byte
	var err error
	if has {
		if int64(len(ov)) > max {
			return nil, fmt.Errorf("%w: %s (test override)", ErrTooLarge, path)
		}
		b = append([]byte(nil), ov...)
	} else if b, err = f.inner.Get(ctx, path, max); err != nil {
		return nil, err
	}
	if mut != nil {
		b = mut(path, b)
		if int64(len(b)) > max {
			return nil, fmt.Errorf("%w: %s (test mutation)", ErrTooLarge, path)
		}
	}
	f.mu.Lock()
	f.bytes += int64(len(b))
	f.mu.Unlock()
	return b, nil
}

func (f *fetcher) set(path string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.override[path] = b
}

func (f *fetcher) reset() (int64, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, p := f.bytes, f.paths
	f.bytes, f.paths = 0, nil
	return n, p
}

func (e *env) client(f Fetcher) *Client {
	e.t.Helper()
	c, err := NewClient(e.repo.Root(), f, ClientOptions{Now: e.clock.Now, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// wantErr fails unless err wraps want.
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
}

// sameContent fails unless in holds exactly the records of version of
// channel in the repository.
func (e *env) sameContent(in *Installed, channel string, version uint64) {
	e.t.Helper()
	if in == nil || in.Channel != channel || in.Version != version {
		e.t.Fatalf("installed %+v, want %s/%d", in, channel, version)
	}
	want, err := e.repo.Content(channel, version)
	if err != nil {
		e.t.Fatal(err)
	}
	if ContentHash(in.Records) != ContentHash(want) || len(in.Records) != len(want) {
		e.t.Fatalf("%s/%d: installed content differs from the repository's", channel, version)
	}
	if ContentHash(in.Records) != in.ContentSHA256 {
		e.t.Fatalf("%s/%d: ContentSHA256 does not match the records", channel, version)
	}
}

// metaBytes reads a versioned metadata file of the repository.
func (e *env) metaFile(name string) []byte {
	e.t.Helper()
	f := LocalFetcher(Handler(e.repo))
	b, err := f.Get(context.Background(), "metadata/"+name, 1<<24)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// current returns the parsed current timestamp and snapshot.
func (e *env) current() (*metadata.Metadata[metadata.TimestampType], *metadata.Metadata[metadata.SnapshotType]) {
	e.t.Helper()
	ts, err := metadata.Timestamp().FromBytes(e.repo.Timestamp())
	if err != nil {
		e.t.Fatal(err)
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	s, err := metadata.Snapshot().FromBytes(e.metaFile(fmt.Sprintf("%d.snapshot.json", sv)))
	if err != nil {
		e.t.Fatal(err)
	}
	return ts, s
}

// signWith replaces m's signatures by one of key and returns the bytes.
func signWith[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	m.ClearSignatures()
	for _, k := range keys {
		if _, err := m.Sign(signer(k)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	k, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Signature-like records: "<platform>.<category>.<family>-<id>-<rev>:<target>:<offset>:<hex>",
// 60–120 bytes, deterministic for a seed.
var (
	platforms  = []string{"Win", "Unix", "Osx", "Doc", "Xls", "Pdf", "Html", "Js", "Email", "Andr", "Java", "Multios"}
	categories = []string{"Trojan", "Malware", "Exploit", "Downloader", "Ransomware", "Phishing", "Worm", "Packed", "Dropper", "Coinminer"}
	families   = []string{"Agent", "Emotet", "Qakbot", "AsyncRAT", "Remcos", "Lokibot", "FormBook", "AgentTesla", "Mirai", "Gafgyt",
		"CobaltStrike", "IcedID", "Dridex", "TrickBot", "Ursnif", "NanoCore", "njRAT", "Zeus", "Ramnit", "Sality", "Virut",
		"Lazarus", "Kimsuky", "PlugX", "ShadowPad", "Mimikatz", "Sliver", "Havoc", "Raccoon", "Vidar", "RedLine", "Lumma"}
	targetsSpec = []string{"0:*", "1:EP+0", "1:SE0", "1:*", "3:*", "4:*", "7:*", "0:0", "1:EOF-512"}
)

const hexdigits = "0123456789abcdef"

func genRecord(rng *rand.Rand) []byte {
	var b strings.Builder
	b.WriteString(platforms[rng.IntN(len(platforms))])
	b.WriteByte('.')
	b.WriteString(categories[rng.IntN(len(categories))])
	b.WriteByte('.')
	b.WriteString(families[rng.IntN(len(families))])
	fmt.Fprintf(&b, "-%07d-%d:%s:", rng.IntN(10_000_000), rng.IntN(3), targetsSpec[rng.IntN(len(targetsSpec))])
	n := 60 + rng.IntN(61) - b.Len()
	if n < 16 {
		n = 16
	}
	n &^= 1
	for range n {
		b.WriteByte(hexdigits[rng.IntN(16)])
	}
	return []byte(b.String())
}

func genRecords(seed uint64, n int) Records {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make(Records, n)
	for i := range out {
		out[i] = genRecord(rng)
	}
	return out
}

// mutateSet returns a canonical copy of base with del records removed (at
// random) and add new ones added.
func mutateSet(seed uint64, base Records, del, add int) Records {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make(Records, 0, len(base)+add)
	drop := map[int]bool{}
	for len(drop) < del && len(drop) < len(base) {
		drop[rng.IntN(len(base))] = true
	}
	for i, r := range base {
		if !drop[i] {
			out = append(out, r)
		}
	}
	for range add {
		out = append(out, genRecord(rng))
	}
	c, err := Canonical(out)
	if err != nil {
		panic(err)
	}
	return c
}
