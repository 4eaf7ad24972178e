package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	vmencoding "github.com/VictoriaMetrics/VictoriaMetrics/lib/encoding"
)

const (
	minInt64 = math.MinInt64
	maxInt64 = math.MaxInt64
)

// internalQueryProtocol is the version of /internal/select/query in
// VictoriaLogs v1.52.x (app/vlstorage/netselect.QueryProtocolVersion).
const internalQueryProtocol = "v5"

// queryInternal runs q for several tenants at once the way a VictoriaLogs
// select node does: logstorage.NetQueryRunner splits q into the part the
// server runs (filters and the "remote" half of the pipes) and the pipes run
// here on the merged results.
func (s *HTTP) queryInternal(ctx context.Context, sc *queryScope, q *logstorage.Query, fn func(Row) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rw := newRowWriter(q, fn, cancel)
	var qs logstorage.QueryStats
	qctx := logstorage.NewQueryContext(ctx, &qs, tenantIDs(sc.ids), q, false, nil)
	var qerr error
	if err := engineCall(func() { qerr = s.runNetQuery(qctx, rw.writeBlock) }); err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	var se *statusError
	if errors.As(qerr, &se) && se.code == http.StatusBadRequest {
		qerr = fmt.Errorf("%w (multi-tenant queries need a v1.52.x server with /internal/select enabled)", qerr)
	}
	return rw.result(ctx, qerr)
}

// runNetQuery is a logstorage.RunNetQueryFunc (it also runs subqueries).
func (s *HTTP) runNetQuery(qctx *logstorage.QueryContext, writeBlock logstorage.WriteDataBlockFunc) error {
	nqr, err := logstorage.NewNetQueryRunner(qctx, s.runNetQuery, writeBlock)
	if err != nil {
		return err
	}
	search := func(stopCh <-chan struct{}, q *logstorage.Query, wb logstorage.WriteDataBlockFunc) error {
		ctx, cancel := context.WithCancel(qctx.Context)
		defer cancel()
		go func() {
			select {
			case <-stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		return s.internalSelect(ctx, qctx.WithContextAndQuery(ctx, q), wb)
	}
	return nqr.Run(qctx.Context, qctx.Query.GetConcurrency(), search)
}

// internalSelect posts one /internal/select/query request and feeds the
// returned data blocks to writeBlock.
func (s *HTTP) internalSelect(ctx context.Context, qctx *logstorage.QueryContext, writeBlock logstorage.WriteDataBlockFunc) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range [][2]string{
		{"version", internalQueryProtocol},
		{"tenant_ids", string(logstorage.MarshalTenantIDsToJSON(qctx.TenantIDs))},
		{"query", qctx.Query.String()},
		{"timestamp", strconv.FormatInt(qctx.Query.GetTimestamp(), 10)},
		{"disable_compression", "false"},
		{"allow_partial_response", "false"},
		{"hidden_fields_filters", "[]"},
	} {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return fmt.Errorf("store: internal query: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("store: internal query: %w", err)
	}
	resp, err := s.request(ctx, http.MethodPost, s.base+"/internal/select/query", nil, &body, mw.FormDataContentType())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var lenBuf [8]byte
	var buf, plain []byte
	var db, statsDB logstorage.DataBlock
	var valuesBuf []string
	sawStats := false
	for {
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if !sawStats {
					// The server sends the query stats block last; without it the answer was cut short.
					return fmt.Errorf("%w: internal query: truncated response", ErrEngine)
				}
				return nil
			}
			return fmt.Errorf("store: internal query: read block size: %w", err)
		}
		n := binary.BigEndian.Uint64(lenBuf[:])
		if n > 1<<30 {
			return fmt.Errorf("%w: internal query: block of %d bytes", ErrEngine, n)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("store: internal query: read block: %w", err)
		}
		plain, err = vmencoding.DecompressZSTD(plain[:0], buf)
		if err != nil {
			return fmt.Errorf("%w: internal query: %w", ErrEngine, err)
		}
		src := plain
		for len(src) > 0 {
			isStats := src[0] == 1
			src = src[1:]
			if isStats {
				// Query statistics (a data block too): not used by the store.
				tail, _, err := statsDB.UnmarshalInplace(src, nil)
				if err != nil {
					return fmt.Errorf("%w: internal query: bad stats block: %w", ErrEngine, err)
				}
				src = tail
				sawStats = true
				continue
			}
			tail, vb, err := db.UnmarshalInplace(src, valuesBuf[:0])
			if err != nil {
				return fmt.Errorf("%w: internal query: bad data block: %w", ErrEngine, err)
			}
			valuesBuf = vb
			src = tail
			writeBlock(0, &db)
			clear(valuesBuf)
		}
	}
}
