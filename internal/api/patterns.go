package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/rollout"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/update"
)

// Channels are the pattern channels the API lists.
var Channels = []string{"main", "bandage", "cleanup"}

// PublishRequest is the body of POST /api/v1/patterns/{channel}: the
// release's records in canonical one-line form (pattern.Record.String), or
// an earlier version to roll back to.
type PublishRequest struct {
	Records    []string `json:"records,omitempty"`
	RollbackTo uint64   `json:"rollback_to,omitempty"`
}

// PatternStatus is the body of GET /api/v1/patterns/{channel}/{version}.
type PatternStatus struct {
	Release update.Release `json:"release"`
	// Protection per tenant the caller may read, and over all of them.
	Tenants []fleet.Protection `json:"tenants"`
	All     *fleet.Protection  `json:"all,omitempty"`
	// Rollout is the release's ring rollout (releases published since
	// rollouts are kept).
	Rollout *rollout.Rollout `json:"rollout,omitempty"`
	// Policies are the channel's policies other than latest of the tenants
	// the caller may read.
	Policies []rollout.PolicyStatus `json:"policies,omitempty"`
}

// Stable error codes of the pattern endpoints.
const (
	CodePolicyInvalid     = "policy_invalid"
	CodeReleaseRolledBack = "release_rolled_back"
)

// PolicyRequest is the body of PUT /api/v1/patterns/{channel}/policy.
type PolicyRequest struct {
	Mode    string `json:"mode"`              // latest, pin or delay
	Version uint64 `json:"version,omitempty"` // pin: the version to stay on
	Delay   string `json:"delay,omitempty"`   // delay: e.g. "6h", "2d"
}

// PolicyList is the body of GET /api/v1/patterns/{channel}/policy.
type PolicyList struct {
	Policies []rollout.PolicyStatus `json:"policies"`
}

