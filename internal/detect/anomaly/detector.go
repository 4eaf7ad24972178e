package anomaly

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mamori-soc/mamori/internal/event"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("invalid anomaly detector configuration")

// Config tunes a Detector. The zero value is valid: default streams and
// defaults below.
type Config struct {
	// Streams to watch; nil means DefaultStreams().
	Streams []Stream
	// Lateness is how long after a minute ends its events are still
	// counted (default 2m, at most 6m): a minute closes when the tenant's
	// newest event time, or an Advance time, is Lateness past its end.
	Lateness time.Duration
	// WarmUp is the history a group needs before it may breach
	// (default 1h).
	WarmUp time.Duration
	// EndAfter ends an episode after this many minutes without a breach
	// (default 5m).
	EndAfter time.Duration
	// MaxGroups caps the groups kept per tenant and stream (default
	// 10,000); the least recently seen group is evicted to make room.
	MaxGroups int
	// Now, when set, guards against broken sender clocks: events more than
	// MaxFuture (default 5m) ahead of Now() are dropped instead of moving
	// the tenant's clock. Nil keeps the detector free of wall-clock reads.
	Now       func() time.Time
	MaxFuture time.Duration
	// Logger receives rare operational messages; nil discards them.
	Logger *slog.Logger
}

// Defaults for Config.
const (
	DefaultLateness  = 2 * time.Minute
	DefaultWarmUp    = time.Hour
	DefaultEndAfter  = 5 * time.Minute
	DefaultMaxGroups = 10000
	DefaultMaxFuture = 5 * time.Minute

	// openSlots is how many minutes can be open at once per tenant; it
	// bounds Lateness.
	openSlots   = 8
	maxLateness = 6 * time.Minute
)

