package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/state"
)

// agentKind is the Principal kind of an authenticated endpoint agent
// (credentials issued by the fleet at enrollment, not API tokens).
const agentKind = "agent"

// EnrollRequest is the body of POST /api/v1/agents/enroll.
type EnrollRequest struct {
	fleet.Info
}

// EnrollResponse is what an agent keeps from its enrollment.
type EnrollResponse struct {
	AgentID    string `json:"agent_id"`
	Tenant     string `json:"tenant"`
	Credential string `json:"credential"` // shown once; the agent's bearer token from now on
	// Root is the pattern repository's trusted root metadata (TUF
	// root.json), pinned by the agent at enrollment; nil when the server
	// distributes no patterns.
	Root []byte `json:"root,omitempty"`
}

// ReportRequest is the body of POST /api/v1/agent/report.
type ReportRequest = fleet.Install

// HeartbeatRequest is the body of POST /api/v1/agent/heartbeat.
type HeartbeatRequest struct {
	Info   fleet.Info   `json:"info"`
	Health fleet.Health `json:"health"`
}

func (s *Server) fleetReady(w http.ResponseWriter) bool {
	if s.Fleet == nil {
		writeProblem(w, http.StatusServiceUnavailable, CodeUnavailable, "agent management is not running on this server")
		return false
	}
	return true
}

// authenticateAgent wraps h: only an enrolled agent's credential enters.
// Looked up in memory: after a release thousands of agents call at once.
func (s *Server) authenticateAgent(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.fleetReady(w) {
			return
		}
		secret := bearer(r)
		id, tenant, ok := s.Fleet.Authenticate(secret)
		if !ok {
			s.Metrics.AuthFailures.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-agent"`)
			writeProblem(w, http.StatusUnauthorized, CodeUnauthorized, "unknown or removed agent credential")
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), Principal{Kind: agentKind, Tenant: tenant, Name: id})))
	})
}

func (s *Server) enrollAgent(w http.ResponseWriter, r *http.Request) {
	if !s.fleetReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	if p.Kind != state.TokenEnroll {
		writeProblem(w, http.StatusForbidden, CodeForbidden, "enrollment needs an enroll token (mamori tenant token TENANT --kind enroll)")
		return
	}
	var req EnrollRequest
	if !decodeBody(w, r, &req) {
		return
	}
	a, secret, err := s.Fleet.Enroll(r.Context(), p.Tenant, req.Info)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	resp := EnrollResponse{AgentID: a.ID, Tenant: a.Tenant, Credential: secret}
	if s.Releases != nil {
		resp.Root = s.Releases.Root()
	}
	s.Logger.Info("agent enrolled", "agent", a.ID, "tenant", a.Tenant, "hostname", req.Hostname)
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) agentHeartbeat(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	var req HeartbeatRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.Fleet.Heartbeat(p.Name, req.Info, req.Health); err != nil {
		writeProblem(w, http.StatusNotFound, CodeNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) agentReport(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	var req ReportRequest
	if !decodeBody(w, r, &req) {
		return
	}
	err := s.Fleet.Report(p.Name, req)
	switch {
	case errors.Is(err, fleet.ErrInvalid):
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	case err != nil:
		writeProblem(w, http.StatusNotFound, CodeNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AgentList is the body of GET /api/v1/agents.
type AgentList struct {
	Agents []fleet.Agent `json:"agents"`
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	if !s.fleetReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	out := AgentList{Agents: []fleet.Agent{}}
	for _, a := range s.Fleet.List("") {
		if tenants == nil || slices.Contains(tenants, a.Tenant) {
			out.Agents = append(out.Agents, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) {
	if !s.fleetReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	a, ok := s.Fleet.Get(r.PathValue("id"))
	if !ok || !p.CanRead(a.Tenant) {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such agent")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// DesiredResponse is the body of GET /api/v1/agent/desired.
type DesiredResponse struct {
	// Channels under a rollout: the version this agent may have active (0:
	// none yet). Channels not listed follow the latest release.
	Channels map[string]uint64 `json:"channels"`
}

func (s *Server) agentDesired(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	out := DesiredResponse{Channels: map[string]uint64{}}
	if s.Rollouts != nil {
		out.Channels = s.Rollouts.Desired(p.Name)
	}
	writeJSON(w, http.StatusOK, out)
}
