package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Installed is what an agent has installed of a channel.
type Installed struct {
	Channel       string
	Version       uint64
	Records       Records
	ContentSHA256 [32]byte
}

// Limits bound what a Client downloads and decodes. Zero fields take the
// defaults. Snapshot and targets metadata are fetched with the exact length
// the signed parent states; their limits cap that (and apply if a parent
// states none).
type Limits struct {
	Timestamp int64 // default 16 KiB
	Root      int64 // default 512 KiB
	Snapshot  int64 // default 1 MiB
	Targets   int64 // default 8 MiB (per targets role file)
	Blob      int64 // default 512 MiB (compressed)
	Decoded   int64 // default 1 GiB (one decompressed blob)
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Timestamp, 16<<10)
	def(&l.Root, 512<<10)
	def(&l.Snapshot, 1<<20)
	def(&l.Targets, 8<<20)
	def(&l.Blob, 512<<20)
	def(&l.Decoded, defaultMaxBlob)
	return l
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Now is the clock used for expiry; tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
	Limits Limits
	// RootCheckInterval: how often an update first looks for a newer root
	// (metadata/N+1.root.json). 0 checks on every update, as TUF's client
	// workflow prescribes; a positive interval saves that request (a 404
	// most of the time) for fleets, and the client still checks at once when
	// a timestamp fails to verify, which is what a key rotation looks like.
	RootCheckInterval time.Duration
}

// maxRootRotations bounds the root chain followed in one update, so a
// malicious mirror cannot keep an agent walking forever.
const maxRootRotations = 64

// Client is the agent side of the repository. It keeps the trusted
// metadata in memory (a few kilobytes: trimmed to what later checks need)
// and is safe for concurrent use (updates are serialised).
type Client struct {
	mu     sync.Mutex
	f      Fetcher
	now    func() time.Time
	log    *slog.Logger
	limits Limits
	every  time.Duration

	rootBytes []byte
	root      *metadata.Metadata[metadata.RootType]
	ts        *metadata.Metadata[metadata.TimestampType]
	tsRaw     []byte // the bytes ts was verified from
	snap      *metadata.Metadata[metadata.SnapshotType]
	roles     map[string]*roleCache // targets role name -> verified content
	channels  map[string]bool       // channels whose targets are retained
	rootCheck time.Time

	lastKind string // "full", "delta" or "" (nothing to do): for tests and logs
}

// roleCache is a verified targets role: the metadata trimmed to version,
// expiry and delegations (all later TUF checks use), and the parsed
// targets of the channels this client follows.
type roleCache struct {
	meta      *metadata.Metadata[metadata.TargetsType]
	byChannel map[string][]target
}

// target is one verified target, parsed from its path and custom metadata.
type target struct {
	name     string
	version  uint64
	from     uint64 // 0 for a full blob
	length   int64
	sha256   [32]byte
	content  [32]byte
	records  int
	released time.Time
}

// NewClient starts a client from a trusted root (the bytes pinned at
// enrollment, or the last root it returned from TrustedRoot).
func NewClient(root []byte, f Fetcher, opts ClientOptions) (*Client, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: no fetcher", ErrInvalid)
	}
	if err := precheck(root, metadata.ROOT); err != nil {
		return nil, err
	}
	var tm *trustedmetadata.TrustedMetadata
	err := guard(func() (err error) {
		tm, err = trustedmetadata.New(root)
		return err
	})
	if err != nil {
		return nil, mapTUF("trusted root", err)
	}
	c := &Client{
		f:         f,
		now:       opts.Now,
		log:       opts.Logger,
		limits:    opts.Limits.withDefaults(),
		every:     opts.RootCheckInterval,
		rootBytes: slices.Clone(root),
		root:      trimRoot(tm.Root),
		roles:     map[string]*roleCache{},
		channels:  map[string]bool{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Fork returns a new client that starts from c's trusted state (root,
// timestamp, snapshot, verified targets) and fetches through f. The state
// is immutable once verified, so it is shared, not copied, until either
// client updates: a simulation of many agents creates one client and forks
// it, paying memory only for what each agent updates afterwards.
func (c *Client) Fork(f Fetcher) *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f == nil {
		f = c.f
	}
	n := &Client{f: f, now: c.now, log: c.log, limits: c.limits, every: c.every,
		rootBytes: c.rootBytes, root: c.root, ts: c.ts, snap: c.snap,
		roles:    make(map[string]*roleCache, len(c.roles)),
		channels: make(map[string]bool, len(c.channels)), rootCheck: c.rootCheck}
	for k, v := range c.roles {
		n.roles[k] = v
	}
	for k, v := range c.channels {
		n.channels[k] = v
	}
	return n
}

// TrustedRoot returns the newest root this client verified. An agent that
// persists it starts from there next time instead of replaying rotations.
func (c *Client) TrustedRoot() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rootBytes)
}

