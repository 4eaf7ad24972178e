package update

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// BandageChannel is the channel whose targets are signed by the delegated
// bandage role instead of the top-level targets role.
const BandageChannel = "bandage"

// MaxDeltaChain is how many versions back a new release carries deltas
// from: an agent at most this far behind catches up with one delta.
const MaxDeltaChain = 30

const (
	bandageRole = "bandage"
	// A delta is listed in the signed metadata only if it saves more than
	// this over the full blob: every listed target costs every agent about
	// 300 bytes of metadata on each change of its role, so a delta that
	// saves less (a one-record bandage) is a net loss.
	deltaListingCost = 512
)

// bandagePaths are the target paths the bandage role is trusted for. go-tuf
// matches patterns segment by segment, so "bandage/*" alone would not cover
// "bandage/<version>/<kind>".
var bandagePaths = []string{BandageChannel + "/*/*"}

// RepoOptions configure a Repo. Zero values take the defaults.
type RepoOptions struct {
	// Now is the clock (UTC is applied); tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
	// Expiry of each role's metadata. Defaults: timestamp 24h, snapshot 7
	// days, targets and bandage 30 days, root 365 days.
	TimestampExpiry time.Duration
	SnapshotExpiry  time.Duration
	TargetsExpiry   time.Duration
	RootExpiry      time.Duration
	// KeepReleases is how many releases of a channel the signed metadata
	// lists: the latest with its deltas, the older ones (for pinned agents)
	// with their full blob only. Default 3; KeepReleasesFor overrides per
	// channel and defaults to {"bandage": 1} so a bandage fits in 2 KB.
	KeepReleases    int
	KeepReleasesFor map[string]int
}

func (o RepoOptions) withDefaults() RepoOptions {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TimestampExpiry, 24*time.Hour)
	def(&o.SnapshotExpiry, 7*24*time.Hour)
	def(&o.TargetsExpiry, 30*24*time.Hour)
	def(&o.RootExpiry, 365*24*time.Hour)
	if o.KeepReleases <= 0 {
		o.KeepReleases = 3
	}
	if o.KeepReleasesFor == nil {
		o.KeepReleasesFor = map[string]int{BandageChannel: 1}
	}
	return o
}

func (o RepoOptions) keep(channel string) int {
	if k, ok := o.KeepReleasesFor[channel]; ok && k > 0 {
		return k
	}
	return o.KeepReleases
}

// PublishOptions modify a Publish.
type PublishOptions struct {
	// RollbackTo, when non-zero, publishes a new version whose content is
	// that of this earlier version (recs must be nil). TUF forbids a version
	// going down, so a rollback is a step forward to old content.
	RollbackTo uint64
}

// Release describes one published version of a channel.
type Release struct {
	Channel       string    `json:"channel"`
	Version       uint64    `json:"version"`
	Records       int       `json:"records"`
	ContentSHA256 string    `json:"content_sha256"`
	PublishedAt   time.Time `json:"published_at"`
	RollbackOf    uint64    `json:"rollback_of,omitempty"`
	Full          BlobRef   `json:"full"`
	// Deltas from earlier versions, nearest first. The one from Version-1
	// is always built (later releases compose deltas from it); Listed says
	// whether it was worth putting in the signed metadata.
	Deltas []DeltaRef `json:"deltas,omitempty"`
}

// BlobRef names a content-addressed blob.
type BlobRef struct {
	SHA256 string `json:"sha256"`
	Length int64  `json:"length"`
}

// DeltaRef is a delta blob from version From to its release.
type DeltaRef struct {
	From uint64 `json:"from"`
	BlobRef
	Listed bool `json:"listed"`
}

// Repo is the server side: it publishes releases, keeps the signed TUF
// metadata and the blobs under one directory, and re-signs the timestamp.
// Methods are safe for concurrent use; writers are serialised.
//
// Layout: metadata/ (N.root.json, N.snapshot.json, N.targets.json,
// N.bandage.json, timestamp.json), blobs/<sha256>, releases/<channel>/<N>.json.
type Repo struct {
	dir  string
	opts RepoOptions
	log  *slog.Logger

	mu      sync.Mutex // serialises writers; guards everything below but cur
	keys    *OnlineKeys
	files   map[string]int64     // role -> highest version file on disk
	rels    map[string][]Release // channel -> releases, ascending
	content map[string]cached    // channel -> a decoded content (usually the latest)

	curMu sync.RWMutex
	cur   signedState // the metadata currently published

	subMu sync.Mutex
	subs  map[chan []byte]struct{}
}

type cached struct {
	version uint64
	recs    Records
}

// signedState is the current metadata, parsed and as bytes.
type signedState struct {
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	bandage   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	bytes     map[string][]byte // role -> current bytes
}

// targetCustom is the TUF custom metadata of every target.
type targetCustom struct {
	Channel       string    `json:"channel"`
	Version       uint64    `json:"version"`
	Kind          string    `json:"kind"` // "full" or "delta"
	From          uint64    `json:"from,omitempty"`
	ContentSHA256 string    `json:"content_sha256"`
	Records       int       `json:"records"`
	PublishedAt   time.Time `json:"published_at"`
}

