package anomaly

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/event"
)

// testStream counts events with event.category "test", by host.name when
// by is set.
func testStream(by ...string) Stream {
	return Stream{Name: "test", Match: map[string][]string{event.FieldCategory: {"test"}}, By: by,
		K: 3, For: config.Duration(3 * time.Minute), MinCount: 20}
}

func testEvent(ts time.Time, host string) *event.Event {
	e := &event.Event{Timestamp: ts}
	e.Set(event.FieldCategory, "test")
	e.Set(event.FieldHostName, host)
	return e
}

// feed sends perMinute(m) events for each minute of [from, to) spread over
// the minute, advancing once a minute, and returns the signals.
func feed(d *Detector, tenant, host string, from, to time.Time, perMinute func(time.Time) int) []Signal {
	var out []Signal
	for m := from; m.Before(to); m = m.Add(time.Minute) {
		n := perMinute(m)
		for k := range n {
			d.Observe(tenant, testEvent(m.Add(time.Duration(k)*time.Minute/time.Duration(n)), host))
		}
		out = append(out, d.Advance(m.Add(time.Minute))...)
	}
	return out
}

func constant(n int) func(time.Time) int { return func(time.Time) int { return n } }

func TestSlotsOf(t *testing.T) {
	for _, tc := range []struct {
		at        time.Time
		week, day int
	}{
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 0, 0},                      // Monday 00:00
		{time.Date(2026, 3, 2, 10, 59, 59, 0, time.UTC), 10, 10},                 // Monday 10:59
		{time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), 34, 10},                   // Tuesday 10:00
		{time.Date(2026, 3, 8, 23, 59, 0, 0, time.UTC), 167, 23},                 // Sunday 23:59
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 72, 0},                     // the epoch, a Thursday
		{time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), 71, 23},                // before the epoch
		{time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("JST", 9*3600)), 0, 0}, // zone-independent
	} {
		w, d := slotsOf(minuteOf(tc.at))
		if w != tc.week || d != tc.day {
			t.Errorf("%s: slots (%d, %d), want (%d, %d)", tc.at, w, d, tc.week, tc.day)
		}
	}
}

// TestSeasonalSlotSelection trains a baseline where only Monday
// 10:00–10:59 is busy. After two weeks the hour-of-week slot alone decides:
// Monday 10:30 expects the busy level, Tuesday 10:30 the quiet one, and
// while the weekly slot is young the hour-of-day slot is blended in.
func TestSeasonalSlotSelection(t *testing.T) {
	const busy, quiet = 40, 4
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	rate := func(m int64) uint32 {
		at := minuteTime(m)
		if at.Weekday() == time.Monday && at.Hour() == 10 {
			return busy
		}
		return quiet
	}
	train := func(b *baseline, from, to time.Time) {
		for m := minuteOf(from); m < minuteOf(to); m++ {
			b.learn(m, rate(m), false)
		}
	}
	expectAt := func(b *baseline, at time.Time) float64 {
		// The short-term window holds the quiet hour before: only the
		// season can explain a busy expectation.
		exp, _, ok := b.expect(minuteOf(at))
		if !ok {
			t.Fatalf("no expectation at %s", at)
		}
		return exp
	}

	var b baseline
	train(&b, monday, monday.Add(7*24*time.Hour))
	nextMonday := monday.Add(7 * 24 * time.Hour)
	// One week: the weekly slot has 60 minutes (f = 0.5), the daily slot
	// has learned Monday's busy hour and six quiet ones since.
	oneWeek := expectAt(&b, nextMonday.Add(10*time.Hour+30*time.Minute))
	if oneWeek <= quiet*1.5 || oneWeek >= busy {
		t.Errorf("after one week Monday 10:30 expects %.1f, want a blend between %d and %d", oneWeek, quiet, busy)
	}
	train(&b, nextMonday, nextMonday.Add(7*24*time.Hour))
	third := monday.Add(14 * 24 * time.Hour)
	if got := expectAt(&b, third.Add(10*time.Hour+30*time.Minute)); math.Abs(got-busy) > 1 {
		t.Errorf("after two weeks Monday 10:30 expects %.1f, want %d", got, busy)
	}
	if got := expectAt(&b, third.Add(34*time.Hour+30*time.Minute)); math.Abs(got-quiet) > 1 {
		t.Errorf("after two weeks Tuesday 10:30 expects %.1f, want %d", got, quiet)
	}
	if got := expectAt(&b, third.Add(11*time.Hour+30*time.Minute)); math.Abs(got-quiet) > 1 {
		t.Errorf("after two weeks Monday 11:30 expects %.1f, want %d", got, quiet)
	}
}

