package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

// quietLogger drops the engine's Debug (INFO) lines and prints warnings to stderr
// (not t.Log: the engine logger is process-wide and may outlive the test).
func quietLogger(testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openTestEmbedded(t testing.TB, dir string, opts EmbeddedOptions) *Embedded {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	s, err := openEmbedded(dir, testResolver, opts)
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	return s
}

func TestEmbeddedStore(t *testing.T) {
	dir := t.TempDir()
	s := openTestEmbedded(t, dir, EmbeddedOptions{})
	runStoreSuite(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write(context.Background(), []*event.Event{{Tenant: "acme"}}); err != ErrClosed {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}

	// Reopen: the cut-offs are gone, so what DeleteBefore left is what is on disk.
	s2 := openTestEmbedded(t, dir, EmbeddedOptions{})
	defer s2.Close()
	d := makeSuiteData(time.Now())
	acme := []string{"acme"}
	// The events written before DeleteBefore are physically gone; the late one written after it is there.
	if got := count(t, s2, acme, noTime, noTime, "*"); got != d.acmeNew+1 {
		t.Errorf("acme after reopen = %d, want %d", got, d.acmeNew+1)
	}
	if got := count(t, s2, []string{"globex"}, noTime, noTime, "*"); got != d.globOld+d.globNew {
		t.Errorf("globex after reopen = %d, want %d", got, d.globOld+d.globNew)
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	s, err := Open("embedded", dir, testResolver)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Embedded); !ok {
		t.Errorf("Open(embedded) = %T", s)
	}
	if fi, err := os.Stat(dir + "/events"); err != nil || !fi.IsDir() {
		t.Errorf("no events dir: %v", err)
	}
	_ = s.Close()
	for _, bad := range []string{"ftp://x", "victorialogs://", "%%%"} {
		if _, err := Open(bad, dir, testResolver); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// TestEmbeddedOutOfWindow: timestamps the engine would drop are stored at ingest time.
func TestEmbeddedOutOfWindow(t *testing.T) {
	s := openTestEmbedded(t, t.TempDir(), EmbeddedOptions{Retention: 365 * 24 * time.Hour})
	defer s.Close()
	now := time.Now().UTC()
	evts := []*event.Event{
		{ID: "a", Tenant: "acme", Timestamp: time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC), Ingested: now, Original: "zero filetime"},
		{ID: "b", Tenant: "acme", Timestamp: now.AddDate(3, 0, 0), Ingested: now, Original: "future"},
		{ID: "c", Tenant: "acme", Timestamp: now.AddDate(-5, 0, 0), Ingested: now, Original: "too old"},
		{ID: "d", Tenant: "acme", Ingested: now, Original: "no timestamp"},
	}
	if err := s.Write(context.Background(), evts); err != nil {
		t.Fatal(err)
	}
	rows := collect(t, s, []string{"acme"}, noTime, noTime, "* | sort by (event.id)")
	if len(rows) != 4 {
		t.Fatalf("got %d rows, want 4: %v", len(rows), rows)
	}
	for i, r := range rows {
		e := RowToEvent(r)
		if !e.Timestamp.Equal(now) {
			t.Errorf("%s: _time = %s, want ingest time %s", e.ID, e.Timestamp, now)
		}
		orig, ok := e.Get(FieldTimestampOriginal)
		if i < 3 && (!ok || orig != evts[i].Timestamp.Format(time.RFC3339Nano)) {
			t.Errorf("%s: %s = %q", e.ID, FieldTimestampOriginal, orig)
		}
		if i == 3 && ok {
			t.Errorf("%s: unexpected %s", e.ID, FieldTimestampOriginal)
		}
	}
}

// TestEmbeddedLimits: rows over the engine's limits are trimmed, not dropped.
func TestEmbeddedLimits(t *testing.T) {
	s := openTestEmbedded(t, t.TempDir(), EmbeddedOptions{})
	defer s.Close()
	now := time.Now()
	big := &event.Event{ID: "big", Tenant: "acme", Timestamp: now, Original: strings.Repeat("x", 3<<20)}
	many := &event.Event{ID: "many", Tenant: "acme", Timestamp: now, Original: "many fields"}
	for i := 0; i < 1500; i++ {
		many.Set(fmt.Sprintf("f.%05d", i), "v")
	}
	long := &event.Event{ID: "long", Tenant: "acme", Timestamp: now, Original: "long name"}
	long.Set(strings.Repeat("n", 300), "v")
	if err := s.Write(context.Background(), []*event.Event{big, many, long}); err != nil {
		t.Fatal(err)
	}
	rows := collect(t, s, []string{"acme"}, noTime, noTime, "mamori.truncated:=true | fields event.id | sort by (event.id)")
	var ids []string
	for _, r := range rows {
		v, _ := r.Get("event.id")
		ids = append(ids, v)
	}
	if strings.Join(ids, ",") != "big,long,many" {
		t.Errorf("truncated rows = %v, want big,long,many", ids)
	}
}

// TestEmbeddedDurable kills a process right after Write returned and checks that a
// reopened store has every row: Write's flush put them on disk.
func TestEmbeddedDurable(t *testing.T) {
	if dir := os.Getenv("MAMORI_STORE_CRASH_DIR"); dir != "" {
		crashWriter(dir)
		return
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedDurable$", "-test.v")
	cmd.Env = append(os.Environ(), "MAMORI_STORE_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "WRITTEN 3000") {
		t.Fatalf("child output:\n%s", out)
	}
	s := openTestEmbedded(t, dir, EmbeddedOptions{})
	defer s.Close()
	if got := count(t, s, []string{"acme"}, noTime, noTime, "*"); got != 3000 {
		t.Errorf("after kill: %d rows, want 3000", got)
	}
	if got := count(t, s, []string{"acme"}, noTime, noTime, "_stream:{tenant=\"acme\"}"); got != 3000 {
		t.Errorf("after kill, by stream: %d rows, want 3000", got)
	}
}

// crashWriter runs in the child: write three batches, report, die without closing.
func crashWriter(dir string) {
	s, err := openEmbedded(dir, testResolver, EmbeddedOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	now := time.Now()
	n := 0
	for b := 0; b < 3; b++ {
		evts := make([]*event.Event, 1000)
		for i := range evts {
			n++
			evts[i] = &event.Event{ID: strconv.Itoa(n), Tenant: "acme", Timestamp: now.Add(-time.Duration(n) * time.Second), Source: "test", Original: "crash test " + strconv.Itoa(n)}
			evts[i].Set(event.FieldHostName, "h"+strconv.Itoa(n%10))
		}
		if err := s.Write(context.Background(), evts); err != nil {
			fmt.Println("write:", err)
			os.Exit(2)
		}
	}
	fmt.Printf("WRITTEN %d\n", n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}