const (
	kindFull  = "full"
	kindDelta = "delta"
)

// InitRepo creates a repository in dir: root version 1 signed by the root
// keys (at least their threshold), and empty targets, bandage, snapshot and
// timestamp signed by the online keys. The root keys are used in memory
// only; nothing of them is written under dir.
func InitRepo(dir string, root *RootKeys, online *OnlineKeys, opts RepoOptions) (*Repo, error) {
	if err := online.check(); err != nil {
		return nil, err
	}
	if root == nil || len(root.Keys) == 0 || root.Threshold < 1 || root.Threshold > len(root.Keys) {
		return nil, fmt.Errorf("%w: root keys missing or threshold out of range", ErrKeys)
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata", "1.root.json")); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a repository", ErrInvalid, dir)
	}
	for _, sub := range []string{"metadata", "blobs", "releases"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return nil, fmt.Errorf("update: init %s: %w", dir, err)
		}
	}
	r := newRepo(dir, online, opts)
	now := r.now()
	rm, err := buildRoot(1, now.Add(r.opts.RootExpiry), root, online, nil)
	if err != nil {
		return nil, err
	}
	rb, err := rm.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("update: encode root: %w", err)
	}
	if err := writeAtomic(r.metaPath("1.root.json"), rb); err != nil {
		return nil, err
	}
	r.cur.root = rm
	r.cur.bytes = map[string][]byte{metadata.ROOT: rb}
	r.files[metadata.ROOT] = 1
	if err := r.commit(now, resign{targets: true, bandage: true}); err != nil {
		return nil, err
	}
	r.log.Info("update repository initialised", "dir", dir, "root_keys", len(root.Keys), "root_threshold", root.Threshold)
	return r, nil
}

// OpenRepo opens an existing repository with its online keys, which must be
// the ones the current root (timestamp, snapshot, targets) and targets
// delegation (bandage) trust.
func OpenRepo(dir string, online *OnlineKeys, opts RepoOptions) (*Repo, error) {
	if err := online.check(); err != nil {
		return nil, err
	}
	r := newRepo(dir, online, opts)
	if err := r.load(); err != nil {
		return nil, err
	}
	if err := r.checkKeys(); err != nil {
		return nil, err
	}
	// A crash between writing a release and signing its metadata leaves a
	// release the metadata does not list yet; sign it now.
	rs := resign{}
	if !sameTargets(r.cur.targets.Signed.Targets, r.buildTargets(metadata.TARGETS)) {
		rs.targets = true
	}
	if !sameTargets(r.cur.bandage.Signed.Targets, r.buildTargets(bandageRole)) {
		rs.bandage = true
	}
	if rs.targets || rs.bandage {
		r.log.Warn("update repository metadata behind its releases; re-signing", "dir", dir)
		if err := r.commit(r.now(), rs); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func newRepo(dir string, online *OnlineKeys, opts RepoOptions) *Repo {
	o := opts.withDefaults()
	return &Repo{
		dir:     dir,
		opts:    o,
		log:     o.Logger.With("component", "update"),
		keys:    online,
		files:   map[string]int64{},
		rels:    map[string][]Release{},
		content: map[string]cached{},
		subs:    map[chan []byte]struct{}{},
	}
}

func (r *Repo) now() time.Time { return r.opts.Now().UTC().Truncate(time.Second) }

func (r *Repo) metaPath(name string) string { return filepath.Join(r.dir, "metadata", name) }
func (r *Repo) blobPath(sha string) string  { return filepath.Join(r.dir, "blobs", sha) }

var versionedRE = regexp.MustCompile(`^([1-9][0-9]{0,18})\.(root|snapshot|targets|bandage)\.json$`)

// load reads the current metadata (following timestamp.json), the highest
// version of each role on disk and the release manifests.
func (r *Repo) load() error {
	ents, err := os.ReadDir(filepath.Join(r.dir, "metadata"))
	if err != nil {
		return fmt.Errorf("%w: %s is not an update repository: %w", ErrNotFound, r.dir, err)
	}
	for _, e := range ents {
		m := versionedRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		r.files[m[2]] = max(r.files[m[2]], v)
	}
	if r.files[metadata.ROOT] == 0 {
		return fmt.Errorf("%w: no root metadata in %s", ErrNotFound, r.dir)
	}
	st := signedState{bytes: map[string][]byte{}}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(r.metaPath(name))
		if err != nil {
			return nil, fmt.Errorf("update: open repository: %w", err)
		}
		return b, nil
	}
	var b []byte
	if b, err = read(fmt.Sprintf("%d.root.json", r.files[metadata.ROOT])); err != nil {
		return err
	}
	if st.root, err = metadata.Root().FromBytes(b); err != nil {
		return fmt.Errorf("%w: root: %w", ErrFormat, err)
	}
	st.bytes[metadata.ROOT] = b
	if b, err = read("timestamp.json"); err != nil {
		return err
	}
	if st.timestamp, err = metadata.Timestamp().FromBytes(b); err != nil {
		return fmt.Errorf("%w: timestamp: %w", ErrFormat, err)
	}
	st.bytes[metadata.TIMESTAMP] = b
	sv := st.timestamp.Signed.Meta["snapshot.json"]
	if sv == nil {
		return fmt.Errorf("%w: timestamp lists no snapshot", ErrFormat)
	}
	if b, err = read(fmt.Sprintf("%d.snapshot.json", sv.Version)); err != nil {
		return err
	}
	if st.snapshot, err = metadata.Snapshot().FromBytes(b); err != nil {
		return fmt.Errorf("%w: snapshot: %w", ErrFormat, err)
	}
	st.bytes[metadata.SNAPSHOT] = b
	for _, role := range []string{metadata.TARGETS, bandageRole} {
		mf := st.snapshot.Signed.Meta[role+".json"]
		if mf == nil {
			return fmt.Errorf("%w: snapshot lists no %s", ErrFormat, role)
		}
		if b, err = read(fmt.Sprintf("%d.%s.json", mf.Version, role)); err != nil {
			return err
		}
		t, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrFormat, role, err)
		}
		st.bytes[role] = b
		if role == metadata.TARGETS {
			st.targets = t
		} else {
			st.bandage = t
		}
	}
	r.cur = st
	return r.loadReleases()
}

