package anomaly

import (
	"math"
	"slices"
)

// Baseline tuning. The numbers are in minutes of one group's history.
const (
	weekSlots = 168 // hour-of-week, Monday 00:00 UTC first
	daySlots  = 24  // hour-of-day, blended in while a weekly slot is young
	shortLen  = 60  // the short-term window: the last hour

	// alphaMin is the slowest EWMA weight: a slot then remembers about 180
	// of its own minutes — three weeks for an hour-of-week slot, three
	// days for an hour-of-day slot. Until a slot has seen 180 minutes it
	// keeps a plain running mean (weight 1/n), so young slots settle fast.
	alphaMin = 1.0 / 180
	// slotTrust is how many minutes a slot must have seen to be used.
	slotTrust = 30
	// weekTrust is how many minutes an hour-of-week slot needs before it
	// alone sets the seasonal level (two weeks); until then it is blended
	// with the hour-of-day slot in proportion.
	weekTrust = 120
	// minShort is how many minutes the short-term median needs.
	minShort = 10
	// poisonWeight scales the learning weight of anomalous minutes: a
	// surge that lasts for weeks is eventually learned, a surge of an
	// hour moves nothing.
	poisonWeight = 0.01
	// madToSigma and meanAbsToSigma turn robust spreads into a standard
	// deviation for normal data.
	madToSigma     = 1.4826
	meanAbsToSigma = 1.2533
)

// slot is the EWMA level and mean absolute deviation of the per-minute
// count in one seasonal slot. float32 halves the memory of a group; the
// counts it summarises are small integers.
type slot struct {
	Level, Dev float32
	N          uint16 // minutes learned, saturating
}

func (s *slot) learn(x, weight float64) {
	a := max(1/(float64(s.N)+1), alphaMin) * weight
	if weight == 1 && s.N < math.MaxUint16 {
		s.N++
	}
	lvl := float64(s.Level) + a*(x-float64(s.Level))
	s.Dev = float32(float64(s.Dev) + a*(math.Abs(x-lvl)-float64(s.Dev)))
	s.Level = float32(lvl)
}

// baseline is one group's history. Its fields are exported for the
// snapshot encoder only.
type baseline struct {
	Week    [weekSlots]slot
	Day     [daySlots]slot
	Ring    [shortLen]uint16 // last learned per-minute counts (anomalous minutes skipped)
	RingN   uint8            // valid entries in Ring
	RingPos uint8            // next write position
	History uint32           // closed minutes since the group appeared
}

// slotsOf returns the hour-of-week and hour-of-day slots of minute m
// (minutes since the Unix epoch, a Thursday). Slots are in UTC: a weekly
// pattern is periodic in any zone, so the tenant's zone does not matter.
func slotsOf(m int64) (week, day int) {
	h := floorDiv(m, 60)
	return int(floorMod(h+3*24, weekSlots)), int(floorMod(h, daySlots))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// learn folds the count of minute m into the baseline. Anomalous minutes
// reach the seasonal slots with a tiny weight only and stay out of the
// short-term window.
func (b *baseline) learn(m int64, count uint32, anomalous bool) {
	w, d := slotsOf(m)
	weight := 1.0
	if anomalous {
		weight = poisonWeight
	}
	x := float64(count)
	b.Week[w].learn(x, weight)
	b.Day[d].learn(x, weight)
	if b.History < math.MaxUint32 {
		b.History++
	}
	if anomalous {
		return
	}
	b.Ring[b.RingPos] = uint16(min(count, math.MaxUint16))
	b.RingPos = (b.RingPos + 1) % shortLen
	if b.RingN < shortLen {
		b.RingN++
	}
}

// expect returns the expected count for minute m and its spread (a
// standard deviation), or ok false when the group has no usable history
// yet. The expectation is the larger of the seasonal level and the
// short-term median: surges are what we look for, and the larger one is
// the one that does not cry wolf when either the season or the recent
// past is the better guide (a new group, a schedule moved by an hour).
func (b *baseline) expect(m int64) (exp, sigma float64, ok bool) {
	w, d := slotsOf(m)
	ws, ds := &b.Week[w], &b.Day[d]
	var seas, sdev float64
	haveSeason := true
	switch {
	case ws.N >= slotTrust && ds.N >= slotTrust:
		f := min(1, float64(ws.N)/weekTrust)
		seas = f*float64(ws.Level) + (1-f)*float64(ds.Level)
		sdev = f*float64(ws.Dev) + (1-f)*float64(ds.Dev)
	case ds.N >= slotTrust:
		seas, sdev = float64(ds.Level), float64(ds.Dev)
	case ws.N >= slotTrust:
		seas, sdev = float64(ws.Level), float64(ws.Dev)
	default:
		haveSeason = false
	}
	var med, mad float64
	haveShort := b.RingN >= minShort
	if haveShort {
		med, mad = b.shortTerm()
	}
	if !haveSeason && !haveShort {
		return 0, 0, false
	}
	exp = max(seas, med)
	// sqrt(exp) is the Poisson floor: counts are never less noisy than that.
	sigma = max(meanAbsToSigma*sdev, madToSigma*mad, math.Sqrt(exp), 1)
	return exp, sigma, true
}

// shortTerm returns the median and median absolute deviation of the
// short-term window.
func (b *baseline) shortTerm() (med, mad float64) {
	var buf [shortLen]uint16
	v := buf[:b.RingN]
	copy(v, b.Ring[:b.RingN])
	slices.Sort(v)
	med = median(v)
	for i, x := range v {
		// Rounded up: a half-count median must not shrink the spread.
		v[i] = uint16(math.Ceil(math.Abs(float64(x) - med)))
	}
	slices.Sort(v)
	return med, median(v)
}

func median(sorted []uint16) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return float64(sorted[n/2])
	}
	return (float64(sorted[n/2-1]) + float64(sorted[n/2])) / 2
}
