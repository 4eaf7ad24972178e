package api

import (
	"encoding/json"
	"net/http"
)

// Stable error codes, shared with the CLI's messages.
const (
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeTenantUnknown = "tenant_unknown"
	CodeQueryInvalid  = "query_invalid"
	CodeBadRequest    = "bad_request"
	CodeTooLarge      = "too_large"
	CodeBusy          = "ingest_busy"
	CodeConflict      = "conflict"
	CodeNotFound      = "not_found"
	CodeInternal      = "internal"
	CodeUnavailable   = "unavailable"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
	Pos    *int   `json:"position,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	writeProblemAt(w, Problem{Status: status, Code: code, Detail: detail})
}

func writeProblemAt(w http.ResponseWriter, p Problem) {
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// available answers 503 with detail when a part of the server is not
// running (ok false), and reports ok.
func available(w http.ResponseWriter, ok bool, detail string) bool {
	if !ok {
		writeProblem(w, http.StatusServiceUnavailable, CodeUnavailable, detail)
	}
	return ok
}
