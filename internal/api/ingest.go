package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mamori-soc/mamori/internal/ingest"
	"github.com/mamori-soc/mamori/internal/state"
)

// IngestResponse answers POST /api/v1/ingest.
type IngestResponse struct {
	Tenant   string `json:"tenant"`
	Accepted int    `json:"accepted"`
	Unparsed int    `json:"unparsed"`
}

// ingest takes NDJSON, a single JSON event or plain log lines. It answers
// 202 only when every event is durable on the bus.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	tenant := r.URL.Query().Get("tenant")
	switch p.Kind {
	case state.TokenAdmin:
		if tenant == "" {
			tenant = s.DefaultTen
		}
		if _, ok := s.State.Tenant(tenant); !ok {
			writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Field: "tenant",
				Detail: fmt.Sprintf("no tenant %q; create it first (mamori tenant add %s)", tenant, tenant)})
			return
		}
	case state.TokenIngest:
		if tenant != "" && tenant != p.Tenant {
			writeProblem(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("this token ingests only into tenant %q", p.Tenant))
			return
		}
		tenant = p.Tenant
	default:
		writeProblem(w, http.StatusForbidden, CodeForbidden, "this token may not ingest")
		return
	}
	s.ingestBody(w, r, ingest.Origin{Tenant: tenant, Source: ingest.SourceHTTP})
}

// agentLogs takes an agent's shipped log lines (and its detection events,
// as JSON lines) into its tenant.
func (s *Server) agentLogs(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	s.ingestBody(w, r, ingest.Origin{Tenant: p.Tenant, Source: ingest.SourceAgent})
}

// ingestBody submits a request's frames and answers once they are durable.
func (s *Server) ingestBody(w http.ResponseWriter, r *http.Request, origin ingest.Origin) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.MaxBody)
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, "Content-Encoding gzip: "+err.Error())
			return
		}
		defer gz.Close()
		body = io.LimitReader(gz, s.MaxBody+1)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes; send smaller requests", s.MaxBody))
			return
		}
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, "read body: "+err.Error())
		return
	}
	if int64(len(data)) > s.MaxBody {
		writeProblem(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("decompressed body exceeds %d bytes", s.MaxBody))
		return
	}
	frames, perr := splitBody(data, s.MaxLine)
	if perr != nil {
		writeProblemAt(w, *perr)
		return
	}
	resp := IngestResponse{Tenant: origin.Tenant}
	// One submission for the whole request: it is accepted or refused as a
	// whole, so a client retrying a 503 never duplicates half a request.
	t, err := s.Pipeline.TrySubmit(r.Context(), origin, frames)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, CodeBusy, fmt.Sprintf("%v (nothing of this request was accepted)", err))
		return
	}
	resp.Accepted, resp.Unparsed = t.Events, t.Unparsed
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := t.Wait(ctx); err != nil {
		w.Header().Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, CodeBusy, "events accepted but not yet durable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// splitBody returns the frames of a request: one whole JSON object when the
// body is exactly one (possibly pretty-printed), else one frame per line.
// Empty lines are skipped; a line longer than maxLine is an error naming it.
func splitBody(data []byte, maxLine int) ([][]byte, *Problem) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' && bytes.IndexByte(trimmed, '\n') >= 0 && json.Valid(trimmed) {
		var one json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if dec.Decode(&one) == nil && !dec.More() {
			var compact bytes.Buffer
			if json.Compact(&compact, trimmed) == nil {
				return [][]byte{compact.Bytes()}, nil
			}
		}
	}
	var frames [][]byte
	for line := 1; len(data) > 0; line++ {
		b := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			b, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(b) > maxLine {
			return nil, &Problem{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Pos: &line,
				Detail: fmt.Sprintf("line %d is %d bytes, longer than the %d allowed", line, len(b), maxLine)}
		}
		b = bytes.TrimRight(b, "\r")
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		frames = append(frames, b)
	}
	return frames, nil
}
