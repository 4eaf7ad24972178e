package sigma

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	sigmago "github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"

	"github.com/mamori-soc/mamori/internal/event"
)

// BenchmarkSigmaGo runs the mixed stream of BenchmarkMatchMixed through
// Match ("indexed") and, in the same run, through a straightforward
// per-rule evaluator, github.com/bradleyjkemp/sigma-go ("sigmago"), for the
// ratio between the two.
//
//	go test ./internal/detect/sigma/ -run '^$' -bench SigmaGo -benchtime 20000x -cpu 1
//
// How sigma-go is set up so that both evaluators see the same rules and the
// same fields, and the ratio measures evaluation only:
//
//   - Rules: every active (not dormant) rule the Ruleset loaded is parsed
//     again from its own YAML document with sigmago.ParseRule; rules sigma-go
//     cannot parse, and rules with an aggregation (sigma-go needs a counter
//     for them), are left out and counted (rules-sigmago is how many remain).
//   - Evaluators: one evaluator.ForRule per rule and field-mapping variant
//     (process_creation has two: Sysmon and Security 4688), never the
//     bundle. Its sigmago.Config maps every Sigma field name the rule uses to
//     the event fields our mapField gives for that logsource and variant.
//     Where mapField gives several names, sigma-go matches if any of them
//     does and we read the first one set: they differ only on events that
//     set two of them (e.g. antivirus Signature: rule.name and message).
//   - Events: each event is given to sigma-go as a flat
//     map[string]interface{} of its fields (our field names as keys), built
//     once before the timer starts.
//   - Routing: our route() is computed for each event before the timer
//     starts, and sigma-go evaluates only the evaluators whose logsource
//     and variant the event carries (what Ruleset.covers decides for our
//     buckets). sigma-go is thus spared the routing and the map building,
//     which Match pays inside the timed loop: the ratio is a lower bound of
//     the gap between the indexed matcher and per-rule evaluation.
//
// sigma-go's semantics differ from the Sigma specification and from ours in
// places (no wildcards in plain values, no keywords, no windash, cased,
// exists, expand, fieldref, utf16 or regexp flags: such rules return an
// error, counted as no match, and the error ends that rule's evaluation
// early, which flatters sigma-go). The benchmark does not fail on disagreement;
// it logs on how many events the two give the same rule set.
func BenchmarkSigmaGo(b *testing.B) {
	rs, _, _ := loadCorpus(b)
	evs := benchStreamT(b)
	sg := newSigmaGoSet(b, rs)
	b.Logf("sigma-go: %d of %d active rules parsed (%d evaluators), %d parse failures, %d with an aggregation left out",
		sg.nrules, sg.active, len(sg.evals), sg.parseFail, sg.aggregations)

	// Untimed preparation of the sigma-go inputs: the event maps and the
	// routing.
	t0 := time.Now()
	prep := make([]sgEvent, len(evs))
	for i, e := range evs {
		prep[i].m = eventMap(e)
	}
	b.Logf("building the sigma-go event maps: %.0f ns/event (not timed)", float64(time.Since(t0).Nanoseconds())/float64(len(evs)))
	for i, e := range evs {
		prep[i].groups = sg.route(e)
	}

	// Agreement, untimed, on the distinct events of the stream.
	win, lines := mixedStream(b)
	agree := sg.agreement(b, rs, append(slices.Clone(win), lines...))

	var indexedRate float64
	b.Run("indexed", func(b *testing.B) {
		hits := 0
		fn := func(*Rule) { hits++ }
		rate := benchEvents(b, len(evs), func(i int) { rs.Match(evs[i], fn) })
		b.ReportMetric(float64(hits)/float64(b.N), "matches/event")
		indexedRate = rate
	})
	var sigmagoRate float64
	b.Run("sigmago", func(b *testing.B) {
		hits := 0
		rate := benchEvents(b, len(prep), func(i int) { hits += sg.match(&prep[i], nil) })
		b.ReportMetric(float64(hits)/float64(b.N), "matches/event")
		b.ReportMetric(float64(sg.nrules), "rules-sigmago")
		b.ReportMetric(float64(sg.parseFail), "rules-unparsed")
		b.ReportMetric(agree, "%-events-agree")
		if indexedRate > 0 {
			b.ReportMetric(indexedRate/rate, "indexed/sigmago")
		}
		sigmagoRate = rate
	})
	if indexedRate > 0 && sigmagoRate > 0 {
		b.Logf("events/cpu-s: indexed %.0f, sigma-go %.0f: indexed is %.1f× sigma-go", indexedRate, sigmagoRate, indexedRate/sigmagoRate)
	}
}

