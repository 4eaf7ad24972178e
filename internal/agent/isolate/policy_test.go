package isolate

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestPolicyNormalize(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	server := Host(netip.MustParseAddr("192.0.2.10"), "tcp", 443)
	tests := []struct {
		name    string
		in      Policy
		want    Policy // when no error
		wantErr string // substring; the error must wrap ErrPolicy
	}{
		{name: "empty allow list", in: Policy{}, wantErr: "cut the agent off"},
		{name: "dns only", in: Policy{AllowDNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}}, wantErr: "empty allow list"},
		{
			name: "minimal",
			in:   Policy{Allow: []Endpoint{server}},
			want: Policy{Allow: []Endpoint{{Addr: netip.MustParsePrefix("192.0.2.10/32"), Proto: "tcp", Port: 443}}},
		},
		{
			name: "mapped, masked, lower-cased, deduplicated",
			in: Policy{
				Allow: []Endpoint{
					{Addr: netip.MustParsePrefix("::ffff:192.0.2.10/128"), Proto: "TCP", Port: 443},
					server,
					{Addr: netip.MustParsePrefix("2001:db8::1234/64")},
				},
				AllowDNS: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.53"), netip.MustParseAddr("192.0.2.53")},
				Until:    now.Add(time.Hour).In(time.FixedZone("JST", 9*3600)),
				Reason:   "r",
			},
			want: Policy{
				Allow: []Endpoint{
					{Addr: netip.MustParsePrefix("192.0.2.10/32"), Proto: "tcp", Port: 443},
					{Addr: netip.MustParsePrefix("2001:db8::/64")},
				},
				AllowDNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")},
				Until:    now.Add(time.Hour),
				Reason:   "r",
			},
		},
		{name: "invalid prefix", in: Policy{Allow: []Endpoint{{}}}, wantErr: "valid address"},
		{name: "everything v4", in: Policy{Allow: []Endpoint{{Addr: netip.MustParsePrefix("0.0.0.0/0")}}}, wantErr: "every address"},
		{name: "everything v6", in: Policy{Allow: []Endpoint{{Addr: netip.MustParsePrefix("::/0")}}}, wantErr: "every address"},
		{name: "short mapped prefix", in: Policy{Allow: []Endpoint{{Addr: netip.MustParsePrefix("::ffff:0.0.0.0/80")}}}, wantErr: "/96"},
		{name: "port without proto", in: Policy{Allow: []Endpoint{{Addr: server.Addr, Port: 443}}}, wantErr: "needs a protocol"},
		{name: "unknown proto", in: Policy{Allow: []Endpoint{{Addr: server.Addr, Proto: "sctp"}}}, wantErr: "protocol"},
		{name: "bad inbound", in: Policy{Allow: []Endpoint{server}, Inbound: []Endpoint{{Addr: server.Addr, Port: 22}}}, wantErr: "needs a protocol"},
		{name: "zoned resolver", in: Policy{Allow: []Endpoint{server}, AllowDNS: []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}}, wantErr: "resolver"},
		{name: "unspecified resolver", in: Policy{Allow: []Endpoint{server}, AllowDNS: []netip.Addr{netip.IPv4Unspecified()}}, wantErr: "resolver"},
		{name: "invalid resolver", in: Policy{Allow: []Endpoint{server}, AllowDNS: []netip.Addr{{}}}, wantErr: "resolver"},
		{name: "until in the past", in: Policy{Allow: []Endpoint{server}, Until: now.Add(-time.Second)}, wantErr: "not in the future"},
		{name: "until now", in: Policy{Allow: []Endpoint{server}, Until: now}, wantErr: "not in the future"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.normalize(now)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrPolicy containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if err := (Policy{}).Validate(); !errors.Is(err, ErrPolicy) {
		t.Errorf("Validate(empty) = %v", err)
	}
}