// PatternDiff is the body of GET /api/v1/patterns/{channel}/{version}/diff.
type PatternDiff struct {
	Channel string   `json:"channel"`
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

func (s *Server) releasesReady(w http.ResponseWriter) bool {
	return available(w, s.Releases != nil, "pattern distribution is not running on this server")
}

func (s *Server) publishPatterns(w http.ResponseWriter, r *http.Request) {
	if !s.releasesReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	channel := r.PathValue("channel")
	if err := update.ValidChannel(channel); err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "channel"})
		return
	}
	var req PublishRequest
	if !decodeBodyLimit(w, r, &req, max(s.MaxBody, 1<<20)) { // a main release can be tens of MB
		return
	}
	var recs update.Records
	fastLane := req.RollbackTo > 0 // a rollback is an emergency: everyone at once
	if req.RollbackTo == 0 {
		var err error
		if recs, fastLane, err = s.checkRecords(channel, req.Records); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, errKnownClean) {
				status = http.StatusConflict
			}
			writeProblemAt(w, Problem{Status: status, Code: CodeBadRequest, Detail: err.Error(), Field: "records"})
			return
		}
	} else if len(req.Records) > 0 {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "a rollback carries no records", Field: "records"})
		return
	}
	opts := update.PublishOptions{RollbackTo: req.RollbackTo}
	var rel update.Release
	var ro rollout.Rollout
	var err error
	if s.Rollouts != nil {
		rel, ro, err = s.Rollouts.Publish(r.Context(), channel, recs, opts, fastLane)
	} else {
		rel, err = s.Releases.Publish(r.Context(), channel, recs, opts)
	}
	if err != nil {
		writeProblem(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	s.Logger.Info("pattern release published", "channel", channel, "version", rel.Version, "records", rel.Records,
		"rollback_of", rel.RollbackOf, "rollout_percent", ro.Percent, "fast_lane", ro.FastLane)
	writeJSON(w, http.StatusCreated, rel)
}

var errKnownClean = errors.New("refused: the hash of a known-clean file")

// checkRecords parses and compiles a release's records as agents will: a
// release that does not compile cleanly is refused, and so is a bandage
// hash signature of a known-clean file (a bandage must never quarantine a
// system file). fastLane: a bandage of exact hashes only, which may skip
// the rollout rings.
func (s *Server) checkRecords(channel string, lines []string) (recs update.Records, fastLane bool, err error) {
	if len(lines) == 0 {
		return nil, false, errors.New("no records")
	}
	fastLane = channel == "bandage"
	parsed := make([]pattern.Record, 0, len(lines))
	out := make(update.Records, 0, len(lines))
	for i, l := range lines {
		rec, err := pattern.ParseRecord(l)
		if err != nil {
			return nil, false, fmt.Errorf("record %d: %w", i+1, err)
		}
		fastLane = fastLane && rec.Kind == pattern.KindHash
		if channel == "bandage" && rec.Kind == pattern.KindHash && s.KnownClean != nil {
			hash, _, _ := strings.Cut(rec.Data, ":")
			if file, clean := s.KnownClean(hash); clean {
				return nil, false, fmt.Errorf("record %d (%s): %w %s", i+1, rec.Name, errKnownClean, file)
			}
		}
		parsed = append(parsed, rec)
		out = append(out, []byte(rec.String()))
	}
	if _, warns, err := pattern.Compile(parsed); err != nil {
		return nil, false, err
	} else if len(warns) > 0 {
		return nil, false, fmt.Errorf("%d records do not compile, first: %v", len(warns), warns[0])
	}
	return out, fastLane, nil
}

func (s *Server) listPatterns(w http.ResponseWriter, r *http.Request) {
	if !s.releasesReady(w) {
		return
	}
	out := map[string][]update.Release{}
	for _, c := range Channels {
		out[c] = append([]update.Release{}, s.Releases.Releases(c)...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

func (s *Server) patternStatus(w http.ResponseWriter, r *http.Request) {
	if !s.releasesReady(w) || !s.fleetReady(w) {
		return
	}
	channel := r.PathValue("channel")
	version, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "version: not a number", Field: "version"})
		return
	}
	var rel *update.Release
	for _, x := range s.Releases.Releases(channel) {
		if x.Version == version {
			rel = &x
			break
		}
	}
	if rel == nil {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such release")
		return
	}
	tenants, ok := s.alertScope(w, r)
	if !ok {
		return
	}
	out := PatternStatus{Release: *rel, Tenants: []fleet.Protection{}}
	if s.Rollouts != nil {
		if ro, ok := s.Rollouts.Get(channel, version); ok {
			out.Rollout = &ro
		}
		for _, ps := range s.Rollouts.Policies(channel) {
			if tenants == nil || slices.Contains(tenants, ps.Tenant) {
				out.Policies = append(out.Policies, ps)
			}
		}
	}
	if tenants == nil { // an admin who named no tenant: every tenant, and the total
		for _, t := range s.State.Tenants() {
			tenants = append(tenants, t.Name)
		}
		all := s.Fleet.Protection("", channel, version, rel.PublishedAt)
		out.All = &all
	}
	for _, t := range tenants {
		p := s.Fleet.Protection(t, channel, version, rel.PublishedAt)
		if p.Agents > 0 {
			out.Tenants = append(out.Tenants, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) rolloutsReady(w http.ResponseWriter) bool {
	return available(w, s.Rollouts != nil, "pattern rollouts are not running on this server")
}

// getPolicy lists the channel's policy of every tenant the caller may read
// (an admin: all tenants, or those named by ?tenant=).
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.rolloutsReady(w) {
		return
	}
	channel := r.PathValue("channel")
	if err := update.ValidChannel(channel); err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "channel"})
		return
	}
	p, _ := PrincipalFrom(r.Context())
	tenants, err := s.scope(p, splitList(r.URL.Query()["tenant"]))
	switch {
	case errors.Is(err, errForbidden):
		writeProblem(w, http.StatusForbidden, CodeForbidden, "this token cannot read that tenant's pattern policy")
		return
	case errors.Is(err, errUnknownTenant):
		writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: "no such tenant", Field: "tenant"})
		return
	case err != nil:
		writeProblem(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	out := PolicyList{Policies: []rollout.PolicyStatus{}}
	for _, t := range tenants {
		out.Policies = append(out.Policies, s.Rollouts.Policy(t, channel))
	}
	writeJSON(w, http.StatusOK, out)
}

