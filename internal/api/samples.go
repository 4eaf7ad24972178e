package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/mamori-soc/mamori/internal/lab"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/rollout"
	"github.com/mamori-soc/mamori/internal/update"
)

// SampleList is the body of GET /api/v1/samples.
type SampleList struct {
	Samples []lab.Sample `json:"samples"`
}

// BandageRequest is the body of POST /api/v1/samples/{sha256}/bandage.
type BandageRequest struct {
	Name string `json:"name"` // the signature name, e.g. Bandage.Acme.Dropper
}

// BandageResponse answers POST /api/v1/samples/{sha256}/bandage.
type BandageResponse struct {
	Record  string           `json:"record"`
	Release update.Release   `json:"release"`
	Rollout *rollout.Rollout `json:"rollout,omitempty"`
}

func (s *Server) labReady(w http.ResponseWriter) bool {
	return available(w, s.Lab != nil, "the sample lab is not running on this server")
}

func labProblem(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, lab.ErrNotFound):
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such sample")
	case errors.Is(err, lab.ErrTooLarge):
		writeProblem(w, http.StatusRequestEntityTooLarge, CodeTooLarge, err.Error())
	case errors.Is(err, lab.ErrInvalid):
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	default:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

// agentSample takes a sample from an agent: the raw bytes as the body,
// what the agent knows of it as query parameters.
func (s *Server) agentSample(w http.ResponseWriter, r *http.Request) {
	if !s.labReady(w) {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	a, ok := s.Fleet.Get(p.Name)
	if !ok {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such agent")
		return
	}
	q := r.URL.Query()
	smp, err := s.Lab.Put(r.Context(), r.Body, lab.Sighting{Tenant: a.Tenant, Agent: a.ID,
		Name: q.Get("name"), Detection: q.Get("detection"), QuarantineID: q.Get("quarantine_id")})
	if err != nil {
		labProblem(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, smp)
}

func (s *Server) listSamples(w http.ResponseWriter, r *http.Request) {
	if !s.labReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := s.Lab.List(r.Context(), tenants, limit)
	if err != nil {
		labProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, SampleList{Samples: list})
}

func (s *Server) getSample(w http.ResponseWriter, r *http.Request) {
	if !s.labReady(w) {
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	smp, err := s.Lab.Get(r.Context(), r.PathValue("sha256"), tenants)
	if err != nil {
		labProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, smp)
}

// sampleContent hands a sample's bytes to an admin for analysis, as an
// attachment that no browser renders.
func (s *Server) sampleContent(w http.ResponseWriter, r *http.Request) {
	if !s.labReady(w) {
		return
	}
	p, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha256")
	data, err := s.Lab.Content(sha)
	if err != nil {
		labProblem(w, err)
		return
	}
	s.Logger.Warn("sample downloaded", "sha256", sha, "by", p.Name)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+sha+`.sample"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// sampleBandage makes an exact-hash bandage pattern of a sample and
// publishes it on the bandage channel (its current content plus this
// record): the lab's answer to a new variant, out to every agent in the
// fast lane. The known-clean check and compile check of any bandage apply.
func (s *Server) sampleBandage(w http.ResponseWriter, r *http.Request) {
	if !s.labReady(w) || !s.releasesReady(w) {
		return
	}
	p, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var req BandageRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := pattern.ValidName(req.Name); err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "name"})
		return
	}
	smp, err := s.Lab.Get(r.Context(), r.PathValue("sha256"), nil)
	if err != nil {
		labProblem(w, err)
		return
	}
	record := lab.BandageRecord(smp, req.Name)
	var lines []string
	if rels := s.Releases.Releases("bandage"); len(rels) > 0 {
		cur, err := s.Releases.Content("bandage", rels[len(rels)-1].Version)
		if err != nil {
			writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
			return
		}
		for _, rec := range cur {
			lines = append(lines, string(rec))
		}
	}
	if slices.Contains(lines, record) {
		writeProblem(w, http.StatusConflict, CodeConflict, "the bandage channel already carries "+record)
		return
	}
	recs, fastLane, err := s.checkRecords("bandage", append(lines, record))
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errKnownClean) {
			status = http.StatusConflict
		}
		writeProblem(w, status, CodeBadRequest, err.Error())
		return
	}
	out := BandageResponse{Record: record}
	if s.Rollouts != nil {
		var ro rollout.Rollout
		out.Release, ro, err = s.Rollouts.Publish(r.Context(), "bandage", recs, update.PublishOptions{}, fastLane)
		out.Rollout = &ro
	} else {
		out.Release, err = s.Releases.Publish(r.Context(), "bandage", recs, update.PublishOptions{})
	}
	if err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	s.Logger.Info("bandage published from a lab sample", "sha256", smp.SHA256, "name", req.Name, "version", out.Release.Version, "by", p.Name)
	writeJSON(w, http.StatusCreated, out)
}