func (r *Repo) loadReleases() error {
	base := filepath.Join(r.dir, "releases")
	chans, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("update: open repository: %w", err)
	}
	for _, c := range chans {
		if !c.IsDir() || ValidChannel(c.Name()) != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(base, c.Name()))
		if err != nil {
			return fmt.Errorf("update: open repository: %w", err)
		}
		var rels []Release
		for _, f := range files {
			if filepath.Ext(f.Name()) != ".json" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(base, c.Name(), f.Name()))
			if err != nil {
				return fmt.Errorf("update: open repository: %w", err)
			}
			var rel Release
			if err := json.Unmarshal(b, &rel); err != nil || rel.Channel != c.Name() || rel.Version == 0 {
				return fmt.Errorf("%w: release manifest %s/%s", ErrFormat, c.Name(), f.Name())
			}
			rels = append(rels, rel)
		}
		slices.SortFunc(rels, func(a, b Release) int { return cmp.Compare(a.Version, b.Version) })
		for i := range rels {
			if rels[i].Version != uint64(i+1) {
				return fmt.Errorf("%w: channel %s: release %d missing", ErrFormat, c.Name(), i+1)
			}
		}
		if len(rels) > 0 {
			r.rels[c.Name()] = rels
		}
	}
	return nil
}

// checkKeys refuses online keys the metadata does not trust: signing with
// them would publish metadata no agent accepts.
func (r *Repo) checkKeys() error {
	roles := r.cur.root.Signed.Roles
	for _, rk := range []struct {
		role string
		key  []byte
	}{{metadata.TIMESTAMP, r.keys.Timestamp}, {metadata.SNAPSHOT, r.keys.Snapshot}, {metadata.TARGETS, r.keys.Targets}} {
		id := keyID(rk.key)
		if roles[rk.role] == nil || !slices.Contains(roles[rk.role].KeyIDs, id) {
			return fmt.Errorf("%w: the %s key (id %.12s) is not trusted by root version %d",
				ErrKeys, rk.role, id, r.cur.root.Signed.Version)
		}
	}
	id := keyID(r.keys.Bandage)
	if d := r.cur.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			if role.Name == bandageRole && slices.Contains(role.KeyIDs, id) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: the bandage key (id %.12s) is not the delegated one", ErrKeys, id)
}

// roleOf maps a channel to the targets role that signs it.
func roleOf(channel string) string {
	if channel == BandageChannel {
		return bandageRole
	}
	return metadata.TARGETS
}

