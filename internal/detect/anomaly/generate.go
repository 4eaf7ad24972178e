package anomaly

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// ErrGenOptions reports unusable generator options.
var ErrGenOptions = errors.New("invalid mail generator options")

// Scenario names a traffic shape of GenerateMail.
type Scenario string

// Scenarios.
const (
	// ScenarioSteady: a constant rate with Poisson noise.
	ScenarioSteady Scenario = "steady"
	// ScenarioDiurnal: office hours (07:00–19:00 UTC, peak at 13:00) at up
	// to Rate, nights at NightRatio × Rate, weekends at WeekendRatio of
	// the weekday rate.
	ScenarioDiurnal Scenario = "diurnal"
	// ScenarioOutbreak: diurnal traffic, then from RiseAt the infected
	// clients add mail until the total is RiseFactor × normal after
	// RiseOver (a linear ramp), held for Hold.
	ScenarioOutbreak Scenario = "outbreak"
)

// Syslog layouts GenerateMail can write.
const (
	// FormatForward is rsyslog's RSYSLOG_ForwardFormat: RFC 3164 layout
	// with an RFC 3339 time, "<22>2026-03-02T10:00:01.123456+00:00 mail1
	// postfix/smtpd[1201]: …".
	FormatForward = "rfc3164"
	// FormatRFC5424: "<22>1 2026-03-02T10:00:01.123456Z mail1
	// postfix/smtpd 1201 - - …".
	FormatRFC5424 = "rfc5424"
)

// DefaultGenStart is a Monday, 00:00 UTC.
var DefaultGenStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// GenOptions configures GenerateMail. Zero fields take the defaults noted.
type GenOptions struct {
	Scenario Scenario // default ScenarioSteady
	Seed     uint64
	Start    time.Time // default DefaultGenStart
	// Duration of normal traffic: the whole run for steady and diurnal,
	// the history before RiseAt's day for outbreak (default 7 days).
	Duration time.Duration
	// Rate in mails per minute: the steady rate (default 10) or the
	// weekday peak of diurnal traffic (default 30).
	Rate         float64
	NightRatio   float64 // diurnal night rate / peak (default 0.1)
	WeekendRatio float64 // diurnal weekend / weekday (default 0.3)
	Clients      int     // internal hosts submitting mail (default 40)
	Servers      int     // mail relays, the syslog host names (default 2)
	Format       string  // FormatForward (default) or FormatRFC5424

	RiseAt     time.Time     // outbreak start (default 10:00 on the day after Duration)
	RiseFactor float64       // total rate at the top of the ramp / normal (default 10)
	RiseOver   time.Duration // ramp length (default 30m)
	Hold       time.Duration // time at the top before the run ends (default 30m)
	Infected   int           // infected clients (default 1)
}

// Normalize returns o with defaults filled in, or an error wrapping
// ErrGenOptions.
func (o GenOptions) Normalize() (GenOptions, error) {
	if o.Scenario == "" {
		o.Scenario = ScenarioSteady
	}
	if o.Start.IsZero() {
		o.Start = DefaultGenStart
	}
	o.Start = o.Start.UTC()
	if o.Duration == 0 {
		o.Duration = 7 * 24 * time.Hour
	}
	if o.Rate == 0 {
		o.Rate = 10
		if o.Scenario != ScenarioSteady {
			o.Rate = 30
		}
	}
	if o.NightRatio == 0 {
		o.NightRatio = 0.1
	}
	if o.WeekendRatio == 0 {
		o.WeekendRatio = 0.3
	}
	if o.Clients == 0 {
		o.Clients = 40
	}
	if o.Servers == 0 {
		o.Servers = 2
	}
	if o.Format == "" {
		o.Format = FormatForward
	}
	if o.RiseFactor == 0 {
		o.RiseFactor = 10
	}
	if o.RiseOver == 0 {
		o.RiseOver = 30 * time.Minute
	}
	if o.Hold == 0 {
		o.Hold = 30 * time.Minute
	}
	if o.Infected == 0 {
		o.Infected = 1
	}
	if o.RiseAt.IsZero() {
		o.RiseAt = o.Start.Add(o.Duration).Truncate(24 * time.Hour).Add(10 * time.Hour)
		if o.RiseAt.Before(o.Start.Add(o.Duration)) {
			o.RiseAt = o.RiseAt.Add(24 * time.Hour)
		}
	}
	switch {
	case o.Scenario != ScenarioSteady && o.Scenario != ScenarioDiurnal && o.Scenario != ScenarioOutbreak:
		return o, fmt.Errorf("%w: unknown scenario %q (steady, diurnal, outbreak)", ErrGenOptions, o.Scenario)
	case o.Format != FormatForward && o.Format != FormatRFC5424:
		return o, fmt.Errorf("%w: unknown format %q (rfc3164, rfc5424)", ErrGenOptions, o.Format)
	case o.Duration < 0 || o.Rate < 0 || o.Rate > 100000 || o.RiseFactor < 1 || o.RiseOver < 0 || o.Hold < 0:
		return o, fmt.Errorf("%w: negative duration or rate, rate above 100000/min, or rise factor below 1", ErrGenOptions)
	case o.NightRatio < 0 || o.NightRatio > 1 || o.WeekendRatio < 0 || o.WeekendRatio > 1:
		return o, fmt.Errorf("%w: night and weekend ratios must be between 0 and 1", ErrGenOptions)
	case o.Clients < 1 || o.Servers < 1 || o.Infected < 1 || o.Infected > o.Clients || o.Clients > 60000:
		return o, fmt.Errorf("%w: need 1 ≤ infected ≤ clients ≤ 60000 and at least one server", ErrGenOptions)
	case o.Scenario == ScenarioOutbreak && o.RiseAt.Before(o.Start):
		return o, fmt.Errorf("%w: rise at %s is before the start %s", ErrGenOptions, o.RiseAt, o.Start)
	}
	return o, nil
}

