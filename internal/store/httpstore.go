package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mamori-soc/mamori/internal/event"
)

// Compression of insert request bodies.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// HTTPOptions configures the HTTP engine. The zero value is usable.
type HTTPOptions struct {
	// Client is the HTTP client; by default a pooled client with connection timeouts.
	Client *http.Client
	// RequestTimeout bounds every request but queries (default 2 minutes); queries are
	// bounded by the caller's context only, as they stream.
	RequestTimeout time.Duration
	// Username and Password set HTTP basic auth (e.g. for vmauth); BearerToken sets a bearer token.
	Username, Password string
	BearerToken        string
	// Header is added to every request.
	Header http.Header
	// Compression of insert bodies: CompressionZstd (default: the cheapest in CPU),
	// CompressionGzip or CompressionNone.
	Compression string
	// NoForceFlush skips /internal/force_flush after inserts: rows then become searchable
	// within about a second instead of before Write returns.
	NoForceFlush bool
	// ForceFlushAuthKey is the server's -forceFlushAuthKey, if set.
	ForceFlushAuthKey string
	// SyncToDisk makes Write also force the written days to disk on the storage nodes
	// (partition snapshot create + delete, which fsyncs in-memory parts first). Without it the
	// server saves them within its -inmemoryDataFlushInterval (default 5s).
	SyncToDisk bool
	// StorageNodes are the base URLs ("http://host:port") of the storage nodes SyncToDisk
	// works on; default the base URL itself (right for a single-node server; a cluster's
	// insert/select node has no local storage and answers 400 to the snapshot API).
	StorageNodes []string
	// PartitionManageAuthKey is the storage nodes' -partitionManageAuthKey, if set.
	PartitionManageAuthKey string
	// MaxLineBytes and MaxFields mirror the server's -insert.maxLineSizeBytes (default 256 KiB)
	// and -insert.maxFieldsPerLine (default 1000): bigger rows are trimmed (mamori.truncated=true)
	// because the server would drop them silently.
	MaxLineBytes int
	MaxFields    int
	// Retention and FutureRetention mirror the server's -retentionPeriod and -futureRetention.
	// When set, timestamps outside them are handled like the embedded engine does (stored at
	// ingest time, original kept in mamori.timestamp_original) instead of being dropped by the server.
	Retention, FutureRetention time.Duration
}

// HTTP is the engine talking to a VictoriaLogs server or cluster. It implements Store.
type HTTP struct {
	base    string
	resolve TenantResolver
	opts    HTTPOptions
	client  *http.Client
	ownsCl  bool
	limits  rowLimits
	nodes   []string
	cut     cutoffs
	zenc    *zstd.Encoder

	closeMu sync.RWMutex
	closed  bool
}

var _ Store = (*HTTP)(nil)

// maxInsertBody is the uncompressed size at which an insert is split into several requests.
const maxInsertBody = 4 << 20

// OpenVictoriaLogs returns a Store on the VictoriaLogs server (or cluster insert+select node)
// at baseURL, e.g. "http://host:9428". It checks /health.
func OpenVictoriaLogs(baseURL string, resolve TenantResolver, opts HTTPOptions) (Store, error) {
	return openHTTP(baseURL, resolve, opts)
}

func openHTTP(baseURL string, resolve TenantResolver, opts HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("store: bad VictoriaLogs url %q (want http(s)://host:port)", baseURL)
	}
	if resolve == nil {
		return nil, fmt.Errorf("store: VictoriaLogs engine needs a TenantResolver")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Minute
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 256 * 1024
	}
	if opts.MaxFields <= 0 {
		opts.MaxFields = 1000
	}
	switch opts.Compression {
	case "":
		opts.Compression = CompressionZstd
	case CompressionGzip, CompressionZstd, CompressionNone:
	default:
		return nil, fmt.Errorf("store: unknown compression %q", opts.Compression)
	}
	s := &HTTP{
		base:    strings.TrimRight(baseURL, "/"),
		resolve: resolve,
		opts:    opts,
		client:  opts.Client,
		limits: rowLimits{
			maxFields:  opts.MaxFields,
			maxNameLen: 128,
			// the line limit counts the JSON line; keep room for the _time and truncation marker.
			maxRowLen: min(opts.MaxLineBytes, 2*1024*1024) - 64,
			valueLen:  jsonLen,
		},
	}
	if s.client == nil {
		s.client = newHTTPClient()
		s.ownsCl = true
	}
	for _, n := range opts.StorageNodes {
		s.nodes = append(s.nodes, strings.TrimRight(n, "/"))
	}
	if len(s.nodes) == 0 {
		s.nodes = []string{s.base}
	}
	if opts.Compression == CompressionZstd {
		s.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("store: zstd: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.do(ctx, http.MethodGet, s.base+"/health", nil, nil, ""); err != nil {
		if s.ownsCl {
			s.client.CloseIdleConnections()
		}
		return nil, fmt.Errorf("store: VictoriaLogs at %s is not healthy: %w", s.base, err)
	}
	return s, nil
}

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second, // below VictoriaLogs' -http.idleConnTimeout (1m)
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr}
}