// Publish makes recs the next version of channel: it writes the full blob,
// deltas from up to MaxDeltaChain earlier versions, the release manifest,
// and new signed metadata, then hands the new timestamp to subscribers.
// Publishing content identical to the latest version returns that version
// unchanged, so a retried publish does not create versions.
func (r *Repo) Publish(ctx context.Context, channel string, recs Records, opts PublishOptions) (Release, error) {
	if err := ValidChannel(channel); err != nil {
		return Release{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rels := r.rels[channel]
	var content Records
	if opts.RollbackTo != 0 {
		if recs != nil {
			return Release{}, fmt.Errorf("%w: a rollback takes its records from version %d; pass none", ErrInvalid, opts.RollbackTo)
		}
		if opts.RollbackTo > uint64(len(rels)) {
			return Release{}, fmt.Errorf("%w: channel %s has no version %d to roll back to", ErrInvalid, channel, opts.RollbackTo)
		}
		c, err := r.contentOf(&rels[opts.RollbackTo-1])
		if err != nil {
			return Release{}, err
		}
		content = c
	} else {
		c, err := Canonical(recs)
		if err != nil {
			return Release{}, err
		}
		// Copy into one buffer: the repository keeps this content to diff the
		// next release against, and the caller may reuse its buffers.
		content = compact(c)
	}
	if err := ctx.Err(); err != nil {
		return Release{}, err
	}
	start := time.Now()
	sum := ContentHash(content)
	sumHex := hex.EncodeToString(sum[:])
	var prev *Release
	if len(rels) > 0 {
		prev = &rels[len(rels)-1]
		if prev.ContentSHA256 == sumHex {
			r.log.Info("publish: content equals the latest version; nothing to do", "channel", channel, "version", prev.Version)
			return *prev, nil
		}
	}
	now := r.now()
	// Time to protect is measured from here: keep sub-second precision
	// (signed metadata times are whole seconds).
	published := r.opts.Now().UTC()
	rel := Release{
		Channel:       channel,
		Version:       uint64(len(rels)) + 1,
		Records:       len(content),
		ContentSHA256: sumHex,
		PublishedAt:   published,
		RollbackOf:    opts.RollbackTo,
	}
	full := EncodeFull(channel, rel.Version, content)
	ref, err := r.writeBlob(full)
	if err != nil {
		return Release{}, err
	}
	rel.Full = ref
	if prev != nil {
		if rel.Deltas, err = r.buildDeltas(ctx, &rel, content, rels); err != nil {
			return Release{}, err
		}
	}
	if err := r.writeRelease(&rel); err != nil {
		return Release{}, err
	}
	r.rels[channel] = append(rels, rel)
	r.content[channel] = cached{rel.Version, content}
	rs := resign{targets: roleOf(channel) == metadata.TARGETS, bandage: roleOf(channel) == bandageRole}
	if err := r.commit(now, rs); err != nil {
		// The release is on disk; the next successful commit (publish,
		// refresh or open) lists it.
		return Release{}, err
	}
	listed := 0
	for _, d := range rel.Deltas {
		if d.Listed {
			listed++
		}
	}
	r.log.Info("published", "channel", channel, "version", rel.Version, "records", rel.Records,
		"full_bytes", rel.Full.Length, "deltas", len(rel.Deltas), "deltas_listed", listed,
		"rollback_of", rel.RollbackOf, "took", time.Since(start).Round(time.Millisecond))
	return rel, nil
}

// compact copies recs into one contiguous buffer.
func compact(recs Records) Records {
	buf := make([]byte, 0, recs.Size())
	out := make(Records, len(recs))
	for i, l := range recs {
		buf = append(buf, l...)
		out[i] = buf[len(buf)-len(l) : len(buf) : len(buf)]
	}
	return out
}

// buildDeltas writes the deltas into rel (version B) from each of up to
// MaxDeltaChain earlier versions A. The step from B-1 is a direct diff; the
// others are composed from the stored step deltas, so publishing does not
// decode thirty full sets: a record's presence at A is the opposite of what
// its first change after A did, and at B what its last change did. The
// blobs are compressed in parallel, with at most GOMAXPROCS sets of lists
// alive at once.
func (r *Repo) buildDeltas(ctx context.Context, rel *Release, content Records, rels []Release) ([]DeltaRef, error) {
	prev := &rels[len(rels)-1]
	prevContent, err := r.contentOf(prev)
	if err != nil {
		return nil, err
	}
	var toSHA [32]byte
	if _, err := hex.Decode(toSHA[:], []byte(rel.ContentSHA256)); err != nil {
		return nil, fmt.Errorf("%w: content hash", ErrFormat)
	}
	type touch struct {
		line              []byte
		firstAdd, lastAdd bool
	}
	removed, added := DiffRecords(prevContent, content)
	state := make(map[string]*touch, len(removed)+len(added))
	fold := func(rm, add Records) {
		for _, l := range rm {
			if t := state[string(l)]; t != nil {
				t.firstAdd = false
			} else {
				state[string(l)] = &touch{line: l}
			}
		}
		for _, l := range add {
			if t := state[string(l)]; t != nil {
				t.firstAdd = true
			} else {
				state[string(l)] = &touch{line: l, firstAdd: true, lastAdd: true}
			}
		}
	}
	fold(removed, added)

	n := min(uint64(MaxDeltaChain), rel.Version-1)
	// Compression ratio of this content, to estimate a delta's size before
	// compressing it (records of one channel compress alike).
	raw := content.Size()
	estimate := func(deltaRaw int) int64 {
		if raw == 0 {
			return int64(deltaRaw)
		}
		return int64(float64(deltaRaw) * float64(rel.Full.Length) / float64(raw))
	}
	refs := make([]DeltaRef, n)
	errs := make([]error, n)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for k := uint64(1); k <= n; k++ {
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return nil, err
		}
		from := &rels[rel.Version-k-1]
		if k > 1 {
			// Fold in the step into version from+1 (its delta from `from`).
			d, err := r.stepDelta(&rels[from.Version])
			if err != nil {
				wg.Wait()
				return nil, err
			}
			fold(d.Removed, d.Added)
			removed, added = nil, nil
			for _, t := range state {
				switch {
				case !t.firstAdd && !t.lastAdd:
					removed = append(removed, t.line)
				case t.firstAdd && t.lastAdd:
					added = append(added, t.line)
				}
			}
			slices.SortFunc(removed, bytes.Compare)
			slices.SortFunc(added, bytes.Compare)
		}
		// A delta that would not be listed is not worth building, and those
		// from further back are almost always larger still: stop. (The step
		// delta, k == 1, is always kept; later releases compose from it.)
		if k > 1 && estimate(removed.Size()+added.Size())+deltaListingCost >= rel.Full.Length {
			break
		}
		if from.Records != len(content)-len(added)+len(removed) {
			wg.Wait()
			return nil, fmt.Errorf("%w: composed delta %s %d→%d disagrees with the record counts (repository damaged?)",
				ErrDelta, rel.Channel, from.Version, rel.Version)
		}
		d := &Delta{
			Channel: rel.Channel, From: from.Version, To: rel.Version,
			FromRecords: from.Records, ToRecords: len(content), ToSHA256: toSHA,
			Removed: removed, Added: added,
		}
		if _, err := hex.Decode(d.FromSHA256[:], []byte(from.ContentSHA256)); err != nil {
			wg.Wait()
			return nil, fmt.Errorf("%w: release %s/%d content hash", ErrFormat, from.Channel, from.Version)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i uint64) {
			defer func() { <-sem; wg.Done() }()
			ref, err := r.writeBlob(EncodeDelta(d))
			refs[i] = DeltaRef{From: d.From, BlobRef: ref, Listed: ref.Length+deltaListingCost < rel.Full.Length}
			errs[i] = err
		}(k - 1)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Trim the slots of deltas skipped by the estimate.
	return slices.DeleteFunc(refs, func(d DeltaRef) bool { return d.From == 0 }), nil
}

// stepDelta reads the delta of rel from its previous version.
func (r *Repo) stepDelta(rel *Release) (*Delta, error) {
	for _, d := range rel.Deltas {
		if d.From == rel.Version-1 {
			b, err := r.readBlob(d.BlobRef)
			if err != nil {
				return nil, err
			}
			return DecodeDelta(b, 0)
		}
	}
	return nil, fmt.Errorf("%w: release %s/%d has no step delta", ErrNotFound, rel.Channel, rel.Version)
}

// contentOf returns the records of rel, from the cache or its full blob.
func (r *Repo) contentOf(rel *Release) (Records, error) {
	if c, ok := r.content[rel.Channel]; ok && c.version == rel.Version {
		return c.recs, nil
	}
	b, err := r.readBlob(rel.Full)
	if err != nil {
		return nil, err
	}
	h, recs, err := DecodeFull(b, 0)
	if err != nil {
		return nil, fmt.Errorf("release %s/%d: %w", rel.Channel, rel.Version, err)
	}
	if h.Channel != rel.Channel || h.Version != rel.Version || hex.EncodeToString(h.ContentSHA256[:]) != rel.ContentSHA256 {
		return nil, fmt.Errorf("%w: full blob of %s/%d describes %s/%d", ErrVerify, rel.Channel, rel.Version, h.Channel, h.Version)
	}
	// Keep the latest version decoded: the next publish diffs against it.
	if latest := r.rels[rel.Channel]; len(latest) > 0 && latest[len(latest)-1].Version == rel.Version {
		r.content[rel.Channel] = cached{rel.Version, recs}
	}
	return recs, nil
}

func (r *Repo) readBlob(ref BlobRef) ([]byte, error) {
	b, err := os.ReadFile(r.blobPath(ref.SHA256))
	if err != nil {
		return nil, fmt.Errorf("update: blob %.12s: %w", ref.SHA256, err)
	}
	if sum := sha256.Sum256(b); int64(len(b)) != ref.Length || hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("%w: stored blob %.12s is damaged", ErrVerify, ref.SHA256)
	}
	return b, nil
}

func (r *Repo) writeBlob(b []byte) (BlobRef, error) {
	sum := sha256.Sum256(b)
	ref := BlobRef{SHA256: hex.EncodeToString(sum[:]), Length: int64(len(b))}
	if st, err := os.Stat(r.blobPath(ref.SHA256)); err == nil && st.Size() == ref.Length {
		return ref, nil // content-addressed: already there
	}
	return ref, writeAtomic(r.blobPath(ref.SHA256), b)
}

func (r *Repo) writeRelease(rel *Release) error {
	dir := filepath.Join(r.dir, "releases", rel.Channel)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	b, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return writeAtomic(filepath.Join(dir, strconv.FormatUint(rel.Version, 10)+".json"), b)
}

// Releases returns the releases of channel, oldest first.
func (r *Repo) Releases(channel string) []Release {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rels[channel])
}

