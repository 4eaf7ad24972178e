package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/mamori-soc/mamori/internal/detect"
)

// RulesStatus is the body of GET /api/v1/rules and POST /api/v1/rules/reload.
type RulesStatus struct {
	Loaded       time.Time      `json:"loaded"`
	Rules        int            `json:"rules"`
	Active       int            `json:"active"`
	Dormant      int            `json:"dormant"`
	Correlations int            `json:"correlations"`
	Skipped      int            `json:"skipped"`
	Problems     []string       `json:"problems,omitempty"`
	Warnings     []string       `json:"warnings,omitempty"`
	ByLogsource  map[string]int `json:"by_logsource,omitempty"`
}

func rulesStatus(rs *detect.Ruleset) RulesStatus {
	out := RulesStatus{Problems: []string{}}
	if rs == nil {
		return out
	}
	out.Loaded = rs.Loaded
	out.Problems = append(out.Problems, rs.Problems...)
	out.Skipped = len(rs.Problems)
	if rs.Sigma != nil {
		st := rs.Sigma.Stats()
		out.Rules, out.Active, out.Dormant, out.ByLogsource = st.Loaded, st.Active, st.Dormant, st.ByLogsource
		for _, w := range rs.Sigma.Warnings() {
			out.Warnings = append(out.Warnings, w.Path+": "+w.Msg)
		}
	}
	if rs.Corr != nil {
		out.Correlations = len(rs.Corr.Rules())
	}
	return out
}

func (s *Server) detectReady(w http.ResponseWriter) bool {
	return available(w, s.Detect != nil, "detection is not running on this server")
}

func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	if !s.detectReady(w) {
		return
	}
	writeJSON(w, http.StatusOK, rulesStatus(s.Detect.Rules()))
}

func (s *Server) reloadRules(w http.ResponseWriter, r *http.Request) {
	if !s.detectReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	rs, err := s.Detect.Load()
	if err != nil && !errors.Is(err, detect.ErrNoRules) {
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "rule reload failed: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rulesStatus(rs))
}