// TestShortTermCoversNewGroup: without any seasonal history a group gets
// its expectation from the last minutes (median), and none before
// minShort minutes.
func TestShortTermCoversNewGroup(t *testing.T) {
	var b baseline
	m0 := minuteOf(DefaultGenStart)
	for k := range int64(minShort - 1) {
		b.learn(m0+k, 12, false)
	}
	if _, _, ok := b.expect(m0 + 40*24*60); ok {
		t.Fatalf("expectation from %d minutes of history in another slot", minShort-1)
	}
	b.learn(m0+minShort, 100, false) // one outlier does not move a median
	for k := range int64(5) {
		b.learn(m0+minShort+1+k, 12, false)
	}
	exp, sigma, ok := b.expect(m0 + 40*24*60)
	if !ok || exp != 12 {
		t.Fatalf("expect = %.1f (ok %v), want the median 12", exp, ok)
	}
	if sigma < math.Sqrt(12) {
		t.Errorf("spread %.2f is below the Poisson floor %.2f", sigma, math.Sqrt(12))
	}
}

// TestWarmUp: a surge in a group's first hour is not reported (nothing
// to compare with yet); the same surge after the warm-up is.
func TestWarmUp(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}, WarmUp: time.Hour})
	start := DefaultGenStart.Add(9 * time.Hour)
	surge := func(from time.Duration) func(time.Time) int {
		return func(m time.Time) int {
			if off := m.Sub(start); off >= from && off < from+10*time.Minute {
				return 200
			}
			return 10
		}
	}
	if sigs := feed(d, "t1", "h", start, start.Add(50*time.Minute), surge(30*time.Minute)); len(sigs) != 0 {
		t.Fatalf("signal during warm-up: %+v", sigs[0])
	}
	d2 := newDetector(t, Config{Streams: []Stream{testStream()}, WarmUp: time.Hour})
	sigs := feed(d2, "t1", "h", start, start.Add(100*time.Minute), surge(80*time.Minute))
	if len(sigs) == 0 || sigs[0].Phase != PhaseStart {
		t.Fatalf("no start signal for a 20× surge after the warm-up: %+v", sigs)
	}
	if want := start.Add(80 * time.Minute); !sigs[0].Start.Equal(want) {
		t.Errorf("episode start %s, want %s", sigs[0].Start, want)
	}
}

// TestNoPoisoning: a two-hour surge is one episode, its minutes are not
// learned, and an identical surge afterwards is caught again against the
// old expectation.
func TestNoPoisoning(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}})
	start := DefaultGenStart.Add(8 * time.Hour)
	surgeAt := func(m time.Time) int {
		off := m.Sub(start)
		if (off >= 3*time.Hour && off < 5*time.Hour) || (off >= 6*time.Hour && off < 6*time.Hour+15*time.Minute) {
			return 100
		}
		return 10
	}
	sigs := feed(d, "t1", "h", start, start.Add(7*time.Hour), surgeAt)
	var starts, ends []Signal
	ids := map[string]bool{}
	for _, s := range sigs {
		ids[s.ID] = true
		switch s.Phase {
		case PhaseStart:
			starts = append(starts, s)
		case PhaseEnd:
			ends = append(ends, s)
		}
	}
	if len(starts) != 2 || len(ends) != 2 || len(ids) != 2 {
		t.Fatalf("got %d starts, %d ends, %d ids; want one episode per surge", len(starts), len(ends), len(ids))
	}
	second := starts[1]
	if second.Expected > 12 {
		t.Errorf("after a two-hour surge the expectation is %.1f: the surge was learned", second.Expected)
	}
	if want := start.Add(6 * time.Hour); !second.Start.Equal(want) {
		t.Errorf("second episode starts %s, want %s", second.Start, want)
	}
	// The end comes EndAfter minutes after the last breaching minute.
	if want := start.Add(5*time.Hour + 4*time.Minute); !ends[0].Minute.Equal(want) {
		t.Errorf("first episode ends at %s, want %s", ends[0].Minute, want)
	}
}

