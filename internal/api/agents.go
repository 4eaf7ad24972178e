package api

import (
	"crypto/x509"
	"errors"
	"net/http"
	"slices"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/state"
)

// agentKind is the Principal kind of an authenticated endpoint agent
// (credentials issued by the fleet at enrollment, not API tokens).
const agentKind = "agent"

// CodeMTLSRequired: the server takes agents' client certificates only
// (agents.require_mtls) and the request had none.
const CodeMTLSRequired = "mtls_required"

// EnrollRequest is the body of POST /api/v1/agents/enroll.
type EnrollRequest struct {
	fleet.Info
	// CSR is a PKCS#10 certificate request (PEM) for a key the agent
	// generated and keeps: the server answers with a client certificate
	// for it. Optional: without it the agent gets a bearer credential only.
	CSR string `json:"csr,omitempty"`
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
	// Certificate is the agent's client certificate (PEM) for the key of
	// its CSR, CA the agent CA (PEM) it verifies the server with, TLSURL
	// the agents' TLS listener where it uses them from now on. Empty
	// without a CSR or when the server has no such listener.
	Certificate string `json:"certificate,omitempty"`
	CA          string `json:"ca,omitempty"`
	TLSURL      string `json:"tls_url,omitempty"`
}

// ReportRequest is the body of POST /api/v1/agent/report.
type ReportRequest = fleet.Install

// HeartbeatRequest is the body of POST /api/v1/agent/heartbeat.
type HeartbeatRequest struct {
	Info   fleet.Info   `json:"info"`
	Health fleet.Health `json:"health"`
}

func (s *Server) fleetReady(w http.ResponseWriter) bool {
	return available(w, s.Fleet != nil, "agent management is not running on this server")
}

// authenticateAgent wraps h: only an enrolled agent enters, by its
// client certificate (verified by the TLS listener against the agent CA,
// and still the one the fleet records for it) or, unless RequireMTLS, its
// bearer credential. Looked up in memory: after a release thousands of
// agents call at once.
func (s *Server) authenticateAgent(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.fleetReady(w) {
			return
		}
		id, tenant, method, code, msg := s.agentAuth(r)
		if id == "" {
			s.Metrics.AuthFailures.Inc()
			if method == fleet.AuthBearer {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mamori-agent"`)
			}
			writeProblem(w, http.StatusUnauthorized, code, msg)
			return
		}
		s.Fleet.NoteAuth(id, method)
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), Principal{Kind: agentKind, Tenant: tenant, Name: id})))
	})
}

// agentAuth identifies the agent making r; id is empty when it is
// refused, with the problem code and detail to answer.
func (s *Server) agentAuth(r *http.Request) (id, tenant, method, code, msg string) {
	if leaf := s.agentCert(r); leaf != nil {
		tenant, ok := s.Fleet.AuthenticateCert(leaf.Subject.CommonName, fleet.SerialString(leaf.SerialNumber))
		if !ok {
			return "", "", fleet.AuthMTLS, CodeUnauthorized, "client certificate of a removed agent, or superseded by a newer one; enroll the agent again"
		}
		return leaf.Subject.CommonName, tenant, fleet.AuthMTLS, "", ""
	}
	if s.RequireMTLS {
		return "", "", "", CodeMTLSRequired, "this server accepts agents only with their client certificate on the agents' TLS listener (agents.require_mtls); a bearer credential alone is refused: enroll the agent again with a current agent"
	}
	id, tenant, ok := s.Fleet.Authenticate(bearer(r))
	if !ok {
		return "", "", fleet.AuthBearer, CodeUnauthorized, "unknown or removed agent credential"
	}
	return id, tenant, fleet.AuthBearer, "", ""
}

