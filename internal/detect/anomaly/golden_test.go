package anomaly

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mamori-soc/mamori/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.* and the FuzzRestore seed corpus")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it):\n%s", path, got)
	}
}

// TestDefaultStreamsGolden pins the shipped streams as a user would write
// them in YAML, and checks that the YAML reads back to the same streams.
func TestDefaultStreamsGolden(t *testing.T) {
	out, err := yaml.Marshal(DefaultStreams())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "default_streams.golden.yaml", out)
	var back []Stream
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := yaml.Marshal(back)
	if string(again) != string(out) {
		t.Errorf("YAML round trip changed the streams:\n%s", again)
	}
	// A hand-written stream with defaults left out.
	var s Stream
	if err := yaml.Unmarshal([]byte("name: x\nmatch: {event.category: [email]}\nby: [host.name]\nfor: 5m\n"), &s); err != nil {
		t.Fatal(err)
	}
	n, err := s.Normalize()
	if err != nil || n.For.D() != 5*time.Minute || n.K != DefaultK || n.MinCount != DefaultMinCount {
		t.Errorf("normalized %+v, %v", n, err)
	}
}

// TestSignalsGolden pins the signals of a small deterministic episode:
// ids, phases, minutes and the numbers a caller shows.
func TestSignalsGolden(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream(event.FieldHostName)}})
	start := DefaultGenStart.Add(8 * time.Hour)
	sigs := feed(d, "t1", "mail1", start, start.Add(2*time.Hour+20*time.Minute), func(m time.Time) int {
		switch off := m.Sub(start); {
		case off >= 2*time.Hour && off < 2*time.Hour+6*time.Minute:
			return 40 + 20*int(off/time.Minute-120)
		default:
			return 10
		}
	})
	out, err := json.MarshalIndent(sigs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "signals.golden.json", append(out, '\n'))
}

// snapshotSeed is a snapshot with every kind of state: baselines, open
// minutes, an open episode.
func snapshotSeed(t testing.TB) []byte {
	d, err := New(Config{Streams: []Stream{testStream(event.FieldHostName)}})
	if err != nil {
		t.Fatal(err)
	}
	start := DefaultGenStart.Add(8 * time.Hour)
	feed(d, "t1", "h1", start, start.Add(65*time.Minute), constant(10))
	feed(d, "t1", "h1", start.Add(65*time.Minute), start.Add(70*time.Minute), constant(100))
	d.Observe("t2", testEvent(start, "h2"))
	b, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRestore: Restore never panics, fails only with ErrSnapshot and then
// leaves the state alone, and what it accepts snapshots back to bytes
// that restore to the same state; the detector keeps working.
func FuzzRestore(f *testing.F) {
	seed := snapshotSeed(f)
	if *update {
		dir := filepath.Join("testdata", "fuzz", "FuzzRestore")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(seed)))
		if err := os.WriteFile(filepath.Join(dir, "snapshot"), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Add([]byte(snapshotMagic))
	f.Add([]byte("mamori-anomaly-snapshot 2\n"))
	f.Add(seed[:len(seed)-7])
	cfg := Config{Streams: []Stream{testStream(event.FieldHostName)}}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d.Observe("t0", testEvent(DefaultGenStart, "h0"))
		before, err := d.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Restore(b); err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("Restore error %v does not wrap ErrSnapshot", err)
			}
			if after, _ := d.Snapshot(); string(after) != string(before) {
				t.Fatal("a failed Restore changed the state")
			}
			return
		}
		s1, err := d.Snapshot()
		if err != nil {
			t.Fatalf("Snapshot after Restore: %v", err)
		}
		d2, _ := New(cfg)
		if err := d2.Restore(s1); err != nil {
			t.Fatalf("Restore of our own snapshot: %v", err)
		}
		if s2, _ := d2.Snapshot(); string(s2) != string(s1) {
			t.Fatal("snapshot → restore → snapshot changed the bytes")
		}
		at := DefaultGenStart.Add(9 * time.Hour)
		for k := range 30 {
			d.Observe("t1", testEvent(at.Add(time.Duration(k)*10*time.Second), "h1"))
		}
		d.Advance(at.Add(24 * time.Hour))
		if st := d.Stats(); st.OpenEpisodes < 0 {
			t.Fatalf("open episodes %d", st.OpenEpisodes)
		}
	})
}
