package correlate

import (
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/mamori-soc/mamori/internal/detect/sigma"
	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// loadBuiltinWithSigma compiles the builtin files the way the detection
// engine does: the sigma package takes the detection documents and hands
// the correlation documents over raw.
func loadBuiltinWithSigma(t *testing.T) (*sigma.Ruleset, *Engine) {
	t.Helper()
	// One multi-document body, so that one Ruleset holds every rule.
	var body []byte
	err := fs.WalkDir(Builtin(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Builtin(), p)
		body = append(append(body, "\n---\n"...), b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, lerrs := sigma.Parse("builtin.yml", body, sigma.Options{})
	for _, le := range lerrs {
		t.Errorf("sigma: %v", le)
	}
	all, docs := rs.Rules(), rs.Correlations()
	known := map[string]bool{}
	for _, r := range all {
		if r.Dormant {
			t.Errorf("%s: dormant, its logsource reaches no event", r.Name)
		}
		known[r.ID], known[r.Name] = true, true
	}
	if len(all) != 3 || len(docs) != 4 {
		t.Fatalf("sigma loaded %d detection rules and %d correlation documents, want 3 and 4", len(all), len(docs))
	}
	var rules []*Rule
	for _, d := range docs {
		r, err := Parse(d.Path, d.Body)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	e, errs := New(rules, Options{KnownRule: func(s string) bool { return known[s] }})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return rs, e
}

// TestBuiltinWithSigma runs a mixed stream of real log lines through
// Mamori's parser, the sigma matcher and this engine, as production does.
func TestBuiltinWithSigma(t *testing.T) {
	rs, e := loadBuiltinWithSigma(t)
	var lines []string
	sec := 0
	add := func(format string, args ...any) {
		lines = append(lines, fmt.Sprintf("<38>1 2026-11-25T10:%02d:%02dZ ", sec/60, sec%60)+fmt.Sprintf(format, args...))
		sec++
	}
	for i := range 12 {
		add("bastion sshd 4242 - - Failed password for root from 203.0.113.9 port %d ssh2", 40000+i)
		add("bastion sshd 4242 - - Invalid user oracle%d from 198.51.100.1 port 41234", i) // an echo: not counted
		add("fw kernel - - - [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.66 DST=192.0.2.10 LEN=60 PROTO=TCP SPT=51234 DPT=%d SYN URGP=0", 2000+i)
		add("fw kernel - - - [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.66 DST=192.0.2.10 LEN=60 PROTO=TCP SPT=51234 DPT=%d SYN URGP=0", 3000+i)
		add("mx postfix/qmgr 88 - - 3F2A81C0E%d: from=<alice@example.com>, size=1234, nrcpt=5 (queue active)", i)
		add("mx postfix/smtp 88 - - 3F2A81C0E1: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, dsn=2.0.0, status=sent (250 OK)")
	}
	p := parse.New()
	var fired, alertedBase []string
	for _, line := range lines {
		var ev event.Event
		p.Parse([]byte(line), &ev)
		ev.Tenant, ev.ID = "acme", fmt.Sprint("ev", len(fired))
		rs.Match(&ev, func(r *sigma.Rule) {
			if e.SuppressBase(r.ID) || e.SuppressBase(r.Name) {
				// a building block, no alert
			} else {
				alertedBase = append(alertedBase, r.Name)
			}
			if !e.Referenced(r.ID) && !e.Referenced(r.Name) {
				return
			}
			m := Match{Tenant: ev.Tenant, RuleID: r.ID, RuleName: r.Name, Time: ev.Timestamp, EventID: ev.ID,
				Value: func(f string) (string, bool) { return rs.Lookup(&ev, r, f) }}
			for _, f := range e.Observe(m) {
				fired = append(fired, describe(f))
			}
		})
	}
	want := []string{
		"mamori_brute_force_user user.name=root n=10 @acme",
		"mamori_brute_force_source source.ip=203.0.113.9 n=10 @acme",
		"mamori_mail_fan_out email.from.address=alice@example.com n=10 agg=50 @acme",
		"mamori_port_scan source.ip=192.0.2.66 n=20 v=20 @acme",
	}
	slices.Sort(fired)
	slices.Sort(want)
	if !slices.Equal(fired, want) {
		t.Errorf("fired\n %q\nwant\n %q", fired, want)
	}
	if len(alertedBase) > 0 {
		t.Errorf("building blocks would alert: %q", alertedBase)
	}
	if st := e.Stats(); st.Observed != 12*2+24+12 {
		t.Errorf("observed %d matches, want %d (failures ×2 correlations, denies, queue lines)", st.Observed, 12*2+24+12)
	}
}
