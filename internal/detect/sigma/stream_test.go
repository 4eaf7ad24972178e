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