// Update brings channel to the latest version in the signed metadata.
// timestamp is signed timestamp.json bytes received out of band (the event
// stream) or nil to fetch it. have is what is installed (nil: nothing).
// It returns have itself when it is already current, or the new
// installation. Errors wrap ErrVerify, ErrRollback, ErrExpired,
// ErrTooLarge, ErrDelta, ErrFormat or ErrNotFound.
func (c *Client) Update(ctx context.Context, timestamp []byte, channel string, have *Installed) (*Installed, error) {
	return c.update(ctx, timestamp, channel, 0, have)
}

// UpdateTo installs version of channel, which must be listed in the current
// signed metadata (the latest or one of the few kept before it). It may go
// backwards: pinning is the caller's decision.
func (c *Client) UpdateTo(ctx context.Context, timestamp []byte, channel string, version uint64, have *Installed) (*Installed, error) {
	if version == 0 {
		return nil, fmt.Errorf("%w: version 0", ErrInvalid)
	}
	return c.update(ctx, timestamp, channel, version, have)
}

func (c *Client) update(ctx context.Context, timestamp []byte, channel string, want uint64, have *Installed) (*Installed, error) {
	if err := ValidChannel(channel); err != nil {
		return nil, err
	}
	if have != nil && have.Channel != channel {
		return nil, fmt.Errorf("%w: installed set is channel %q, not %q", ErrInvalid, have.Channel, channel)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastKind = ""
	c.channels[channel] = true
	now := c.now().UTC()
	if err := c.refresh(ctx, now, timestamp); err != nil {
		return nil, err
	}
	targets, err := c.channelTargets(ctx, now, channel)
	if err != nil {
		return nil, err
	}
	t, err := pick(targets, channel, want, have)
	if err != nil || t == nil {
		return have, err
	}
	return c.install(ctx, channel, t, have)
}

// refresh runs TUF's client workflow up to a trusted, unexpired snapshot:
// root (5.3), timestamp (5.4), snapshot (5.5).
func (c *Client) refresh(ctx context.Context, now time.Time, timestamp []byte) error {
	checkedRoot := false
	if c.every <= 0 || c.rootCheck.IsZero() || now.Sub(c.rootCheck) >= c.every {
		if err := c.updateRoot(ctx, now); err != nil {
			return err
		}
		checkedRoot = true
	}
	if timestamp == nil {
		b, err := c.f.Get(ctx, "metadata/timestamp.json", c.limits.Timestamp)
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		timestamp = b
	} else if int64(len(timestamp)) > c.limits.Timestamp {
		return fmt.Errorf("%w: timestamp of %d bytes, limit %d", ErrTooLarge, len(timestamp), c.limits.Timestamp)
	}
	err := c.loadTimestamp(now, timestamp)
	if errors.Is(err, ErrVerify) && !checkedRoot {
		// A timestamp signed by a key the root does not list: maybe the
		// keys were rotated since the last root check. Look, then retry.
		if rerr := c.updateRoot(ctx, now); rerr != nil {
			return rerr
		}
		err = c.loadTimestamp(now, timestamp)
	}
	if err != nil {
		return err
	}
	return c.loadSnapshot(ctx, now)
}

// updateRoot follows root versions N+1, N+2, ... until one is missing. Each
// must be signed by a threshold of the previous root's keys and of its own
// (trustedmetadata.UpdateRoot). Expiry of the final root is checked with the
// timestamp.
func (c *Client) updateRoot(ctx context.Context, now time.Time) error {
	for range maxRootRotations {
		next := c.root.Signed.Version + 1
		b, err := c.f.Get(ctx, fmt.Sprintf("metadata/%d.root.json", next), c.limits.Root)
		if errors.Is(err, ErrNotFound) {
			c.rootCheck = now
			return nil
		}
		if err != nil {
			return fmt.Errorf("root %d: %w", next, err)
		}
		if err := precheck(b, metadata.ROOT); err != nil {
			return fmt.Errorf("root %d: %w", next, err)
		}
		tm := &trustedmetadata.TrustedMetadata{Root: c.root, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: now}
		var nr *metadata.Metadata[metadata.RootType]
		if err := guard(func() (err error) { nr, err = tm.UpdateRoot(b); return err }); err != nil {
			return mapTUF(fmt.Sprintf("root %d", next), err)
		}
		// TUF 5.3.11: if the timestamp or snapshot keys changed, forget the
		// trusted timestamp and snapshot, so recovery from a compromised key
		// (whose holder may have pushed versions far ahead) is possible.
		if !sameRole(c.root, nr, metadata.TIMESTAMP) || !sameRole(c.root, nr, metadata.SNAPSHOT) {
			c.ts, c.snap = nil, nil
		}
		// Cached targets were verified against the old keys; re-verify.
		clear(c.roles)
		c.tsRaw = nil
		c.root = trimRoot(nr)
		c.rootBytes = slices.Clone(b)
		c.log.Debug("update: new root", "version", nr.Signed.Version)
	}
	return fmt.Errorf("%w: more than %d root versions in one update", ErrVerify, maxRootRotations)
}

func (c *Client) loadTimestamp(now time.Time, b []byte) error {
	// The very bytes verified last time, under the same root: an agent
	// following several channels hands the same pushed timestamp to each
	// update. Only its expiry can have changed.
	if c.ts != nil && c.tsRaw != nil && bytes.Equal(b, c.tsRaw) {
		if c.root.Signed.IsExpired(now) {
			return fmt.Errorf("%w: root version %d expired at %s", ErrExpired, c.root.Signed.Version, c.root.Signed.Expires)
		}
		if c.ts.Signed.IsExpired(now) {
			return fmt.Errorf("%w: timestamp version %d expired at %s", ErrExpired, c.ts.Signed.Version, c.ts.Signed.Expires)
		}
		return nil
	}
	if err := precheck(b, metadata.TIMESTAMP); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	tm := &trustedmetadata.TrustedMetadata{Root: c.root, Timestamp: c.ts, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: now}
	var ts *metadata.Metadata[metadata.TimestampType]
	err := guard(func() (err error) { ts, err = tm.UpdateTimestamp(b); return err })
	if errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
		// The timestamp we already trust (an event and a poll crossing). It
		// must still be valid now, or a frozen repository goes unnoticed.
		if c.ts.Signed.IsExpired(now) {
			return fmt.Errorf("%w: timestamp version %d expired at %s", ErrExpired, c.ts.Signed.Version, c.ts.Signed.Expires)
		}
		return nil
	}
	if err != nil {
		return mapTUF("timestamp", err)
	}
	if ts.Signed.Meta["snapshot.json"] == nil {
		return fmt.Errorf("%w: timestamp lists no snapshot", ErrVerify)
	}
	c.ts = trimTimestamp(ts)
	c.tsRaw = slices.Clone(b)
	return nil
}