func (c Config) normalize(fc *fieldCache) (Config, []compiledStream, error) {
	if c.Streams == nil {
		c.Streams = DefaultStreams()
	}
	if c.Lateness == 0 {
		c.Lateness = DefaultLateness
	}
	if c.WarmUp == 0 {
		c.WarmUp = DefaultWarmUp
	}
	if c.EndAfter == 0 {
		c.EndAfter = DefaultEndAfter
	}
	if c.MaxGroups == 0 {
		c.MaxGroups = DefaultMaxGroups
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = DefaultMaxFuture
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Lateness < 0 || c.Lateness > maxLateness:
		return c, nil, fmt.Errorf("%w: lateness %s must be between 0 and %s", ErrConfig, c.Lateness, maxLateness)
	case c.WarmUp < 0:
		return c, nil, fmt.Errorf("%w: warm-up %s is negative", ErrConfig, c.WarmUp)
	case c.EndAfter < time.Minute:
		return c, nil, fmt.Errorf("%w: end-after %s is shorter than a minute", ErrConfig, c.EndAfter)
	case c.MaxGroups < 1:
		return c, nil, fmt.Errorf("%w: max groups %d must be at least 1", ErrConfig, c.MaxGroups)
	}
	streams := make([]compiledStream, 0, len(c.Streams))
	names := map[string]bool{}
	for _, s := range c.Streams {
		n, err := s.Normalize()
		if err != nil {
			return c, nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if names[n.Name] {
			return c, nil, fmt.Errorf("%w: %w: stream name %q used twice", ErrConfig, ErrInvalidStream, n.Name)
		}
		names[n.Name] = true
		streams = append(streams, compiledStream{
			Stream:     n,
			matcher:    newMatcher(fc, n.Match, n.By),
			forMin:     n.forMinutes(),
			windowMask: 1<<uint(n.window()) - 1,
		})
	}
	return c, streams, nil
}

type compiledStream struct {
	Stream
	matcher
	forMin     int
	windowMask uint64 // the breach bits of the sliding window
}

func (s *compiledStream) threshold(exp, sigma float64) float64 {
	return max(s.K*exp, exp+s.Z*sigma, float64(s.MinCount))
}

// Detector holds the baselines of every tenant, stream and group. It is
// safe for concurrent use; one mutex guards it, as Observe is a few map
// lookups and counter increments.
type Detector struct {
	mu       sync.Mutex
	cfg      Config
	streams  []compiledStream
	warmUp   uint32 // minutes
	endAfter int64  // minutes
	tenants  map[string]*tenant
	order    []*tenant // sorted by name, for deterministic Advance
	pending  []Signal
	stats    Stats
	keyBuf   []byte
	fields   *fieldCache
}

type tenant struct {
	name    string
	started bool
	next    int64     // earliest open minute
	newest  time.Time // newest event time seen
	total   [openSlots]uint32
	streams []*groupSet // aligned with Detector.streams
	active  int         // open episodes
}

// groupSet is one stream's groups in one tenant, with an LRU list (head =
// most recently seen) for eviction.
type groupSet struct {
	groups     map[string]*group
	head, tail *group
}

type group struct {
	key        string
	values     []string
	prev, next *group
	lastEval   int64 // last minute evaluated (episode.Breaches is relative to it)
	open       [openSlots]uint32
	pre        uint8              // open minutes (bit = slot) that already breached, see checkNow
	thr, exp   [openSlots]float32 // per open minute: threshold and expectation once computed (checkNow)
	base       baseline
	ep         episode
}

// Stats are counters and sizes for metrics.
type Stats struct {
	Tenants int
	Groups  int
	// Bytes estimates the memory held by groups; BytesPerGroup is the
	// fixed part of one group (keys add their length).
	Bytes         int64
	BytesPerGroup int
	Events        uint64 // events observed
	Counted       uint64 // stream matches counted
	Late          uint64 // events for already closed minutes (dropped)
	Future        uint64 // events too far ahead of Config.Now (dropped)
	NoTime        uint64 // events without a timestamp (dropped)
	Ungrouped     uint64 // matches without a value for a By field (not counted)
	Evicted       uint64 // groups evicted by MaxGroups
	OpenEpisodes  int
}

// groupOverhead approximates what a map entry, the key and the values
// slice headers cost beyond the group struct itself.
const groupOverhead = 64

// bytesPerGroup is the fixed memory of one group, without its key.
var bytesPerGroup = int(unsafe.Sizeof(group{})) + groupOverhead

// New returns a Detector, or an error wrapping ErrConfig.
func New(cfg Config) (*Detector, error) {
	fc := &fieldCache{}
	cfg, streams, err := cfg.normalize(fc)
	if err != nil {
		return nil, err
	}
	return &Detector{
		fields:   fc,
		cfg:      cfg,
		streams:  streams,
		warmUp:   uint32(cfg.WarmUp / time.Minute),
		endAfter: int64(cfg.EndAfter / time.Minute),
		tenants:  map[string]*tenant{},
	}, nil
}

// Streams returns the normalized streams in use.
func (d *Detector) Streams() []Stream {
	out := make([]Stream, len(d.streams))
	for i := range d.streams {
		out[i] = d.streams[i].Stream
	}
	return out
}

// Observe counts e for tenant at e.Timestamp (e.Ingested when the
// timestamp is zero). Events for minutes already closed are dropped and
// counted in Stats.Late. An event newer than any before it moves the
// tenant's clock and may close minutes, and a count crossing its
// threshold starts an episode at once; the signals wait for the next
// Advance or Drain.
func (d *Detector) Observe(tenant string, e *event.Event) {
	ts := e.Timestamp
	if ts.IsZero() {
		ts = e.Ingested
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Events++
	if ts.IsZero() {
		d.stats.NoTime++
		return
	}
	if d.cfg.Now != nil && ts.After(d.cfg.Now().Add(d.cfg.MaxFuture)) {
		d.stats.Future++
		return
	}
	t := d.tenant(tenant)
	if !t.started {
		t.started = true
		t.next = minuteOf(ts.Add(-d.cfg.Lateness))
		t.newest = ts
	}
	if ts.After(t.newest) {
		t.newest = ts
		d.moveTo(t, ts)
	}
	m := minuteOf(ts)
	if m < t.next {
		d.stats.Late++
		return
	}
	i := floorMod(m, openSlots)
	t.total[i]++
	d.fields.reset()
	for si := range d.streams {
		s := &d.streams[si]
		if !s.match(d.fields, e) {
			continue
		}
		if !d.key(s, e) {
			d.stats.Ungrouped++
			continue
		}
		g := d.group(t, si)
		g.open[i]++
		d.stats.Counted++
		d.checkNow(t, si, g, m, i)
	}
}

// key builds the group key of e for s into d.keyBuf; false when a By
// field is missing.
func (d *Detector) key(s *compiledStream, e *event.Event) bool {
	d.keyBuf = d.keyBuf[:0]
	for j, f := range s.by {
		v, ok := d.fields.get(e, f)
		if !ok {
			return false
		}
		if j > 0 {
			d.keyBuf = append(d.keyBuf, 0)
		}
		d.keyBuf = append(d.keyBuf, v...)
	}
	return true
}

func (d *Detector) tenant(name string) *tenant {
	if t, ok := d.tenants[name]; ok {
		return t
	}
	name = strings.Clone(name) // the caller's string may share a reused buffer
	t := &tenant{name: name, streams: make([]*groupSet, len(d.streams))}
	for i := range t.streams {
		t.streams[i] = &groupSet{groups: map[string]*group{}}
	}
	d.tenants[name] = t
	i, _ := slices.BinarySearchFunc(d.order, name, func(a *tenant, n string) int { return strings.Compare(a.name, n) })
	d.order = slices.Insert(d.order, i, t)
	return t
}

// group returns the group for d.keyBuf in stream si, creating it (and
// evicting the least recently seen one when full), and marks it most
// recently seen.
func (d *Detector) group(t *tenant, si int) *group {
	gs := t.streams[si]
	if g, ok := gs.groups[string(d.keyBuf)]; ok {
		gs.touch(g)
		return g
	}
	if len(gs.groups) >= d.cfg.MaxGroups {
		d.evict(t, si, gs.tail)
	}
	g := &group{key: string(d.keyBuf), lastEval: t.next - 1}
	if len(d.streams[si].By) > 0 {
		g.values = strings.Split(g.key, "\x00")
	}
	gs.groups[g.key] = g
	gs.pushFront(g)
	return g
}

func (d *Detector) evict(t *tenant, si int, g *group) {
	if g.ep.Active {
		// The caller must not be left with an episode that never ends.
		t.active--
		d.emit(t, si, g, t.next-1, 0, 0, 0, PhaseEnd)
	}
	t.streams[si].remove(g)
	delete(t.streams[si].groups, g.key)
	d.stats.Evicted++
	if d.stats.Evicted == 1 {
		d.cfg.Logger.Warn("anomaly: group limit reached, evicting least recently seen groups",
			"tenant", t.name, "stream", d.streams[si].Name, "max_groups", d.cfg.MaxGroups)
	}
}

func (gs *groupSet) pushFront(g *group) {
	g.prev, g.next = nil, gs.head
	if gs.head != nil {
		gs.head.prev = g
	}
	gs.head = g
	if gs.tail == nil {
		gs.tail = g
	}
}

func (gs *groupSet) remove(g *group) {
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		gs.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		gs.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

func (gs *groupSet) touch(g *group) {
	if gs.head != g {
		gs.remove(g)
		gs.pushFront(g)
	}
}

// Advance closes, for every tenant, the minutes that ended at least
// Lateness before now. It returns the signals produced since the last
// call (including those produced by Observe) in the order they were
// produced, which depends only on the input: tenants by name, streams in
// configuration order, groups from the most recently seen. Replays pass
// event time; a live consumer passes the wall clock so that quiet tenants
// still close their minutes.
func (d *Detector) Advance(now time.Time) []Signal {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.order {
		if t.started {
			d.moveTo(t, now)
		}
	}
	out := d.pending
	d.pending = nil
	return out
}

// Drain returns the signals produced so far (by Observe: an episode
// starts the moment a count crosses its threshold) without moving any
// clock. A consumer calls it after each batch.
func (d *Detector) Drain() []Signal {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.pending
	d.pending = nil
	return out
}

// moveTo closes the minutes that ended Lateness before now.
func (d *Detector) moveTo(t *tenant, now time.Time) {
	d.closeUntil(t, minuteOf(now.Add(-d.cfg.Lateness)))
}

// checkNow looks at the open minute m (slot i) of a group right after its
// count grew. Counts only grow while a minute is open, so a minute that
// breaches now still breaches when it closes: the episode can start the
// moment the surge is visible instead of at the end of the minute plus
// Lateness. The threshold is computed once per minute (when the count
// first reaches the floor) from the baseline of the last closed minute —
// a minute or two older than at closing, which changes nothing that
// matters for a surge.
func (d *Detector) checkNow(t *tenant, si int, g *group, m, i int64) {
	s := &d.streams[si]
	c := g.open[i]
	if c < uint32(s.MinCount) || g.pre&(1<<i) != 0 || g.base.History < d.warmUp {
		return
	}
	if g.thr[i] == 0 {
		exp, sigma, ok := g.base.expect(m)
		if !ok {
			g.thr[i] = math.MaxFloat32
			return
		}
		g.thr[i] = float32(s.threshold(exp, sigma))
		g.exp[i] = float32(exp)
	}
	if float64(c) < float64(g.thr[i]) {
		return
	}
	g.pre |= 1 << i
	if g.ep.Active {
		return
	}
	if w := g.breachesAt(m) & s.windowMask; bits.OnesCount64(w) >= s.forMin {
		d.startEpisode(t, si, g, m, w, c, float64(g.exp[i]), float64(g.thr[i]))
	}
}

// breachesAt returns the breach history relative to minute m (bit 0 is
// m): closed minutes plus early breaches of open minutes up to m.
func (g *group) breachesAt(m int64) uint64 {
	var b uint64
	if n := m - g.lastEval; n < 64 {
		b = g.ep.Breaches << uint(n)
	}
	for k := max(g.lastEval+1, m-openSlots+1); k <= m; k++ {
		if g.pre&(1<<floorMod(k, openSlots)) != 0 {
			b |= 1 << uint(m-k)
		}
	}
	return b
}

func (d *Detector) startEpisode(t *tenant, si int, g *group, m int64, window uint64, c uint32, exp, thr float64) {
	g.ep.Active = true
	g.ep.Start = m - int64(63-bits.LeadingZeros64(window))
	g.ep.ID = episodeID(t.name, d.streams[si].Name, g.key, g.ep.Start)
	t.active++
	d.emit(t, si, g, m, c, exp, thr, PhaseStart)
}

// closeUntil closes the tenant's minutes before upto.
func (d *Detector) closeUntil(t *tenant, upto int64) {
	for t.next < upto {
		m := t.next
		i := floorMod(m, openSlots)
		if t.total[i] == 0 {
			// No event at all from this tenant: a gap in collection, not a
			// quiet minute. Learning zeros here would make the traffic after
			// an outage look like a surge, so nothing is learned; only open
			// episodes move towards their end.
			if t.total == [openSlots]uint32{} {
				// Nothing open: step only the minutes in which an open
				// episode can still end (its last breach is behind us),
				// then jump.
				for stop := min(upto, m+d.endAfter+openSlots); t.active > 0 && t.next < stop; t.next++ {
					d.closeGap(t, t.next)
				}
				t.next = upto
				return
			}
			if t.active > 0 {
				d.closeGap(t, m)
			}
			t.next++
			continue
		}
		t.total[i] = 0
		for si, gs := range t.streams {
			for g := gs.head; g != nil; g = g.next {
				d.closeGroup(t, si, g, m, i)
			}
		}
		t.next++
	}
}

// closeGroup closes minute m (open slot i) for one group: evaluate, step
// the episode, learn.
func (d *Detector) closeGroup(t *tenant, si int, g *group, m, i int64) {
	s := &d.streams[si]
	c := g.open[i]
	g.open[i] = 0
	early := g.pre&(1<<i) != 0
	g.pre &^= 1 << i
	g.thr[i], g.exp[i] = 0, 0
	g.shiftTo(m)
	var exp, sigma, thr float64
	breach := early
	// Only a count at the floor can breach, so the estimate (a sort of the
	// short-term window) is computed for few minutes of few groups.
	if g.base.History >= d.warmUp && (c >= uint32(s.MinCount) || g.ep.Active) {
		var ok bool
		if exp, sigma, ok = g.base.expect(m); ok {
			thr = s.threshold(exp, sigma)
			breach = breach || float64(c) >= thr
		}
	}
	if breach {
		g.ep.Breaches |= 1
		g.ep.LastBreach = m
	}
	// An episode started by checkNow in a later open minute does not
	// cover the minutes before its start that close after it.
	inEpisode := g.ep.Active && m >= g.ep.Start
	anomalous := breach || inEpisode
	switch w := g.ep.Breaches & s.windowMask; {
	case g.ep.Active && !inEpisode:
	case !g.ep.Active && breach && bits.OnesCount64(w) >= s.forMin:
		d.startEpisode(t, si, g, m, w, c, exp, thr)
	case g.ep.Active && m-g.ep.LastBreach >= d.endAfter && g.pre == 0:
		g.ep.Active = false
		t.active--
		d.emit(t, si, g, m, c, exp, thr, PhaseEnd)
	case g.ep.Active:
		d.emit(t, si, g, m, c, exp, thr, PhaseUpdate)
	}
	g.base.learn(m, c, anomalous)
}

// closeGap steps the open episodes of a tenant through a minute without
// data.
func (d *Detector) closeGap(t *tenant, m int64) {
	for si, gs := range t.streams {
		for g := gs.head; g != nil; g = g.next {
			if !g.ep.Active || m < g.ep.Start {
				continue
			}
			g.shiftTo(m)
			if m-g.ep.LastBreach >= d.endAfter && g.pre == 0 {
				g.ep.Active = false
				t.active--
				d.emit(t, si, g, m, 0, 0, 0, PhaseEnd)
			}
		}
	}
}

// shiftTo moves the breach history to minute m.
func (g *group) shiftTo(m int64) {
	switch n := m - g.lastEval; {
	case n >= 64:
		g.ep.Breaches = 0
	case n > 0:
		g.ep.Breaches <<= uint(n)
	}
	g.lastEval = m
}

func (d *Detector) emit(t *tenant, si int, g *group, m int64, c uint32, exp, thr float64, ph Phase) {
	s := &d.streams[si]
	grp := make(map[string]string, len(s.By))
	for j, f := range s.By {
		if j < len(g.values) {
			grp[f] = g.values[j]
		}
	}
	d.pending = append(d.pending, Signal{
		Stream:    s.Name,
		Tenant:    t.name,
		Group:     grp,
		Start:     minuteTime(g.ep.Start),
		Minute:    minuteTime(m),
		Observed:  float64(c),
		Expected:  exp,
		Ratio:     float64(c) / math.Max(exp, 1),
		Threshold: thr,
		Severity:  s.Severity,
		ID:        g.ep.ID,
		Phase:     ph,
	})
}

// Stats returns counters and sizes.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stats
	st.Tenants = len(d.tenants)
	st.BytesPerGroup = bytesPerGroup
	for _, t := range d.tenants {
		st.OpenEpisodes += t.active
		for _, gs := range t.streams {
			st.Groups += len(gs.groups)
			for k := range gs.groups {
				st.Bytes += int64(bytesPerGroup + len(k))
			}
		}
	}
	return st
}
