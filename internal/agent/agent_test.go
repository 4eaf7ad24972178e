package agent

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
	"github.com/mamori-soc/mamori/internal/update"
)

func installed(ch string, v uint64, lines ...string) *update.Installed {
	var recs update.Records
	for _, l := range lines {
		recs = append(recs, []byte(l))
	}
	return &update.Installed{Channel: ch, Version: v, Records: recs, ContentSHA256: update.ContentHash(recs)}
}

func TestEICARIsNotInTheBinary(t *testing.T) {
	e := eicar()
	if sum := md5.Sum(e); hex.EncodeToString(sum[:]) != "44d88612fea8a8f36de82e1278abb02f" {
		t.Fatalf("decoded test file has md5 %x", sum)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), string(e[:40])) {
		t.Error("the EICAR string is in the binary: it would detect itself")
	}
}

func TestGuardedLoad(t *testing.T) {
	ctx := context.Background()
	good := installed("bandage", 1, "hash Bandage.X 3395856ce81f2b7382dee72602f798b642f14140:68")
	sc, err := guardedLoad(ctx, map[string]*update.Installed{"bandage": good}, 10*time.Second)
	if err != nil || sc == nil {
		t.Fatalf("good set refused: %v", err)
	}
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		testutil.Missing(t, "no /bin/sh to poison a set with: %v", err)
	}
	sum := md5.Sum(sh)
	poison := installed("main", 2, "hash Poison.Shell "+hex.EncodeToString(sum[:])+":*")
	if _, err := guardedLoad(ctx, map[string]*update.Installed{"bandage": good, "main": poison}, 10*time.Second); !errors.Is(err, ErrSelfTest) {
		t.Errorf("a set detecting /bin/sh loaded: %v", err)
	}
	junk := installed("main", 3, "body Broken.Sig 0:*:zz!!")
	if _, err := guardedLoad(ctx, map[string]*update.Installed{"main": junk}, 10*time.Second); !errors.Is(err, ErrSelfTest) {
		t.Errorf("a set that does not compile loaded: %v", err)
	}
}

func TestKeptSetsSurviveAndTamperingIsDropped(t *testing.T) {
	dir := t.TempDir()
	good := installed("bandage", 4, "hash Bandage.X 3395856ce81f2b7382dee72602f798b642f14140:68")
	if err := saveSet(dir, good); err != nil {
		t.Fatal(err)
	}
	a := &Agent{o: Options{Dir: dir, Channels: []string{"main", "bandage"}, LoadTimeout: 10 * time.Second}, installed: map[string]*update.Installed{}}
	a.log = discard()
	a.loadSets()
	if a.installed["bandage"] == nil || a.installed["bandage"].Version != 4 || a.scanner == nil {
		t.Fatalf("kept set not restored: %+v", a.installed)
	}
	p := filepath.Join(dir, "patterns", "bandage.set")
	b, _ := os.ReadFile(p)
	_ = os.WriteFile(p, []byte(strings.Replace(string(b), "Bandage.X", "Bandage.Y", 1)), 0o600)
	a2 := &Agent{o: a.o, installed: map[string]*update.Installed{}, log: discard()}
	a2.loadSets()
	if len(a2.installed) != 0 {
		t.Error("an altered kept set was loaded")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestUncleanRestartsAreCounted(t *testing.T) {
	dir := t.TempDir()
	for i, want := range []int64{0, 1, 2} { // start, crash, start, crash, start
		n, err := countRestart(dir)
		if err != nil || n != want {
			t.Fatalf("start %d: %d %v, want %d", i, n, err, want)
		}
	}
	cleanExit(dir)
	if n, _ := countRestart(dir); n != 2 {
		t.Fatalf("a clean stop was counted: %d", n)
	}
}