// Content returns the records of version of channel.
func (r *Repo) Content(channel string, version uint64) (Records, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.contentLocked(channel, version)
}

func (r *Repo) contentLocked(channel string, version uint64) (Records, error) {
	rels := r.rels[channel]
	if version == 0 || version > uint64(len(rels)) {
		return nil, fmt.Errorf("%w: %s version %d", ErrNotFound, channel, version)
	}
	return r.contentOf(&rels[version-1])
}

// Diff returns the records removed and added going from version a to
// version b of channel (either direction).
func (r *Repo) Diff(channel string, a, b uint64) (removed, added Records, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ca, err := r.contentLocked(channel, a)
	if err != nil {
		return nil, nil, err
	}
	cb, err := r.contentLocked(channel, b)
	if err != nil {
		return nil, nil, err
	}
	removed, added = DiffRecords(ca, cb)
	return removed, added, nil
}

// Timestamp returns the current signed timestamp.json.
func (r *Repo) Timestamp() []byte {
	r.curMu.RLock()
	defer r.curMu.RUnlock()
	return slices.Clone(r.cur.bytes[metadata.TIMESTAMP])
}

// Root returns the current signed root, what an agent pins at enrollment.
func (r *Repo) Root() []byte {
	r.curMu.RLock()
	defer r.curMu.RUnlock()
	return slices.Clone(r.cur.bytes[metadata.ROOT])
}

