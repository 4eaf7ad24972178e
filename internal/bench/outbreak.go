package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/detect/anomaly"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// OutbreakOptions configures `mamori bench outbreak`.
type OutbreakOptions struct {
	Gen anomaly.GenOptions
	// Lines, when set, also receives every generated syslog line.
	Lines io.Writer
	Out   io.Writer
}

// Outbreak replays a generated Postfix stream (steady, diurnal, or diurnal
// then a 10× rise) through the real parser into the baseline detector with
// the default streams, in event time, and reports every surge signal and,
// for an outbreak, how long after the rise began the first one came.
func Outbreak(ctx context.Context, o OutbreakOptions) error {
	gen, err := o.Gen.Normalize()
	if err != nil {
		return err
	}
	d, err := anomaly.New(anomaly.Config{Streams: anomaly.DefaultStreams()})
	if err != nil {
		return err
	}
	var lw *bufio.Writer
	if o.Lines != nil {
		lw = bufio.NewWriter(o.Lines)
		defer lw.Flush()
	}
	p := parse.New()
	var e event.Event
	var lines, unparsed int
	var lastMinute int64
	var sigs []anomaly.Signal
	start := time.Now()
	err = anomaly.GenerateMail(gen, func(ts time.Time, line string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lines++
		if lw != nil {
			lw.WriteString(line)
			lw.WriteByte('\n')
		}
		e = event.Event{Tenant: "bench", Ingested: ts, Fields: e.Fields[:0]}
		if r := p.Parse([]byte(line), &e); r.Unparsed {
			unparsed++
		}
		d.Observe("bench", &e)
		if m := ts.Unix() / 60; m != lastMinute {
			lastMinute = m
			sigs = append(sigs, d.Advance(ts)...)
		} else {
			sigs = append(sigs, d.Drain()...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sigs = append(sigs, d.Advance(gen.End().Add(10*time.Minute))...)
	fmt.Fprintf(o.Out, "scenario %s: %d lines (%d unparsed) from %s to %s, replayed in %s\n", gen.Scenario, lines, unparsed,
		gen.Start.Format(time.RFC3339), gen.End().Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	starts := map[string]time.Time{}
	for _, s := range sigs {
		if s.Phase != anomaly.PhaseStart {
			continue
		}
		starts[s.Stream+groupString(s.Group)] = s.Minute
		fmt.Fprintf(o.Out, "  surge %-28s %-28s from %s: %.0f/min, expected %.1f (×%.1f)\n", s.Stream, groupString(s.Group),
			s.Minute.Format("Mon 15:04"), s.Observed, s.Expected, s.Ratio)
	}
	if len(starts) == 0 {
		fmt.Fprintln(o.Out, "  no surge signalled")
	}
	if gen.Scenario == anomaly.ScenarioOutbreak {
		var first time.Time
		for _, t := range starts {
			if first.IsZero() || t.Before(first) {
				first = t
			}
		}
		if first.IsZero() {
			fmt.Fprintf(o.Out, "outbreak from %s: NOT detected\n", gen.RiseAt.Format(time.RFC3339))
		} else {
			fmt.Fprintf(o.Out, "outbreak from %s: first signal %s after the rise began\n", gen.RiseAt.Format(time.RFC3339), first.Sub(gen.RiseAt))
		}
	}
	return nil
}

func groupString(g map[string]string) string {
	parts := make([]string, 0, len(g))
	for k, v := range g {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