// TestBriefDipDoesNotEndEpisode: For counts breaches in a sliding window,
// so a single normal minute inside a surge neither delays the start much
// nor splits the episode.
func TestBriefDipDoesNotEndEpisode(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}})
	start := DefaultGenStart.Add(8 * time.Hour)
	surge := start.Add(2 * time.Hour)
	sigs := feed(d, "t1", "h", start, start.Add(3*time.Hour), func(m time.Time) int {
		off := m.Sub(surge)
		switch {
		case off < 0 || off >= 30*time.Minute:
			return 10
		case off == time.Minute || off == 10*time.Minute || off == 11*time.Minute:
			return 10 // dips
		}
		return 100
	})
	var starts int
	for _, s := range sigs {
		if s.Phase == PhaseStart {
			starts++
			if !s.Minute.Equal(surge.Add(3 * time.Minute)) {
				t.Errorf("episode started at %s, want the third breaching minute %s", s.Minute, surge.Add(3*time.Minute))
			}
		}
	}
	if starts != 1 {
		t.Errorf("%d episodes, want 1", starts)
	}
}

// TestGroupEviction: at MaxGroups the least recently seen group goes.
func TestGroupEviction(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream(event.FieldHostName)}, MaxGroups: 3})
	at := DefaultGenStart
	for _, h := range []string{"a", "b", "c", "a", "d", "e"} {
		d.Observe("t1", testEvent(at, h))
		at = at.Add(time.Second)
	}
	gs := d.tenants["t1"].streams[0]
	var keys []string
	for g := gs.head; g != nil; g = g.next {
		keys = append(keys, g.key)
	}
	if want := []string{"e", "d", "a"}; !slices.Equal(keys, want) {
		t.Errorf("groups by recency %v, want %v", keys, want)
	}
	st := d.Stats()
	if st.Evicted != 2 || st.Groups != 3 {
		t.Errorf("evicted %d, groups %d; want 2 and 3", st.Evicted, st.Groups)
	}
	if st.BytesPerGroup < int(unsafeSizeofBaseline()) || st.Bytes < int64(3*st.BytesPerGroup) {
		t.Errorf("bytes per group %d, total %d: below the baseline's own size %d", st.BytesPerGroup, st.Bytes, unsafeSizeofBaseline())
	}
	t.Logf("memory: %d bytes per group", st.BytesPerGroup)
}

// TestLateEvents: events up to Lateness after their minute ended still
// count; older ones are dropped and counted.
func TestLateEvents(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}, Lateness: 2 * time.Minute})
	m0 := DefaultGenStart.Add(10 * time.Hour)
	obs := func(off time.Duration) { d.Observe("t1", testEvent(m0.Add(off), "h")) }
	obs(30 * time.Second)
	other := &event.Event{Timestamp: m0.Add(70 * time.Second)}
	other.Set(event.FieldCategory, "other")
	d.Observe("t1", other)              // minute 1: the tenant is alive, the group silent
	obs(2*time.Minute + 10*time.Second) // the tenant's clock: minute 0 still open
	obs(50 * time.Second)               // late but within the bound
	obs(4*time.Minute + 30*time.Second) // closes minutes 0 and 1
	obs(59 * time.Second)               // too late
	g := d.tenants["t1"].streams[0].groups[""]
	if g.base.RingN != 2 || g.base.Ring[0] != 2 || g.base.Ring[1] != 0 {
		t.Errorf("closed minutes learned %v (n=%d), want [2 0]", g.base.Ring[:g.base.RingN], g.base.RingN)
	}
	if st := d.Stats(); st.Late != 1 || st.Counted != 4 {
		t.Errorf("late %d, counted %d; want 1 and 4", st.Late, st.Counted)
	}
}