// request sends one request and returns the response for the caller to read (status 200 only).
func (s *HTTP) request(ctx context.Context, method, u string, hdr http.Header, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", method, u, err)
	}
	for k, vs := range s.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.opts.Username != "" || s.opts.Password != "" {
		req.SetBasicAuth(s.opts.Username, s.opts.Password)
	} else if s.opts.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.BearerToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", method, redact(u), err)
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		_ = resp.Body.Close()
		return nil, &statusError{method: method, url: redact(u), code: resp.StatusCode, body: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

// do sends a request with the request timeout and returns the whole response body.
func (s *HTTP) do(ctx context.Context, method, u string, hdr http.Header, body []byte, contentType string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := s.request(ctx, method, u, hdr, r, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: read response: %w", method, redact(u), err)
	}
	return data, nil
}

type statusError struct {
	method, url string
	code        int
	body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.code, e.body)
}

func (e *statusError) Unwrap() error { return ErrEngine }

// redact hides authKey query args in error messages.
func redact(u string) string {
	if i := strings.Index(u, "authKey="); i >= 0 {
		j := strings.IndexByte(u[i:], '&')
		if j < 0 {
			return u[:i] + "authKey=xxx"
		}
		return u[:i] + "authKey=xxx" + u[i+j:]
	}
	return u
}

func tenantHeader(id uint32) http.Header {
	return http.Header{
		"Accountid": {strconv.FormatUint(uint64(id), 10)},
		"Projectid": {"0"},
	}
}

