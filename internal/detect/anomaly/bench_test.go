package anomaly

import (
	"strconv"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// BenchmarkObserve measures Observe on parsed Postfix events with the
// default streams (minute closing included, as Observe moves the clock).
// Two hours of generated traffic are replayed over and over, shifted in
// time on each pass.
func BenchmarkObserve(b *testing.B) {
	const span = 2 * time.Hour
	var events []*event.Event
	p := parse.New()
	err := GenerateMail(GenOptions{Scenario: ScenarioSteady, Seed: 1, Rate: 20, Duration: span}, func(ts time.Time, line string) error {
		e := &event.Event{Ingested: ts}
		p.Parse([]byte(line), e)
		events = append(events, e)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	base := make([]time.Time, len(events))
	for i, e := range events {
		base[i] = e.Timestamp
	}
	d := newDetector(b, Config{})
	b.ReportAllocs()
	b.ResetTimer()
	i, pass := 0, 0
	for b.Loop() {
		e := events[i]
		e.Timestamp = base[i].Add(time.Duration(pass) * span)
		d.Observe("acme", e)
		if i++; i == len(events) {
			i, pass = 0, pass+1
			d.Drain()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkObserveManyGroups: 5,000 groups in one stream, every one seen
// each minute — the cost of closing minutes for many groups.
func BenchmarkObserveManyGroups(b *testing.B) {
	const groups = 5000
	s := Stream{Name: "denies", Match: map[string][]string{event.FieldType: {"denied"}}, By: []string{event.FieldDestPort}}
	events := make([]*event.Event, groups)
	for i := range events {
		e := &event.Event{}
		e.Set(event.FieldDestPort, strconv.Itoa(i))
		e.Set(event.FieldType, "denied")
		events[i] = e
	}
	d := newDetector(b, Config{Streams: []Stream{s}})
	at := DefaultGenStart
	const step = 12 * time.Millisecond // 5,000 events a minute
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		e := events[n%groups]
		e.Timestamp = at
		d.Observe("acme", e)
		at = at.Add(step)
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(d.Stats().Bytes)/groups, "bytes/group")
}