// End is when the generated traffic ends (after Normalize).
func (o GenOptions) End() time.Time {
	if o.Scenario == ScenarioOutbreak {
		return o.RiseAt.Add(o.RiseOver + o.Hold)
	}
	return o.Start.Add(o.Duration)
}

// InfectedClients returns the source IPs of the infected clients (after
// Normalize).
func (o GenOptions) InfectedClients() []string {
	out := make([]string, o.Infected)
	for i := range out {
		out[i] = clientIP(o.infected(i))
	}
	return out
}

// infected returns the client index of infected client i: from the
// middle of the senders, neither the busiest nor a silent one.
func (o GenOptions) infected(i int) int { return (o.Clients/2 + i) % o.Clients }

// NormalRate returns the normal mails per minute at t (after Normalize).
func (o GenOptions) NormalRate(t time.Time) float64 {
	if o.Scenario == ScenarioSteady {
		return o.Rate
	}
	t = t.UTC()
	h := float64(t.Hour()) + float64(t.Minute())/60
	shape := 0.0
	if h >= 7 && h < 19 {
		s := math.Sin(math.Pi * (h - 7) / 12)
		shape = s * s
	}
	r := o.Rate * (o.NightRatio + (1-o.NightRatio)*shape)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		r *= o.WeekendRatio
	}
	return r
}

// extraRate is what the infected clients add at t.
func (o GenOptions) extraRate(t time.Time) float64 {
	if o.Scenario != ScenarioOutbreak || t.Before(o.RiseAt) {
		return 0
	}
	ramp := 1.0
	if o.RiseOver > 0 {
		ramp = min(1, float64(t.Sub(o.RiseAt))/float64(o.RiseOver))
	}
	return (o.RiseFactor - 1) * o.NormalRate(t) * ramp
}

// GenerateMail writes Postfix syslog lines for the scenario, in time
// order, to fn: for each mail the relay's smtpd connect, client=,
// cleanup, qmgr from=, one smtp line per recipient, qmgr removed and
// disconnect. The same options give the same lines. It stops at fn's
// first error and returns it.
func GenerateMail(opts GenOptions, fn func(ts time.Time, line string) error) error {
	o, err := opts.Normalize()
	if err != nil {
		return err
	}
	g := newMailGen(o)
	end := o.End()
	for minute := o.Start; minute.Before(end); minute = minute.Add(time.Minute) {
		mid := minute.Add(30 * time.Second)
		for range poisson(g.rng, o.NormalRate(mid)) {
			g.mail(minute, g.pickClient(), false)
		}
		if x := o.extraRate(mid); x > 0 {
			for range poisson(g.rng, x) {
				g.mail(minute, o.infected(g.rng.IntN(o.Infected)), true)
			}
		}
		if err := g.flush(minute.Add(time.Minute), fn); err != nil {
			return err
		}
	}
	return g.flush(time.Time{}, fn)
}

type genLine struct {
	ts   time.Time
	seq  int // creation order: ties keep a mail's lines in order
	line string
}

type mailGen struct {
	o       GenOptions
	rng     *rand.Rand
	cum     []float64 // cumulative client weights
	pending []genLine
	seq     int
	buf     []byte
}

func newMailGen(o GenOptions) *mailGen {
	g := &mailGen{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x6d616d6f7269))}
	// A few busy senders and a long tail, as in any office.
	total := 0.0
	for i := range o.Clients {
		total += 1 / math.Pow(float64(i+1), 0.8)
		g.cum = append(g.cum, total)
	}
	for i := range g.cum {
		g.cum[i] /= total
	}
	return g
}

func (g *mailGen) pickClient() int {
	i, _ := slices.BinarySearch(g.cum, g.rng.Float64())
	return min(i, len(g.cum)-1)
}

func clientIP(i int) string {
	return "10.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(10+i%250)
}

var (
	mxHosts = [...]string{"mx1.example.net[198.51.100.5]:25", "mx.example.org[203.0.113.25]:25",
		"aspmx.l.example.com[192.0.2.26]:25", "mail.example.jp[198.51.100.80]:25"}
	rcptDomains = [...]string{"example.net", "example.org", "example.com", "example.jp"}
)

