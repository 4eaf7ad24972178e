//go:build linux

package isolate

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables/expr"
)

func TestAddrMatch(t *testing.T) {
	tests := []struct {
		prefix   string
		src      bool
		offset   uint32
		data     []byte
		mask     []byte // nil: no bitwise
		protocol byte
	}{
		{"192.0.2.10/32", false, 16, []byte{192, 0, 2, 10}, nil, 2},
		{"192.0.2.10/32", true, 12, []byte{192, 0, 2, 10}, nil, 2},
		{"10.1.0.0/16", false, 16, []byte{10, 1}, nil, 2},
		{"198.51.100.128/25", true, 12, []byte{198, 51, 100, 128}, []byte{255, 255, 255, 0x80}, 2},
		{"2001:db8::/32", true, 8, []byte{0x20, 0x01, 0x0d, 0xb8}, nil, 10},
		{"2001:db8::/33", false, 24, []byte{0x20, 0x01, 0x0d, 0xb8, 0}, []byte{255, 255, 255, 255, 0x80}, 10},
	}
	for _, tc := range tests {
		exprs := addr(netip.MustParsePrefix(tc.prefix), tc.src)
		var (
			payload *expr.Payload
			bitwise *expr.Bitwise
			cmps    []*expr.Cmp
		)
		for _, e := range exprs {
			switch e := e.(type) {
			case *expr.Payload:
				payload = e
			case *expr.Bitwise:
				bitwise = e
			case *expr.Cmp:
				cmps = append(cmps, e)
			}
		}
		if len(cmps) != 2 || !bytes.Equal(cmps[0].Data, []byte{tc.protocol}) {
			t.Errorf("%s: family check %+v", tc.prefix, cmps)
			continue
		}
		if payload == nil || payload.Offset != tc.offset || payload.Len != uint32(len(tc.data)) {
			t.Errorf("%s src=%v: payload %+v, want offset %d len %d", tc.prefix, tc.src, payload, tc.offset, len(tc.data))
		}
		if !bytes.Equal(cmps[1].Data, tc.data) {
			t.Errorf("%s: compares with %v, want %v", tc.prefix, cmps[1].Data, tc.data)
		}
		switch {
		case tc.mask == nil && bitwise != nil:
			t.Errorf("%s: unexpected bitwise %+v", tc.prefix, bitwise)
		case tc.mask != nil && (bitwise == nil || !bytes.Equal(bitwise.Mask, tc.mask)):
			t.Errorf("%s: bitwise %+v, want mask %v", tc.prefix, bitwise, tc.mask)
		}
	}
}

func comments(rs []rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.comment)
	}
	return out
}

func TestChainRules(t *testing.T) {
	p, err := Policy{
		Allow:    []Endpoint{Host(netip.MustParseAddr("192.0.2.10"), "tcp", 443)},
		AllowDNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")},
		Until:    time.Now().Add(time.Hour),
		Reason:   "test",
	}.normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := tableMeta{Until: p.Until, AppliedAt: time.Now(), Reason: p.Reason}
	for _, kernelExpiry := range []bool{true, false} {
		rules := chainRules(p, m, kernelExpiry)
		for _, chain := range []string{chainInput, chainOutput, chainForward} {
			rs := rules[chain]
			if len(rs) < 1 {
				t.Fatalf("%s: %d rules", chain, len(rs))
			}
			if got := rs[0].comment == commentExpiry; got != kernelExpiry {
				t.Errorf("kernelExpiry=%v: %s starts with %q", kernelExpiry, chain, rs[0].comment)
			}
			last := rs[len(rs)-1]
			if v, ok := last.exprs[len(last.exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictDrop {
				t.Errorf("%s: last rule %v does not drop", chain, last.exprs)
			}
			for _, r := range rs[:len(rs)-1] {
				if v, ok := r.exprs[len(r.exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictAccept {
					t.Errorf("%s: rule %q does not end in accept", chain, r.comment)
				}
				if len(r.comment) > maxCommentLen {
					t.Errorf("%s: comment %q too long", chain, r.comment)
				}
			}
		}
		if _, ok := parseMeta(rules[chainOutput][len(rules[chainOutput])-1].comment); !ok {
			t.Errorf("output chain does not end with the metadata comment")
		}
		out := comments(rules[chainOutput])
		want := map[string]int{"allow 192.0.2.10/32 tcp 443": 1, "dns 2001:db8::53": 2}
		for c, n := range want {
			k := 0
			for _, o := range out {
				if o == c {
					k++
				}
			}
			if k != n {
				t.Errorf("output chain has %d rules %q, want %d: %q", k, c, n, out)
			}
		}
		if fwd := comments(rules[chainForward]); len(fwd) != 1+map[bool]int{true: 1}[kernelExpiry] {
			t.Errorf("forward chain %q: want only the drop (and expiry)", fwd)
		}
	}
}
