package update

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RootKeys is the offline root key set: N ed25519 keys of which Threshold
// must sign a root. The operator generates them into a directory kept off
// the server (a USB key, a safe) and brings them only to initialise the
// repository or change the root. A loaded RootKeys may hold fewer private
// keys than the root lists (each holder brings their own); what counts when
// signing is whether the threshold is reached.
type RootKeys struct {
	Keys      []ed25519.PrivateKey
	Threshold int
}

// OnlineKeys are the keys the server holds: they sign every publish and
// every timestamp refresh. Bandage is the key of the delegated "bandage"
// role, trusted only for bandage/ targets, so that it can live with a
// smaller emergency-release service without being able to sign main.
type OnlineKeys struct {
	Timestamp ed25519.PrivateKey
	Snapshot  ed25519.PrivateKey
	Targets   ed25519.PrivateKey
	Bandage   ed25519.PrivateKey
}

const (
	rootKeyPrefix = "root-"
	keySuffix     = ".key"
	thresholdFile = "root-threshold"
)

// onlineKeyNames fixes the file names of the online keys.
var onlineKeyNames = []string{"timestamp", "snapshot", "targets", "bandage"}

// GenerateRootKeys creates n root keys with the given threshold in dir
// (created 0700 if missing; key files 0600) and returns them. It refuses to
// overwrite existing root keys.
func GenerateRootKeys(dir string, n, threshold int) (*RootKeys, error) {
	if n < 1 || threshold < 1 || threshold > n {
		return nil, fmt.Errorf("%w: root threshold %d of %d keys", ErrInvalid, threshold, n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrKeys, dir, err)
	}
	rk := &RootKeys{Threshold: threshold}
	for i := 1; i <= n; i++ {
		k, err := newKey()
		if err != nil {
			return nil, err
		}
		if err := writeKey(filepath.Join(dir, rootKeyPrefix+strconv.Itoa(i)+keySuffix), k); err != nil {
			return nil, err
		}
		rk.Keys = append(rk.Keys, k)
	}
	if err := writeFileExcl(filepath.Join(dir, thresholdFile), []byte(strconv.Itoa(threshold)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return rk, nil
}

// LoadRootKeys reads the root-*.key files and the threshold from dir. Key
// holders may bring a subset of the keys: any root-*.key present is loaded.
func LoadRootKeys(dir string) (*RootKeys, error) {
	tb, err := os.ReadFile(filepath.Join(dir, thresholdFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	t, err := strconv.Atoi(strings.TrimSpace(string(tb)))
	if err != nil || t < 1 {
		return nil, fmt.Errorf("%w: bad root threshold in %s", ErrKeys, filepath.Join(dir, thresholdFile))
	}
	names, err := filepath.Glob(filepath.Join(dir, rootKeyPrefix+"*"+keySuffix))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	slices.Sort(names)
	rk := &RootKeys{Threshold: t}
	for _, name := range names {
		k, err := readKey(name)
		if err != nil {
			return nil, err
		}
		rk.Keys = append(rk.Keys, k)
	}
	if len(rk.Keys) == 0 {
		return nil, fmt.Errorf("%w: no root keys in %s", ErrKeys, dir)
	}
	return rk, nil
}

// GenerateOnlineKeys creates the timestamp, snapshot, targets and bandage
// keys in dir (0700; files 0600). It refuses to overwrite existing keys.
func GenerateOnlineKeys(dir string) (*OnlineKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: create %s: %w", ErrKeys, dir, err)
	}
	ok := &OnlineKeys{}
	for _, name := range onlineKeyNames {
		k, err := newKey()
		if err != nil {
			return nil, err
		}
		if err := writeKey(filepath.Join(dir, name+keySuffix), k); err != nil {
			return nil, err
		}
		*ok.slot(name) = k
	}
	return ok, nil
}

// LoadOnlineKeys reads the four online keys from dir.
func LoadOnlineKeys(dir string) (*OnlineKeys, error) {
	ok := &OnlineKeys{}
	for _, name := range onlineKeyNames {
		k, err := readKey(filepath.Join(dir, name+keySuffix))
		if err != nil {
			return nil, err
		}
		*ok.slot(name) = k
	}
	return ok, nil
}

func (o *OnlineKeys) slot(name string) *ed25519.PrivateKey {
	switch name {
	case "timestamp":
		return &o.Timestamp
	case "snapshot":
		return &o.Snapshot
	case "targets":
		return &o.Targets
	default:
		return &o.Bandage
	}
}

func (o *OnlineKeys) check() error {
	if o == nil {
		return fmt.Errorf("%w: online keys missing", ErrKeys)
	}
	for _, name := range onlineKeyNames {
		if len(*o.slot(name)) != ed25519.PrivateKeySize {
			return fmt.Errorf("%w: %s key missing or not ed25519", ErrKeys, name)
		}
	}
	return nil
}

func newKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %w", ErrKeys, err)
	}
	return k, nil
}

// writeKey stores k as a PKCS#8 PEM file readable by its owner only; the
// file must not exist, so a mistaken second Generate cannot destroy the
// only copy of a root key.
func writeKey(name string, k ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("%w: encode %s: %w", ErrKeys, filepath.Base(name), err)
	}
	if err := writeFileExcl(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return nil
}

func writeFileExcl(name string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readKey loads a PKCS#8 ed25519 key. It refuses files that others can
// read: a key that leaked through permissions must be rotated, not used.
// Errors name the file, never its content.
func readKey(name string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is accessible to others (mode %v); chmod 600 and consider rotating it",
			ErrKeys, name, st.Mode().Perm())
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s is not a PEM private key", ErrKeys, name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a PKCS#8 key", ErrKeys, name)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an ed25519 key", ErrKeys, name)
	}
	return ek, nil
}

// tufKey converts a private key's public half to a TUF key (the key id is
// the sha256 of its canonical JSON).
func tufKey(k ed25519.PrivateKey) *metadata.Key {
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		panic(err) // ed25519 is always supported
	}
	return key
}

func keyID(k ed25519.PrivateKey) string { return tufKey(k).ID() }

func signer(k ed25519.PrivateKey) signature.Signer {
	s, err := signature.LoadED25519Signer(k)
	if err != nil {
		panic(err) // only fails for a nil key, which check() excludes
	}
	return s
}
