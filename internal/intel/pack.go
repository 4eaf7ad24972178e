package intel

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"
)

// The matcher keeps every indicator in pointer-free memory: one byte arena
// holding each indicator's value, lookup key and encoded sources, and a
// slice of fixed-size records. With a million indicators loaded, maps of
// strings and *Indicator made the garbage collector mark millions of
// objects on every cycle (more than half the CPU of a busy server); a few
// large pointer-free slices are never scanned. An *Indicator is decoded
// only for a hit, for Get and for List.

// rec is one indicator: where its bytes are and what matching needs
// without decoding them (tenant, expiry).
type rec struct {
	off    uint64 // the indicator's bytes start at arena[off]
	expSec int64  // Expires() as Unix seconds and nanoseconds, when fExpires
	expNs  int32
	valLen uint32 // the value is arena[off : off+valLen]
	keyOff uint32 // the lookup key is arena[off+keyOff : off+keyOff+keyLen]
	keyLen uint32
	size   uint32 // all the indicator's bytes; the sources end there
	next   uint32 // in a base, id+1 of the next record with the same key; 0: none
	tenant uint32 // index in index.tenants; 0 is "" (global)
	typ    uint8  // index in typeNames
	kind   uint8
	flags  uint8
}

const (
	fNoSources  = 1 << iota // never active
	fExpires                // every source expires: active until expSec/expNs
	fSomeExpire             // at least one source expires (Store.Expire trims it)
)

// kinds of lookup key, one hash table for all.
const (
	kDomain = iota
	kURL
	kMD5
	kSHA1
	kSHA256
	kEmail
	kFile
	kIP   // 16 bytes of As16 and 1 when IPv4
	kCIDR // 16 bytes of the masked address, 1 when IPv4, the prefix length
	numKinds
)

// typeNames is the order of rec.typ (not Types, which callers could modify).
var typeNames = [...]Type{TypeIPv4, TypeIPv6, TypeCIDR, TypeDomain, TypeURL, TypeMD5, TypeSHA1, TypeSHA256, TypeEmail, TypeFilename}

func typeIndex(t Type) (uint8, bool) {
	for i, n := range typeNames {
		if n == t {
			return uint8(i), true
		}
	}
	return 0, false
}

// keyOf returns the lookup kind of an indicator and, for IPs and CIDRs,
// the binary key (for the other kinds the key is a substring of the value:
// start and end).
func keyOf(typ Type, value string) (kind int, bin []byte, start, end int, ok bool) {
	switch typ {
	case TypeIPv4, TypeIPv6:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return 0, nil, 0, 0, false
		}
		k := ipKey(a)
		return kIP, k[:], 0, 0, true
	case TypeCIDR:
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return 0, nil, 0, 0, false
		}
		p = p.Masked()
		k := ipKey(p.Addr())
		return kCIDR, append(k[:], byte(p.Bits())), 0, 0, true
	case TypeURL:
		i := strings.Index(value, "://")
		if i < 0 {
			return 0, nil, 0, 0, false
		}
		return kURL, nil, i + 3, len(value), true
	case TypeDomain:
		kind = kDomain
	case TypeMD5:
		kind = kMD5
	case TypeSHA1:
		kind = kSHA1
	case TypeSHA256:
		kind = kSHA256
	case TypeEmail:
		kind = kEmail
	case TypeFilename:
		kind = kFile
	default:
		return 0, nil, 0, 0, false
	}
	return kind, nil, 0, len(value), true
}

// ipKey is the lookup key of an address (the IPv4 flag keeps an IPv4
// address and its IPv4-mapped IPv6 form apart, as netip.Addr equality does).
func ipKey(a netip.Addr) [17]byte {
	var k [17]byte
	b := a.As16()
	copy(k[:], b[:])
	if a.Is4() {
		k[16] = 1
	}
	return k
}