func (c *Client) loadSnapshot(ctx context.Context, now time.Time) error {
	mf := c.ts.Signed.Meta["snapshot.json"]
	if c.snap != nil && c.snap.Signed.Version == mf.Version {
		if c.snap.Signed.IsExpired(now) {
			return fmt.Errorf("%w: snapshot version %d expired at %s", ErrExpired, c.snap.Signed.Version, c.snap.Signed.Expires)
		}
		return nil
	}
	b, err := c.fetchMeta(ctx, fmt.Sprintf("%d.snapshot.json", mf.Version), mf, c.limits.Snapshot)
	if err != nil {
		return err
	}
	if err := precheck(b, metadata.SNAPSHOT); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	// The previously trusted snapshot takes part as TUF's "trusted local
	// snapshot": the new one may not drop or roll back any role it lists.
	tm := &trustedmetadata.TrustedMetadata{Root: c.root, Timestamp: c.ts, Snapshot: c.snap, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: now}
	var s *metadata.Metadata[metadata.SnapshotType]
	if err := guard(func() (err error) { s, err = tm.UpdateSnapshot(b, false); return err }); err != nil {
		return mapTUF("snapshot", err)
	}
	c.snap = trimSnapshot(s)
	return nil
}

// fetchMeta fetches a metadata file whose signed parent may state its
// length: then exactly that many bytes are accepted.
func (c *Client) fetchMeta(ctx context.Context, name string, mf *metadata.MetaFiles, limit int64) ([]byte, error) {
	max := limit
	if mf.Length > 0 {
		if mf.Length > limit {
			return nil, fmt.Errorf("%w: %s is listed at %d bytes, limit %d", ErrTooLarge, name, mf.Length, limit)
		}
		max = mf.Length
	}
	b, err := c.f.Get(ctx, "metadata/"+name, max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// channelTargets returns the verified targets of channel: those of the
// top-level targets role, then those of each delegated role responsible for
// the channel's paths, in delegation order (TUF's pre-order search, one
// level deep; a name found earlier wins).
func (c *Client) channelTargets(ctx context.Context, now time.Time, channel string) ([]target, error) {
	top, err := c.loadRole(ctx, now, metadata.TARGETS, nil)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(top.byChannel[channel])
	seen := map[string]bool{}
	for _, t := range out {
		seen[t.name] = true
	}
	if d := top.meta.Signed.Delegations; d != nil {
		probe := channel + "/1/" + kindFull
		for _, rr := range d.GetRolesForTarget(probe) {
			rc, err := c.loadRole(ctx, now, rr.Name, top.meta)
			if err != nil {
				return nil, err
			}
			for _, t := range rc.byChannel[channel] {
				if !seen[t.name] {
					seen[t.name] = true
					out = append(out, t)
				}
			}
			if rr.Terminating {
				break
			}
		}
	}
	return out, nil
}

var roleNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// loadRole returns the verified targets role, from the cache when the
// snapshot still lists the cached version and the cache holds every
// followed channel, else fetched and verified against the snapshot and its
// delegator (root for "targets", the top-level targets for a delegated one).
func (c *Client) loadRole(ctx context.Context, now time.Time, role string, delegator *metadata.Metadata[metadata.TargetsType]) (*roleCache, error) {
	if !roleNameRE.MatchString(role) {
		return nil, fmt.Errorf("%w: delegated role name %q", ErrVerify, role)
	}
	mf := c.snap.Signed.Meta[role+".json"]
	if mf == nil {
		return nil, fmt.Errorf("%w: snapshot does not list %s", ErrVerify, role)
	}
	if rc := c.roles[role]; rc != nil && rc.meta.Signed.Version == mf.Version && rc.covers(c.channels) {
		if rc.meta.Signed.IsExpired(now) {
			return nil, fmt.Errorf("%w: %s version %d expired at %s", ErrExpired, role, rc.meta.Signed.Version, rc.meta.Signed.Expires)
		}
		return rc, nil
	}
	name := fmt.Sprintf("%d.%s.json", mf.Version, role)
	b, err := c.fetchMeta(ctx, name, mf, c.limits.Targets)
	if err != nil {
		return nil, err
	}
	if err := precheck(b, metadata.TARGETS); err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	tm := &trustedmetadata.TrustedMetadata{Root: c.root, Timestamp: c.ts, Snapshot: c.snap, Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: now}
	delegatorName := metadata.ROOT
	var dr *metadata.DelegatedRole
	if delegator != nil {
		if delegator.Signed.Delegations == nil {
			return nil, fmt.Errorf("%w: no delegations for %s", ErrVerify, role)
		}
		delegatorName = metadata.TARGETS
		tm.Targets[metadata.TARGETS] = delegator
		for i := range delegator.Signed.Delegations.Roles {
			if delegator.Signed.Delegations.Roles[i].Name == role {
				dr = &delegator.Signed.Delegations.Roles[i]
			}
		}
		if dr == nil {
			return nil, fmt.Errorf("%w: no delegation for %s", ErrVerify, role)
		}
	}
	var m *metadata.Metadata[metadata.TargetsType]
	if err := guard(func() (err error) { m, err = tm.UpdateDelegatedTargets(b, role, delegatorName); return err }); err != nil {
		return nil, mapTUF(role, err)
	}
	rc := &roleCache{meta: trimTargets(m), byChannel: map[string][]target{}}
	for ch := range c.channels {
		rc.byChannel[ch] = nil // present = retained, even if empty
	}
	for name, tf := range m.Signed.Targets {
		// TUF: a delegated role is trusted only for its paths. A target
		// outside them is not just ignored: it means the role's key signed
		// what it must not, so nothing from this role is used.
		if dr != nil {
			if ok, _ := dr.IsDelegatedPath(name); !ok {
				return nil, fmt.Errorf("%w: role %s lists %s, outside its delegated paths %v", ErrVerify, role, name, dr.Paths)
			}
		}
		t, ch, err := parseTarget(name, tf)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrVerify, role, err)
		}
		if _, follow := rc.byChannel[ch]; follow {
			rc.byChannel[ch] = append(rc.byChannel[ch], t)
		}
	}
	c.roles[role] = rc
	return rc, nil
}

