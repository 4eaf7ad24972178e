package intel

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors; every error the package returns wraps one of them.
var (
	ErrInvalid     = errors.New("invalid indicator")
	ErrNotFound    = errors.New("indicator not found")
	ErrFormat      = errors.New("feed format error")
	ErrUnsupported = errors.New("unsupported for IOC matching")
	ErrPattern     = errors.New("invalid STIX pattern")
)

// Type is the kind of observable an indicator names.
type Type string

// Indicator types.
const (
	TypeIPv4     Type = "ipv4"
	TypeIPv6     Type = "ipv6"
	TypeCIDR     Type = "cidr" // IPv4 or IPv6 prefix
	TypeDomain   Type = "domain"
	TypeURL      Type = "url"
	TypeMD5      Type = "md5"
	TypeSHA1     Type = "sha1"
	TypeSHA256   Type = "sha256"
	TypeEmail    Type = "email"
	TypeFilename Type = "filename"
)

// Types lists every indicator type.
var Types = []Type{TypeIPv4, TypeIPv6, TypeCIDR, TypeDomain, TypeURL, TypeMD5, TypeSHA1, TypeSHA256, TypeEmail, TypeFilename}

// TLP levels (TLP 2.0; "white" is read as "clear").
const (
	TLPClear       = "clear"
	TLPGreen       = "green"
	TLPAmber       = "amber"
	TLPAmberStrict = "amber+strict"
	TLPRed         = "red"
)

// tlpRank orders TLP levels from least to most restrictive; "" (unknown)
// ranks as amber, the usual default of sharing communities.
func tlpRank(t string) int {
	switch t {
	case TLPClear:
		return 0
	case TLPGreen:
		return 1
	case TLPAmberStrict:
		return 3
	case TLPRed:
		return 4
	}
	return 2
}

// NormalizeTLP maps the spellings seen in feeds ("TLP:WHITE", "tlp:amber+strict",
// "Green") to the TLP 2.0 names; "" stays "" (unspecified).
func NormalizeTLP(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "tlp:")
	t = strings.TrimPrefix(t, "tlp-")
	switch t {
	case "":
		return "", nil
	case "white", TLPClear:
		return TLPClear, nil
	case TLPGreen, TLPAmber, TLPRed:
		return t, nil
	case TLPAmberStrict, "amber-strict", "amber_strict":
		return TLPAmberStrict, nil
	}
	return "", fmt.Errorf("%w: unknown TLP %q (want clear, green, amber, amber+strict or red)", ErrInvalid, s)
}

// SourceRef is one source's report of an indicator.
type SourceRef struct {
	Source      string    `json:"source"`              // who reported it, e.g. "NTT-CERT"
	Confidence  int       `json:"confidence"`          // 0-100
	TLP         string    `json:"tlp,omitempty"`       // clear, green, amber, amber+strict, red; "" unspecified
	FirstSeen   time.Time `json:"first_seen,omitzero"` // zero when unknown
	LastSeen    time.Time `json:"last_seen,omitzero"`  // zero when unknown
	Expires     time.Time `json:"expires,omitzero"`    // zero: never
	Ref         string    `json:"ref,omitempty"`       // STIX id, MISP event uuid, feed file:line
	Description string    `json:"description,omitempty"`
	Tags        []string  `json:"tags,omitempty"` // malware family, labels, MISP tags
}

// Active reports whether the report still counts at now.
func (s *SourceRef) Active(now time.Time) bool {
	return s.Expires.IsZero() || now.Before(s.Expires)
}

// Key identifies an indicator: the same value may exist once globally and
// once per tenant.
type Key struct {
	Tenant string `json:"tenant,omitempty"`
	Type   Type   `json:"type"`
	Value  string `json:"value"`
}

// String renders the key as type:value, prefixed by tenant/ when scoped.
func (k Key) String() string {
	if k.Tenant != "" {
		return k.Tenant + "/" + string(k.Type) + ":" + k.Value
	}
	return string(k.Type) + ":" + k.Value
}

// Indicator is one observable value with every source that reported it.
// Values handed out by the Store and the Matcher are shared and must be
// treated as read-only.
type Indicator struct {
	Type    Type        `json:"type"`
	Value   string      `json:"value"`            // normalized (see Normalize)
	Tenant  string      `json:"tenant,omitempty"` // "" = all tenants
	Sources []SourceRef `json:"sources"`
}

// Key returns the indicator's identity.
func (ind *Indicator) Key() Key { return Key{Tenant: ind.Tenant, Type: ind.Type, Value: ind.Value} }