// benchEvents calls match(i) once per iteration, i cycling over n events,
// reports events per second of wall time and of process CPU time (as
// benchMatch does) and returns the latter.
func benchEvents(b *testing.B, n int, match func(i int)) float64 {
	b.ReportAllocs()
	runtime.GC() // the garbage of the setup, not the loop's
	cpu0 := cpuTime()
	start := time.Now()
	i := 0
	for b.Loop() {
		match(i)
		i++
		if i == n {
			i = 0
		}
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	rate := float64(b.N) / cpu.Seconds()
	b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
	b.ReportMetric(rate, "events/cpu-s")
	return rate
}

// sgEval is one sigma-go evaluator: a rule compiled for one logsource
// variant.
type sgEval struct {
	rule int // index in sigmaGoSet.rules
	ev   *evaluator.RuleEvaluator
}

// sgGroup gathers the evaluators of one logsource and variant, like our
// buckets.
type sgGroup struct {
	ls      Logsource
	variant string
	evals   []int
}

type sgEvent struct {
	m      map[string]interface{}
	groups []int32
}

type sigmaGoSet struct {
	rules  []*Rule // our rule of each parsed sigma-go rule
	evals  []sgEval
	groups []sgGroup
	// fired is per rule: the generation of the last event it fired on.
	fired []uint32
	gen   uint32

	active, nrules, parseFail, aggregations int
}

func newSigmaGoSet(tb testing.TB, rs *Ruleset) *sigmaGoSet {
	sg := &sigmaGoSet{}
	files := map[string][]byte{}
	groupOf := map[[2]string]int{}
	var failures []string
	for _, r := range rs.Rules() {
		if r.Dormant {
			continue
		}
		sg.active++
		data, ok := files[r.Path]
		if !ok {
			var err error
			if data, err = os.ReadFile(r.Path); err != nil {
				tb.Fatal(err)
			}
			files[r.Path] = data
		}
		doc := ruleDoc(data, r.Line)
		parsed, err := parseSigmaGo(doc)
		if err != nil {
			sg.parseFail++
			failures = append(failures, fmt.Sprintf("%s: %v", r.Path, err))
			continue
		}
		agg := false
		for _, c := range parsed.Detection.Conditions {
			agg = agg || c.Aggregation != nil
		}
		if agg {
			sg.aggregations++
			continue
		}
		ri := len(sg.rules)
		sg.rules = append(sg.rules, r)
		fields := sigmaGoFields(parsed)
		for _, v := range variants(r.Logsource) {
			cfg := sigmago.Config{FieldMappings: map[string]sigmago.FieldMapping{}}
			for _, f := range fields {
				cfg.FieldMappings[f] = sigmago.FieldMapping{TargetNames: mapField(r.Logsource, v, f)}
			}
			key := [2]string{r.Logsource.String(), v}
			g, ok := groupOf[key]
			if !ok {
				g = len(sg.groups)
				groupOf[key] = g
				ls := r.Logsource
				sg.groups = append(sg.groups, sgGroup{ls: Logsource{Product: ls.Product, Category: ls.Category, Service: ls.Service}, variant: v})
			}
			sg.groups[g].evals = append(sg.groups[g].evals, len(sg.evals))
			sg.evals = append(sg.evals, sgEval{rule: ri, ev: evaluator.ForRule(parsed, evaluator.WithConfig(cfg))})
		}
	}
	sg.nrules = len(sg.rules)
	sg.fired = make([]uint32, len(sg.rules))
	for i, f := range failures {
		if i == 10 {
			tb.Logf("sigma-go parse failure: ... and %d more", len(failures)-i)
			break
		}
		tb.Logf("sigma-go parse failure: %s", f)
	}
	return sg
}

// parseSigmaGo is sigmago.ParseRule, with a panic turned into an error.
func parseSigmaGo(doc []byte) (r sigmago.Rule, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return sigmago.ParseRule(doc)
}

// ruleDoc returns the YAML document of a file that holds the rule starting
// at line (Rule.Line).
func ruleDoc(data []byte, line int) []byte {
	docs, starts := splitDocs(data)
	best := 0
	for i, s := range starts {
		if s <= line {
			best = i
		}
	}
	return docs[best]
}

// sigmaGoFields lists the Sigma field names a parsed rule reads.
func sigmaGoFields(r sigmago.Rule) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range r.Detection.Searches {
		for _, em := range s.EventMatchers {
			for _, fm := range em {
				if fm.Field != "" && !seen[fm.Field] {
					seen[fm.Field] = true
					out = append(out, fm.Field)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// eventMap is the event as sigma-go reads it: its fields, flat.
func eventMap(e *event.Event) map[string]interface{} {
	m := make(map[string]interface{}, len(e.Fields))
	for _, f := range e.Fields {
		m[f.Name] = f.Value
	}
	return m
}

// route lists the groups whose logsource and variant the event carries,
// with our routing.
func (sg *sigmaGoSet) route(e *event.Event) []int32 {
	var src sources
	route(e, &src)
	var out []int32
	for gi, g := range sg.groups {
		if carries(&src, g.ls, g.variant) {
			out = append(out, int32(gi))
		}
	}
	return out
}

// carries is Ruleset's covers test for a logsource and variant.
func carries(s *sources, ls Logsource, variant string) bool {
	ok := ls.Product == ""
	for i := 0; i < s.np && !ok; i++ {
		ok = s.prods[i] == ls.Product
	}
	if !ok {
		return false
	}
	ok = ls.Category == "" && variant == ""
	for i := 0; i < s.nc && !ok; i++ {
		ok = s.cats[i].cat == ls.Category && s.cats[i].variant == variant
	}
	if !ok {
		return false
	}
	ok = ls.Service == ""
	for i := 0; i < s.ns && !ok; i++ {
		ok = s.svcs[i] == ls.Service
	}
	return ok
}

// match evaluates the routed evaluators of one event one by one and
// returns how many rules matched; fn, when set, receives each.
func (sg *sigmaGoSet) match(ev *sgEvent, fn func(rule int)) int {
	return sg.matchErr(ev, fn, nil)
}

// matchErr is match; errs, when set, keeps the first evaluation error of
// each rule.
func (sg *sigmaGoSet) matchErr(ev *sgEvent, fn func(rule int), errs map[int]string) int {
	sg.gen++
	if sg.gen == 0 {
		clear(sg.fired)
		sg.gen = 1
	}
	ctx := context.Background()
	n := 0
	for _, g := range ev.groups {
		for _, ei := range sg.groups[g].evals {
			x := &sg.evals[ei]
			if sg.fired[x.rule] == sg.gen {
				continue
			}
			res, err := x.ev.Matches(ctx, ev.m)
			if err != nil {
				if errs != nil {
					if _, seen := errs[x.rule]; !seen {
						errs[x.rule] = err.Error()
					}
				}
				continue
			}
			if res.Match {
				sg.fired[x.rule] = sg.gen
				n++
				if fn != nil {
					fn(x.rule)
				}
			}
		}
	}
	return n
}

// agreement logs on how many events Match and sigma-go give the same set
// of rules, and the rules they most often disagree on; it returns the
// share of events they agree on, in percent.
func (sg *sigmaGoSet) agreement(tb testing.TB, rs *Ruleset, evs []*event.Event) float64 {
	inSG := map[*Rule]bool{}
	for _, r := range sg.rules {
		inSG[r] = true
	}
	errs := map[int]string{}
	same, fired, sameFired, onlyOurs, onlySG := 0, 0, 0, 0, 0
	sameParsed := 0 // the same, counting only rules sigma-go parsed
	diffRule := map[string][2]int{}
	for _, e := range evs {
		ours := matchedIDs(rs.Match, e)
		var oursParsed []string
		rs.Match(e, func(r *Rule) {
			if inSG[r] {
				oursParsed = append(oursParsed, r.ID)
			}
		})
		slices.Sort(oursParsed)
		ev := sgEvent{m: eventMap(e), groups: sg.route(e)}
		var theirs []string
		sg.matchErr(&ev, func(ri int) { theirs = append(theirs, sg.rules[ri].ID) }, errs)
		slices.Sort(theirs)
		eq := slices.Equal(ours, theirs)
		if eq {
			same++
		}
		if slices.Equal(oursParsed, theirs) {
			sameParsed++
		}
		if len(ours) > 0 || len(theirs) > 0 {
			fired++
			if eq {
				sameFired++
			}
		}
		for _, id := range ours {
			if !slices.Contains(theirs, id) {
				onlyOurs++
				d := diffRule[id]
				d[0]++
				diffRule[id] = d
			}
		}
		for _, id := range theirs {
			if !slices.Contains(ours, id) {
				onlySG++
				d := diffRule[id]
				d[1]++
				diffRule[id] = d
			}
		}
	}
	pct := func(a, b int) float64 {
		if b == 0 {
			return 100
		}
		return 100 * float64(a) / float64(b)
	}
	tb.Logf("agreement on %d distinct events: same rule set on %d (%.2f%%); on the %d events where either fired, %d (%.2f%%); ignoring rules sigma-go could not parse, %d (%.2f%%)",
		len(evs), same, pct(same, len(evs)), fired, sameFired, pct(sameFired, fired), sameParsed, pct(sameParsed, len(evs)))
	tb.Logf("matches only indexed: %d, only sigma-go: %d; %d sigma-go rules returned an evaluation error on some event (counted as no match)",
		onlyOurs, onlySG, len(errs))
	reasons := map[string]int{}
	for _, msg := range errs {
		reasons[errReason(msg)]++
	}
	tb.Logf("sigma-go evaluation errors by reason: %v", reasons)
	ids := make([]string, 0, len(diffRule))
	for id := range diffRule {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, c := diffRule[ids[i]], diffRule[ids[j]]
		if a[0]+a[1] != c[0]+c[1] {
			return a[0]+a[1] > c[0]+c[1]
		}
		return ids[i] < ids[j]
	})
	errOf := map[string]string{}
	for ri, msg := range errs {
		errOf[sg.rules[ri].ID] = errReason(msg)
	}
	parsed := map[string]bool{}
	for _, r := range sg.rules {
		parsed[r.ID] = true
	}
	byID := map[string]*Rule{}
	for _, r := range rs.Rules() {
		byID[r.ID] = r
	}
	// The rules disagreed on most, by why: sigma-go could not parse the
	// rule, returned an error, or evaluated it and differs (semantics).
	shown, withErr, noErr, unparsed := 0, 0, 0, 0
	for _, id := range ids {
		why := ""
		switch {
		case !parsed[id]:
			why = "not parsed by sigma-go"
			unparsed++
		case errOf[id] != "":
			why = "sigma-go error: " + errOf[id]
			withErr++
		default:
			why = "sigma-go evaluates it without error"
			noErr++
		}
		if shown < 15 {
			shown++
			d := diffRule[id]
			tb.Logf("disagreement: %s %q: %d events only indexed, %d only sigma-go (%s)", id, byID[id].Title, d[0], d[1], why)
		}
	}
	tb.Logf("%d rules disagreed on: %d not parsed by sigma-go, %d with a sigma-go evaluation error, %d evaluated without error",
		len(ids), unparsed, withErr, noErr)
	return pct(same, len(evs))
}

// errReason shortens a sigma-go error to its kind: the message without
// the search name, and without the value or placeholder it names.
func errReason(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "error evaluating search "); ok {
		if i := strings.Index(rest, ": "); i >= 0 {
			msg = rest[i+2:]
		}
	}
	for _, p := range []string{"can't expand", "failed to expand placeholder"} {
		if strings.HasPrefix(msg, p) {
			return p
		}
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}