func (rc *roleCache) covers(channels map[string]bool) bool {
	for ch := range channels {
		if _, ok := rc.byChannel[ch]; !ok {
			return false
		}
	}
	return true
}

// parseTarget checks that a target's path and its signed custom metadata
// agree (a signer cannot label main content as a bandage) and returns it.
func parseTarget(name string, tf *metadata.TargetFiles) (target, string, error) {
	var t target
	parts := strings.Split(name, "/")
	if len(parts) != 3 || ValidChannel(parts[0]) != nil {
		return t, "", fmt.Errorf("target %q: not <channel>/<version>/<kind>", name)
	}
	ch := parts[0]
	v, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || v == 0 || parts[1] != strconv.FormatUint(v, 10) {
		return t, "", fmt.Errorf("target %q: bad version", name)
	}
	kind := parts[2]
	if f, ok := strings.CutPrefix(kind, kindDelta+"-"); ok {
		from, err := strconv.ParseUint(f, 10, 64)
		if err != nil || from == 0 || from >= v || f != strconv.FormatUint(from, 10) {
			return t, "", fmt.Errorf("target %q: bad delta base", name)
		}
		t.from, kind = from, kindDelta
	} else if kind != kindFull {
		return t, "", fmt.Errorf("target %q: unknown kind", name)
	}
	if tf.Custom == nil {
		return t, "", fmt.Errorf("target %q: no custom metadata", name)
	}
	var cu targetCustom
	if err := json.Unmarshal(*tf.Custom, &cu); err != nil {
		return t, "", fmt.Errorf("target %q: custom metadata: %v", name, err)
	}
	if cu.Channel != ch || cu.Version != v || cu.Kind != kind || cu.From != t.from || cu.Records < 0 {
		return t, "", fmt.Errorf("target %q: custom metadata disagrees with the path", name)
	}
	sum := tf.Hashes["sha256"]
	if len(sum) != 32 || tf.Length <= 0 {
		return t, "", fmt.Errorf("target %q: needs a sha256 and a length", name)
	}
	content, err := hex.DecodeString(cu.ContentSHA256)
	if err != nil || len(content) != 32 {
		return t, "", fmt.Errorf("target %q: bad content_sha256", name)
	}
	t.name, t.version, t.length, t.records, t.released = name, v, tf.Length, cu.Records, cu.PublishedAt
	copy(t.sha256[:], sum)
	copy(t.content[:], content)
	return t, ch, nil
}

