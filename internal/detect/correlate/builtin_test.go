package correlate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mamori-soc/mamori/internal/event"
	"github.com/mamori-soc/mamori/internal/ingest/parse"
)

// detectionDoc is the part of a builtin detection document this test reads.
type detectionDoc struct {
	ID, Name, Title, Level string
	Tags                   []string
	Detection              map[string]any
}

// builtinDetections decodes the detection documents of the builtin files.
func builtinDetections(t *testing.T) map[string]detectionDoc {
	t.Helper()
	out := map[string]detectionDoc{}
	err := fs.WalkDir(Builtin(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(Builtin(), p)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(body))
		for {
			var doc detectionDoc
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if doc.Detection != nil {
				out[doc.Name] = doc
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestBuiltinRulesParse(t *testing.T) {
	rules, err := BuiltinRules()
	if err != nil {
		t.Fatal(err)
	}
	dets := builtinDetections(t)
	known := map[string]bool{}
	for _, d := range dets {
		known[d.ID], known[d.Name] = true, true
		if !uuidRE.MatchString(d.ID) || d.Title == "" || d.Level == "" {
			t.Errorf("detection %s: id %q must be a UUID v4, title and level set", d.Name, d.ID)
		}
	}
	e, errs := New(rules, Options{KnownRule: func(s string) bool { return known[s] }})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	ids := map[string]bool{}
	for _, r := range e.Rules() {
		names = append(names, r.Name)
		if !uuidRE.MatchString(r.ID) || ids[r.ID] || known[r.ID] {
			t.Errorf("%s: id %q must be a unique UUID v4", r.Name, r.ID)
		}
		ids[r.ID] = true
		if r.Title == "" || r.Level == "" || !slices.ContainsFunc(r.Tags, func(s string) bool { return strings.HasPrefix(s, "attack.t") }) {
			t.Errorf("%s: needs a title, a level and an ATT&CK technique tag", r.Name)
		}
		for _, ref := range r.Rules {
			if !e.SuppressBase(ref) {
				t.Errorf("%s: its building block %s would alert on every event", r.Name, ref)
			}
		}
	}
	slices.Sort(names)
	want := []string{"mamori_brute_force_source", "mamori_brute_force_user", "mamori_mail_fan_out", "mamori_port_scan"}
	if !slices.Equal(names, want) {
		t.Errorf("builtin correlations %q, want %q", names, want)
	}
	tags := func(name string) []string {
		for _, r := range e.Rules() {
			if r.Name == name {
				return r.Tags
			}
		}
		return nil
	}
	if !slices.Contains(tags("mamori_brute_force_user"), "attack.t1110") || !slices.Contains(tags("mamori_port_scan"), "attack.t1046") {
		t.Error("brute force must carry attack.t1110, port scan attack.t1046")
	}
}

// selectionHolds evaluates one search identifier of a detection document
// the plain way (every field equal to one of its values, case-insensitive).
// The builtin rules use nothing else, and the sigma package is the real
// evaluator; this only proves the field names and values exist in what our
// parsers emit.
func selectionHolds(t *testing.T, sel any, ev *event.Event) bool {
	t.Helper()
	m, ok := sel.(map[string]any)
	if !ok {
		t.Fatalf("selection %v is not a field map", sel)
	}
	for field, want := range m {
		if strings.Contains(field, "|") {
			t.Fatalf("modifier in %s: extend this helper", field)
		}
		got, ok := ev.Get(field)
		if !ok {
			return false
		}
		values, isList := want.([]any)
		if !isList {
			values = []any{want}
		}
		if !slices.ContainsFunc(values, func(v any) bool { return strings.EqualFold(fmt.Sprint(v), got) }) {
			return false
		}
	}
	return true
}

func parseLine(t *testing.T, p *parse.Parser, line string) *event.Event {
	t.Helper()
	var ev event.Event
	p.Parse([]byte(line), &ev)
	ev.Tenant = "acme"
	return &ev
}

// TestBuiltinScenarios parses real log lines with Mamori's parser, checks
// which search identifiers of the builtin detections they satisfy, and
// drives the builtin correlations with them until they fire.
func TestBuiltinScenarios(t *testing.T) {
	rules, err := BuiltinRules()
	if err != nil {
		t.Fatal(err)
	}
	dets := builtinDetections(t)
	p := parse.New()
	const stamp = "2026-11-25T10:00:%02dZ"

	type scenario struct {
		name      string
		base      string             // detection rule name
		line      func(i int) string // the i-th line (i from 0)
		searches  map[string]bool    // search identifier → expected truth on line(0)
		n         int                // lines fed
		fireAt    int                // index of the line whose Observe fires (-1: never)
		wantFires []string
	}
	sshd := func(msg string) func(int) string {
		return func(i int) string {
			return fmt.Sprintf("<38>1 "+stamp+" bastion sshd 4242 - - %s", i, fmt.Sprintf(msg, 40000+i))
		}
	}
	scenarios := []scenario{
		{
			name: "sshd brute force", base: "mamori_auth_failure", n: 12, fireAt: 9,
			line:     sshd("Failed password for root from 203.0.113.9 port %d ssh2"),
			searches: map[string]bool{"auth_failure": true, "sshd_repeat": false, "sasl_failure": false},
			wantFires: []string{"mamori_brute_force_user user.name=root n=10 @acme",
				"mamori_brute_force_source source.ip=203.0.113.9 n=10 @acme"},
		},
		{
			name: "sshd invalid user echo is not a failure of its own", base: "mamori_auth_failure", n: 1, fireAt: -1,
			line:     sshd("Invalid user oracle from 203.0.113.9 port %d"),
			searches: map[string]bool{"auth_failure": true, "sshd_repeat": true, "sasl_failure": false},
		},
		{
			name: "sshd success is no failure", base: "mamori_auth_failure", n: 1, fireAt: -1,
			line:     sshd("Accepted password for root from 203.0.113.9 port %d ssh2"),
			searches: map[string]bool{"auth_failure": false, "sshd_repeat": false, "sasl_failure": false},
		},
		{
			name: "postfix SASL failures from one address", base: "mamori_auth_failure", n: 10, fireAt: 9,
			line: func(i int) string {
				return fmt.Sprintf("<20>1 "+stamp+" mx postfix/smtpd 77 - - warning: unknown[198.51.100.%d]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", i, 7)
			},
			searches:  map[string]bool{"auth_failure": false, "sasl_failure": true},
			wantFires: []string{"mamori_brute_force_source source.ip=198.51.100.7 n=10 @acme"},
		},
		{
			name: "iptables port scan", base: "mamori_firewall_deny", n: 25, fireAt: 19,
			line: func(i int) string {
				return fmt.Sprintf("<4>1 "+stamp+" fw kernel - - - [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:08:00 SRC=203.0.113.9 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=54321 DF PROTO=TCP SPT=51234 DPT=%d WINDOW=64240 RES=0x00 SYN URGP=0", i, 1000+i)
			},
			searches:  map[string]bool{"selection": true},
			wantFires: []string{"mamori_port_scan source.ip=203.0.113.9 n=20 v=20 @acme"},
		},
		{
			name: "postfix fan-out", base: "mamori_mail_queued", n: 8, fireAt: 4,
			line: func(i int) string {
				return fmt.Sprintf("<22>1 "+stamp+" mx postfix/qmgr 88 - - 3F2A81C0E%d: from=<alice@example.com>, size=1234, nrcpt=10 (queue active)", i, i)
			},
			searches:  map[string]bool{"selection": true},
			wantFires: []string{"mamori_mail_fan_out email.from.address=alice@example.com n=5 agg=50 @acme"},
		},
		{
			name: "postfix delivery lines are not queue lines", base: "mamori_mail_queued", n: 1, fireAt: -1,
			line: func(i int) string {
				return fmt.Sprintf("<22>1 "+stamp+" mx postfix/smtp 88 - - 3F2A81C0E1: to=<bob@example.net>, relay=mx.example.net[198.51.100.5]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)", i)
			},
			searches: map[string]bool{"selection": false},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			det, ok := dets[sc.base]
			if !ok {
				t.Fatalf("no builtin detection %s", sc.base)
			}
			first := parseLine(t, p, sc.line(0))
			for id, want := range sc.searches {
				sel, ok := det.Detection[id]
				if !ok {
					t.Fatalf("%s has no search %s", sc.base, id)
				}
				if got := selectionHolds(t, sel, first); got != want {
					t.Errorf("search %s on %q = %v, want %v (fields %v)", id, sc.line(0), got, want, first.Fields)
				}
			}
			e, errs := New(rules, Options{})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if !e.Referenced(det.ID) {
				t.Fatalf("%s is not referenced by any builtin correlation", sc.base)
			}
			for i := range sc.n {
				ev := parseLine(t, p, sc.line(i))
				if ev.Timestamp.Sub(first.Timestamp) != time.Duration(i)*time.Second {
					t.Fatalf("line %d: timestamp %v not parsed", i, ev.Timestamp)
				}
				got := e.Observe(Match{Tenant: ev.Tenant, RuleID: det.ID, RuleName: det.Name, Time: ev.Timestamp,
					EventID: fmt.Sprint("ev", i), Value: ev.Get})
				var desc []string
				for _, f := range got {
					desc = append(desc, describe(f))
				}
				var want []string
				if i == sc.fireAt {
					want = sc.wantFires
				}
				if !slices.Equal(desc, want) {
					t.Errorf("line %d: fired %q, want %q", i, desc, want)
				}
			}
		})
	}
}
