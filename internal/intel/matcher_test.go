package intel

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/event"
)

var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// mk builds a valid indicator reported by one source (never expiring).
func mk(t testing.TB, typ Type, value string) *Indicator {
	t.Helper()
	nt, nv, err := Normalize(typ, value)
	if err != nil {
		t.Fatalf("Normalize(%s, %q): %v", typ, value, err)
	}
	return &Indicator{Type: nt, Value: nv, Sources: []SourceRef{{Source: "test", Confidence: 50}}}
}

func ev(tenant string, kv ...string) *event.Event {
	e := &event.Event{Tenant: tenant}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Set(kv[i], kv[i+1])
	}
	return e
}

// hits renders the hits of e as sorted "field=value->key" strings.
func hits(m *Matcher, e *event.Event) []string {
	var out []string
	m.Match(e, func(h Hit) {
		out = append(out, fmt.Sprintf("%s=%s->%s", h.Field, h.Value, h.Indicator.Key()))
	})
	sort.Strings(out)
	return out
}

func TestMatch(t *testing.T) {
	inds := []*Indicator{
		mk(t, TypeIPv4, "192.0.2.10"),
		mk(t, TypeIPv6, "2001:db8::1"),
		mk(t, TypeCIDR, "198.51.100.0/24"),
		mk(t, TypeCIDR, "198.51.100.128/25"),
		mk(t, TypeCIDR, "10.0.0.0/8"),
		mk(t, TypeCIDR, "2001:db8:aa::/48"),
		mk(t, TypeDomain, "evil.example"),
		mk(t, TypeDomain, "c2.example.org"),
		mk(t, TypeURL, "http://malware.example.com/eicar.com"),
		mk(t, TypeMD5, "44d88612fea8a8f36de82e1278abb02f"),
		mk(t, TypeSHA1, "3395856ce81f2b7382dee72602f798b642f14140"),
		mk(t, TypeSHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
		mk(t, TypeEmail, "banking@g0thamnatl.com"),
		mk(t, TypeFilename, "3Z4wnG9603it23y.exe"),
	}
	m := NewMatcher(func() time.Time { return t0 })
	m.Replace(inds)
	cases := []struct {
		name string
		e    *event.Event
		want []string
	}{
		{"ip exact", ev("", "source.ip", "192.0.2.10"), []string{"source.ip=192.0.2.10->ipv4:192.0.2.10"}},
		{"ip miss", ev("", "source.ip", "192.0.2.11", "destination.ip", "8.8.8.8"), nil},
		{"ip mapped v6", ev("", "destination.ip", "::ffff:192.0.2.10"), []string{"destination.ip=::ffff:192.0.2.10->ipv4:192.0.2.10"}},
		{"ipv6 exact", ev("", "destination.ip", "2001:DB8:0::1"), []string{"destination.ip=2001:DB8:0::1->ipv6:2001:db8::1"}},
		{"cidr nested", ev("", "destination.ip", "198.51.100.200"), []string{
			"destination.ip=198.51.100.200->cidr:198.51.100.0/24", "destination.ip=198.51.100.200->cidr:198.51.100.128/25"}},
		{"cidr first of range", ev("", "destination.ip", "198.51.100.0"), []string{"destination.ip=198.51.100.0->cidr:198.51.100.0/24"}},
		{"cidr last of range", ev("", "destination.ip", "198.51.100.255"), []string{
			"destination.ip=198.51.100.255->cidr:198.51.100.0/24", "destination.ip=198.51.100.255->cidr:198.51.100.128/25"}},
		{"cidr just outside", ev("", "destination.ip", "198.51.101.0", "source.ip", "198.51.99.255"), nil},
		{"cidr after a sibling", ev("", "source.ip", "10.200.0.1"), []string{"source.ip=10.200.0.1->cidr:10.0.0.0/8"}},
		{"cidr v6", ev("", "source.ip", "2001:db8:aa:ffff::9"), []string{"source.ip=2001:db8:aa:ffff::9->cidr:2001:db8:aa::/48"}},
		{"cidr v6 outside", ev("", "source.ip", "2001:db8:ab::1"), nil},
		{"v4 addr not in v6 prefix", ev("", "source.ip", "32.1.13.184"), nil},
		{"domain exact", ev("", "dns.question.name", "evil.example"), []string{"dns.question.name=evil.example->domain:evil.example"}},
		{"subdomain upper trailing dot", ev("", "dns.question.name", "A.B.Evil.Example."), []string{"dns.question.name=A.B.Evil.Example.->domain:evil.example"}},
		{"not a subdomain", ev("", "dns.question.name", "notevil.example", "url.domain", "evil.example.net"), nil},
		{"parent not covered", ev("", "dns.question.name", "example.org"), nil},
		{"url absolute", ev("", "url.original", "HTTP://Malware.Example.com:80/eicar.com#x"), []string{"url.original=HTTP://Malware.Example.com:80/eicar.com#x->url:http://malware.example.com/eicar.com"}},
		{"url scheme ignored", ev("", "url.full", "https://malware.example.com/eicar.com"), []string{"url.full=https://malware.example.com/eicar.com->url:http://malware.example.com/eicar.com"}},
		{"url path with url.domain", ev("", "url.domain", "malware.example.com", "url.original", "/eicar.com"), []string{"url.original=/eicar.com->url:http://malware.example.com/eicar.com"}},
		{"url other path", ev("", "url.original", "http://malware.example.com/other"), nil},
		{"url host is a domain indicator", ev("", "url.original", "http://x.c2.example.org/a"), []string{"url.original=x.c2.example.org->domain:c2.example.org"}},
		{"url host is an ip indicator", ev("", "http.request.referrer", "http://user@192.0.2.10:8080/i"), []string{"http.request.referrer=192.0.2.10->ipv4:192.0.2.10"}},
		{"hash upper", ev("", "file.hash.md5", "44D88612FEA8A8F36DE82E1278ABB02F"), []string{"file.hash.md5=44D88612FEA8A8F36DE82E1278ABB02F->md5:44d88612fea8a8f36de82e1278abb02f"}},
		{"hash in wrong field kind", ev("", "file.hash.sha1", "44d88612fea8a8f36de82e1278abb02f"), nil},
		{"sysmon hashes", ev("", "winlog.event_data.Hashes", "SHA1=3395856CE81F2B7382DEE72602F798B642F14140,MD5=00000000000000000000000000000000,SHA256=275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F,IMPHASH=44D88612FEA8A8F36DE82E1278ABB02F"), []string{
			"winlog.event_data.Hashes=275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F->sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
			"winlog.event_data.Hashes=3395856CE81F2B7382DEE72602F798B642F14140->sha1:3395856ce81f2b7382dee72602f798b642f14140"}},
		{"sysmon dns and ip", ev("", "winlog.event_data.QueryName", "www.evil.example", "winlog.event_data.DestinationIp", "192.0.2.10"), []string{
			"winlog.event_data.DestinationIp=192.0.2.10->ipv4:192.0.2.10", "winlog.event_data.QueryName=www.evil.example->domain:evil.example"}},
		{"sysmon image basename", ev("", "winlog.event_data.Image", `C:\Users\x\AppData\Local\Temp\3z4wnG9603it23y.EXE`), []string{"winlog.event_data.Image=3z4wnG9603it23y.EXE->filename:3z4wng9603it23y.exe"}},
		{"file.path basename", ev("", "file.path", "/tmp/3Z4wnG9603it23y.exe"), []string{"file.path=3Z4wnG9603it23y.exe->filename:3z4wng9603it23y.exe"}},
		{"email display name", ev("", "email.from.address", "Bank <Banking@G0thamNatl.com>"), []string{"email.from.address=Banking@G0thamNatl.com->email:banking@g0thamnatl.com"}},
		{"email list", ev("", "email.to.address", "a@x.example,banking@g0thamnatl.com"), []string{"email.to.address=banking@g0thamnatl.com->email:banking@g0thamnatl.com"}},
		{"zeek answers mixed", ev("", "zeek.answers", "cdn.evil.example,192.0.2.10"), []string{"zeek.answers=192.0.2.10->ipv4:192.0.2.10", "zeek.answers=cdn.evil.example->domain:evil.example"}},
		{"tls sni", ev("", "tls.client.server_name", "c2.example.org"), []string{"tls.client.server_name=c2.example.org->domain:c2.example.org"}},
		{"suricata cert fingerprint", ev("", "suricata.tls.fingerprint", "33:95:85:6c:e8:1f:2b:73:82:de:e7:26:02:f7:98:b6:42:f1:41:40"), []string{"suricata.tls.fingerprint=33:95:85:6c:e8:1f:2b:73:82:de:e7:26:02:f7:98:b6:42:f1:41:40->sha1:3395856ce81f2b7382dee72602f798b642f14140"}},
		{"unrelated field ignored", ev("", "message", "192.0.2.10 evil.example", "host.ip", "192.0.2.10"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := hits(m, c.e)
			if !slices.Equal(got, c.want) {
				t.Errorf("hits:\n got  %q\n want %q", got, c.want)
			}
		})
	}
}

func TestMatchTenantAndExpiry(t *testing.T) {
	now := t0
	m := NewMatcher(func() time.Time { return now })
	global := mk(t, TypeDomain, "shared.example")
	acme := mk(t, TypeDomain, "acme-only.example")
	acme.Tenant = "acme"
	acmeDup := mk(t, TypeDomain, "shared.example")
	acmeDup.Tenant = "acme"
	acmeDup.Sources[0].Source = "acme-soc"
	expiring := &Indicator{Type: TypeIPv4, Value: "192.0.2.7", Sources: []SourceRef{
		{Source: "a", Confidence: 90, Expires: t0.Add(time.Hour)},
		{Source: "b", Confidence: 40, Expires: t0.Add(2 * time.Hour)},
	}}
	m.Replace([]*Indicator{global, acme, acmeDup, expiring})

	if got := hits(m, ev("globex", "dns.question.name", "acme-only.example")); got != nil {
		t.Errorf("other tenant sees acme's indicator: %q", got)
	}
	if got := hits(m, ev("acme", "dns.question.name", "x.acme-only.example")); len(got) != 1 {
		t.Errorf("acme does not see its own indicator: %q", got)
	}
	if got := hits(m, ev("acme", "dns.question.name", "shared.example")); len(got) != 2 {
		t.Errorf("acme should see global and own copy of shared.example: %q", got)
	}
	if got := hits(m, ev("globex", "dns.question.name", "shared.example")); len(got) != 1 {
		t.Errorf("globex should see the global copy only: %q", got)
	}

	var conf []int
	collect := func(h Hit) { conf = append(conf, h.Indicator.Confidence(now)) }
	m.Match(ev("", "source.ip", "192.0.2.7"), collect)
	now = t0.Add(90 * time.Minute) // a expired, b active
	m.Match(ev("", "source.ip", "192.0.2.7"), collect)
	now = t0.Add(2 * time.Hour) // both expired: no hit
	m.Match(ev("", "source.ip", "192.0.2.7"), collect)
	if !slices.Equal(conf, []int{90, 40}) {
		t.Errorf("confidence over time = %v, want [90 40] (max of unexpired, then no hit)", conf)
	}
}

func TestMatcherUpdate(t *testing.T) {
	m := NewMatcher(func() time.Time { return t0 })
	var base []*Indicator
	for i := range 3000 {
		base = append(base, mk(t, TypeDomain, fmt.Sprintf("d%d.example", i)))
	}
	m.Replace(base)
	// Small updates go through the delta, large ones fold into the base:
	// both must give the same answers.
	for round, n := range []int{1, 10, 2000, 5} {
		var add []*Indicator
		for i := range n {
			add = append(add, mk(t, TypeDomain, fmt.Sprintf("r%d-%d.example", round, i)))
		}
		add = append(add, mk(t, TypeCIDR, fmt.Sprintf("10.%d.0.0/16", round)))
		m.Update(add, []Key{{Type: TypeDomain, Value: fmt.Sprintf("d%d.example", round)}})
		for _, ind := range add {
			e := ev("", "dns.question.name", ind.Value)
			if ind.Type == TypeCIDR {
				e = ev("", "source.ip", strings.TrimSuffix(ind.Value, "0/16")+"9")
			}
			if got := hits(m, e); len(got) != 1 {
				t.Fatalf("round %d: %s not found after update: %q", round, ind.Key(), got)
			}
		}
		if got := hits(m, ev("", "dns.question.name", fmt.Sprintf("d%d.example", round))); got != nil {
			t.Fatalf("round %d: removed indicator still matches: %q", round, got)
		}
		if got := hits(m, ev("", "dns.question.name", "d2999.example")); len(got) != 1 {
			t.Fatalf("round %d: untouched base indicator lost: %q", round, got)
		}
	}
	if want := 3000 + 1 + 10 + 2000 + 5 + 4 - 4; m.Len() != want {
		t.Errorf("Len = %d, want %d", m.Len(), want)
	}
	// Replacing an indicator (same key) keeps one copy, with the new sources.
	upd := mk(t, TypeDomain, "d2999.example")
	upd.Sources[0].Confidence = 99
	m.Update([]*Indicator{upd}, nil)
	var got []int
	m.Match(ev("", "dns.question.name", "d2999.example"), func(h Hit) { got = append(got, h.Indicator.Sources[0].Confidence) })
	if !slices.Equal(got, []int{99}) {
		t.Errorf("after replace: confidences %v, want [99]", got)
	}
}

// TestMatcherConcurrent runs readers against a writer (go test -race).
func TestMatcherConcurrent(t *testing.T) {
	m := NewMatcher(nil)
	m.Replace([]*Indicator{mk(t, TypeIPv4, "192.0.2.1")})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			e := ev("", "source.ip", "192.0.2.1", "dns.question.name", "w5.example")
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := 0
				m.Match(e, func(Hit) { n++ })
				if n == 0 {
					t.Error("permanent indicator missing during updates")
					return
				}
			}
		})
	}
	for i := range 200 {
		m.Update([]*Indicator{mk(t, TypeDomain, fmt.Sprintf("w%d.example", i))}, nil)
	}
	close(stop)
	wg.Wait()
}