// pick chooses what to download: nil when have is already the wanted
// version, else the delta from have's version if listed, else the full blob.
func pick(targets []target, channel string, want uint64, have *Installed) (*target, error) {
	var full *target
	for i := range targets {
		t := &targets[i]
		if t.from != 0 {
			continue
		}
		if (want == 0 && (full == nil || t.version > full.version)) || (want != 0 && t.version == want) {
			full = t
		}
	}
	if full == nil {
		if want != 0 {
			return nil, fmt.Errorf("%w: %s version %d is not in the signed metadata", ErrNotFound, channel, want)
		}
		return nil, fmt.Errorf("%w: channel %s has no release in the signed metadata", ErrNotFound, channel)
	}
	if have == nil {
		return full, nil
	}
	switch {
	case have.Version == full.version && have.ContentSHA256 == full.content:
		return nil, nil
	case have.Version > full.version && want == 0:
		return nil, fmt.Errorf("%w: %s version %d is installed but the signed latest is %d", ErrRollback, channel, have.Version, full.version)
	case have.Version < full.version:
		for i := range targets {
			t := &targets[i]
			if t.version == full.version && t.from == have.Version {
				return t, nil
			}
		}
	}
	// Further behind than the deltas reach, going back to a pinned older
	// version, or an installed set that is not what its version should be.
	return full, nil
}

