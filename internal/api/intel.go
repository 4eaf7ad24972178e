package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/intel"
)

// IntelAdd is the body of POST /api/v1/intel: either a list of indicators
// (feeds parsed by the CLI) or one manual entry — the "hotline".
type IntelAdd struct {
	Indicators []intel.Indicator `json:"indicators,omitempty"`

	Type        string   `json:"type,omitempty"`
	Value       string   `json:"value,omitempty"`
	Source      string   `json:"source,omitempty"`
	Confidence  int      `json:"confidence,omitempty"`
	TLP         string   `json:"tlp,omitempty"`
	TTL         string   `json:"ttl,omitempty"`
	Tenant      string   `json:"tenant,omitempty"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// IntelAddResult is the answer to POST /api/v1/intel.
type IntelAddResult struct {
	intel.AddResult
	// Retro says a retro-hunt over the stored events was queued.
	Retro bool `json:"retro_hunt"`
}

// IntelList is the body of GET /api/v1/intel.
type IntelList struct {
	Indicators []*intel.Indicator `json:"indicators"`
}

func (s *Server) intelReady(w http.ResponseWriter) bool {
	return available(w, s.Intel != nil, "threat intelligence is not running on this server")
}

func (s *Server) addIntel(w http.ResponseWriter, r *http.Request) {
	if !s.intelReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	var req IntelAdd
	if !decodeBodyLimit(w, r, &req, max(s.MaxBody, 1<<20)) {
		return
	}
	inds := req.Indicators
	if req.Value != "" {
		if len(inds) > 0 {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, "send either indicators or one manual entry, not both")
			return
		}
		ind, err := manualIndicator(req, time.Now())
		if err != nil {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		inds = []intel.Indicator{ind}
	}
	if len(inds) == 0 {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, "no indicators: send {\"type\",\"value\",\"source\",...} or {\"indicators\":[...]}")
		return
	}
	for _, ind := range inds {
		if ind.Tenant != "" {
			if _, ok := s.State.Tenant(ind.Tenant); !ok {
				writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: "no such tenant: " + ind.Tenant, Field: "tenant"})
				return
			}
		}
	}
	res, err := s.Intel.Add(r.Context(), inds)
	if err != nil {
		if errors.Is(err, intel.ErrInvalid) {
			writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			return
		}
		s.Logger.Error("intel add", "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "indicator store failed")
		return
	}
	writeJSON(w, http.StatusOK, IntelAddResult{AddResult: res, Retro: res.New+res.Updated > 0})
}

// manualIndicator builds a hotline entry: mamori intel add ip 203.0.113.9
// --source NTT-CERT --confidence 80 --ttl 7d.
func manualIndicator(req IntelAdd, now time.Time) (intel.Indicator, error) {
	if strings.TrimSpace(req.Source) == "" {
		return intel.Indicator{}, errors.New("a manual indicator needs a source (who reported it)")
	}
	ind, err := intel.ParseManual(req.Type, req.Value)
	if err != nil {
		return intel.Indicator{}, err
	}
	conf := req.Confidence
	if conf == 0 {
		conf = 50
	}
	ref := intel.SourceRef{Source: req.Source, Confidence: conf, FirstSeen: now, LastSeen: now, Description: req.Description, Tags: req.Tags, Ref: "manual"}
	if req.TLP != "" {
		if ref.TLP, err = intel.NormalizeTLP(req.TLP); err != nil {
			return intel.Indicator{}, err
		}
	}
	if req.TTL != "" {
		d, err := config.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return intel.Indicator{}, errors.New("ttl must be a duration such as 7d or 12h")
		}
		ref.Expires = now.Add(d)
	}
	ind.Tenant = req.Tenant
	ind.Sources = []intel.SourceRef{ref}
	return ind, ind.Validate()
}

func (s *Server) listIntel(w http.ResponseWriter, r *http.Request) {
	if !s.intelReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	qv := r.URL.Query()
	f := intel.Filter{Type: intel.Type(qv.Get("type")), Source: qv.Get("source"), Contains: qv.Get("contains"), Tenant: qv.Get("tenant"), Limit: 1000}
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "limit must be 1..10000", Field: "limit"})
			return
		}
		f.Limit = n
	}
	if !p.IsAdmin() {
		if f.Tenant != "" && f.Tenant != p.Tenant || p.Tenant == "" {
			writeProblem(w, http.StatusForbidden, CodeForbidden, "this token cannot read that tenant's indicators")
			return
		}
	}
	list, err := s.Intel.List(r.Context(), f)
	if err != nil {
		s.Logger.Error("intel list", "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "indicator store failed")
		return
	}
	// A tenant's reader sees global indicators and its own, never another tenant's.
	out := list[:0]
	for _, ind := range list {
		if p.IsAdmin() || ind.Tenant == "" || ind.Tenant == p.Tenant {
			out = append(out, ind)
		}
	}
	if out == nil {
		out = []*intel.Indicator{}
	}
	writeJSON(w, http.StatusOK, IntelList{Indicators: out})
}

func (s *Server) removeIntel(w http.ResponseWriter, r *http.Request) {
	if !s.intelReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	qv := r.URL.Query()
	typ, val, err := intel.Normalize(intel.Type(qv.Get("type")), qv.Get("value"))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	n, err := s.Intel.Remove(r.Context(), intel.Key{Tenant: qv.Get("tenant"), Type: typ, Value: val})
	if err != nil {
		s.Logger.Error("intel remove", "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "indicator store failed")
		return
	}
	if n == 0 {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such indicator")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