func TestEndpointText(t *testing.T) {
	for _, e := range []Endpoint{
		Host(netip.MustParseAddr("192.0.2.10"), "tcp", 443),
		Host(netip.MustParseAddr("2001:db8::1"), "udp", 53),
		{Addr: netip.MustParsePrefix("198.51.100.0/25")},
		{Addr: netip.MustParsePrefix("2001:db8::/48"), Proto: "tcp"},
	} {
		s := e.String()
		got, err := parseEndpoint(s)
		if err != nil || got != e {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want %+v", s, got, err, e)
		}
	}
	if got := Host(netip.MustParseAddr("192.0.2.10"), "", 0).String(); got != "192.0.2.10/32 any 0" {
		t.Errorf("String = %q", got)
	}
	for _, bad := range []string{"", "192.0.2.1/32 tcp", "x tcp 1", "192.0.2.1/32 tcp 70000", "192.0.2.1/32 sctp 1", "192.0.2.1/32 any 5"} {
		if _, err := parseEndpoint(bad); err == nil {
			t.Errorf("parseEndpoint(%q) succeeded", bad)
		}
	}
}

func TestMetaComment(t *testing.T) {
	until := time.Date(2026, 7, 1, 12, 0, 0, 123456789, time.UTC)
	applied := until.Add(-time.Hour)
	tests := []struct {
		name       string
		in         tableMeta
		wantReason string
	}{
		{"plain", tableMeta{Until: until, AppliedAt: applied, Reason: "alert 42"}, "alert 42"},
		{"no until", tableMeta{AppliedAt: applied, Reason: "manual"}, "manual"},
		{"control characters", tableMeta{AppliedAt: applied, Reason: "a\nb\tc\x00"}, "a b c "},
		{"invalid utf-8", tableMeta{AppliedAt: applied, Reason: "a\xffb"}, "a?b"},
		{"long, multibyte", tableMeta{Until: until, AppliedAt: applied, Reason: strings.Repeat("隔離", 200)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in.comment()
			if len(c) > maxCommentLen || !utf8.ValidString(c) {
				t.Fatalf("comment %q: %d bytes (max %d), valid UTF-8 %v", c, len(c), maxCommentLen, utf8.ValidString(c))
			}
			m, ok := parseMeta(c)
			if !ok || !m.Until.Equal(tc.in.Until) || !m.AppliedAt.Equal(tc.in.AppliedAt) {
				t.Fatalf("parseMeta(%q) = %+v, %v", c, m, ok)
			}
			if tc.wantReason != "" && m.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", m.Reason, tc.wantReason)
			}
			if tc.wantReason == "" && (!strings.HasPrefix(tc.in.Reason, m.Reason) || len(m.Reason) < 100) {
				t.Errorf("truncated reason %q is not a long prefix", m.Reason)
			}
		})
	}
	for _, bad := range []string{"drop", "mamori-isolate v1 until=yesterday applied=x reason=", "mamori-isolate v2 until=none"} {
		if _, ok := parseMeta(bad); ok {
			t.Errorf("parseMeta(%q) accepted", bad)
		}
	}
}

func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "isolation.json")
	if r, err := readState(path); r != nil || err != nil {
		t.Fatalf("readState(missing) = %v, %v", r, err)
	}
	p, err := Policy{
		Allow:     []Endpoint{Host(netip.MustParseAddr("2001:db8::10"), "tcp", 8443)},
		Inbound:   []Endpoint{{Addr: netip.MustParsePrefix("192.0.2.0/24"), Proto: "tcp", Port: 22}},
		AllowDNS:  []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		AllowDHCP: true,
		Until:     time.Now().Add(time.Hour),
		Reason:    "incident 7",
	}.normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := stateRecord{Table: DefaultTable, AppliedAt: time.Now().UTC().Round(0), Policy: p}
	if err := writeState(path, rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v, %v", fi, err)
	}
	got, err := readState(path)
	rec.Version = stateVersion
	if err != nil || !reflect.DeepEqual(*got, rec) {
		t.Fatalf("readState = %+v, %v\nwant %+v", got, err, rec)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := os.WriteFile(path, []byte(`{"version":99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(path); err == nil {
		t.Error("readState accepted version 99")
	}
	if err := removeState(path); err != nil {
		t.Fatal(err)
	}
	if err := removeState(path); err != nil {
		t.Errorf("removeState(missing) = %v", err)
	}
}
