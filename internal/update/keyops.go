package update

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key directories inside a keys directory (<data>/keys on the server).
const (
	RootKeysDir   = "root"
	OnlineKeysDir = "online"
)

// InitKeys creates the offline root keys (count keys, threshold of them
// needed to sign a root) in dir/root and the online keys in dir/online:
// the layout the server reads. It refuses, before writing anything, a
// directory that already holds keys in either place, so an existing key
// is never replaced by accident.
func InitKeys(dir string, count, threshold int) (*RootKeys, *OnlineKeys, error) {
	if count < 1 || threshold < 1 || threshold > count {
		return nil, nil, fmt.Errorf("%w: root threshold %d of %d keys", ErrInvalid, threshold, count)
	}
	rootDir, onlineDir := filepath.Join(dir, RootKeysDir), filepath.Join(dir, OnlineKeysDir)
	for _, d := range []string{rootDir, onlineDir} {
		if has, err := holdsKeys(d); err != nil || has {
			if err == nil {
				err = fmt.Errorf("%w: %s already holds keys; refusing to overwrite them", ErrKeys, d)
			}
			return nil, nil, err
		}
	}
	root, err := GenerateRootKeys(rootDir, count, threshold)
	if err != nil {
		return nil, nil, err
	}
	online, err := GenerateOnlineKeys(onlineDir)
	if err != nil {
		return nil, nil, err
	}
	return root, online, nil
}

// holdsKeys reports whether dir holds key files or a root threshold.
func holdsKeys(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), keySuffix) || e.Name() == thresholdFile {
			return true, nil
		}
	}
	return false, nil
}

// KeyInfo describes one key file by its public half only.
type KeyInfo struct {
	Role string `json:"role"` // root, timestamp, snapshot, targets or bandage
	// ID is the TUF key id (sha256 of the canonical public key), as the
	// signed metadata lists it.
	ID        string `json:"id"`
	Type      string `json:"type"`
	PublicKey string `json:"public_key"` // hex
	// Created is the key file's modification time: key files carry no
	// creation date, and nothing rewrites them once generated.
	Created time.Time `json:"created"`
	File    string    `json:"file"`
}

// KeySet is what a keys directory holds.
type KeySet struct {
	Keys []KeyInfo `json:"keys"`
	// RootThreshold is how many root keys must sign a root (0 when dir
	// holds no root keys).
	RootThreshold int `json:"root_threshold,omitempty"`
}

// DescribeKeys lists the keys under dir: dir/root and dir/online (the
// layout of InitKeys and the server), or dir itself when it is a root or
// an online key directory. Private keys are read to derive their public
// half and are not returned; keys readable by others are refused as
// LoadRootKeys does.
func DescribeKeys(dir string) (KeySet, error) {
	var ks KeySet
	dirs := []string{filepath.Join(dir, RootKeysDir), filepath.Join(dir, OnlineKeysDir), dir}
	for _, d := range dirs {
		if d == dir && len(ks.Keys) > 0 {
			break
		}
		if t, err := os.ReadFile(filepath.Join(d, thresholdFile)); err == nil {
			if ks.RootThreshold, err = strconv.Atoi(strings.TrimSpace(string(t))); err != nil {
				return ks, fmt.Errorf("%w: bad root threshold in %s", ErrKeys, d)
			}
		}
		names, err := filepath.Glob(filepath.Join(d, "*"+keySuffix))
		if err != nil {
			return ks, fmt.Errorf("%w: %w", ErrKeys, err)
		}
		slices.Sort(names)
		for _, name := range names {
			base := strings.TrimSuffix(filepath.Base(name), keySuffix)
			role := base
			if strings.HasPrefix(base, rootKeyPrefix) {
				role = "root"
			} else if !slices.Contains(onlineKeyNames, base) {
				continue
			}
			k, err := readKey(name)
			if err != nil {
				return ks, err
			}
			st, err := os.Stat(name)
			if err != nil {
				return ks, fmt.Errorf("%w: %w", ErrKeys, err)
			}
			ks.Keys = append(ks.Keys, KeyInfo{
				Role: role, ID: keyID(k), Type: "ed25519",
				PublicKey: hex.EncodeToString(k.Public().(ed25519.PublicKey)),
				Created:   st.ModTime().UTC(), File: name,
			})
		}
	}
	if len(ks.Keys) == 0 {
		return ks, fmt.Errorf("%w: no keys in %s (expected root/ and online/, or root-N.key or timestamp.key files)", ErrNotFound, dir)
	}
	return ks, nil
}