// TestCollectionGapNotLearned: minutes in which a tenant sent nothing at
// all are a collection gap, not zero traffic, and are not learned.
func TestCollectionGapNotLearned(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}})
	start := DefaultGenStart.Add(8 * time.Hour)
	feed(d, "t1", "h", start, start.Add(2*time.Hour), constant(10))
	g := d.tenants["t1"].streams[0].groups[""]
	before := g.base.History
	d.Advance(start.Add(8 * time.Hour)) // six silent hours
	sigs := feed(d, "t1", "h", start.Add(8*time.Hour), start.Add(9*time.Hour), constant(10))
	if len(sigs) != 0 {
		t.Errorf("signal after a collection gap: %+v", sigs[0])
	}
	if learned := g.base.History - before; learned > 61 {
		t.Errorf("%d minutes learned across a six-hour gap plus one hour of traffic", learned)
	}
	if slices.Contains(g.base.Ring[:g.base.RingN], 0) {
		t.Errorf("zeros in the short-term window after a gap: %v", g.base.Ring[:g.base.RingN])
	}
}

// TestTenantsAndGroupsAreSeparate: a surge in one tenant's group says
// nothing about another tenant or group, and the signal names its group.
func TestTenantsAndGroupsAreSeparate(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream(event.FieldHostName)}})
	start := DefaultGenStart.Add(8 * time.Hour)
	var sigs []Signal
	for m := start; m.Before(start.Add(3 * time.Hour)); m = m.Add(time.Minute) {
		n := 10
		if m.Sub(start) >= 2*time.Hour {
			n = 150
		}
		for k := range 10 {
			d.Observe("quiet", testEvent(m.Add(time.Duration(k)*time.Second), "h1"))
			d.Observe("busy", testEvent(m.Add(time.Duration(k)*time.Second), "h2"))
		}
		for k := range n {
			d.Observe("busy", testEvent(m.Add(time.Duration(k)*time.Minute/time.Duration(n)), "h1"))
		}
		sigs = append(sigs, d.Advance(m.Add(time.Minute))...)
	}
	if len(sigs) == 0 {
		t.Fatal("no signal")
	}
	for _, s := range sigs {
		if s.Tenant != "busy" || s.Group[event.FieldHostName] != "h1" || s.Stream != "test" || s.Severity != DefaultSeverity {
			t.Errorf("signal for the wrong tenant or group: %+v", s)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := Config{Streams: []Stream{testStream(event.FieldHostName)}}
	a := newDetector(t, cfg)
	start := DefaultGenStart.Add(8 * time.Hour)
	// Two hours of history and the start of a surge: the snapshot holds
	// baselines, open minutes and an open episode.
	feed(a, "t1", "h1", start, start.Add(2*time.Hour), constant(10))
	feed(a, "t1", "h1", start.Add(2*time.Hour), start.Add(2*time.Hour+5*time.Minute), constant(200))
	a.Observe("t1", testEvent(start.Add(2*time.Hour+5*time.Minute+10*time.Second), "h1"))
	if a.Stats().OpenEpisodes != 1 {
		t.Fatalf("setup: %d open episodes, want 1", a.Stats().OpenEpisodes)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := newDetector(t, cfg)
	if err := b.Restore(snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	snap2, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if string(snap) != string(snap2) {
		t.Fatalf("snapshot of the restored detector differs (%d vs %d bytes)", len(snap), len(snap2))
	}
	t.Logf("snapshot: %d bytes for %d group(s)", len(snap), a.Stats().Groups)
	// Both continue identically: same signals, same episode id.
	cont := func(d *Detector) []Signal {
		return feed(d, "t1", "h1", start.Add(2*time.Hour+6*time.Minute), start.Add(3*time.Hour), func(m time.Time) int {
			if m.Before(start.Add(2*time.Hour + 20*time.Minute)) {
				return 200
			}
			return 10
		})
	}
	sa, sb := cont(a), cont(b)
	if len(sa) == 0 || !slices.EqualFunc(sa, sb, signalEqual) {
		t.Fatalf("restored detector diverged: %d vs %d signals", len(sa), len(sb))
	}
	if sa[len(sa)-1].Phase != PhaseEnd {
		t.Errorf("the restored episode did not end: last %+v", sa[len(sa)-1])
	}
}

func signalEqual(a, b Signal) bool {
	return a.ID == b.ID && a.Phase == b.Phase && a.Minute.Equal(b.Minute) && a.Observed == b.Observed &&
		a.Expected == b.Expected && a.Tenant == b.Tenant && a.Stream == b.Stream
}

func TestRestoreRejectsGarbageAndKeepsState(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream()}})
	feed(d, "t1", "h", DefaultGenStart, DefaultGenStart.Add(10*time.Minute), constant(5))
	before, _ := d.Snapshot()
	for _, b := range [][]byte{nil, []byte("hello"), []byte(snapshotMagic), append([]byte(snapshotMagic), 0xff, 0x01, 0x02), before[:len(before)/2]} {
		if err := d.Restore(b); !errors.Is(err, ErrSnapshot) {
			t.Errorf("Restore(%q...) = %v, want ErrSnapshot", b[:min(len(b), 20)], err)
		}
	}
	after, _ := d.Snapshot()
	if string(before) != string(after) {
		t.Error("a failed Restore changed the state")
	}
}