// Active reports whether any source still counts at now. An indicator whose
// sources all expired stops matching.
func (ind *Indicator) Active(now time.Time) bool {
	for i := range ind.Sources {
		if ind.Sources[i].Active(now) {
			return true
		}
	}
	return false
}

// Confidence is the highest confidence among the sources active at now, or
// -1 when none is active.
func (ind *Indicator) Confidence(now time.Time) int {
	best := -1
	for i := range ind.Sources {
		if s := &ind.Sources[i]; s.Active(now) && s.Confidence > best {
			best = s.Confidence
		}
	}
	return best
}

// TLP is the least restrictive TLP among the active sources: a value one
// source published as clear is public whoever else reported it. "" when no
// active source names a TLP.
func (ind *Indicator) TLP(now time.Time) string {
	best, rank := "", 99
	for i := range ind.Sources {
		s := &ind.Sources[i]
		if s.TLP == "" || !s.Active(now) {
			continue
		}
		if r := tlpRank(s.TLP); r < rank {
			best, rank = s.TLP, r
		}
	}
	return best
}

// Expires is when the last source expires; zero when one never does.
func (ind *Indicator) Expires() time.Time {
	var last time.Time
	for i := range ind.Sources {
		e := ind.Sources[i].Expires
		if e.IsZero() {
			return time.Time{}
		}
		if e.After(last) {
			last = e
		}
	}
	return last
}

// SourceNames lists the sources in order.
func (ind *Indicator) SourceNames() []string {
	out := make([]string, len(ind.Sources))
	for i := range ind.Sources {
		out[i] = ind.Sources[i].Source
	}
	return out
}

// Clone returns a deep copy.
func (ind *Indicator) Clone() *Indicator {
	c := *ind
	c.Sources = make([]SourceRef, len(ind.Sources))
	for i, s := range ind.Sources {
		s.Tags = slices.Clone(s.Tags)
		c.Sources[i] = s
	}
	return &c
}

// Validate normalizes the indicator in place (value, TLPs, times in UTC)
// and checks its sources.
func (ind *Indicator) Validate() error {
	typ, val, err := Normalize(ind.Type, ind.Value)
	if err != nil {
		return err
	}
	ind.Type, ind.Value = typ, val
	if len(ind.Sources) == 0 {
		return fmt.Errorf("%w: %s has no source", ErrInvalid, ind.Key())
	}
	for i := range ind.Sources {
		s := &ind.Sources[i]
		s.Source = strings.TrimSpace(s.Source)
		if s.Source == "" {
			return fmt.Errorf("%w: %s: source %d has no name", ErrInvalid, ind.Key(), i)
		}
		if s.Confidence < 0 || s.Confidence > 100 {
			return fmt.Errorf("%w: %s: source %s: confidence %d outside 0-100", ErrInvalid, ind.Key(), s.Source, s.Confidence)
		}
		if s.TLP, err = NormalizeTLP(s.TLP); err != nil {
			return fmt.Errorf("%s: source %s: %w", ind.Key(), s.Source, err)
		}
		s.FirstSeen, s.LastSeen, s.Expires = utc(s.FirstSeen), utc(s.LastSeen), utc(s.Expires)
	}
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// mergeSources returns old's sources updated with add's: a source already
// present takes the newer report (confidence, TLP, expiry, reference,
// description, tags) while first/last seen widen to cover both; a new
// source is appended. changed reports whether anything differs from old.
func mergeSources(old, add []SourceRef) (merged []SourceRef, changed bool) {
	merged = slices.Clone(old)
	for _, n := range add {
		i := slices.IndexFunc(merged, func(s SourceRef) bool { return s.Source == n.Source })
		if i < 0 {
			merged = append(merged, n)
			changed = true
			continue
		}
		o := merged[i]
		if !o.FirstSeen.IsZero() && (n.FirstSeen.IsZero() || o.FirstSeen.Before(n.FirstSeen)) {
			n.FirstSeen = o.FirstSeen
		}
		if o.LastSeen.After(n.LastSeen) {
			n.LastSeen = o.LastSeen
		}
		if !sameSource(o, n) {
			merged[i] = n
			changed = true
		}
	}
	return merged, changed
}

func sameSource(a, b SourceRef) bool {
	return a.Source == b.Source && a.Confidence == b.Confidence && a.TLP == b.TLP &&
		a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) && a.Expires.Equal(b.Expires) &&
		a.Ref == b.Ref && a.Description == b.Description && slices.Equal(a.Tags, b.Tags)
}
