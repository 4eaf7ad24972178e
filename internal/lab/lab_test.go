package lab

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/state"
)

func openStore(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	db, err := state.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := Open(context.Background(), db.SQL(), filepath.Join(dir, "samples"), filepath.Join(dir, "keys", "samples.key"), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eicar is built at run time so this source is not itself a sample.
func eicar() []byte {
	return []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + `TEST-FILE!$H+H*`)
}

func TestPutGetTenancyAndStorage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	s := openStore(t, dir, Options{Now: func() time.Time { return now }, MaxSize: 1 << 20})

	smp, err := s.Put(ctx, bytes.NewReader(eicar()), Sighting{Tenant: "acme", Agent: "agt_1", Name: "/home/u/eicar.com", Detection: "Eicar-Signature", QuarantineID: "q1"})
	if err != nil {
		t.Fatal(err)
	}
	if smp.SHA256 != "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f" || smp.MD5 != "44d88612fea8a8f36de82e1278abb02f" || smp.Size != 68 {
		t.Fatalf("hashes %+v", smp)
	}
	now = now.Add(time.Hour)
	if _, err := s.Put(ctx, bytes.NewReader(eicar()), Sighting{Tenant: "globex", Agent: "agt_9", Name: `C:\x.com`}); err != nil {
		t.Fatal(err)
	}

	// Stored once, encrypted, read-only: the plaintext is nowhere on disk.
	var files []string
	_ = filepath.WalkDir(filepath.Join(dir, "samples"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, eicar()[:20]) {
				t.Errorf("%s holds the sample in clear", p)
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != 0o400 {
				t.Errorf("%s mode %v", p, st.Mode())
			}
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("stored files %v, want one", files)
	}

	// Each tenant sees its own sightings only; another tenant nothing.
	a, err := s.Get(ctx, smp.SHA256, []string{"acme"})
	if err != nil || len(a.Sightings) != 1 || a.Sightings[0].Name != "/home/u/eicar.com" || !a.LastSeen.Equal(now) {
		t.Fatalf("acme view %+v %v", a, err)
	}
	if _, err := s.Get(ctx, smp.SHA256, []string{"initech"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("initech sees the sample: %v", err)
	}
	all, _ := s.Get(ctx, smp.SHA256, nil)
	if len(all.Sightings) != 2 {
		t.Fatalf("admin view %+v", all)
	}
	if l, _ := s.List(ctx, []string{"initech"}, 10); len(l) != 0 {
		t.Fatalf("initech list %+v", l)
	}
	if l, _ := s.List(ctx, nil, 10); len(l) != 1 || len(l[0].Sightings) != 2 {
		t.Fatalf("admin list %+v", l)
	}

	got, err := s.Content(smp.SHA256)
	if err != nil || !bytes.Equal(got, eicar()) {
		t.Fatalf("content: %v", err)
	}
	// A new store on the same directory and key reads it back.
	s2 := openStore(t, dir, Options{})
	if got, err := s2.Content(smp.SHA256); err != nil || !bytes.Equal(got, eicar()) {
		t.Fatalf("reopened content: %v", err)
	}

	// Tampering is detected.
	p := files[0]
	_ = os.Chmod(p, 0o600)
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	_ = os.WriteFile(p, b, 0o400)
	if _, err := s.Content(smp.SHA256); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered sample: %v", err)
	}
}

func TestPutRefuses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{MaxSize: 100})
	if _, err := s.Put(ctx, strings.NewReader(strings.Repeat("x", 101)), Sighting{Tenant: "a", Agent: "b"}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	if _, err := s.Put(ctx, strings.NewReader(""), Sighting{Tenant: "a", Agent: "b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty: %v", err)
	}
	if _, err := s.Put(ctx, strings.NewReader("x"), Sighting{Agent: "b"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no tenant: %v", err)
	}
	for _, sha := range []string{"", "../../etc/passwd", strings.Repeat("A", 64)} {
		if _, err := s.Content(sha); !errors.Is(err, ErrNotFound) {
			t.Errorf("content %q: %v", sha, err)
		}
	}
}

// The bandage record made from a sample parses, compiles and detects
// exactly that sample.
func TestBandageRecord(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	smp, err := s.Put(ctx, bytes.NewReader(eicar()), Sighting{Tenant: "acme", Agent: "agt_1"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := pattern.ParseRecord(BandageRecord(smp, "Bandage.Lab.Eicar"))
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := pattern.Compile([]pattern.Record{rec})
	if err != nil {
		t.Fatal(err)
	}
	sc := pattern.NewScanner(set, pattern.Limits{})
	if d, err := sc.ScanBytes(ctx, "x", eicar()); err != nil || len(d) != 1 || d[0].Signature != "Bandage.Lab.Eicar" {
		t.Fatalf("bandage on the sample: %+v %v", d, err)
	}
	other := append(eicar(), ' ')
	if d, _ := sc.ScanBytes(ctx, "y", other); len(d) != 0 {
		t.Fatalf("bandage matched another file: %+v", d)
	}
	if err := pattern.ValidName("bad name"); err == nil {
		t.Error("a name with a space was accepted")
	}
}