// Write implements Store.Write: one POST /insert/jsonline per tenant (and per 4 MiB of JSON),
// then /internal/force_flush so the rows are searchable, and the snapshot dance of
// SyncToDisk when enabled.
func (s *HTTP) Write(ctx context.Context, events []*event.Event) error {
	if len(events) == 0 {
		return nil
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	tc := tenantCache{resolve: s.resolve}
	var order []uint32
	byTenant := make(map[uint32][]*event.Event)
	for _, e := range events {
		if e == nil {
			continue
		}
		id, err := tc.get(e.Tenant)
		if err != nil {
			return err
		}
		if _, ok := byTenant[id]; !ok {
			order = append(order, id)
		}
		byTenant[id] = append(byTenant[id], e)
	}
	now := time.Now()
	var w timeWindow
	if s.opts.Retention > 0 || s.opts.FutureRetention > 0 {
		ret, fut := s.opts.Retention, s.opts.FutureRetention
		if ret <= 0 {
			ret = 100 * 365 * 24 * time.Hour
		}
		if fut <= 0 {
			fut = 2 * 24 * time.Hour
		}
		w = timeWindow{min: now.Add(-ret + time.Hour).UnixNano(), max: now.Add(fut - time.Hour).UnixNano()}
	}
	days := make(map[string]struct{})
	var fields []event.Field
	buf := make([]byte, 0, 64<<10)
	for _, id := range order {
		buf = buf[:0]
		lastDay := int64(-1 << 62)
		for _, e := range byTenant[id] {
			ts, orig := rowTime(e, w, now)
			fields, _ = rowFields(fields[:0], e, orig, &s.limits)
			buf = appendJSONLine(buf, ts, fields)
			if d := ts / int64(24*time.Hour); d != lastDay {
				lastDay = d
				days[dayOf(ts)] = struct{}{}
			}
			if len(buf) >= maxInsertBody {
				if err := s.insert(ctx, id, buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if len(buf) > 0 {
			if err := s.insert(ctx, id, buf); err != nil {
				return err
			}
		}
	}
	if !s.opts.NoForceFlush || s.opts.SyncToDisk {
		if err := s.forceFlush(ctx); err != nil {
			return err
		}
	}
	if s.opts.SyncToDisk {
		if err := s.syncToDisk(ctx, days); err != nil {
			return err
		}
	}
	return nil
}

var insertArgs = url.Values{
	"_stream_fields": {strings.Join(StreamFields, ",")},
	"_time_field":    {FieldTime},
	"_msg_field":     {FieldMsg},
}.Encode()

// insert posts JSON lines of one tenant. The Content-Type matters: with the
// form type some clients send by default, VictoriaLogs parses the body as a
// form and drops every row without an error (see TestHTTPContentTypeMatters).
func (s *HTTP) insert(ctx context.Context, id uint32, lines []byte) error {
	hdr := tenantHeader(id)
	body := lines
	switch s.opts.Compression {
	case CompressionGzip:
		var bb bytes.Buffer
		bb.Grow(len(lines) / 4)
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(&bb)
		_, _ = zw.Write(lines)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("store: gzip: %w", err)
		}
		gzipPool.Put(zw)
		body = bb.Bytes()
		hdr.Set("Content-Encoding", "gzip")
	case CompressionZstd:
		body = s.zenc.EncodeAll(lines, make([]byte, 0, len(lines)/4))
		hdr.Set("Content-Encoding", "zstd")
	}
	_, err := s.do(ctx, http.MethodPost, s.base+"/insert/jsonline?"+insertArgs, hdr, body, "application/stream+json")
	if err != nil {
		return fmt.Errorf("store: insert: %w", err)
	}
	return nil
}

var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

func authArg(key string) string {
	if key == "" {
		return ""
	}
	return "?authKey=" + url.QueryEscape(key)
}

// forceFlush makes the inserted rows searchable. On a cluster node it first sends
// the rows it buffers to the storage nodes and has them flushed too.
func (s *HTTP) forceFlush(ctx context.Context) error {
	if _, err := s.do(ctx, http.MethodGet, s.base+"/internal/force_flush"+authArg(s.opts.ForceFlushAuthKey), nil, nil, ""); err != nil {
		return fmt.Errorf("store: force flush: %w", err)
	}
	return nil
}

// syncToDisk snapshots (which first saves in-memory parts to fsynced files)
// and deletes the snapshots of the written days on every storage node.
func (s *HTTP) syncToDisk(ctx context.Context, days map[string]struct{}) error {
	names := make([]string, 0, len(days))
	for d := range days {
		names = append(names, d)
	}
	slices.Sort(names)
	key := ""
	if s.opts.PartitionManageAuthKey != "" {
		key = "&authKey=" + url.QueryEscape(s.opts.PartitionManageAuthKey)
	}
	for _, node := range s.nodes {
		for _, d := range names {
			data, err := s.do(ctx, http.MethodPost, node+"/internal/partition/snapshot/create?partition_prefix="+d+key, nil, nil, "")
			if err != nil {
				return fmt.Errorf("store: sync to disk: %w", err)
			}
			var paths []string
			if err := json.Unmarshal(data, &paths); err != nil {
				return fmt.Errorf("%w: sync to disk: snapshot list %q: %w", ErrEngine, data, err)
			}
			for _, p := range paths {
				if _, err := s.do(ctx, http.MethodPost, node+"/internal/partition/snapshot/delete?path="+url.QueryEscape(p)+key, nil, nil, ""); err != nil {
					return fmt.Errorf("store: sync to disk: %w", err)
				}
			}
		}
	}
	return nil
}

// Query implements Store.Query. A single tenant is queried through the
// public /select/logsql/query API with the AccountID header. Several tenants
// are queried in one go through /internal/select/query, the protocol a
// VictoriaLogs select node uses with its storage nodes, with the tenants'
// AccountIDs: pipes (stats, sort, limit…) then merge across tenants exactly
// as on the embedded engine. That protocol is versioned: the server must be
// v1.52.x.
func (s *HTTP) Query(ctx context.Context, tenants []string, from, to time.Time, logsql string, fn func(Row) error) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	names, ids, err := validateTenants(s.resolve, tenants)
	if err != nil {
		return err
	}
	sc := newScope(&s.cut, names, ids, from, to)
	now := time.Now()
	// Parse locally too: bad queries fail the same way on both engines.
	q, err := buildQuery(logsql, &sc, now)
	if err != nil {
		return err
	}
	if len(ids) > 1 {
		return s.queryInternal(ctx, &sc, q, fn)
	}
	return s.queryPublic(ctx, &sc, logsql, now, fn)
}

func (s *HTTP) queryPublic(ctx context.Context, sc *queryScope, logsql string, now time.Time, fn func(Row) error) error {
	if strings.TrimSpace(logsql) == "" {
		logsql = "*"
	}
	form := url.Values{}
	form.Set("query", logsql)
	form.Set("time", formatNs(sc.queryTimestamp(now)))
	if sc.minNs != minInt64 && !sc.empty {
		form.Set("start", formatNs(sc.minNs))
	}
	if sc.maxNs != maxInt64 && !sc.empty {
		form.Set("end", formatNs(sc.maxNs+1)) // end is exclusive
	}
	if tf := sc.timeFilter(); tf != "" {
		form.Add("extra_filters", tf)
	}
	if sc.extra != "" {
		form.Add("extra_filters", sc.extra)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.request(ctx, http.MethodPost, s.base+"/select/logsql/query", tenantHeader(sc.ids[0]),
		strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if err != nil {
		return fmt.Errorf("store: query: %w", wrapQueryErr(err))
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A longer line: collect it.
			long := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(bytes.TrimSpace(line)) > 0 {
			row, perr := parseJSONRow(line)
			if perr != nil {
				return fmt.Errorf("%w: query: unexpected response line %q", ErrEngine, truncateForError(line))
			}
			if len(row) > 0 {
				if ferr := fn(row); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: query: read response: %w", err)
		}
	}
}

// wrapQueryErr marks a 400 answer to a query as ErrBadQuery.
func wrapQueryErr(err error) error {
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusBadRequest {
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return err
}

func truncateForError(b []byte) string {
	if len(b) > 512 {
		return string(b[:512]) + "…"
	}
	return string(b)
}

// DeleteBefore implements Store.DeleteBefore with /delete/run_task (the server needs
// -delete.enable; cluster storage nodes -internaldelete.enable) and waits until
// /delete/active_tasks no longer lists the task. The cut-off applies to the queries
// of this Store at once, even when the server refuses the delete.
func (s *HTTP) DeleteBefore(ctx context.Context, tenant string, t time.Time) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	id, err := resolveTenant(s.resolve, tenant)
	if err != nil {
		return err
	}
	s.cut.raise(tenant, t)
	form := url.Values{"filter": {deleteFilter(t)}}
	data, err := s.do(ctx, http.MethodPost, s.base+"/delete/run_task", tenantHeader(id), []byte(form.Encode()), "application/x-www-form-urlencoded")
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && strings.Contains(se.body, "delete.enable") {
			return fmt.Errorf("%w: %w", ErrDeleteDisabled, err)
		}
		return fmt.Errorf("store: delete: %w", err)
	}
	var started struct {
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal(data, &started); err != nil || started.TaskID == "" {
		return fmt.Errorf("%w: delete: unexpected answer %q", ErrEngine, data)
	}
	for {
		data, err := s.do(ctx, http.MethodGet, s.base+"/delete/active_tasks", nil, nil, "")
		if err != nil {
			return fmt.Errorf("store: delete: %w", err)
		}
		var tasks []struct {
			TaskID string `json:"task_id"`
		}
		if err := json.Unmarshal(data, &tasks); err != nil {
			return fmt.Errorf("%w: delete: unexpected active tasks %q", ErrEngine, data)
		}
		if !slices.ContainsFunc(tasks, func(t struct {
			TaskID string `json:"task_id"`
		}) bool {
			return t.TaskID == started.TaskID
		}) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for delete task %s (it goes on in the background): %w", started.TaskID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close implements Store.Close.
func (s *HTTP) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.ownsCl {
		s.client.CloseIdleConnections()
	}
	if s.zenc != nil {
		_ = s.zenc.Close()
	}
	return nil
}