// install downloads t by its sha256 with its exact signed length, verifies
// it, and decodes or applies it.
func (c *Client) install(ctx context.Context, channel string, t *target, have *Installed) (*Installed, error) {
	if t.length > c.limits.Blob {
		return nil, fmt.Errorf("%w: %s is listed at %d bytes, limit %d", ErrTooLarge, t.name, t.length, c.limits.Blob)
	}
	blob, err := c.f.Get(ctx, "blobs/"+hex.EncodeToString(t.sha256[:]), t.length)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	if int64(len(blob)) != t.length {
		return nil, fmt.Errorf("%w: %s is %d bytes, signed length %d", ErrVerify, t.name, len(blob), t.length)
	}
	if sha256.Sum256(blob) != t.sha256 {
		return nil, fmt.Errorf("%w: %s does not match its signed sha256", ErrVerify, t.name)
	}
	var recs Records
	if t.from != 0 {
		d, err := DecodeDelta(blob, c.limits.Decoded)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		if d.Channel != channel || d.From != t.from || d.To != t.version || d.ToSHA256 != t.content || d.ToRecords != t.records {
			return nil, fmt.Errorf("%w: %s: blob header disagrees with the signed metadata", ErrVerify, t.name)
		}
		if recs, err = d.Apply(have.Records); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		c.lastKind = kindDelta
	} else {
		h, r, err := DecodeFull(blob, c.limits.Decoded)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		if h.Channel != channel || h.Version != t.version || h.ContentSHA256 != t.content || h.Records != t.records {
			return nil, fmt.Errorf("%w: %s: blob header disagrees with the signed metadata", ErrVerify, t.name)
		}
		recs = r
		c.lastKind = kindFull
	}
	c.log.Debug("update: installed", "channel", channel, "version", t.version, "via", c.lastKind, "bytes", t.length)
	return &Installed{Channel: channel, Version: t.version, Records: recs, ContentSHA256: t.content}, nil
}

// precheck refuses JSON that is not an object whose "signed" member is an
// object with the expected "_type": go-tuf's type check asserts these shapes
// without checking and would panic on them.
func precheck(b []byte, typ string) error {
	var shape struct {
		Signed *struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		return fmt.Errorf("%w: %s metadata is not valid JSON of the expected shape: %v", ErrVerify, typ, err)
	}
	if shape.Signed == nil || shape.Signed.Type != typ {
		return fmt.Errorf("%w: expected %s metadata", ErrVerify, typ)
	}
	return nil
}

// guard turns a panic inside the TUF library into an error: its parsers
// make type assertions on untrusted input, and an agent must survive a
// hostile mirror.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: metadata rejected by the TUF parser: %v", ErrVerify, p)
		}
	}()
	return f()
}

// mapTUF wraps a go-tuf error in the package sentinel for its kind.
func mapTUF(stage string, err error) error {
	var sentinel error
	switch {
	case errors.Is(err, ErrVerify):
		return fmt.Errorf("%s: %w", stage, err)
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		sentinel = ErrExpired
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		// For timestamp and snapshot a bad version is an older one than
		// trusted. For root and targets roles it is a file that is not the
		// version its signed parent names: a substitution, not a rollback.
		sentinel = ErrVerify
		if stage == "timestamp" || stage == "snapshot" {
			sentinel = ErrRollback
		}
	default:
		// Signatures below threshold, hash or length mismatch, wrong type,
		// missing delegation, malformed JSON: all mean "do not trust this".
		sentinel = ErrVerify
	}
	return fmt.Errorf("%w: %s: %w", sentinel, stage, err)
}

// The trim functions keep, of verified metadata, what later TUF checks read
// (versions, expiry, keys and roles, meta lengths and hashes, delegations)
// and drop signatures and the parser's bookkeeping maps: verified metadata
// is never re-verified or re-serialised, and a simulation runs ten thousand
// clients in one process. The results are never modified, so clients may
// share them (Fork).