// mail queues the log lines of one message submitted by client c during
// the minute.
func (g *mailGen) mail(minute time.Time, c int, virus bool) {
	r := g.rng
	t0 := minute.Add(time.Duration(r.Int64N(int64(time.Minute))))
	server := "mail" + strconv.Itoa(1+c%g.o.Servers)
	host := fmt.Sprintf("ws-%03d.corp.example[%s]", c, clientIP(c))
	qid := fmt.Sprintf("%010X", r.Uint64()&0xFFFFFFFFFF)
	smtpdPID := 1000 + c%97
	ms := time.Millisecond
	g.add(t0, server, "postfix/smtpd", smtpdPID, "connect from "+host)
	g.add(t0.Add(20*ms), server, "postfix/smtpd", smtpdPID, qid+": client="+host)
	g.add(t0.Add(40*ms), server, "postfix/cleanup", 2000+c%13, fmt.Sprintf("%s: message-id=<%d.%s@corp.example>", qid, t0.UnixNano(), qid))
	nrcpt := 1
	if !virus && r.IntN(5) == 0 {
		nrcpt = 2 + r.IntN(2)
	}
	g.add(t0.Add(60*ms), server, "postfix/qmgr", 900, fmt.Sprintf("%s: from=<user%03d@corp.example>, size=%d, nrcpt=%d (queue active)", qid, c, 2000+r.IntN(60000), nrcpt))
	g.add(t0.Add(80*ms), server, "postfix/smtpd", smtpdPID, "disconnect from "+host+" ehlo=1 mail=1 rcpt="+strconv.Itoa(nrcpt)+" data=1 quit=1 commands="+strconv.Itoa(4+nrcpt))
	last, queued := t0, false
	for k := range nrcpt {
		at := t0.Add(200*ms + time.Duration(r.Int64N(int64(2*time.Second))))
		if at.After(last) {
			last = at
		}
		status, dsn, text := "sent", "2.0.0", "250 2.0.0 OK"
		switch p := r.IntN(100); {
		case virus && p < 25, !virus && p < 1:
			status, dsn, text = "bounced", "5.1.1", "host said: 550 5.1.1 User unknown (in reply to RCPT TO command)"
		case virus && p < 35, !virus && p < 3:
			status, dsn, text, queued = "deferred", "4.2.0", "host said: 421 4.2.0 Try again later (in reply to MAIL FROM command)", true
		}
		mx := mxHosts[(c+k)%len(mxHosts)]
		delay := at.Sub(t0).Seconds()
		g.add(at, server, "postfix/smtp", 3000+r.IntN(50), fmt.Sprintf("%s: to=<rcpt%d@%s>, relay=%s, delay=%.2f, delays=0.05/0/%.2f/%.2f, dsn=%s, status=%s (%s)",
			qid, r.IntN(5000), rcptDomains[(c+k)%len(rcptDomains)], mx, delay, delay/2, delay/2-0.05, dsn, status, text))
	}
	if !queued {
		g.add(last.Add(10*ms), server, "postfix/qmgr", 900, qid+": removed")
	}
}

// add formats one syslog line (PRI 22: mail.info).
func (g *mailGen) add(ts time.Time, host, app string, pid int, msg string) {
	ts = ts.Truncate(time.Microsecond) // what the line can say
	// RFC 5424: "<22>1 TIME HOST APP PID - - MSG"; rsyslog's forward
	// format: "<22>TIME HOST APP[PID]: MSG".
	prefix, layout, pidOpen, pidClose := "<22>", "2006-01-02T15:04:05.000000-07:00", "[", "]: "
	if g.o.Format == FormatRFC5424 {
		prefix, layout, pidOpen, pidClose = "<22>1 ", "2006-01-02T15:04:05.000000Z07:00", " ", " - - "
	}
	b := append(g.buf[:0], prefix...)
	b = ts.AppendFormat(b, layout)
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, app...)
	b = append(b, pidOpen...)
	b = strconv.AppendInt(b, int64(pid), 10)
	b = append(b, pidClose...)
	b = append(b, msg...)
	g.buf = b
	g.seq++
	g.pending = append(g.pending, genLine{ts: ts, seq: g.seq, line: string(b)})
}

// flush hands fn the pending lines before until (all when zero), in time
// order; later lines (a delivery after the minute ends) wait.
func (g *mailGen) flush(until time.Time, fn func(time.Time, string) error) error {
	slices.SortFunc(g.pending, func(a, b genLine) int {
		if c := a.ts.Compare(b.ts); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	n := len(g.pending)
	if !until.IsZero() {
		n, _ = slices.BinarySearchFunc(g.pending, until, func(l genLine, t time.Time) int { return l.ts.Compare(t) })
	}
	for _, l := range g.pending[:n] {
		if err := fn(l.ts, l.line); err != nil {
			return err
		}
	}
	g.pending = append(g.pending[:0], g.pending[n:]...)
	return nil
}

// poisson draws from a Poisson distribution: Knuth's method for small
// means, the normal approximation above 30 (plenty for traffic shapes).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
