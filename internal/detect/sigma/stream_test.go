package sigma

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
	"github.com/mamori-soc/mamori/internal/testutil"
)

// parseLines parses testdata lines (comments and blanks skipped) the way
// ingest does.
func parseLines(t testing.TB, path string) []*event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := parse.New()
	var evs []*event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		e := &event.Event{}
		p.Parse([]byte(l), e)
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

var stream struct {
	once    sync.Once
	windows []*event.Event
	lines   []*event.Event
}

// mixedStream returns the Windows events of the regression EVTX files and
// of the EVTX attack corpus, and the non-Windows lines of
// testdata/stream.log, loaded once per test binary.
func mixedStream(t testing.TB) (windows, lines []*event.Event) {
	t.Helper()
	_, _, root := loadCorpus(t)
	evtxRoot := testutil.Corpus(t, "evtx")
	stream.once.Do(func() {
		var files []string
		for _, dir := range []string{filepath.Join(root, "regression_data"), evtxRoot} {
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".evtx") {
					files = append(files, p)
				}
				return nil
			})
		}
		slices.Sort(files)
		for _, f := range files {
			stream.windows = append(stream.windows, readEVTX(t, f)...)
		}
		stream.lines = parseLines(t, filepath.Join("testdata", "stream.log"))
	})
	return stream.windows, stream.lines
}

func matchedIDs(fn func(*event.Event, func(*Rule)), e *event.Event) []string {
	var ids []string
	fn(e, func(r *Rule) { ids = append(ids, r.ID) })
	slices.Sort(ids)
	return ids
}

// TestIndexAgreesWithNaive: the automaton index only skips rules that
// cannot match, so Match must give exactly what checking every rule one by
// one gives, on every event of the mixed stream.
func TestIndexAgreesWithNaive(t *testing.T) {
	rs, _, _ := loadCorpus(t)
	win, lines := mixedStream(t)
	all := append(slices.Clone(win), lines...)
	total, events := 0, 0
	fired := map[string]int{}
	for _, e := range all {
		got := matchedIDs(rs.Match, e)
		want := matchedIDs(rs.matchNaive, e)
		if !slices.Equal(got, want) {
			t.Errorf("event %v: indexed %v, naive %v", e.Fields, got, want)
		}
		if len(got) > 0 {
			events++
		}
		total += len(got)
		for _, id := range got {
			fired[id]++
		}
	}
	t.Logf("%d events (%d Windows, %d lines): %d with a match, %d matches, %d distinct rules fired",
		len(all), len(win), len(lines), events, total, len(fired))
	if total == 0 {
		t.Fatal("no rule fired on the whole stream")
	}
}

// TestFieldCacheAgreesWithFind: after Match has filled the per-call field
// cache (partly from the index walk), every bound item and field reference
// of the visited buckets must read the value a plain look-up reads.
func TestFieldCacheAgreesWithFind(t *testing.T) {
	rs, _, _ := loadCorpus(t)
	win, lines := mixedStream(t)
	checked := 0
	for i, e := range append(slices.Clone(win), lines...) {
		if i%4 != 0 { // a sample keeps the test short
			continue
		}
		c := rs.getCtx(e)
		var src sources
		route(e, &src)
		rs.evalIndexed(c, &src, func(*Rule) {})
		for _, cr := range rs.crules {
			if c.visited[cr.bk.id] != c.gen {
				continue
			}
			for _, s := range cr.searches {
				for _, alt := range s.alts {
					for _, it := range alt {
						lists := [][2]any{{it.names, it.ids}}
						for _, m := range it.ms {
							if fr, ok := m.(*fieldrefMatcher); ok {
								lists = append(lists, [2]any{fr.other, fr.otherIDs})
							}
						}
						for _, l := range lists {
							names, ids := l[0].([]string), l[1].(fieldIDs)
							if len(names) == 0 {
								continue
							}
							if len(ids) != len(names) {
								t.Fatalf("rule %s: field %v not bound to ids", cr.rule.ID, names)
							}
							got, gok := c.get(names, ids)
							want, wok := c.get(names, nil)
							if got != want || gok != wok {
								t.Fatalf("rule %s, fields %v: cached %v %v, find %v %v", cr.rule.ID, names, got, gok, want, wok)
							}
							checked++
						}
					}
				}
			}
		}
		c.e = nil
		rs.pool.Put(c)
	}
	if checked == 0 {
		t.Fatal("no field look-up checked")
	}
	t.Logf("%d look-ups checked", checked)
}
