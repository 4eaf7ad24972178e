package anomaly

import (
	"crypto/sha256"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

func TestGenerateDeterministicAndOrdered(t *testing.T) {
	digest := func(o GenOptions) [32]byte {
		h := sha256.New()
		var last time.Time
		if err := GenerateMail(o, func(ts time.Time, line string) error {
			if ts.Before(last) {
				t.Fatalf("line at %s after one at %s", ts, last)
			}
			last = ts
			h.Write([]byte(line))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return [32]byte(h.Sum(nil))
	}
	o := GenOptions{Scenario: ScenarioOutbreak, Seed: 5, Duration: 2 * time.Hour, RiseAt: DefaultGenStart.Add(time.Hour)}
	if digest(o) != digest(o) {
		t.Error("the same options gave different lines")
	}
	o2 := o
	o2.Seed = 6
	if digest(o) == digest(o2) {
		t.Error("another seed gave the same lines")
	}
}

// genStats replays generated lines through the parser and counts, per
// hour, the mails each client submitted.
type genStats struct {
	submissions map[time.Time]map[string]int // hour → source.ip → client= lines
	deliveries  int
	lines       int
}

func generateParsed(t *testing.T, o GenOptions) genStats {
	t.Helper()
	st := genStats{submissions: map[time.Time]map[string]int{}}
	p := parse.New()
	var e event.Event
	err := GenerateMail(o, func(ts time.Time, line string) error {
		st.lines++
		e.Fields = e.Fields[:0]
		e.Ingested = ts.Add(time.Hour) // the parser must take the line's own time
		if r := p.Parse([]byte(line), &e); r.Format != "postfix" {
			t.Fatalf("line not read as postfix (%q): %s", r.Format, line)
		}
		if !e.Timestamp.Equal(ts) {
			t.Fatalf("parsed time %s, generated %s: %s", e.Timestamp, ts, line)
		}
		switch e.Value(event.FieldAction) {
		case "client":
			h := ts.Truncate(time.Hour)
			if st.submissions[h] == nil {
				st.submissions[h] = map[string]int{}
			}
			st.submissions[h][e.Value(event.FieldSourceIP)]++
			if e.Value(event.FieldHostName) == "" {
				t.Fatalf("no host.name: %s", line)
			}
		case "sent", "bounced", "deferred":
			st.deliveries++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s genStats) hour(h time.Time) int {
	n := 0
	for _, c := range s.submissions[h] {
		n += c
	}
	return n
}

func TestGenerateRates(t *testing.T) {
	t.Run("steady", func(t *testing.T) {
		st := generateParsed(t, GenOptions{Scenario: ScenarioSteady, Seed: 1, Rate: 10, Duration: 24 * time.Hour})
		total := 0
		for h := range st.submissions {
			total += st.hour(h)
		}
		if want := 10.0 * 1440; math.Abs(float64(total)-want) > 0.03*want {
			t.Errorf("%d mails in a day at 10/min, want %.0f ± 3%%", total, want)
		}
		if st.deliveries < total {
			t.Errorf("%d deliveries for %d mails", st.deliveries, total)
		}
	})
	t.Run("diurnal", func(t *testing.T) {
		// Friday and Saturday.
		start := DefaultGenStart.Add(4 * 24 * time.Hour)
		st := generateParsed(t, GenOptions{Scenario: ScenarioDiurnal, Seed: 2, Start: start, Duration: 48 * time.Hour})
		night, peak := st.hour(start.Add(2*time.Hour)), st.hour(start.Add(12*time.Hour))+st.hour(start.Add(13*time.Hour))
		if ratio := float64(peak) / 2 / float64(night); ratio < 6 || ratio > 12 {
			t.Errorf("peak/night = %.1f (%d/2 vs %d), want about 10", ratio, peak, night)
		}
		weekday, weekend := st.hour(start.Add(13*time.Hour)), st.hour(start.Add(37*time.Hour))
		if ratio := float64(weekend) / float64(weekday); ratio < 0.2 || ratio > 0.4 {
			t.Errorf("weekend/weekday at 13:00 = %.2f, want about 0.3", ratio)
		}
	})
	t.Run("outbreak", func(t *testing.T) {
		o, _ := GenOptions{Scenario: ScenarioOutbreak, Seed: 3, Duration: 10 * time.Hour, RiseAt: DefaultGenStart.Add(12 * time.Hour), Hold: 2 * time.Hour}.Normalize()
		st := generateParsed(t, o)
		infected := o.InfectedClients()[0]
		before, top := st.hour(o.RiseAt.Add(-time.Hour)), st.hour(o.RiseAt.Add(time.Hour))
		if before == 0 || float64(top)/float64(before) < 7 {
			t.Errorf("mails per hour before the rise %d, at the top %d: want about 10×", before, top)
		}
		if got := st.submissions[o.RiseAt.Add(time.Hour)][infected]; float64(got) < 0.8*float64(top) {
			t.Errorf("infected client %s sent %d of %d mails at the top", infected, got, top)
		}
		if st.submissions[o.RiseAt.Add(-time.Hour)][infected] > before/5 {
			t.Errorf("infected client already busy before the rise")
		}
	})
}

func TestGenerateOptions(t *testing.T) {
	for _, o := range []GenOptions{
		{Scenario: "flood"},
		{Format: "json"},
		{Rate: -1},
		{NightRatio: 2},
		{Clients: 2, Infected: 3},
		{Scenario: ScenarioOutbreak, RiseAt: DefaultGenStart.Add(-time.Hour)},
	} {
		if err := GenerateMail(o, func(time.Time, string) error { return nil }); !errors.Is(err, ErrGenOptions) {
			t.Errorf("GenerateMail(%+v) = %v, want ErrGenOptions", o, err)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := GenerateMail(GenOptions{}, func(time.Time, string) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("GenerateMail did not stop at the callback's error: %v after %d lines", err, n)
	}
}
