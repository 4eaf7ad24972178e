package respond

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/state"
)

func openQueue(t *testing.T, now func() time.Time) *Queue {
	t.Helper()
	db, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := Open(context.Background(), db.SQL(), Options{Now: now, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		kind, args string
		want       string // canonical args; "" = invalid
	}{
		{KindIsolate, `{}`, `{}`},
		{KindIsolate, ``, `{}`},
		{KindIsolate, `{"for":"4h","allow":["10.0.0.53","10.1.0.0/16:tcp/443","[2001:db8::1]:udp/53"],"reason":"INC-7"}`,
			`{"for":"4h","allow":["10.0.0.53","10.1.0.0/16:tcp/443","[2001:db8::1]:udp/53"],"reason":"INC-7"}`},
		{KindIsolate, `{"for":"10s"}`, ""},
		{KindIsolate, `{"for":"9000h"}`, ""},
		{KindIsolate, `{"for":"soon"}`, ""},
		{KindIsolate, `{"allow":["example.com"]}`, ""},
		{KindIsolate, `{"allow":["10.0.0.1:icmp/1"]}`, ""},
		{KindIsolate, `{"allow":["10.0.0.1:tcp/0"]}`, ""},
		{KindIsolate, `{"allow":["10.0.0.1:tcp/070"]}`, ""},
		{KindIsolate, `{"duration":"4h"}`, ""}, // unknown field: a typo must not become a 24 h isolation silently
		{KindRelease, `{}`, `{}`},
		{KindRelease, `{"x":1}`, ""},
		{KindScan, `{"paths":["/home","C:\\Users"]}`, `{"paths":["/home","C:\\Users"]}`},
		{KindScan, `{"paths":[]}`, ""},
		{KindScan, `{"paths":["relative/dir"]}`, ""},
		{KindQuarantine, `{"path":"/tmp/x.exe"}`, `{"path":"/tmp/x.exe"}`},
		{KindQuarantine, `{"path":""}`, ""},
		{KindRestore, `{"id":"q_1"}`, `{"id":"q_1"}`},
		{KindUploadSample, `{}`, ""},
		{"reboot", `{}`, ""},
		{KindScan, `[1]`, ""},
	} {
		got, err := Validate(tc.kind, json.RawMessage(tc.args))
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s %s: err %v, want ErrInvalid", tc.kind, tc.args, err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %s: %s %v, want %s", tc.kind, tc.args, got, err, tc.want)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bits  int
		proto string
		port  uint16
		ok    bool
	}{
		{"10.0.0.1", 32, "", 0, true},
		{"10.0.0.7/24", 24, "", 0, true},
		{"10.0.0.1:tcp/8443", 32, "tcp", 8443, true},
		{"2001:db8::1", 128, "", 0, true},
		{"[2001:db8::1]:udp/53", 128, "udp", 53, true},
		{"[2001:db8::/32]", 32, "", 0, true},
		{"[2001:db8::1]x", 0, "", 0, false},
		{"10.0.0.1:8443", 0, "", 0, false},
		{"10.0.0.1:tcp/65536", 0, "", 0, false},
		{"", 0, "", 0, false},
	} {
		e, err := ParseEndpoint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if tc.ok && (e.Prefix.Bits() != tc.bits || e.Proto != tc.proto || e.Port != tc.port) {
			t.Errorf("%q: %+v", tc.in, e)
		}
	}
	if e, _ := ParseEndpoint("10.0.0.7/24"); e.Prefix.String() != "10.0.0.0/24" {
		t.Errorf("prefix not masked: %v", e.Prefix)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	q := openQueue(t, func() time.Time { return now })

	var nudged []string
	q.OnIssue(func(agent string) { nudged = append(nudged, agent) })
	c, err := q.Issue(ctx, "acme", "agt_1", KindIsolate, json.RawMessage(`{"for":"2h"}`), "soc-admin")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := q.Issue(ctx, "globex", "agt_2", KindRelease, nil, "soc-admin")
	if strings.Join(nudged, ",") != "agt_1,agt_2" {
		t.Fatalf("nudged %v", nudged)
	}

	got, err := q.Pending(ctx, "agt_1")
	if err != nil || len(got) != 1 || got[0].ID != c.ID || got[0].State != StateDelivered || !got[0].DeliveredAt.Equal(now) {
		t.Fatalf("pending: %+v %v", got, err)
	}
	// Delivered without an outcome (the agent died executing it): handed
	// out again, still delivered.
	if again, _ := q.Pending(ctx, "agt_1"); len(again) != 1 || again[0].ID != c.ID {
		t.Fatalf("redelivery: %+v", again)
	}
	// An agent cannot complete another agent's command.
	if _, err := q.Complete(ctx, "agt_1", other.ID, true, nil, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("foreign complete: %v", err)
	}
	if _, err := q.Complete(ctx, "agt_1", c.ID, true, json.RawMessage(`{"until":"x"`), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad result JSON: %v", err)
	}
	now = now.Add(time.Second)
	done, err := q.Complete(ctx, "agt_1", c.ID, true, json.RawMessage(`{"isolated":true}`), "")
	if err != nil || done.State != StateDone {
		t.Fatalf("complete: %+v %v", done, err)
	}
	if _, err := q.Complete(ctx, "agt_1", c.ID, false, nil, "again"); !errors.Is(err, ErrState) {
		t.Fatalf("second outcome: %v", err)
	}
	if p, _ := q.Pending(ctx, "agt_1"); len(p) != 0 {
		t.Fatalf("done command still pending: %+v", p)
	}
	g, err := q.Get(ctx, c.ID)
	if err != nil || g.State != StateDone || string(g.Result) != `{"isolated":true}` || g.By != "soc-admin" || !g.DoneAt.Equal(now) {
		t.Fatalf("get: %+v %v", g, err)
	}

	// Cancel before delivery; not after.
	if cc, err := q.Cancel(ctx, other.ID); err != nil || cc.State != StateCanceled {
		t.Fatalf("cancel: %+v %v", cc, err)
	}
	if p, _ := q.Pending(ctx, "agt_2"); len(p) != 0 {
		t.Fatalf("canceled command delivered: %+v", p)
	}
	if _, err := q.Cancel(ctx, c.ID); !errors.Is(err, ErrState) {
		t.Fatalf("cancel of a done command: %v", err)
	}

	// A command the agent never fetched within the TTL expires.
	late, _ := q.Issue(ctx, "acme", "agt_1", KindScan, json.RawMessage(`{"paths":["/srv"]}`), "soc-admin")
	now = now.Add(time.Hour + time.Second)
	if p, _ := q.Pending(ctx, "agt_1"); len(p) != 0 {
		t.Fatalf("expired command delivered: %+v", p)
	}
	if g, _ := q.Get(ctx, late.ID); g.State != StateExpired {
		t.Fatalf("state %s, want expired", g.State)
	}
	list, err := q.List(ctx, "agt_1", 10)
	if err != nil || len(list) != 2 || list[0].ID != late.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := q.Get(ctx, "cmd_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `{"for":"4h","allow":["10.0.0.1:tcp/443"]}`, `{"paths":["/x"]}`, `{"id":"q"}`, `{"path":"C:\\x"}`, `[`, `{"allow":["[::1]:udp/53"]}`} {
		f.Add(KindIsolate, s)
		f.Add(KindScan, s)
		f.Add(KindRestore, s)
	}
	f.Fuzz(func(t *testing.T, kind, args string) {
		canon, err := Validate(kind, json.RawMessage(args))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		// Canonical arguments are valid and a fixed point.
		again, err := Validate(kind, canon)
		if err != nil || string(again) != string(canon) {
			t.Fatalf("canonical %s: %s %v", canon, again, err)
		}
	})
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.0/8:tcp/22", "[2001:db8::1]:udp/53", "::1", "[::/0]", "1.2.3.4:tcp/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if !e.Prefix.IsValid() || (e.Port != 0) != (e.Proto != "") {
			t.Fatalf("%q → %+v", s, e)
		}
	})
}