// TestRestoreDropsChangedStreams: state of a stream whose grouping
// changed is not applied to the new grouping.
func TestRestoreDropsChangedStreams(t *testing.T) {
	a := newDetector(t, Config{Streams: []Stream{testStream(event.FieldHostName)}})
	feed(a, "t1", "h1", DefaultGenStart, DefaultGenStart.Add(10*time.Minute), constant(5))
	snap, _ := a.Snapshot()
	b := newDetector(t, Config{Streams: []Stream{testStream(event.FieldSourceIP)}})
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if g := b.Stats().Groups; g != 0 {
		t.Errorf("%d groups restored into a stream grouped by other fields", g)
	}
}

func TestMatchAndGroup(t *testing.T) {
	s := Stream{Name: "m", Match: map[string][]string{
		event.FieldCategory: {"email"},
		event.FieldAction:   {"sent", "bounced"},
	}, By: []string{event.FieldHostName, event.FieldSourceIP}}
	d := newDetector(t, Config{Streams: []Stream{s}})
	mk := func(fields ...string) *event.Event {
		e := &event.Event{Timestamp: DefaultGenStart}
		for i := 0; i < len(fields); i += 2 {
			e.Set(fields[i], fields[i+1])
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		e       *event.Event
		counted bool
	}{
		{"all match", mk("event.category", "email", "event.action", "sent", "host.name", "m1", "source.ip", "10.0.0.1"), true},
		{"second value", mk("event.category", "email", "event.action", "bounced", "host.name", "m1", "source.ip", "10.0.0.1"), true},
		{"value not accepted", mk("event.category", "email", "event.action", "deferred", "host.name", "m1", "source.ip", "10.0.0.1"), false},
		{"field missing", mk("event.category", "email", "host.name", "m1", "source.ip", "10.0.0.1"), false},
		{"other category", mk("event.category", "network", "event.action", "sent", "host.name", "m1", "source.ip", "10.0.0.1"), false},
		{"by field missing", mk("event.category", "email", "event.action", "sent", "host.name", "m1"), false},
	} {
		before := d.Stats().Counted
		d.Observe("t", tc.e)
		if got := d.Stats().Counted > before; got != tc.counted {
			t.Errorf("%s: counted %v, want %v", tc.name, got, tc.counted)
		}
	}
	if st := d.Stats(); st.Ungrouped != 1 || st.Groups != 1 {
		t.Errorf("ungrouped %d, groups %d; want 1 and 1", st.Ungrouped, st.Groups)
	}
	g := d.tenants["t"].streams[0].groups["m1\x0010.0.0.1"]
	if g == nil || !slices.Equal(g.values, []string{"m1", "10.0.0.1"}) {
		t.Errorf("group values %v", g)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := testStream()
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"defaults", Config{}, nil},
		{"no name", Config{Streams: []Stream{{}}}, ErrInvalidStream},
		{"duplicate", Config{Streams: []Stream{ok, ok}}, ErrInvalidStream},
		{"k below 1", Config{Streams: []Stream{{Name: "x", K: 0.5}}}, ErrInvalidStream},
		{"for not whole minutes", Config{Streams: []Stream{{Name: "x", For: config.Duration(90 * time.Second)}}}, ErrInvalidStream},
		{"for too long", Config{Streams: []Stream{{Name: "x", For: config.Duration(2 * time.Hour)}}}, ErrInvalidStream},
		{"repeated by", Config{Streams: []Stream{{Name: "x", By: []string{"a", "a"}}}}, ErrInvalidStream},
		{"empty match values", Config{Streams: []Stream{{Name: "x", Match: map[string][]string{"a": nil}}}}, ErrInvalidStream},
		{"lateness too long", Config{Lateness: 10 * time.Minute}, ErrConfig},
		{"end-after too short", Config{EndAfter: time.Second}, ErrConfig},
		{"negative groups", Config{MaxGroups: -1}, ErrConfig},
	} {
		_, err := New(tc.cfg)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: New = %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v does not wrap ErrConfig", tc.name, err)
		}
	}
}

