package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/state"
)

// TenantJSON is a tenant in the API.
type TenantJSON struct {
	ID        uint32    `json:"id"`
	Name      string    `json:"name"`
	Retention string    `json:"retention"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) tenantJSON(t state.Tenant) TenantJSON {
	ret := "default"
	if t.Retention > 0 {
		ret = config.Duration(t.Retention).String()
	}
	return TenantJSON{ID: t.ID, Name: t.Name, Retention: ret, CreatedAt: t.CreatedAt}
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	out := []TenantJSON{}
	for _, t := range s.State.Tenants() {
		if p.IsAdmin() || p.Tenant == t.Name {
			out = append(out, s.tenantJSON(t))
		}
	}
	writeJSON(w, 200, map[string]any{"tenants": out})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyLimit(w, r, v, 1<<20)
}

// decodeBodyLimit is decodeBody for endpoints taking bulk data (indicator
// imports) up to limit bytes.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) addTenant(w http.ResponseWriter, r *http.Request) {
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	var req struct {
		Name      string `json:"name"`
		Retention string `json:"retention"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	var ret time.Duration
	if req.Retention != "" {
		var err error
		if ret, err = config.ParseDuration(req.Retention); err != nil {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "retention"})
			return
		}
	}
	t, err := s.State.AddTenant(r.Context(), req.Name, ret)
	switch {
	case errors.Is(err, state.ErrExists):
		writeProblem(w, http.StatusConflict, CodeConflict, err.Error())
		return
	case errors.Is(err, state.ErrInvalidName):
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "name"})
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, s.tenantJSON(t))
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	name := r.PathValue("name")
	var req struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Kind == "" {
		req.Kind = state.TokenIngest
	}
	if req.Kind == state.TokenAdmin {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "admin tokens are not tenant tokens", Field: "kind"})
		return
	}
	secret, tok, err := s.State.CreateToken(r.Context(), req.Kind, name, req.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeTenantUnknown, err.Error())
		return
	case errors.Is(err, state.ErrInvalidToken):
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "kind"})
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "id": tok.ID, "kind": tok.Kind, "tenant": tok.Tenant, "name": tok.Name})
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request) {
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	name := r.PathValue("name")
	if _, ok := s.State.Tenant(name); !ok {
		writeProblem(w, http.StatusNotFound, CodeTenantUnknown, "no tenant "+name)
		return
	}
	ms, err := s.State.Mappings(r.Context())
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	out := []state.Mapping{}
	for _, m := range ms {
		if m.Tenant == name {
			out = append(out, m)
		}
	}
	writeJSON(w, 200, map[string]any{"sources": out})
}

func (s *Server) addSource(w http.ResponseWriter, r *http.Request) {
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	var req struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	m, err := s.State.AddMapping(r.Context(), r.PathValue("name"), req.Kind, req.Value)
	switch {
	case errors.Is(err, state.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeTenantUnknown, err.Error())
		return
	case errors.Is(err, state.ErrExists):
		writeProblem(w, http.StatusConflict, CodeConflict, err.Error())
		return
	case errors.Is(err, state.ErrInvalidSource):
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "value"})
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	if s.ReloadRouter != nil {
		if err := s.ReloadRouter(r.Context()); err != nil {
			s.Logger.Error("reload source mappings", "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, m)
}