// Trust is what a repository's current metadata trusts, read from its
// files without verifying them (for display; clients verify).
type Trust struct {
	RootVersion   int64     `json:"root_version"`
	RootExpires   time.Time `json:"root_expires"`
	RootThreshold int       `json:"root_threshold"`
	// KeyIDs per role: root, timestamp, snapshot, targets (from the root)
	// and bandage (from the current targets delegation).
	KeyIDs map[string][]string `json:"key_ids"`
}

// CurrentTrust reads the newest root of the repository in dir and the
// bandage delegation of its current targets metadata.
func CurrentTrust(dir string) (Trust, error) {
	r := newRepo(dir, nil, RepoOptions{})
	if err := r.load(); err != nil {
		return Trust{}, err
	}
	root := r.cur.root.Signed
	t := Trust{RootVersion: root.Version, RootExpires: root.Expires, KeyIDs: map[string][]string{}}
	for name, role := range root.Roles {
		t.KeyIDs[name] = slices.Clone(role.KeyIDs)
		if name == metadata.ROOT {
			t.RootThreshold = role.Threshold
		}
	}
	if d := r.cur.targets.Signed.Delegations; d != nil {
		for _, role := range d.Roles {
			if role.Name == bandageRole {
				t.KeyIDs[bandageRole] = slices.Clone(role.KeyIDs)
			}
		}
	}
	return t, nil
}

// ResignRoot publishes root version N+1 with the current root's keys and
// threshold (their public halves are copied, so the key holders need to
// bring only a threshold of the private keys) and a fresh expiry. It
// renews a root before it expires, and, when online is not nil, replaces
// the timestamp, snapshot, targets and bandage keys: targets, bandage,
// snapshot and timestamp are then re-signed with the new keys, and
// clients, which follow the root chain, trust the new keys and no longer
// the old ones. Rotating the root keys themselves is RotateRoot.
func (r *Repo) ResignRoot(ctx context.Context, holders *RootKeys, online *OnlineKeys) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if holders == nil || len(holders.Keys) == 0 {
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
	pb, err := prev.ToBytes(false)
	if err != nil {
		return fmt.Errorf("update: encode root: %w", err)
	}
	nr, err := metadata.Root().FromBytes(pb)
	if err != nil {
		return fmt.Errorf("%w: root: %w", ErrFormat, err)
	}
	version := prev.Signed.Version + 1
	nr.Signed.Version = version
	nr.Signed.Expires = now.Add(r.opts.RootExpiry).UTC().Truncate(time.Second)
	nr.ClearSignatures()
	for _, rk := range []struct {
		role string
		key  ed25519.PrivateKey
	}{{metadata.TIMESTAMP, keys.Timestamp}, {metadata.SNAPSHOT, keys.Snapshot}, {metadata.TARGETS, keys.Targets}} {
		role := nr.Signed.Roles[rk.role]
		if role == nil {
			return fmt.Errorf("%w: root version %d has no %s role", ErrFormat, prev.Signed.Version, rk.role)
		}
		for _, id := range slices.Clone(role.KeyIDs) {
			if err := nr.Signed.RevokeKey(id, rk.role); err != nil {
				return fmt.Errorf("%w: %w", ErrKeys, err)
			}
		}
		if err := nr.Signed.AddKey(tufKey(rk.key), rk.role); err != nil {
			return fmt.Errorf("%w: %w", ErrKeys, err)
		}
	}
	rootIDs := nr.Signed.Roles[metadata.ROOT].KeyIDs
	signed := map[string]bool{}
	for _, k := range holders.Keys {
		id := keyID(k)
		if !slices.Contains(rootIDs, id) {
			return fmt.Errorf("%w: root key %.12s is not a key of root version %d", ErrKeys, id, prev.Signed.Version)
		}
		if signed[id] {
			continue
		}
		if _, err := nr.Sign(signer(k)); err != nil {
			return fmt.Errorf("%w: sign root: %w", ErrKeys, err)
		}
		signed[id] = true
	}
	if err := prev.VerifyDelegate(metadata.ROOT, nr); err != nil {
		return fmt.Errorf("%w: %d of the root keys signed; root version %d needs %d: %w",
			ErrKeys, len(signed), prev.Signed.Version, prev.Signed.Roles[metadata.ROOT].Threshold, err)
	}
	if err := r.installRoot(now, nr, online); err != nil {
		return err
	}
	r.log.Info("root re-signed", "version", version, "expires", nr.Signed.Expires, "online_keys_replaced", online != nil)
	return nil
}

