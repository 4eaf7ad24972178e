package parse

import (
	"strings"
	"time"
)

// Time helpers: hand-written, allocation-free parsers for the timestamp
// shapes found in logs. All results are converted to UTC (an explicit offset
// is applied by arithmetic, so no *time.Location is allocated per message).

// digits parses exactly n ASCII digits at s[i:].
func digits(s string, i, n int) (int, bool) {
	if i < 0 || i+n > len(s) {
		return 0, false
	}
	v := 0
	for j := i; j < i+n; j++ {
		c := s[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// monthIndex returns 1..12 for an English three-letter month abbreviation
// (any case) at s[0:3], 0 when it is not one.
func monthIndex(s string) int {
	if len(s) < 3 {
		return 0
	}
	a, b, c := s[0]|0x20, s[1]|0x20, s[2]|0x20
	switch a {
	case 'j':
		if b == 'a' && c == 'n' {
			return 1
		}
		if b == 'u' && c == 'n' {
			return 6
		}
		if b == 'u' && c == 'l' {
			return 7
		}
	case 'f':
		if b == 'e' && c == 'b' {
			return 2
		}
	case 'm':
		if b == 'a' && c == 'r' {
			return 3
		}
		if b == 'a' && c == 'y' {
			return 5
		}
	case 'a':
		if b == 'p' && c == 'r' {
			return 4
		}
		if b == 'u' && c == 'g' {
			return 8
		}
	case 's':
		if b == 'e' && c == 'p' {
			return 9
		}
	case 'o':
		if b == 'c' && c == 't' {
			return 10
		}
	case 'n':
		if b == 'o' && c == 'v' {
			return 11
		}
	case 'd':
		if b == 'e' && c == 'c' {
			return 12
		}
	}
	return 0
}

// validDate reports whether y-m-d hh:mm:ss is a real calendar time (leap
// second 60 tolerated).
func validDate(y, mo, d, h, mi, sec int) bool {
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60 {
		return false
	}
	return d <= daysIn(y, mo)
}

func daysIn(y, mo int) int {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// fraction parses ".ddd" (or ",ddd") at s[i:], up to 9 digits kept; extra
// digits are consumed and ignored. It returns nanoseconds and the new index.
func fraction(s string, i int) (int, int) {
	if i >= len(s) || (s[i] != '.' && s[i] != ',') || i+1 >= len(s) || s[i+1] < '0' || s[i+1] > '9' {
		return 0, i
	}
	i++
	ns, n := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n < 9 {
			ns = ns*10 + int(s[i]-'0')
			n++
		}
		i++
	}
	for ; n < 9; n++ {
		ns *= 10
	}
	return ns, i
}

// zoneOffset parses Z, z, ±hh:mm, ±hhmm or ±hh at s[i:]. It returns the
// offset in seconds east of UTC, the new index and whether a zone was there.
func zoneOffset(s string, i int) (int, int, bool) {
	if i >= len(s) {
		return 0, i, false
	}
	switch s[i] {
	case 'Z', 'z':
		return 0, i + 1, true
	case '+', '-':
	default:
		return 0, i, false
	}
	sign := 1
	if s[i] == '-' {
		sign = -1
	}
	h, ok := digits(s, i+1, 2)
	if !ok || h > 23 {
		return 0, i, false
	}
	j := i + 3
	m := 0
	if j < len(s) && s[j] == ':' {
		if mm, ok := digits(s, j+1, 2); ok && mm < 60 {
			m, j = mm, j+3
		} else {
			return 0, i, false
		}
	} else if mm, ok := digits(s, j, 2); ok && mm < 60 {
		m, j = mm, j+2
	}
	return sign * (h*3600 + m*60), j, true
}

// mkTime builds a time in loc (when no explicit offset) or at the given
// offset, returned in UTC.
func mkTime(y, mo, d, h, mi, sec, ns, off int, hasOff bool, loc *time.Location) time.Time {
	if sec == 60 {
		sec = 59
	}
	if hasOff {
		return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC).Add(-time.Duration(off) * time.Second)
	}
	if loc == nil || loc == time.UTC {
		return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc).UTC()
}

// parseISO parses an ISO-8601 / RFC 3339 timestamp at the start of s:
// YYYY-MM-DD('T'|' ')hh:mm:ss[.frac][zone]. With sepSpace false only 'T'
// separates date and time. It returns the time and the number of bytes used.
func parseISO(s string, sepSpace bool, loc *time.Location) (time.Time, int, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, 0, false
	}
	if s[10] != 'T' && s[10] != 't' && !(sepSpace && s[10] == ' ') {
		return time.Time{}, 0, false
	}
	y, ok1 := digits(s, 0, 4)
	mo, ok2 := digits(s, 5, 2)
	d, ok3 := digits(s, 8, 2)
	h, ok4 := digits(s, 11, 2)
	mi, ok5 := digits(s, 14, 2)
	sec, ok6 := digits(s, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validDate(y, mo, d, h, mi, sec) {
		return time.Time{}, 0, false
	}
	ns, i := fraction(s, 19)
	off, i, hasOff := zoneOffset(s, i)
	return mkTime(y, mo, d, h, mi, sec, ns, off, hasOff, loc), i, true
}

// bsdStamp is a parsed "Mmm dd [yyyy] hh:mm:ss[.frac]" timestamp.
type bsdStamp struct {
	year, month, day, hour, min, sec, nsec int // year 0 when absent
}

// parseBSDStamp parses "Mmm dd hh:mm:ss", "Mmm  d hh:mm:ss", "Mmm d ...",
// "Mmm dd yyyy hh:mm:ss" with an optional fraction, at the start of s.
func parseBSDStamp(s string) (bsdStamp, int, bool) {
	var st bsdStamp
	st.month = monthIndex(s)
	if st.month == 0 || len(s) < 4 || s[3] != ' ' {
		return st, 0, false
	}
	i := 4
	if i < len(s) && s[i] == ' ' {
		i++
	}
	// day: 1 or 2 digits
	d := 0
	n := 0
	for i < len(s) && n < 2 && s[i] >= '0' && s[i] <= '9' {
		d = d*10 + int(s[i]-'0')
		i++
		n++
	}
	if n == 0 || d < 1 || d > 31 || i >= len(s) || s[i] != ' ' {
		return st, 0, false
	}
	st.day = d
	i++
	// optional year
	if y, ok := digits(s, i, 4); ok && i+4 < len(s) && s[i+4] == ' ' {
		st.year = y
		i += 5
	}
	h, ok1 := digits(s, i, 2)
	if !ok1 || i+8 > len(s) || s[i+2] != ':' || s[i+5] != ':' {
		return st, 0, false
	}
	mi, ok2 := digits(s, i+3, 2)
	sec, ok3 := digits(s, i+6, 2)
	if !ok2 || !ok3 || h > 23 || mi > 59 || sec > 60 {
		return st, 0, false
	}
	st.hour, st.min, st.sec = h, mi, sec
	st.nsec, i = fraction(s, i+8)
	y := st.year
	if y == 0 {
		y = 2000 // a leap year: Feb 29 is possible until the year is known
	}
	if st.day > daysIn(y, st.month) {
		return st, 0, false
	}
	return st, i, true
}

// yearFor picks the year for a stamp that has none, so that the time is
// not more than a day after ref (the ingest time): logs come from the past.
func yearFor(st bsdStamp, ref time.Time, loc *time.Location) time.Time {
	limit := ref.Add(24 * time.Hour)
	y := ref.Year() + 1
	for k := 0; k < 8; k, y = k+1, y-1 {
		if st.day > daysIn(y, st.month) { // Feb 29 in a non-leap year
			continue
		}
		t := mkTime(y, st.month, st.day, st.hour, st.min, st.sec, st.nsec, 0, false, loc)
		if !t.After(limit) {
			return t
		}
	}
	return mkTime(ref.Year(), st.month, min(st.day, daysIn(ref.Year(), st.month)), st.hour, st.min, st.sec, st.nsec, 0, false, loc)
}

// stampTime turns a BSD stamp into a time, inferring a missing year.
func stampTime(st bsdStamp, ref time.Time, loc *time.Location) time.Time {
	if st.year != 0 {
		return mkTime(st.year, st.month, st.day, st.hour, st.min, st.sec, st.nsec, 0, false, loc)
	}
	return yearFor(st, ref, loc)
}

// parseEpoch parses a Unix time given as seconds, milliseconds,
// microseconds or nanoseconds (chosen by magnitude), with an optional
// fraction ("1521911720.123456"). Values before 1990 or after 2200 are
// refused so ordinary numbers are not taken for times.
func parseEpoch(s string) (time.Time, bool) {
	if len(s) == 0 || len(s) > 40 {
		return time.Time{}, false
	}
	i := 0
	var v int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i >= 19 {
			return time.Time{}, false
		}
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 {
		return time.Time{}, false
	}
	frac := 0
	if i < len(s) {
		var j int
		frac, j = fraction(s, i)
		if j != len(s) || s[i] != '.' {
			return time.Time{}, false
		}
	}
	const (
		lo = 631152000  // 1990-01-01
		hi = 7258118400 // 2200-01-01
	)
	var t time.Time
	switch {
	case v >= lo && v < hi:
		t = time.Unix(v, int64(frac))
	case v >= lo*1e3 && v < hi*1e3:
		t = time.UnixMilli(v).Add(time.Duration(frac / 1e3))
	case v >= lo*1e6 && v < hi*1e6:
		t = time.UnixMicro(v)
	case v >= lo*1e9 && v/1e9 < hi:
		t = time.Unix(0, v)
	default:
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseAnyTime tries the shapes a JSON or key=value time field may have:
// RFC 3339 / ISO-8601 (with 'T' or space), epoch numbers, "Mmm dd yyyy
// hh:mm:ss" and RFC 1123-ish layouts.
func parseAnyTime(s string, ref time.Time, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 0 {
		return time.Time{}, false
	}
	if s[0] >= '0' && s[0] <= '9' {
		if t, n, ok := parseISO(s, true, loc); ok && n == len(s) {
			return t, true
		}
		if t, ok := parseEpoch(s); ok {
			return t, true
		}
	} else if t, ok := parseCEFTime(s, ref, loc); ok {
		return t, true
	}
	for _, layout := range anyLayouts {
		if t, err := time.ParseInLocation(layout, s, locOrUTC(loc)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var anyLayouts = []string{time.RFC1123Z, time.RFC1123, time.RFC850, time.ANSIC, time.UnixDate, "02/Jan/2006:15:04:05 -0700"}

func locOrUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// parseCEFTime parses the CEF/LEEF date shapes: epoch milliseconds, "MMM dd
// yyyy HH:mm:ss[.SSS] [zone]" and "MMM dd HH:mm:ss[.SSS] [zone]". The zone
// may be UTC/GMT/Z or a ±hh[:]mm offset; other names use loc.
func parseCEFTime(s string, ref time.Time, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if s[0] >= '0' && s[0] <= '9' {
		if t, ok := parseEpoch(s); ok {
			return t, true
		}
		if t, n, ok := parseISO(s, true, loc); ok && n == len(s) {
			return t, true
		}
		return time.Time{}, false
	}
	st, n, ok := parseBSDStamp(s)
	if !ok {
		return time.Time{}, false
	}
	rest := strings.TrimSpace(s[n:])
	if rest == "" {
		return stampTime(st, ref, loc), true
	}
	if rest == "UTC" || rest == "GMT" || rest == "Z" {
		return stampTime(st, ref, time.UTC), true
	}
	if off, j, ok := zoneOffset(rest, 0); ok && j == len(rest) {
		if st.year == 0 {
			t := yearFor(st, ref, time.UTC)
			st.year = t.Year()
		}
		return mkTime(st.year, st.month, st.day, st.hour, st.min, st.sec, st.nsec, off, true, nil), true
	}
	// A zone name we do not resolve (e.g. "CET"): use the configured zone.
	if len(rest) <= 6 {
		return stampTime(st, ref, loc), true
	}
	return time.Time{}, false
}
