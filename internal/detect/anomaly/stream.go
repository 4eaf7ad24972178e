package anomaly

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/event"
)

// ErrInvalidStream reports a Stream that cannot be used.
var ErrInvalidStream = errors.New("invalid anomaly stream")

// Stream describes one rate to watch: which events count, how they are
// grouped, and when a group's rate is a surge.
type Stream struct {
	// Name identifies the stream in signals and snapshots; unique.
	Name string `yaml:"name"`
	// Match: field → accepted values. An event counts when every field
	// holds one of its values (AND across fields, OR within a field).
	// Empty matches every event.
	Match map[string][]string `yaml:"match"`
	// By lists the group-by fields (e.g. host.name, source.ip); empty
	// means one group per tenant. Events missing a By field are not
	// counted in this stream.
	By []string `yaml:"by,omitempty"`
	// K is the ratio threshold: a minute breaches when its count is at
	// least K × expected (default 3).
	K float64 `yaml:"k"`
	// Z is the spread threshold: the count must also be at least
	// expected + Z × spread (default 6), which matters for bursty groups.
	Z float64 `yaml:"z"`
	// For is how long the surge must hold, in whole minutes (default 3m):
	// an episode starts when at least For minutes of the last max(5m, For)
	// breached.
	For config.Duration `yaml:"for"`
	// MinCount is the per-minute floor: fewer events never breach
	// (default 20).
	MinCount int `yaml:"min_count"`
	// Severity is copied into signals (default "medium").
	Severity string `yaml:"severity"`
}

// Defaults applied by Normalize.
const (
	DefaultK        = 3.0
	DefaultZ        = 6.0
	DefaultFor      = 3 * time.Minute
	DefaultMinCount = 20
	DefaultSeverity = "medium"

	// maxFor bounds For so that the breach history fits in a uint64.
	maxFor = 60 * time.Minute
	// minWindow is the sliding window breaches are counted in.
	minWindow = 5
)

// Outbound mail as Postfix logs it: one postfix/smtp line per delivery
// attempt to a remote server (local deliveries are postfix/local, virtual
// or lmtp), so a mass-mailer shows here whatever the sender address.
var outboundMail = map[string][]string{
	event.FieldCategory:    {"email"},
	event.FieldProcessName: {"postfix/smtp"},
	event.FieldAction:      {"sent", "deferred", "bounced", "expired"},
}

// DefaultStreams returns the streams shipped by default. Each call returns
// fresh values the caller may modify.
func DefaultStreams() []Stream {
	return []Stream{
		{Name: "mail-outbound", Match: cloneMatch(outboundMail), K: 3, Z: 6, For: config.Duration(3 * time.Minute), MinCount: 20, Severity: "high"},
		{Name: "mail-outbound-by-host", Match: cloneMatch(outboundMail), By: []string{event.FieldHostName}, K: 3, Z: 6, For: config.Duration(3 * time.Minute), MinCount: 20, Severity: "high"},
		// One smtpd "client=" line per message a client hands to the relay.
		// A single workstation is the infected machine in the classic case.
		// Its own normal is a few mails an hour, so its threshold is set by
		// the floor: 6 a minute (and expected + 6σ, about 7 for a quiet
		// client) in 2 of 5 minutes is beyond any person at a keyboard, yet
		// reached within minutes by a mass-mailer that takes the tenant to
		// 10× over half an hour. Shared or busy senders (a terminal server,
		// an application) have their own higher baseline.
		{Name: "mail-submissions-by-source", Match: map[string][]string{
			event.FieldCategory: {"email"},
			event.FieldAction:   {"client"},
		}, By: []string{event.FieldSourceIP}, K: 3, Z: 6, For: config.Duration(2 * time.Minute), MinCount: 6, Severity: "high"},
		{Name: "firewall-denies-by-port", Match: map[string][]string{
			event.FieldCategory: {"network"},
			event.FieldType:     {"denied"},
		}, By: []string{event.FieldDestPort}, K: 3, Z: 6, For: config.Duration(3 * time.Minute), MinCount: 50, Severity: "medium"},
		{Name: "auth-failures-by-user", Match: map[string][]string{
			event.FieldCategory: {"authentication"},
			event.FieldOutcome:  {"failure"},
		}, By: []string{event.FieldUserName}, K: 3, Z: 6, For: config.Duration(3 * time.Minute), MinCount: 20, Severity: "medium"},
	}
}