// appendIndicator encodes ind (without its tenant) at the end of arena.
func appendIndicator(arena []byte, ind *Indicator, tenant uint32) ([]byte, rec, bool) {
	typ, ok := typeIndex(ind.Type)
	if !ok {
		return arena, rec{}, false
	}
	kind, bin, start, end, ok := keyOf(ind.Type, ind.Value)
	if !ok {
		return arena, rec{}, false
	}
	r := rec{off: uint64(len(arena)), valLen: uint32(len(ind.Value)), tenant: tenant, typ: typ, kind: uint8(kind)}
	arena = append(arena, ind.Value...)
	if bin != nil {
		r.keyOff, r.keyLen = r.valLen, uint32(len(bin))
		arena = append(arena, bin...)
	} else {
		r.keyOff, r.keyLen = uint32(start), uint32(end-start)
	}
	arena = binary.AppendUvarint(arena, uint64(len(ind.Sources)))
	for i := range ind.Sources {
		s := &ind.Sources[i]
		arena = appendString(arena, s.Source)
		arena = binary.AppendVarint(arena, int64(s.Confidence))
		arena = appendString(arena, s.TLP)
		arena = appendTime(arena, s.FirstSeen)
		arena = appendTime(arena, s.LastSeen)
		arena = appendTime(arena, s.Expires)
		arena = appendString(arena, s.Ref)
		arena = appendString(arena, s.Description)
		arena = binary.AppendUvarint(arena, uint64(len(s.Tags)))
		for _, t := range s.Tags {
			arena = appendString(arena, t)
		}
		if !s.Expires.IsZero() {
			r.flags |= fSomeExpire
		}
	}
	r.size = uint32(uint64(len(arena)) - r.off)
	switch exp := ind.Expires(); {
	case len(ind.Sources) == 0:
		r.flags |= fNoSources
	case !exp.IsZero():
		r.flags |= fExpires
		r.expSec, r.expNs = exp.Unix(), int32(exp.Nanosecond())
	}
	return arena, r, true
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// active is Indicator.Active on the record.
func (r *rec) active(sec int64, ns int32) bool {
	switch {
	case r.flags&fNoSources != 0:
		return false
	case r.flags&fExpires == 0:
		return true
	}
	return sec < r.expSec || sec == r.expSec && ns < r.expNs
}

// decoder reads what appendIndicator wrote. Strings are copied: a hit
// kept by a caller must not pin the whole arena.
type decoder struct{ b []byte }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

// tlp returns the constant of a known TLP (no allocation per hit).
func (d *decoder) tlp() string {
	b := d.bytes()
	for _, t := range [...]string{"", TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed} {
		if string(b) == t {
			return t
		}
	}
	return string(b)
}

func (d *decoder) time() time.Time {
	set := d.b[0]
	d.b = d.b[1:]
	if set == 0 {
		return time.Time{}
	}
	sec := d.varint()
	return time.Unix(sec, int64(d.uvarint())).UTC()
}

// value is the record's value, sharing the arena's memory (valid as long
// as the index: the arena is append-only).
func (x *index) value(r *rec) string {
	return unsafeString(x.arena[r.off : r.off+uint64(r.valLen)])
}

func (x *index) key(r *rec) string {
	s := r.off + uint64(r.keyOff)
	return unsafeString(x.arena[s : s+uint64(r.keyLen)])
}

// decode materializes record id as a new Indicator.
func (x *index) decode(id uint32) *Indicator {
	r := &x.recs[id]
	ind := &Indicator{Type: typeNames[r.typ], Value: strings.Clone(x.value(r)), Tenant: x.tenants[r.tenant]}
	d := decoder{b: x.arena[r.off+uint64(r.valLen) : r.off+uint64(r.size)]}
	if r.kind == kIP || r.kind == kCIDR {
		d.b = d.b[r.keyLen:]
	}
	n := d.uvarint()
	ind.Sources = make([]SourceRef, n)
	for i := range ind.Sources {
		s := &ind.Sources[i]
		s.Source = d.string()
		s.Confidence = int(d.varint())
		s.TLP = d.tlp()
		s.FirstSeen = d.time()
		s.LastSeen = d.time()
		s.Expires = d.time()
		s.Ref = d.string()
		s.Description = d.string()
		if nt := d.uvarint(); nt > 0 {
			s.Tags = make([]string, nt)
			for j := range s.Tags {
				s.Tags[j] = d.string()
			}
		}
	}
	return ind
}

// keyFor is the Key of record id; its Value shares the arena's memory.
func (x *index) keyFor(id uint32) Key {
	r := &x.recs[id]
	return Key{Tenant: x.tenants[r.tenant], Type: typeNames[r.typ], Value: x.value(r)}
}