// RotateOnlineKeys replaces the online keys of the repository in repoDir
// whose current keys are in onlineDir (the server's <data>/update and
// <data>/keys/online), offline: the server must not run meanwhile, since
// it keeps the metadata state in memory and would sign on with the
// retired keys. New keys are generated in onlineDir+".new", the root is
// re-signed listing them (ResignRoot, with a threshold of the root keys
// in holders), and the directories are swapped; the old keys are kept in
// the returned directory, trusted by nothing, to be deleted. A run
// interrupted after the root was written is completed by the next run.
func RotateOnlineKeys(ctx context.Context, repoDir, onlineDir string, holders *RootKeys, opts RepoOptions) (retired string, err error) {
	staging := onlineDir + ".new"
	if _, err := os.Stat(staging); err == nil {
		next, lerr := LoadOnlineKeys(staging)
		if lerr == nil && rootTrusts(repoDir, next) {
			return swapKeyDirs(onlineDir, staging)
		}
		return "", fmt.Errorf("%w: %s is left from an interrupted rotation and the repository does not trust it; remove it and run again", ErrKeys, staging)
	}
	old, err := LoadOnlineKeys(onlineDir)
	if err != nil {
		return "", err
	}
	repo, err := OpenRepo(repoDir, old, opts)
	if err != nil {
		return "", err
	}
	next, err := GenerateOnlineKeys(staging)
	if err != nil {
		return "", err
	}
	if err := repo.ResignRoot(ctx, holders, next); err != nil {
		if !rootTrusts(repoDir, next) {
			// Never trusted by anything: nothing to keep.
			os.RemoveAll(staging)
		}
		return "", err
	}
	return swapKeyDirs(onlineDir, staging)
}

// rootTrusts reports whether the newest root on disk lists online's
// timestamp key.
func rootTrusts(repoDir string, online *OnlineKeys) bool {
	t, err := CurrentTrust(repoDir)
	return err == nil && slices.Contains(t.KeyIDs[metadata.TIMESTAMP], keyID(online.Timestamp))
}

// swapKeyDirs moves current aside (if present) and staging into its place.
func swapKeyDirs(current, staging string) (string, error) {
	retired := current + ".retired-" + time.Now().UTC().Format("20060102T150405Z")
	if _, err := os.Stat(current); err == nil {
		if err := os.Rename(current, retired); err != nil {
			return "", fmt.Errorf("%w: retire %s: %w", ErrKeys, current, err)
		}
	}
	if err := os.Rename(staging, current); err != nil {
		return "", fmt.Errorf("%w: the new online keys are in %s and trusted; move them to %s: %w", ErrKeys, staging, current, err)
	}
	return retired, nil
}