// TestFutureEventsDropped: with Now set, an event from a broken clock far
// ahead does not move the tenant's clock (which would close every open
// minute and drop the real events as late).
func TestFutureEventsDropped(t *testing.T) {
	now := DefaultGenStart.Add(10 * time.Hour)
	d := newDetector(t, Config{Streams: []Stream{testStream()}, Now: func() time.Time { return now }})
	d.Observe("t1", testEvent(now, "h"))
	d.Observe("t1", testEvent(now.Add(24*time.Hour), "h"))
	d.Observe("t1", testEvent(now.Add(10*time.Second), "h"))
	if st := d.Stats(); st.Future != 1 || st.Late != 0 || st.Counted != 2 {
		t.Errorf("future %d, late %d, counted %d; want 1, 0, 2", st.Future, st.Late, st.Counted)
	}
}

func unsafeSizeofBaseline() uintptr { return unsafe.Sizeof(baseline{}) }

// TestConcurrentUse: Observe from several goroutines (one per tenant, as
// bus workers would) while another goroutine advances and drains; run
// with -race. Every event is counted once.
func TestConcurrentUse(t *testing.T) {
	d := newDetector(t, Config{Streams: []Stream{testStream(event.FieldHostName)}})
	start := DefaultGenStart.Add(8 * time.Hour)
	const workers, perWorker = 4, 3000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			tenant := "t" + strconv.Itoa(w)
			for k := range perWorker {
				d.Observe(tenant, testEvent(start.Add(time.Duration(k)*time.Second), "h"+strconv.Itoa(k%7)))
			}
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range 50 {
			d.Advance(start.Add(time.Duration(k) * time.Minute))
			d.Drain()
			d.Stats()
		}
	}()
	wg.Wait()
	<-done
	if st := d.Stats(); st.Counted+st.Late != workers*perWorker || st.Tenants != workers || st.Groups != workers*7 {
		t.Errorf("counted %d + late %d of %d events, %d tenants, %d groups", st.Counted, st.Late, workers*perWorker, st.Tenants, st.Groups)
	}
}
