package correlate

import (
	"errors"
	"testing"
)

// TestSnapshotRestore: windows half counted before a restart go on counting
// after it — per rule type — and a changed rule starts afresh.
func TestSnapshotRestore(t *testing.T) {
	distinct := `    type: value_count
    rules: [deny]
    group-by: [source.ip]
    timespan: 1m
    condition: {field: destination.port, gte: 3}
`
	ordered := `    type: temporal_ordered
    rules: [fail, ok]
    group-by: [user.name]
    timespan: 1m
`
	yml := []string{corr("bf", countGTE3), corr("scan", distinct), corr("seq", ordered)}
	before := mustEngine(t, Options{}, yml...)
	run(t, before, []step{
		{rule: "fail", at: 0, kv: "user.name=root"},
		{rule: "fail", at: sec, kv: "user.name=root"},
		{rule: "fail", at: sec, kv: "user.name=bob", tenant: "t2"},
		{rule: "deny", at: 2 * sec, kv: "source.ip=10.0.0.1 destination.port=22"},
		{rule: "deny", at: 3 * sec, kv: "source.ip=10.0.0.1 destination.port=23"},
	})
	snap, err := before.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	after := mustEngine(t, Options{}, yml...)
	n, err := after.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // bf and seq for root and for bob@t2, scan for 10.0.0.1
		t.Fatalf("restored %d groups, want 5", n)
	}
	run(t, after, []step{
		{rule: "fail", at: 2 * sec, kv: "user.name=root", fires: []string{"bf user.name=root n=3"}},
		{rule: "deny", at: 4 * sec, kv: "source.ip=10.0.0.1 destination.port=24", fires: []string{"scan source.ip=10.0.0.1 n=3 v=3"}},
		{rule: "ok", at: 5 * sec, kv: "user.name=root", fires: []string{"seq user.name=root n=4 v=2"}},
		{rule: "fail", at: 6 * sec, kv: "user.name=bob", tenant: "t2"},
	})
	// The same matches without the restore: nothing fires.
	fresh := mustEngine(t, Options{}, yml...)
	run(t, fresh, []step{
		{rule: "fail", at: 2 * sec, kv: "user.name=root"},
		{rule: "deny", at: 4 * sec, kv: "source.ip=10.0.0.1 destination.port=24"},
	})
	// A rule edited in between (another threshold) does not inherit the state.
	edited := mustEngine(t, Options{}, corr("bf", `    type: event_count
    rules: [fail]
    group-by: [user.name]
    timespan: 1m
    condition: {gte: 4}
`))
	if n, err := edited.Restore(snap); err != nil || n != 0 {
		t.Fatalf("edited rule restored %d groups (%v), want 0", n, err)
	}
	if _, err := after.Restore([]byte("not gob")); !errors.Is(err, ErrSnapshot) {
		t.Fatalf("garbage: %v", err)
	}
}
