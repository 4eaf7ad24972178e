package alert

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound  = errors.New("alert not found")
	ErrBadStatus = errors.New("invalid alert status")
	ErrBadFilter = errors.New("invalid alert filter")
	ErrBadRule   = errors.New("invalid exception")
)

// Kinds of finding.
const (
	KindSigma       = "sigma"
	KindCorrelation = "correlation"
	KindIndicator   = "indicator"
	KindAnomaly     = "anomaly"
)

// Statuses. New alerts are open; an analyst acknowledges or closes them;
// an exception makes them suppressed.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusClosed       = "closed"
	StatusSuppressed   = "suppressed"
)

// Severities, lowest first (Sigma's levels).
var Severities = []string{"informational", "low", "medium", "high", "critical"}

// SeverityRank orders severities; unknown ones rank as medium.
func SeverityRank(s string) int {
	if i := slices.Index(Severities, strings.ToLower(s)); i >= 0 {
		return i
	}
	return 2
}

// NormalizeSeverity maps a Sigma level or a configured name to one of Severities.
func NormalizeSeverity(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if slices.Contains(Severities, s) {
		return s
	}
	switch s {
	case "info", "informative":
		return "informational"
	case "crit":
		return "critical"
	}
	return "medium"
}

// Entity kinds, in the order they are shown.
const (
	EntityHost   = "host"
	EntityUser   = "user"
	EntityIP     = "ip"
	EntityHash   = "hash"
	EntityDomain = "domain"
	EntityURL    = "url"
	EntityEmail  = "email"
	EntityFile   = "file"
)

// maxPerEntity and maxEventIDs bound what one alert keeps: its count keeps
// growing, its lists do not.
const (
	maxPerEntity = 50
	maxEventIDs  = 100
)

// Alert is one deduplicated finding.
type Alert struct {
	ID        string              `json:"id"`
	Tenant    string              `json:"tenant"`
	Kind      string              `json:"kind"`
	Rule      RuleRef             `json:"rule"`
	Severity  string              `json:"severity"`
	Status    string              `json:"status"`
	Tags      []string            `json:"tags,omitempty"`
	Entities  map[string][]string `json:"entities,omitempty"`
	EventIDs  []string            `json:"event_ids,omitempty"`
	Count     int64               `json:"count"`
	FirstSeen time.Time           `json:"first_seen"`
	LastSeen  time.Time           `json:"last_seen"`
	Retro     bool                `json:"retro,omitempty"`
	// DedupKey identifies "the same rule on the same entity".
	DedupKey string            `json:"dedup_key"`
	Details  map[string]string `json:"details,omitempty"`
	// Exception is the id of the exception that suppressed the alert.
	Exception int64     `json:"exception,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// RuleRef names what fired: a Sigma rule (its id), a correlation, an
// indicator or a baseline stream.
type RuleRef struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Path  string `json:"path,omitempty"`
}

// Finding is one thing the detection engine noticed, before deduplication.
type Finding struct {
	Tenant   string
	Kind     string
	Rule     RuleRef
	Severity string
	Tags     []string
	// Entity is the dedup entity (e.g. "host=ws-12"); empty means the rule
	// alone deduplicates.
	Entity   string
	Entities map[string][]string
	EventIDs []string
	// Count is how many events the finding covers (at least 1).
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
	Retro     bool
	Details   map[string]string
	// Field looks up an event field for exceptions; nil when the finding
	// has no event (exceptions on fields then do not apply).
	Field func(name string) (string, bool)
}

func (f *Finding) dedupKey() string {
	return f.Tenant + "\x00" + f.Kind + "\x00" + f.Rule.ID + "\x00" + f.Entity
}

// merge adds f to a (same dedup key).
func (a *Alert) merge(f *Finding) {
	n := f.Count
	if n <= 0 {
		n = 1
	}
	// A finding whose events the alert already holds is a replay (a bus
	// batch evaluated again after a crash): it must not grow the count.
	// Only the first maxEventIDs events are known, so a replay of an
	// alert beyond them still counts twice.
	if len(f.EventIDs) > 0 && !slices.ContainsFunc(f.EventIDs, func(id string) bool { return !slices.Contains(a.EventIDs, id) }) {
		n = 0
	}
	a.Count += n
	if !f.FirstSeen.IsZero() && f.FirstSeen.Before(a.FirstSeen) {
		a.FirstSeen = f.FirstSeen
	}
	if f.LastSeen.After(a.LastSeen) {
		a.LastSeen = f.LastSeen
	}
	if SeverityRank(f.Severity) > SeverityRank(a.Severity) {
		a.Severity = NormalizeSeverity(f.Severity)
	}
	for k, vs := range f.Entities {
		if a.Entities == nil {
			a.Entities = map[string][]string{}
		}
		a.Entities[k] = appendUnique(a.Entities[k], vs, maxPerEntity)
	}
	a.EventIDs = appendUnique(a.EventIDs, f.EventIDs, maxEventIDs)
	for k, v := range f.Details {
		if a.Details == nil {
			a.Details = map[string]string{}
		}
		a.Details[k] = v
	}
	a.Retro = a.Retro || f.Retro
}

func appendUnique(dst, src []string, limit int) []string {
	for _, v := range src {
		if v == "" || len(dst) >= limit || slices.Contains(dst, v) {
			continue
		}
		dst = append(dst, v)
	}
	return dst
}

func clone(a *Alert) *Alert {
	c := *a
	c.Tags = slices.Clone(a.Tags)
	c.EventIDs = slices.Clone(a.EventIDs)
	if a.Entities != nil {
		c.Entities = make(map[string][]string, len(a.Entities))
		for k, v := range a.Entities {
			c.Entities[k] = slices.Clone(v)
		}
	}
	if a.Details != nil {
		c.Details = make(map[string]string, len(a.Details))
		for k, v := range a.Details {
			c.Details[k] = v
		}
	}
	return &c
}