// RootExpires is when the current root expires. Renewing it needs the
// offline root keys (RotateRoot), so operators should watch this.
func (r *Repo) RootExpires() time.Time {
	r.curMu.RLock()
	defer r.curMu.RUnlock()
	return r.cur.root.Signed.Expires
}

// RefreshTimestamp signs a new timestamp, and new snapshot, targets or
// bandage metadata when they have used half their validity, so agents keep
// verifying while nothing is published. Call it well within the timestamp
// expiry (e.g. every hour for the 24h default).
func (r *Repo) RefreshTimestamp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.curMu.RLock()
	cur := r.cur
	r.curMu.RUnlock()
	halfLeft := func(exp time.Time, validity time.Duration) bool { return exp.Sub(now) < validity/2 }
	rs := resign{
		targets:  halfLeft(cur.targets.Signed.Expires, r.opts.TargetsExpiry),
		bandage:  halfLeft(cur.bandage.Signed.Expires, r.opts.TargetsExpiry),
		snapshot: halfLeft(cur.snapshot.Signed.Expires, r.opts.SnapshotExpiry),
	}
	if exp := cur.root.Signed.Expires; exp.Sub(now) < 30*24*time.Hour {
		r.log.Warn("update root expires soon; rotate it with the offline root keys", "expires", exp)
	}
	return r.commit(now, rs)
}

// Subscribe returns a channel that receives the signed timestamp bytes of
// every new timestamp (publish, refresh, rotation), and a cancel function.
// Delivery never blocks the publisher: a subscriber that has not taken the
// previous value gets only the latest. The bytes must not be modified.
func (r *Repo) Subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	r.subMu.Lock()
	r.subs[ch] = struct{}{}
	r.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			r.subMu.Lock()
			delete(r.subs, ch)
			r.subMu.Unlock()
			close(ch)
		})
	}
}

func (r *Repo) notify(ts []byte) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	for ch := range r.subs {
		select {
		case ch <- ts:
			continue
		default:
		}
		// Full: replace the stale value with the latest.
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- ts:
		default:
		}
	}
}

// RotateRoot signs and publishes root version N+1 listing next's keys and
// threshold. As TUF requires, it is signed by a threshold of the current
// (old) root keys and a threshold of the new ones; old may hold any subset
// of the current root's keys that reaches its threshold. online, when not
// nil, replaces the online keys too (recovery from an online key
// compromise): targets, bandage, snapshot and timestamp are then re-signed
// with them.
func (r *Repo) RotateRoot(ctx context.Context, old, next *RootKeys, online *OnlineKeys) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if next == nil || len(next.Keys) == 0 || next.Threshold < 1 || next.Threshold > len(next.Keys) {
		return fmt.Errorf("%w: new root keys missing or threshold out of range", ErrKeys)
	}
	if old == nil || len(old.Keys) == 0 {
		return fmt.Errorf("%w: the current root keys are needed to sign a new root", ErrKeys)
	}
	if online != nil {
		if err := online.check(); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.curMu.RLock()
	prev := r.cur.root
	r.curMu.RUnlock()
	keys := r.keys
	if online != nil {
		keys = online
	}
	now := r.now()
	version := prev.Signed.Version + 1
	nr, err := buildRoot(version, now.Add(r.opts.RootExpiry), next, keys, old)
	if err != nil {
		return err
	}
	if err := prev.VerifyDelegate(metadata.ROOT, nr); err != nil {
		return fmt.Errorf("%w: new root lacks a threshold of the current root keys: %w", ErrKeys, err)
	}
	if err := r.installRoot(now, nr, online); err != nil {
		return err
	}
	r.log.Info("root rotated", "version", version, "root_keys", len(next.Keys), "root_threshold", next.Threshold,
		"online_keys_replaced", online != nil)
	return nil
}

