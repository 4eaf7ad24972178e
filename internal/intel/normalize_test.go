package intel

import (
	"errors"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		typ      Type
		in       string
		wantType Type
		want     string // "" = error
	}{
		{TypeIPv4, " 192.0.2.1 ", TypeIPv4, "192.0.2.1"},
		{TypeIPv4, "::ffff:192.0.2.1", TypeIPv4, "192.0.2.1"},
		{TypeIPv4, "192.0.2.1/32", TypeIPv4, "192.0.2.1"},
		{TypeIPv4, "192.0.2.0/24", TypeCIDR, "192.0.2.0/24"},
		{TypeIPv4, "192.0.2[.]1", TypeIPv4, "192.0.2.1"},
		{TypeIPv4, "192.000.2.1", "", ""},
		{TypeIPv4, "2001:db8::1", "", ""},
		{TypeIPv6, "2001:DB8:0:0::1", TypeIPv6, "2001:db8::1"},
		{TypeIPv6, "fe80::1%eth0", "", ""},
		{TypeCIDR, "10.1.2.3/8", TypeCIDR, "10.0.0.0/8"},
		{TypeCIDR, "2001:db8::1/128", TypeIPv6, "2001:db8::1"},
		{TypeCIDR, "2001:DB8::/32", TypeCIDR, "2001:db8::/32"},
		{TypeCIDR, "::ffff:10.0.0.0/104", TypeCIDR, "10.0.0.0/8"},
		{TypeCIDR, "10.0.0.0/33", "", ""},
		{TypeDomain, "WWW.Evil.Example.", TypeDomain, "www.evil.example"},
		{TypeDomain, "*.evil.example", TypeDomain, "evil.example"},
		{TypeDomain, "_dmarc.evil[.]example", TypeDomain, "_dmarc.evil.example"},
		{TypeDomain, "evil..example", "", ""},
		{TypeDomain, "evil example", "", ""},
		{TypeDomain, "192.0.2.1", "", ""},
		{TypeURL, "HTTP://User:pw@Evil.Example:80/A/b?Q=1#frag", TypeURL, "http://evil.example/A/b?Q=1"},
		{TypeURL, "https://evil.example:443", TypeURL, "https://evil.example/"},
		{TypeURL, "https://evil.example:8443?x", TypeURL, "https://evil.example:8443/?x"},
		{TypeURL, "evil.example/path", TypeURL, "http://evil.example/path"},
		{TypeURL, "hxxps://evil[.]example/x", TypeURL, "https://evil.example/x"},
		{TypeURL, "http://[2001:DB8::1]:8080/x", TypeURL, "http://[2001:db8::1]:8080/x"},
		{TypeURL, "http://192.0.2.1/x", TypeURL, "http://192.0.2.1/x"},
		{TypeURL, "http:///x", "", ""},
		{TypeURL, "http://a b/x", "", ""},
		{TypeURL, "http://evil.example:port/", "", ""},
		{TypeMD5, "44D88612FEA8A8F36DE82E1278ABB02F", TypeMD5, "44d88612fea8a8f36de82e1278abb02f"},
		{TypeMD5, "44d88612fea8a8f36de82e1278abb02", "", ""},
		{TypeSHA1, "3395856ce81f2b7382dee72602f798b642f1414g", "", ""},
		{TypeSHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", TypeSHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"},
		{TypeEmail, "mailto:Bad.Guy@Evil.Example", TypeEmail, "bad.guy@evil.example"},
		{TypeEmail, "Bad Guy <bad@evil.example>", TypeEmail, "bad@evil.example"},
		{TypeEmail, "bad[@]evil[.]example", TypeEmail, "bad@evil.example"},
		{TypeEmail, "no-at-sign", "", ""},
		{TypeEmail, "a@b@c", "", ""},
		{TypeFilename, `C:\Windows\Temp\Evil.EXE`, TypeFilename, "evil.exe"},
		{TypeFilename, "/tmp/", "", ""},
		{"", "44d88612fea8a8f36de82e1278abb02f", TypeMD5, "44d88612fea8a8f36de82e1278abb02f"},
		{"", "evil.example", TypeDomain, "evil.example"},
		{"", "evil.example/x", TypeURL, "http://evil.example/x"},
		{"", "198.51.100.0/24", TypeCIDR, "198.51.100.0/24"},
		{"", "a@evil.example", TypeEmail, "a@evil.example"},
		{"", "localhost", "", ""},
		{"", "", "", ""},
		{"registry", "x", "", ""},
	}
	for _, c := range cases {
		typ, got, err := Normalize(c.typ, c.in)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%s, %q) = %s %q, %v; want an ErrInvalid error", c.typ, c.in, typ, got, err)
			}
			continue
		}
		if err != nil || typ != c.wantType || got != c.want {
			t.Errorf("Normalize(%s, %q) = %s %q, %v; want %s %q", c.typ, c.in, typ, got, err, c.wantType, c.want)
			continue
		}
		// Idempotent: normalizing the output again changes nothing.
		if typ2, again, err := Normalize(typ, got); err != nil || typ2 != typ || again != got {
			t.Errorf("Normalize not idempotent on %s %q: %s %q %v", typ, got, typ2, again, err)
		}
	}
}

