package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mamori-soc/mamori/internal/update"
)

// mamori runs the command line in-process and returns what it printed.
func mamori(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func mustMamori(t *testing.T, args ...string) string {
	t.Helper()
	out, err := mamori(t, args...)
	if err != nil {
		t.Fatalf("mamori %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// privateMaterial returns the base64 bodies of every PEM key under dir.
func privateMaterial(t *testing.T, dir string) []string {
	t.Helper()
	var secrets []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".key") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: not PEM", p)
		}
		// The PKCS#8 body ends with the 32-byte seed.
		secrets = append(secrets, base64.StdEncoding.EncodeToString(blk.Bytes), base64.StdEncoding.EncodeToString(blk.Bytes[len(blk.Bytes)-32:])[:40])
		return nil
	})
	if len(secrets) == 0 {
		t.Fatalf("no keys under %s", dir)
	}
	return secrets
}

func TestKeysInitShowRotate(t *testing.T) {
	data := t.TempDir()
	keys := filepath.Join(data, "keys")
	out := mustMamori(t, "keys", "init", "--data", data)
	if !strings.Contains(out, "created 3 root keys (2 needed") || !strings.Contains(out, "created the pattern repository") {
		t.Fatalf("init output:\n%s", out)
	}
	for _, sub := range []string{"root", "online"} {
		files, _ := filepath.Glob(filepath.Join(keys, sub, "*"))
		if len(files) == 0 {
			t.Fatalf("no files in %s", sub)
		}
		for _, f := range files {
			if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
			}
		}
	}
	// What the server does at its next start: open the repository with the
	// online keys in <data>/keys/online.
	online, err := update.LoadOnlineKeys(filepath.Join(keys, "online"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update.OpenRepo(filepath.Join(data, "update"), online, repoOptions()); err != nil {
		t.Fatalf("the server could not open what init created: %v", err)
	}
	// Never over existing keys.
	if _, err := mamori(t, "keys", "init", "--dir", keys); err == nil {
		t.Fatal("second init over existing keys succeeded")
	}
	if _, err := mamori(t, "keys", "init", "--data", data, "--dir", filepath.Join(t.TempDir(), "k")); err == nil {
		t.Fatal("init over an existing repository succeeded")
	}

	secrets := privateMaterial(t, keys)
	out = mustMamori(t, "keys", "show", "--dir", keys, "--data", data)
	for _, want := range []string{"repository root version 1", "root threshold", "timestamp", "bandage", "TRUSTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
	jsonOut := mustMamori(t, "keys", "show", "--dir", keys, "--data", data, "--json")
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(jsonOut, s) {
			t.Fatal("keys show printed private key material")
		}
	}
	lines := strings.Split(strings.TrimSpace(jsonOut), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d JSON lines, want 7 (3 root + 4 online)", len(lines))
	}
	oldTimestampID := ""
	for _, l := range lines {
		var k shownKey
		if err := json.Unmarshal([]byte(l), &k); err != nil {
			t.Fatal(err)
		}
		if k.Trusted == nil || !*k.Trusted {
			t.Errorf("%s key %s not trusted by a fresh repository", k.Role, k.ID)
		}
		if k.Role == "timestamp" {
			oldTimestampID = k.ID
		}
	}

	// Online keys replaced with two of the three root keys.
	holders := filepath.Join(t.TempDir(), "holders")
	if err := os.MkdirAll(holders, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root-2.key", "root-3.key", "root-threshold"} {
		b, err := os.ReadFile(filepath.Join(keys, "root", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(holders, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out = mustMamori(t, "keys", "rotate-online", "--data", data, "--root-keys", holders)
	if !strings.Contains(out, "root version 2 written") || !strings.Contains(out, "retired") {
		t.Fatalf("rotate-online output:\n%s", out)
	}
	ids := mustMamori(t, "keys", "show", "--dir", filepath.Join(keys, "online"), "-q")
	if strings.Contains(ids, oldTimestampID) || len(strings.Fields(ids)) != 4 {
		t.Fatalf("online key ids after rotation:\n%s", ids)
	}

	// New root keys (created), signed by the old threshold.
	newRoot := filepath.Join(t.TempDir(), "root-2026")
	out = mustMamori(t, "keys", "rotate-root", "--data", data, "--root-keys", holders, "--new-root-keys", newRoot, "--count", "5", "--threshold", "3")
	if !strings.Contains(out, "created 5 new root keys") || !strings.Contains(out, "root version 3 written") || !strings.Contains(out, "5 root keys, threshold 3") {
		t.Fatalf("rotate-root output:\n%s", out)
	}
	// The old root keys can no longer sign a root; the new ones renew it.
	if _, err := mamori(t, "keys", "rotate-root", "--data", data, "--root-keys", holders); err == nil {
		t.Fatal("retired root keys signed a new root")
	}
	out = mustMamori(t, "keys", "rotate-root", "--data", data, "--root-keys", newRoot)
	if !strings.Contains(out, "root version 4 written") {
		t.Fatalf("renewal output:\n%s", out)
	}
	online, err = update.LoadOnlineKeys(filepath.Join(keys, "online"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update.OpenRepo(filepath.Join(data, "update"), online, repoOptions()); err != nil {
		t.Fatalf("repository after rotations: %v", err)
	}
	out = mustMamori(t, "keys", "show", "--dir", newRoot, "--data", data)
	if strings.Count(out, "yes") != 5 {
		t.Fatalf("new root keys not all trusted:\n%s", out)
	}
}

func TestKeysUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"keys", "init"},
		{"keys", "show"},
		{"keys", "rotate-root", "--data", t.TempDir(), "--root-keys", t.TempDir()}, // no repository
		{"keys", "rotate-online", "--data", t.TempDir()},
	} {
		_, err := mamori(t, args...)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("mamori %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
