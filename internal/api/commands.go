package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/mamori-soc/mamori/internal/respond"
	"github.com/mamori-soc/mamori/internal/update"
)

// CommandRequest is the body of POST /api/v1/agents/{id}/commands.
type CommandRequest struct {
	Kind string          `json:"kind"`
	Args json.RawMessage `json:"args,omitempty"`
}

// CommandList is the body of GET /api/v1/agents/{id}/commands and of GET
// /api/v1/agent/commands.
type CommandList struct {
	Commands []respond.Command `json:"commands"`
}

// CommandOutcome is the body of POST /api/v1/agent/commands/{id}.
type CommandOutcome struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (s *Server) commandsReady(w http.ResponseWriter) bool {
	return available(w, s.Commands != nil && s.Fleet != nil, "agent commands are not available on this server")
}

func commandProblem(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, respond.ErrInvalid):
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, respond.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such command")
	case errors.Is(err, respond.ErrState):
		writeProblem(w, http.StatusConflict, CodeConflict, err.Error())
	default:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

// issueCommand orders a measure on one agent: admin only, since it acts on
// a customer's machine.
func (s *Server) issueCommand(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	p, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	a, found := s.Fleet.Get(r.PathValue("id"))
	if !found {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such agent")
		return
	}
	var req CommandRequest
	if !decodeBody(w, r, &req) {
		return
	}
	c, err := s.Commands.Issue(r.Context(), a.Tenant, a.ID, req.Kind, req.Args, p.Name)
	if err != nil {
		commandProblem(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, c)
}

func (s *Server) listCommands(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	a, found := s.Fleet.Get(r.PathValue("id"))
	if !found || !p.CanRead(a.Tenant) {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such agent")
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cs, err := s.Commands.List(r.Context(), a.ID, limit)
	if err != nil {
		commandProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, CommandList{Commands: cs})
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	c, err := s.Commands.Get(r.Context(), r.PathValue("id"))
	if err == nil && !p.CanRead(c.Tenant) {
		err = respond.ErrNotFound
	}
	if err != nil {
		commandProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) cancelCommand(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	c, err := s.Commands.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		commandProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// agentCommands hands the calling agent its pending commands.
func (s *Server) agentCommands(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	cs, err := s.Commands.Pending(r.Context(), p.Name)
	if err != nil {
		commandProblem(w, err)
		return
	}
	if cs == nil {
		cs = []respond.Command{}
	}
	writeJSON(w, http.StatusOK, CommandList{Commands: cs})
}

func (s *Server) agentCommandOutcome(w http.ResponseWriter, r *http.Request) {
	if !s.commandsReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	var req CommandOutcome
	if !decodeBody(w, r, &req) {
		return
	}
	if _, err := s.Commands.Complete(r.Context(), p.Name, r.PathValue("id"), req.OK, req.Result, req.Error); err != nil {
		commandProblem(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// agentEvents is the agents' push stream (signed timestamps), which also
// carries command nudges to the agent they are for.
func (s *Server) agentEvents() http.Handler {
	o := update.EventsOptions{Key: func(r *http.Request) string {
		p, _ := PrincipalFrom(r.Context())
		return p.Name
	}, Gated: func() bool { return false }}
	if s.Rollouts != nil {
		o.Gated = s.Rollouts.Gated
	}
	es := update.NewEventStream(s.Releases, o)
	s.pushes = es
	if s.Commands != nil {
		s.Commands.OnIssue(func(agent string) { es.Nudge(agent, "commands") })
	}
	return es
}