// installRoot writes a new root version, makes it current and, when the
// online keys are replaced, re-signs the other roles with them; r.mu held.
func (r *Repo) installRoot(now time.Time, nr *metadata.Metadata[metadata.RootType], online *OnlineKeys) error {
	b, err := nr.ToBytes(false)
	if err != nil {
		return fmt.Errorf("update: encode root: %w", err)
	}
	if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.root.json", nr.Signed.Version)), b); err != nil {
		return err
	}
	r.files[metadata.ROOT] = nr.Signed.Version
	r.curMu.Lock()
	r.cur.root = nr
	r.cur.bytes[metadata.ROOT] = b
	r.curMu.Unlock()
	if online != nil {
		r.keys = online
		return r.commit(now, resign{targets: true, bandage: true})
	}
	return nil
}

// buildRoot makes root metadata listing rk's keys for the root role and the
// online keys for the others, signed by rk and extra (the old root keys of
// a rotation). It checks the new root verifies by its own threshold.
func buildRoot(version int64, expires time.Time, rk *RootKeys, online *OnlineKeys, extra *RootKeys) (*metadata.Metadata[metadata.RootType], error) {
	m := metadata.Root(expires.UTC().Truncate(time.Second))
	m.Signed.Version = version
	for _, k := range rk.Keys {
		if err := m.Signed.AddKey(tufKey(k), metadata.ROOT); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeys, err)
		}
	}
	m.Signed.Roles[metadata.ROOT].Threshold = rk.Threshold
	for role, k := range map[string][]byte{
		metadata.TIMESTAMP: online.Timestamp, metadata.SNAPSHOT: online.Snapshot, metadata.TARGETS: online.Targets,
	} {
		if err := m.Signed.AddKey(tufKey(k), role); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeys, err)
		}
	}
	signed := map[string]bool{}
	sign := func(keys *RootKeys) error {
		if keys == nil {
			return nil
		}
		for _, k := range keys.Keys {
			id := keyID(k)
			if signed[id] {
				continue // TUF rejects two signatures by one key
			}
			if _, err := m.Sign(signer(k)); err != nil {
				return fmt.Errorf("%w: sign root: %w", ErrKeys, err)
			}
			signed[id] = true
		}
		return nil
	}
	if err := sign(rk); err != nil {
		return nil, err
	}
	if err := sign(extra); err != nil {
		return nil, err
	}
	if err := m.VerifyDelegate(metadata.ROOT, m); err != nil {
		return nil, fmt.Errorf("%w: new root lacks its own threshold of signatures: %w", ErrKeys, err)
	}
	return m, nil
}

// resign says which metadata a commit signs anew; the timestamp always is.
type resign struct{ targets, bandage, snapshot bool }

// commit signs new versions of the roles in rs (and the snapshot when a
// targets role changed) and a new timestamp, writes them in dependency order
// (role files, snapshot, then the timestamp that makes them current, by
// atomic rename), switches the in-memory state, and notifies subscribers.
// A failure before the timestamp is written leaves the published state as
// it was: the versioned files written are simply not referenced.
func (r *Repo) commit(now time.Time, rs resign) error {
	r.curMu.RLock()
	next := r.cur
	r.curMu.RUnlock()
	next.bytes = maps.Clone(next.bytes)
	files := maps.Clone(r.files)

	signRole := func(role string, key []byte) (*metadata.Metadata[metadata.TargetsType], error) {
		files[role]++
		m := metadata.Targets(now.Add(r.opts.TargetsExpiry))
		m.Signed.Version = files[role]
		m.Signed.Targets = r.buildTargets(role)
		if role == metadata.TARGETS {
			bk := tufKey(r.keys.Bandage)
			m.Signed.Delegations = &metadata.Delegations{
				Keys: map[string]*metadata.Key{bk.ID(): bk},
				Roles: []metadata.DelegatedRole{{
					Name: bandageRole, KeyIDs: []string{bk.ID()}, Threshold: 1,
					Terminating: true, Paths: bandagePaths,
				}},
			}
		}
		if _, err := m.Sign(signer(key)); err != nil {
			return nil, fmt.Errorf("%w: sign %s: %w", ErrKeys, role, err)
		}
		b, err := m.ToBytes(false)
		if err != nil {
			return nil, fmt.Errorf("update: encode %s: %w", role, err)
		}
		if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.%s.json", m.Signed.Version, role)), b); err != nil {
			return nil, err
		}
		next.bytes[role] = b
		return m, nil
	}
	var err error
	if rs.targets {
		if next.targets, err = signRole(metadata.TARGETS, r.keys.Targets); err != nil {
			return err
		}
	}
	if rs.bandage {
		if next.bandage, err = signRole(bandageRole, r.keys.Bandage); err != nil {
			return err
		}
	}
	if rs.targets || rs.bandage || rs.snapshot || next.snapshot == nil {
		files[metadata.SNAPSHOT]++
		s := metadata.Snapshot(now.Add(r.opts.SnapshotExpiry))
		s.Signed.Version = files[metadata.SNAPSHOT]
		s.Signed.Meta = map[string]*metadata.MetaFiles{
			"targets.json":        metaFile(next.targets.Signed.Version, next.bytes[metadata.TARGETS]),
			bandageRole + ".json": metaFile(next.bandage.Signed.Version, next.bytes[bandageRole]),
		}
		if _, err := s.Sign(signer(r.keys.Snapshot)); err != nil {
			return fmt.Errorf("%w: sign snapshot: %w", ErrKeys, err)
		}
		b, err := s.ToBytes(false)
		if err != nil {
			return fmt.Errorf("update: encode snapshot: %w", err)
		}
		if err := writeAtomic(r.metaPath(fmt.Sprintf("%d.snapshot.json", s.Signed.Version)), b); err != nil {
			return err
		}
		next.snapshot = s
		next.bytes[metadata.SNAPSHOT] = b
	}
	tsVersion := int64(1)
	if next.timestamp != nil {
		tsVersion = next.timestamp.Signed.Version + 1
	}
	ts := metadata.Timestamp(now.Add(r.opts.TimestampExpiry))
	ts.Signed.Version = tsVersion
	ts.Signed.Meta = map[string]*metadata.MetaFiles{
		"snapshot.json": metaFile(next.snapshot.Signed.Version, next.bytes[metadata.SNAPSHOT]),
	}
	if _, err := ts.Sign(signer(r.keys.Timestamp)); err != nil {
		return fmt.Errorf("%w: sign timestamp: %w", ErrKeys, err)
	}
	tb, err := ts.ToBytes(false)
	if err != nil {
		return fmt.Errorf("update: encode timestamp: %w", err)
	}
	if err := writeAtomic(r.metaPath("timestamp.json"), tb); err != nil {
		return err
	}
	next.timestamp = ts
	next.bytes[metadata.TIMESTAMP] = tb
	r.files = files
	r.curMu.Lock()
	r.cur = next
	r.curMu.Unlock()
	r.notify(tb)
	return nil
}

