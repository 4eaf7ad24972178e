package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
)

// AlertList is the body of GET /api/v1/alerts.
type AlertList struct {
	Alerts []*alert.Alert `json:"alerts"`
}

func (s *Server) alertsReady(w http.ResponseWriter) bool {
	return available(w, s.Alerts != nil, "detection is not running on this server")
}

// alertScope returns the tenants the caller's alert request covers; nil
// means every tenant (an admin who named none).
func (s *Server) alertScope(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	p, _ := PrincipalFrom(r.Context())
	requested := splitList(r.URL.Query()["tenant"])
	if p.IsAdmin() && len(requested) == 0 {
		return nil, true
	}
	tenants, err := s.scope(p, requested)
	switch {
	case errors.Is(err, errForbidden):
		writeProblem(w, http.StatusForbidden, CodeForbidden, "this token cannot read that tenant's alerts")
		return nil, false
	case errors.Is(err, errUnknownTenant):
		writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: "no such tenant", Field: "tenant"})
		return nil, false
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return nil, false
	}
	return tenants, true
}

// splitList accepts repeated parameters and comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	qv := r.URL.Query()
	f := alert.Filter{Tenants: tenants, Severity: splitList(qv["severity"]), MinSeverity: qv.Get("min_severity"),
		Status: splitList(qv["status"]), RuleID: qv.Get("rule"), Kind: qv.Get("kind")}
	if v := qv.Get("since"); v != "" {
		t, err := ParseTime(v, time.Now())
		if err != nil {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "since"})
			return
		}
		f.Since = t
	}
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: fmt.Sprintf("limit must be 1..%d", alert.MaxLimit), Field: "limit"})
			return
		}
		f.Limit = n
	}
	list, err := s.Alerts.List(r.Context(), f)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	if list == nil {
		list = []*alert.Alert{}
	}
	writeJSON(w, http.StatusOK, AlertList{Alerts: list})
}

func (s *Server) alertFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, alert.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such alert")
	case errors.Is(err, alert.ErrBadFilter), errors.Is(err, alert.ErrBadStatus), errors.Is(err, alert.ErrBadRule):
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	default:
		s.Logger.Error("alerts", "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "alert store failed")
	}
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	a, err := s.Alerts.Get(r.Context(), tenants, r.PathValue("id"))
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// AlertPatch is the body of PATCH /api/v1/alerts/{id}.
type AlertPatch struct {
	Status string `json:"status"`
}

func (s *Server) patchAlert(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	var body AlertPatch
	if !decodeBody(w, r, &body) {
		return
	}
	a, err := s.Alerts.SetStatus(r.Context(), nil, r.PathValue("id"), body.Status)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// streamAlerts serves new and updated alerts as server-sent events
// ("event: alert", the alert as JSON), with a comment every 15 s to keep
// proxies from closing an idle stream.
func (s *Server) streamAlerts(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "streaming unsupported")
		return
	}
	ch, stop := s.Alerts.Subscribe(tenants)
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": mamori alerts\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case a, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(a)
			fmt.Fprintf(w, "id: %s\nevent: alert\ndata: %s\n\n", a.ID, b)
			fl.Flush()
		}
	}
}

// ExceptionList is the body of GET /api/v1/exceptions.
type ExceptionList struct {
	Exceptions []alert.Exception `json:"exceptions"`
}

func (s *Server) listExceptions(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	xs := s.Alerts.Exceptions(tenants)
	if xs == nil {
		xs = []alert.Exception{}
	}
	writeJSON(w, http.StatusOK, ExceptionList{Exceptions: xs})
}

// ExceptionRequest is the body of POST /api/v1/exceptions; ttl (e.g. "7d")
// sets the expiry.
type ExceptionRequest struct {
	alert.Exception
	TTL string `json:"ttl,omitempty"`
}

func (s *Server) addException(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	var req ExceptionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	x := req.Exception
	if x.Tenant != "" {
		if _, ok := s.State.Tenant(x.Tenant); !ok {
			writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: "no such tenant", Field: "tenant"})
			return
		}
	}
	if req.TTL != "" {
		t, err := ParseTime("-"+req.TTL, time.Now())
		if err != nil {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "ttl"})
			return
		}
		x.Expires = time.Now().Add(time.Since(t)).UTC()
	}
	out, err := s.Alerts.AddException(r.Context(), x)
	if err != nil {
		s.alertFailed(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) deleteException(w http.ResponseWriter, r *http.Request) {
	if !s.alertsReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such exception")
		return
	}
	if err := s.Alerts.DeleteException(r.Context(), nil, id); err != nil {
		s.alertFailed(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
