package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/query"
	"github.com/mamori-soc/mamori/internal/store"
)

// EventsResponse answers GET /api/v1/events for a filter query.
type EventsResponse struct {
	Query     string           `json:"query"`
	LogsQL    string           `json:"logsql"`
	From      time.Time        `json:"from"`
	To        time.Time        `json:"to"`
	Tenants   []string         `json:"tenants"`
	Total     uint64           `json:"total"`
	Events    []map[string]any `json:"events"`
	Histogram []Bucket         `json:"histogram,omitempty"`
	Step      string           `json:"histogram_step,omitempty"`
	// Rows holds the result of a query with pipes (stats, top, ...).
	Rows []map[string]string `json:"rows,omitempty"`
}

// Bucket is one histogram bar.
type Bucket struct {
	Time  time.Time `json:"time"`
	Count uint64    `json:"count"`
}

// ParseTime accepts RFC 3339, Unix seconds, "now" and relative times such as
// "-1h" or "-7d" (relative to now).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := config.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q (RFC 3339, Unix seconds, now, or relative like -1h, -7d)", s)
}

// histogramStep keeps a histogram at one bar per minute up to a day, and
// at most ~1,440 bars beyond.
func histogramStep(from, to time.Time) time.Duration {
	span := to.Sub(from)
	step := time.Minute
	for _, s := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		step = s
		if span/s <= 1440 {
			break
		}
	}
	return step
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	qv := r.URL.Query()
	now := time.Now().UTC()
	from, err := ParseTime(qv.Get("from"), now)
	if qv.Get("from") == "" {
		from = now.Add(-24 * time.Hour)
	}
	if err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "from"})
		return
	}
	to, err := ParseTime(qv.Get("to"), now)
	if err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "to"})
		return
	}
	if qv.Get("to") == "" {
		to = now.Add(time.Second) // include events stamped this very second
	}
	if !from.Before(to) {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "from must be before to", Field: "from"})
		return
	}
	limit := 100
	if l := qv.Get("limit"); l != "" {
		limit, err = strconv.Atoi(l)
		if err != nil || limit < 0 || limit > 10000 {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "limit must be 0..10000", Field: "limit"})
			return
		}
	}
	tenants, err := s.scope(p, qv["tenant"])
	if err != nil {
		if errors.Is(err, errUnknownTenant) {
			writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: "no such tenant", Field: "tenant"})
			return
		}
		writeProblem(w, http.StatusForbidden, CodeForbidden, "this token may not read these tenants")
		return
	}
	q := qv.Get("q")
	var logsql string
	switch qv.Get("lang") {
	case "", "mamori":
		logsql, err = query.Translate(q)
	case "logsql":
		logsql, err = q, query.ValidateLogsQL(q)
		if strings.TrimSpace(logsql) == "" {
			logsql = "*"
		}
	default:
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "lang must be mamori or logsql", Field: "lang"})
		return
	}
	if err != nil {
		pr := Problem{Status: 400, Code: CodeQueryInvalid, Detail: err.Error(), Field: "q"}
		var qe *query.Error
		if errors.As(err, &qe) {
			pos := qe.Pos
			pr.Pos = &pos
		}
		writeProblemAt(w, pr)
		return
	}
	resp := EventsResponse{Query: q, LogsQL: logsql, From: from, To: to, Tenants: tenants, Events: []map[string]any{}}
	if len(tenants) == 0 {
		writeJSON(w, 200, resp)
		return
	}
	ctx := r.Context()
	if query.HasPipe(logsql) {
		err = s.timed("pipe", func() error {
			return s.Store.Query(ctx, tenants, from, to, logsql, func(row store.Row) error {
				m := make(map[string]string, len(row))
				for _, f := range row {
					m[f.Name] = f.Value
				}
				resp.Rows = append(resp.Rows, m)
				if len(resp.Rows) > 100000 {
					return errors.New("more than 100,000 result rows; add | limit N")
				}
				return nil
			})
		})
		if err != nil {
			s.queryFailed(w, err)
			return
		}
		if resp.Rows == nil {
			resp.Rows = []map[string]string{}
		}
		writeJSON(w, 200, resp)
		return
	}
	if err := s.timed("total", func() error {
		return s.Store.Query(ctx, tenants, from, to, logsql+" | count() as total", func(row store.Row) error {
			v, _ := row.Get("total")
			n, _ := strconv.ParseUint(v, 10, 64)
			resp.Total += n
			return nil
		})
	}); err != nil {
		s.queryFailed(w, err)
		return
	}
	if limit > 0 && resp.Total > 0 {
		if err := s.timed("events", func() error {
			return s.Store.Query(ctx, tenants, from, to, fmt.Sprintf("%s | sort by (_time desc) | limit %d", logsql, limit), func(row store.Row) error {
				resp.Events = append(resp.Events, rowJSON(row))
				return nil
			})
		}); err != nil {
			s.queryFailed(w, err)
			return
		}
		// Several tenants may each return up to limit rows: merge newest first.
		sort.SliceStable(resp.Events, func(i, j int) bool {
			a, _ := resp.Events[i]["@timestamp"].(string)
			b, _ := resp.Events[j]["@timestamp"].(string)
			return a > b
		})
		if len(resp.Events) > limit {
			resp.Events = resp.Events[:limit]
		}
	}
	if qv.Get("histogram") != "false" && resp.Total > 0 {
		step := histogramStep(from, to)
		resp.Step = step.String()
		counts := map[int64]uint64{}
		if err := s.timed("histogram", func() error {
			return s.Store.Query(ctx, tenants, from, to, fmt.Sprintf("%s | stats by (_time:%s) count() as n", logsql, lqlDuration(step)), func(row store.Row) error {
				ts, _ := row.Get("_time")
				t, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					return nil
				}
				v, _ := row.Get("n")
				n, _ := strconv.ParseUint(v, 10, 64)
				counts[t.Unix()] += n
				return nil
			})
		}); err != nil {
			s.queryFailed(w, err)
			return
		}
		for t := from.Truncate(step); t.Before(to); t = t.Add(step) {
			resp.Histogram = append(resp.Histogram, Bucket{Time: t, Count: counts[t.Unix()]})
		}
	}
	writeJSON(w, 200, resp)
}

func lqlDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
}

func (s *Server) timed(kind string, fn func() error) error {
	start := time.Now()
	err := fn()
	s.Metrics.QueryTime.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	return err
}

func (s *Server) queryFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrBadQuery):
		writeProblemAt(w, Problem{Status: 400, Code: CodeQueryInvalid, Detail: err.Error(), Field: "q"})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeProblem(w, http.StatusServiceUnavailable, CodeUnavailable, "query cancelled: "+err.Error())
	default:
		s.Logger.Error("query failed", "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "query failed: "+err.Error())
	}
}

// rowJSON turns a store row into an API event: ECS dotted names as keys,
// @timestamp for _time and event.original for _msg.
func rowJSON(row store.Row) map[string]any {
	m := make(map[string]any, len(row))
	for _, f := range row {
		switch f.Name {
		case "_time":
			m["@timestamp"] = f.Value
		case "_msg":
			m["event.original"] = f.Value
		case "_stream", "_stream_id":
		default:
			m[f.Name] = f.Value
		}
	}
	return m
}
