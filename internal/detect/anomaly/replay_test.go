package anomaly

import (
	"errors"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// replayResult is what a generated scenario did to a detector.
type replayResult struct {
	signals  []Signal
	emitted  []time.Time // event time at which each signal was returned
	lines    int
	unparsed int
	notMail  int
}

// replay generates the scenario, parses every line with the real ingest
// parser and feeds the detector in event time, advancing it once a
// minute of event time and once at the end.
func replay(t testing.TB, d *Detector, tenant string, opts GenOptions) replayResult {
	t.Helper()
	return replayUntil(t, d, tenant, opts, time.Time{})
}

var errStop = errors.New("replay: stop time reached")

// replayUntil is replay stopping at the first line at or after stop
// (never when stop is zero).
func replayUntil(t testing.TB, d *Detector, tenant string, opts GenOptions, stop time.Time) replayResult {
	t.Helper()
	var res replayResult
	p := parse.New()
	var e event.Event
	var lastMinute int64
	err := GenerateMail(opts, func(ts time.Time, line string) error {
		if !stop.IsZero() && !ts.Before(stop) {
			return errStop
		}
		res.lines++
		e.Fields = e.Fields[:0]
		e.Ingested = ts
		if r := p.Parse([]byte(line), &e); r.Unparsed || r.Format != "postfix" {
			res.unparsed++
		}
		if e.Value(event.FieldCategory) != "email" {
			res.notMail++
		}
		d.Observe(tenant, &e)
		var sigs []Signal
		if m := minuteOf(ts); m != lastMinute {
			lastMinute = m
			sigs = d.Advance(ts)
		} else {
			sigs = d.Drain()
		}
		for _, s := range sigs {
			res.signals = append(res.signals, s)
			res.emitted = append(res.emitted, ts)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		t.Fatalf("GenerateMail: %v", err)
	}
	o, _ := opts.Normalize()
	if !stop.IsZero() {
		return res
	}
	for _, s := range d.Advance(o.End().Add(10 * time.Minute)) {
		res.signals = append(res.signals, s)
		res.emitted = append(res.emitted, o.End().Add(10*time.Minute))
	}
	return res
}

func newDetector(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}