// agentCert is the client certificate of r when the TLS layer verified it
// up to the agent CA; nil otherwise.
func (s *Server) agentCert(r *http.Request) *x509.Certificate {
	if s.AgentCA == nil || r.TLS == nil {
		return nil
	}
	for _, chain := range r.TLS.VerifiedChains {
		if s.AgentCA.Issued(chain) {
			return chain[0]
		}
	}
	return nil
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
	// The request is checked before anything is enrolled: a refused one
	// leaves no agent behind.
	var csr *x509.CertificateRequest
	if req.CSR != "" && s.AgentCA != nil {
		var err error
		if csr, err = fleet.ParseCSR([]byte(req.CSR)); err != nil {
			writeProblemAt(w, Problem{Status: http.StatusBadRequest, Code: CodeBadRequest, Detail: err.Error(), Field: "csr"})
			return
		}
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
	auth := fleet.AuthBearer
	if csr != nil {
		if err := s.issueAgentCert(r, csr, a.ID, &resp); err != nil {
			// Half an enrollment would leave an agent the server counts
			// but that never calls.
			_ = s.Fleet.Remove(r.Context(), a.ID)
			writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
			return
		}
		auth = fleet.AuthMTLS
	}
	s.Logger.Info("agent enrolled", "agent", a.ID, "tenant", a.Tenant, "hostname", req.Hostname, "auth", auth)
	writeJSON(w, http.StatusCreated, resp)
}

// RenewRequest is the body of POST /api/v1/agent/certificate.
type RenewRequest struct {
	CSR string `json:"csr"` // PKCS#10 (PEM) for the agent's new key
}

// renewAgentCert issues the calling agent a new client certificate for a
// new key; from then on only the new one is accepted (its serial is the
// one recorded).
func (s *Server) renewAgentCert(w http.ResponseWriter, r *http.Request) {
	if s.AgentCA == nil {
		writeProblem(w, http.StatusServiceUnavailable, CodeUnavailable, "this server issues no agent certificates (no agents TLS listener)")
		return
	}
	p, _ := PrincipalFrom(r.Context())
	var req RenewRequest
	if !decodeBody(w, r, &req) {
		return
	}
	csr, err := fleet.ParseCSR([]byte(req.CSR))
	if err != nil {
		writeProblemAt(w, Problem{Status: http.StatusBadRequest, Code: CodeBadRequest, Detail: err.Error(), Field: "csr"})
		return
	}
	var resp EnrollResponse
	if err := s.issueAgentCert(r, csr, p.Name, &resp); err != nil {
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	s.Logger.Info("agent certificate renewed", "agent", p.Name, "tenant", p.Tenant)
	writeJSON(w, http.StatusOK, map[string]string{"certificate": resp.Certificate, "ca": resp.CA})
}

// issueAgentCert signs agent id's client certificate, records its serial
// in the fleet and fills the TLS part of resp.
func (s *Server) issueAgentCert(r *http.Request, csr *x509.CertificateRequest, id string, resp *EnrollResponse) error {
	cert, serial, notAfter, err := s.AgentCA.IssueClient(csr, id)
	if err != nil {
		return err
	}
	if err := s.Fleet.SetCertificate(r.Context(), id, serial, notAfter); err != nil {
		return err
	}
	resp.Certificate, resp.CA = string(cert), string(s.AgentCA.CertPEM())
	if s.AgentsTLSURL != nil {
		resp.TLSURL = s.AgentsTLSURL(r)
	}
	return nil
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

// removeAgent forgets an agent: the revocation of its bearer credential
// and client certificate, effective at its next request (both are checked
// against the fleet on every one).
func (s *Server) removeAgent(w http.ResponseWriter, r *http.Request) {
	if !s.fleetReady(w) {
		return
	}
	p, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := s.Fleet.Remove(r.Context(), id)
	switch {
	case errors.Is(err, fleet.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such agent")
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	if s.pushes != nil {
		s.pushes.Disconnect(id)
	}
	s.Logger.Info("agent removed", "agent", id, "by", p.Name)
	w.WriteHeader(http.StatusNoContent)
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