// putPolicy sets one tenant's policy (admin; the tenant by ?tenant=).
// Tenants' own tokens read their policy but do not set it: a read token
// that could pin a fleet to an old release would not be read-only.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.rolloutsReady(w) {
		return
	}
	if _, ok := requireAdmin(w, r); !ok {
		return
	}
	channel := r.PathValue("channel")
	if err := update.ValidChannel(channel); err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: err.Error(), Field: "channel"})
		return
	}
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "name the tenant whose policy to set (?tenant=, the CLI's --tenant)", Field: "tenant"})
		return
	}
	if _, ok := s.State.Tenant(tenant); !ok {
		writeProblemAt(w, Problem{Status: 404, Code: CodeTenantUnknown, Detail: fmt.Sprintf("no tenant %q", tenant), Field: "tenant"})
		return
	}
	var req PolicyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	pol := rollout.Policy{Mode: req.Mode, Version: req.Version}
	if req.Delay != "" {
		d, err := config.ParseDuration(req.Delay)
		if err != nil {
			writeProblemAt(w, Problem{Status: 400, Code: CodePolicyInvalid, Detail: err.Error(), Field: "delay"})
			return
		}
		pol.Delay = d
	}
	st, err := s.Rollouts.SetPolicy(r.Context(), tenant, channel, pol)
	switch {
	case errors.Is(err, rollout.ErrInvalidPolicy):
		field := "mode"
		if req.Mode == rollout.PolicyDelay {
			field = "delay"
		} else if req.Mode == rollout.PolicyPin {
			field = "version"
		}
		writeProblemAt(w, Problem{Status: 400, Code: CodePolicyInvalid, Detail: err.Error(), Field: field})
		return
	case errors.Is(err, rollout.ErrUnknownVersion):
		writeProblemAt(w, Problem{Status: 404, Code: CodeNotFound, Detail: err.Error(), Field: "version"})
		return
	case errors.Is(err, rollout.ErrRolledBack):
		writeProblemAt(w, Problem{Status: 409, Code: CodeReleaseRolledBack, Detail: err.Error(), Field: "version"})
		return
	case err != nil:
		s.Logger.Error("set pattern policy", "tenant", tenant, "channel", channel, "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "the policy could not be saved")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// diffPatterns returns the records added and removed going from ?from= to
// a release. Any admin or read token: every agent holds the records.
func (s *Server) diffPatterns(w http.ResponseWriter, r *http.Request) {
	if !s.releasesReady(w) {
		return
	}
	if p, _ := PrincipalFrom(r.Context()); !p.IsAdmin() && p.Kind != state.TokenRead {
		writeProblem(w, http.StatusForbidden, CodeForbidden, "reading pattern releases needs an admin or read token")
		return
	}
	channel := r.PathValue("channel")
	to, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "version: not a number", Field: "version"})
		return
	}
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil {
		writeProblemAt(w, Problem{Status: 400, Code: CodeBadRequest, Detail: "from: the version to compare with, a number", Field: "from"})
		return
	}
	removed, added, err := s.Releases.Diff(channel, from, to)
	switch {
	case errors.Is(err, update.ErrNotFound), errors.Is(err, update.ErrInvalid):
		writeProblem(w, http.StatusNotFound, CodeNotFound, err.Error())
		return
	case err != nil:
		s.Logger.Error("diff pattern releases", "channel", channel, "err", err)
		writeProblem(w, http.StatusInternalServerError, CodeInternal, "the releases could not be read")
		return
	}
	out := PatternDiff{Channel: channel, From: from, To: to, Added: make([]string, len(added)), Removed: make([]string, len(removed))}
	for i, rec := range added {
		out.Added[i] = string(rec)
	}
	for i, rec := range removed {
		out.Removed[i] = string(rec)
	}
	writeJSON(w, http.StatusOK, out)
}