func trimRoot(m *metadata.Metadata[metadata.RootType]) *metadata.Metadata[metadata.RootType] {
	s := m.Signed
	out := metadata.RootType{Type: s.Type, SpecVersion: s.SpecVersion, ConsistentSnapshot: s.ConsistentSnapshot,
		Version: s.Version, Expires: s.Expires,
		Keys: make(map[string]*metadata.Key, len(s.Keys)), Roles: make(map[string]*metadata.Role, len(s.Roles))}
	for id, k := range s.Keys {
		out.Keys[id] = trimKey(k)
	}
	for name, r := range s.Roles {
		out.Roles[name] = &metadata.Role{KeyIDs: r.KeyIDs, Threshold: r.Threshold}
	}
	return &metadata.Metadata[metadata.RootType]{Signed: out}
}

func trimKey(k *metadata.Key) *metadata.Key {
	return &metadata.Key{Type: k.Type, Scheme: k.Scheme, Value: metadata.KeyVal{PublicKey: k.Value.PublicKey}}
}

func trimMeta(meta map[string]*metadata.MetaFiles) map[string]*metadata.MetaFiles {
	out := make(map[string]*metadata.MetaFiles, len(meta))
	for name, mf := range meta {
		out[name] = &metadata.MetaFiles{Version: mf.Version, Length: mf.Length, Hashes: mf.Hashes}
	}
	return out
}

func trimTimestamp(m *metadata.Metadata[metadata.TimestampType]) *metadata.Metadata[metadata.TimestampType] {
	s := m.Signed
	return &metadata.Metadata[metadata.TimestampType]{Signed: metadata.TimestampType{
		Type: s.Type, SpecVersion: s.SpecVersion, Version: s.Version, Expires: s.Expires, Meta: trimMeta(s.Meta)}}
}

func trimSnapshot(m *metadata.Metadata[metadata.SnapshotType]) *metadata.Metadata[metadata.SnapshotType] {
	s := m.Signed
	return &metadata.Metadata[metadata.SnapshotType]{Signed: metadata.SnapshotType{
		Type: s.Type, SpecVersion: s.SpecVersion, Version: s.Version, Expires: s.Expires, Meta: trimMeta(s.Meta)}}
}

// trimTargets keeps version, expiry and delegations: the targets themselves
// are kept parsed in roleCache.byChannel, for followed channels only.
func trimTargets(m *metadata.Metadata[metadata.TargetsType]) *metadata.Metadata[metadata.TargetsType] {
	s := m.Signed
	out := metadata.TargetsType{Type: s.Type, SpecVersion: s.SpecVersion, Version: s.Version, Expires: s.Expires}
	if d := s.Delegations; d != nil {
		nd := &metadata.Delegations{Keys: make(map[string]*metadata.Key, len(d.Keys))}
		for id, k := range d.Keys {
			nd.Keys[id] = trimKey(k)
		}
		for _, r := range d.Roles {
			nd.Roles = append(nd.Roles, metadata.DelegatedRole{Name: r.Name, KeyIDs: r.KeyIDs, Threshold: r.Threshold,
				Terminating: r.Terminating, Paths: r.Paths, PathHashPrefixes: r.PathHashPrefixes})
		}
		if sr := d.SuccinctRoles; sr != nil {
			nd.SuccinctRoles = &metadata.SuccinctRoles{KeyIDs: sr.KeyIDs, Threshold: sr.Threshold,
				BitLength: sr.BitLength, NamePrefix: sr.NamePrefix}
		}
		out.Delegations = nd
	}
	return &metadata.Metadata[metadata.TargetsType]{Signed: out}
}

func sameRole(a, b *metadata.Metadata[metadata.RootType], role string) bool {
	ra, rb := a.Signed.Roles[role], b.Signed.Roles[role]
	if ra == nil || rb == nil {
		return ra == rb
	}
	if ra.Threshold != rb.Threshold || len(ra.KeyIDs) != len(rb.KeyIDs) {
		return false
	}
	for _, id := range ra.KeyIDs {
		if !slices.Contains(rb.KeyIDs, id) {
			return false
		}
		ka, kb := a.Signed.Keys[id], b.Signed.Keys[id]
		if ka == nil || kb == nil || ka.Value.PublicKey != kb.Value.PublicKey {
			return false
		}
	}
	return true
}