// metaFile records version, length and sha256 of a metadata file: the
// hashes bind the exact bytes, so a snapshot cannot be paired with any other
// targets file of the same version (mix-and-match), and the length bounds
// the client's download before it starts.
func metaFile(version int64, b []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(b)
	return &metadata.MetaFiles{Version: version, Length: int64(len(b)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// buildTargets lists the targets of role's channels: for each, the latest
// release's full blob and listed deltas, and the full blobs of the releases
// before it up to the channel's KeepReleases.
func (r *Repo) buildTargets(role string) map[string]*metadata.TargetFiles {
	out := map[string]*metadata.TargetFiles{}
	for channel, rels := range r.rels {
		if roleOf(channel) != role {
			continue
		}
		keep := r.opts.keep(channel)
		for i := len(rels) - 1; i >= 0 && i >= len(rels)-keep; i-- {
			rel := &rels[i]
			out[fullName(channel, rel.Version)] = targetFile(rel, kindFull, 0, rel.Full)
			if i != len(rels)-1 {
				continue
			}
			for _, d := range rel.Deltas {
				if d.Listed {
					out[deltaName(channel, rel.Version, d.From)] = targetFile(rel, kindDelta, d.From, d.BlobRef)
				}
			}
		}
	}
	return out
}

func fullName(channel string, version uint64) string {
	return channel + "/" + strconv.FormatUint(version, 10) + "/" + kindFull
}

func deltaName(channel string, version, from uint64) string {
	return channel + "/" + strconv.FormatUint(version, 10) + "/" + kindDelta + "-" + strconv.FormatUint(from, 10)
}

func targetFile(rel *Release, kind string, from uint64, ref BlobRef) *metadata.TargetFiles {
	c, _ := json.Marshal(targetCustom{
		Channel: rel.Channel, Version: rel.Version, Kind: kind, From: from,
		ContentSHA256: rel.ContentSHA256, Records: rel.Records, PublishedAt: rel.PublishedAt,
	})
	raw := json.RawMessage(c)
	sum, _ := hex.DecodeString(ref.SHA256)
	return &metadata.TargetFiles{Length: ref.Length, Hashes: metadata.Hashes{"sha256": sum}, Custom: &raw}
}

func sameTargets(a, b map[string]*metadata.TargetFiles) bool {
	if len(a) != len(b) {
		return false
	}
	for name, t := range a {
		u, ok := b[name]
		if !ok || !t.Equal(*u) {
			return false
		}
	}
	return true
}

// writeAtomic writes b to name through a temporary file and a rename, so a
// reader (the HTTP handler, a crash-restarted server) sees the old file or
// the whole new one, never a part.
func writeAtomic(name string, b []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("update: write %s: %w", filepath.Base(name), err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("update: write %s: %w", filepath.Base(name), err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o640); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update: write %s: %w", filepath.Base(name), err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update: write %s: %w", filepath.Base(name), err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename durable; best effort where directories cannot sync.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