func TestParseManual(t *testing.T) {
	cases := []struct{ typ, value, want string }{
		{"ip", "203.0.113.9", "ipv4:203.0.113.9"},
		{"ip", "2001:db8::/48", "cidr:2001:db8::/48"},
		{"hash", "3395856CE81F2B7382DEE72602F798B642F14140", "sha1:3395856ce81f2b7382dee72602f798b642f14140"},
		{"domain", "Evil.Example", "domain:evil.example"},
		{"auto", "https://evil.example/x", "url:https://evil.example/x"},
		{"file", "evil.exe", "filename:evil.exe"},
		{"mail", "x@evil.example", "email:x@evil.example"},
	}
	for _, c := range cases {
		ind, err := ParseManual(c.typ, c.value)
		if err != nil || ind.Key().String() != c.want {
			t.Errorf("ParseManual(%s, %s) = %s, %v; want %s", c.typ, c.value, ind.Key(), err, c.want)
		}
	}
	for _, c := range [][2]string{{"hash", "xyz"}, {"bogus", "1.2.3.4"}, {"ipv6", "1.2.3.4"}} {
		if _, err := ParseManual(c[0], c[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseManual(%s, %s): %v, want ErrInvalid", c[0], c[1], err)
		}
	}
}

func TestIndicatorSources(t *testing.T) {
	ind := &Indicator{Type: TypeDomain, Value: "x.example", Sources: []SourceRef{
		{Source: "a", Confidence: 90, TLP: TLPRed, Expires: t0},
		{Source: "b", Confidence: 60, TLP: TLPAmber},
		{Source: "c", Confidence: 70, TLP: TLPGreen, Expires: t0.Add(time.Hour)},
	}}
	before, after := t0.Add(-time.Second), t0.Add(2*time.Hour)
	if ind.Confidence(before) != 90 || ind.Confidence(t0) != 70 || ind.Confidence(after) != 60 {
		t.Errorf("confidence: %d %d %d", ind.Confidence(before), ind.Confidence(t0), ind.Confidence(after))
	}
	if ind.TLP(before) != TLPGreen || ind.TLP(after) != TLPAmber {
		t.Errorf("TLP: %s %s", ind.TLP(before), ind.TLP(after))
	}
	if !ind.Expires().IsZero() {
		t.Error("an indicator with a never-expiring source expires")
	}
	ind.Sources = []SourceRef{ind.Sources[0], ind.Sources[2]}
	if !ind.Expires().Equal(t0.Add(time.Hour)) || !ind.Active(t0) || ind.Active(t0.Add(time.Hour)) {
		t.Errorf("Expires %v Active %v/%v", ind.Expires(), ind.Active(t0), ind.Active(t0.Add(time.Hour)))
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:1.2.3.4/120", "hxxp://a[.]b/c?d#e", "Bad <a@b.example>", `C:\x\y.exe`, "*.a.example.", "http://[::1]:80"} {
		f.Add("", s)
	}
	f.Add("filename", "a/b")
	f.Fuzz(func(t *testing.T, typ, v string) {
		nt, n, err := Normalize(Type(typ), v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if nt2, n2, err := Normalize(nt, n); err != nil || nt2 != nt || n2 != n {
			t.Fatalf("Normalize(%q, %q) = %s %q, not a fixed point: %s %q %v", typ, v, nt, n, nt2, n2, err)
		}
		if _, _, _, _, ok := keyOf(nt, n); !ok {
			t.Fatalf("normalized %s %q has no matcher slot", nt, n)
		}
	})
}