func cloneMatch(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// Normalize returns s with defaults filled in, or an error wrapping
// ErrInvalidStream.
func (s Stream) Normalize() (Stream, error) {
	if s.Name == "" {
		return s, fmt.Errorf("%w: a stream needs a name", ErrInvalidStream)
	}
	if s.K == 0 {
		s.K = DefaultK
	}
	if s.Z == 0 {
		s.Z = DefaultZ
	}
	if s.For == 0 {
		s.For = config.Duration(DefaultFor)
	}
	if s.MinCount == 0 {
		s.MinCount = DefaultMinCount
	}
	if s.Severity == "" {
		s.Severity = DefaultSeverity
	}
	switch {
	case s.K < 1:
		return s, fmt.Errorf("%w: stream %s: k %g is below 1 (a ratio threshold under 1 fires on normal traffic)", ErrInvalidStream, s.Name, s.K)
	case s.Z < 0:
		return s, fmt.Errorf("%w: stream %s: z %g is negative", ErrInvalidStream, s.Name, s.Z)
	case s.For.D() < time.Minute || s.For.D() > maxFor || s.For.D()%time.Minute != 0:
		return s, fmt.Errorf("%w: stream %s: for %s must be whole minutes between 1m and %s", ErrInvalidStream, s.Name, s.For, maxFor)
	case s.MinCount < 1:
		return s, fmt.Errorf("%w: stream %s: min_count %d must be at least 1", ErrInvalidStream, s.Name, s.MinCount)
	}
	seen := map[string]bool{}
	for _, f := range s.By {
		if f == "" || seen[f] {
			return s, fmt.Errorf("%w: stream %s: by field %q is empty or repeated", ErrInvalidStream, s.Name, f)
		}
		seen[f] = true
	}
	for f, vs := range s.Match {
		if f == "" || len(vs) == 0 {
			return s, fmt.Errorf("%w: stream %s: match field %q needs at least one value", ErrInvalidStream, s.Name, f)
		}
	}
	return s, nil
}

// forMinutes is For in minutes; window is the sliding window it is
// counted in.
func (s *Stream) forMinutes() int { return int(s.For.D() / time.Minute) }
func (s *Stream) window() int     { return max(minWindow, s.forMinutes()) }

// fieldCache looks up each field an event is matched or grouped on at
// most once per event: the streams share most of their fields
// (event.category in all default streams).
type fieldCache struct {
	names []string // every field any stream uses
	vals  []string
	state []uint8 // per name: 0 not looked up, 1 present, 2 absent
}

// index returns the position of name, adding it.
func (fc *fieldCache) index(name string) int {
	if i := slices.Index(fc.names, name); i >= 0 {
		return i
	}
	fc.names = append(fc.names, name)
	fc.vals = append(fc.vals, "")
	fc.state = append(fc.state, 0)
	return len(fc.names) - 1
}

func (fc *fieldCache) reset() { clear(fc.state) }

// get returns field i of e.
func (fc *fieldCache) get(e *event.Event, i int) (string, bool) {
	switch fc.state[i] {
	case 1:
		return fc.vals[i], true
	case 2:
		return "", false
	}
	v, ok := lookup(e.Fields, fc.names[i])
	fc.vals[i] = v
	fc.state[i] = 2
	if ok {
		fc.state[i] = 1
	}
	return v, ok
}

// lookup is event.Event.Get without the closure of sort.Search, which
// costs more than the comparisons on this path. Fields are sorted by name
// (an event.Event invariant).
func lookup(fields []event.Field, name string) (string, bool) {
	lo, hi := 0, len(fields)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if fields[mid].Name < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(fields) && fields[lo].Name == name {
		return fields[lo].Value, true
	}
	return "", false
}

// matcher is a Stream's Match and By compiled for the hot path: field
// positions in the fieldCache, accepted values in a slice (a handful of
// values beats a map).
type matcher struct {
	fields []int
	values [][]string
	by     []int
}

func newMatcher(fc *fieldCache, m map[string][]string, by []string) matcher {
	var mt matcher
	names := make([]string, 0, len(m))
	for f := range m {
		names = append(names, f)
	}
	slices.Sort(names)
	for _, f := range names {
		mt.fields = append(mt.fields, fc.index(f))
		mt.values = append(mt.values, slices.Clone(m[f]))
	}
	for _, f := range by {
		mt.by = append(mt.by, fc.index(f))
	}
	return mt
}

func (mt *matcher) match(fc *fieldCache, e *event.Event) bool {
	for i, f := range mt.fields {
		v, ok := fc.get(e, f)
		if !ok || !slices.Contains(mt.values[i], v) {
			return false
		}
	}
	return true
}
