package api

import (
	"context"
	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/detect"
	"github.com/mamori-soc/mamori/internal/intel"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/ingest"
	"github.com/mamori-soc/mamori/internal/lab"
	"github.com/mamori-soc/mamori/internal/respond"
	"github.com/mamori-soc/mamori/internal/rollout"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/store"
	"github.com/mamori-soc/mamori/internal/update"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics of the API.
type Metrics struct {
	Requests     *prometheus.CounterVec // route, code
	AuthFailures prometheus.Counter
	QueryTime    *prometheus.HistogramVec // kind
}

// NewMetrics creates and registers the API metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamori_api_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		AuthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamori_api_auth_failures_total", Help: "Requests refused for an unknown token.",
		}),
		QueryTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mamori_store_query_seconds", Help: "Events store query time by kind (events, total, histogram, pipe).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.Requests, m.AuthFailures, m.QueryTime)
	return m
}

// Server is the HTTP API.
type Server struct {
	State    *state.DB
	Store    store.Store
	Pipeline *ingest.Pipeline
	// Alerts is nil when detection does not run (the alert endpoints answer 503).
	Alerts *alert.Store
	// Detect is nil when detection does not run.
	Detect *detect.Engine
	// Intel is nil when detection does not run.
	Intel *intel.Store
	// Fleet is the agent registry; nil when agents are not managed here.
	Fleet *fleet.Fleet
	// Releases is the signed pattern repository and Updates its endpoints
	// (mounted at /update/v1/ for agents); nil when patterns are not
	// distributed.
	Releases *update.Repo
	Updates  http.Handler
	// Rollouts gates releases in rings; nil: every agent follows the latest.
	Rollouts *rollout.Controller
	// Commands queues measures for agents (isolate, scan, quarantine…);
	// nil: no commands.
	Commands *respond.Queue
	// Lab keeps the samples agents upload; nil: no lab.
	Lab *lab.Store
	// AgentCA issues agents their client certificates at enrollment and
	// AgentsTLSURL says where they use them (the agents' TLS listener, as
	// reached by the enrolling request r); nil: bearer credentials only.
	AgentCA      *fleet.CA
	AgentsTLSURL func(r *http.Request) string
	// RequireMTLS refuses agent requests without a verified client
	// certificate.
	RequireMTLS bool
	// KnownClean reports whether a hash (hex) is that of a known-clean
	// file, and which; nil: no known-clean set.
	KnownClean func(hash string) (file string, ok bool)
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	Metrics    *Metrics
	Ready      func(ctx context.Context) error
	MaxBody    int64
	MaxLine    int
	DefaultTen string
	// ReloadRouter is called after a source mapping changed.
	ReloadRouter func(ctx context.Context) error

	doc    map[string]any      // the OpenAPI document, built from Routes
	pushes *update.EventStream // the agents' push streams (nil without patterns)
}

// Route is one API endpoint; the same table builds the mux and the
// OpenAPI document, so the two cannot drift.
type Route struct {
	Method, Path, Summary string
	Public                bool
	handler               func(*Server) http.HandlerFunc
}

// agentPrefix marks the routes that take an enrolled agent's credential
// instead of an API token.
const agentPrefix = "/api/v1/agent/"

// Agent reports whether the route is for endpoint agents.
func (rt Route) Agent() bool { return strings.HasPrefix(rt.Path, agentPrefix) }

// Routes lists every endpoint.
var Routes = []Route{
	{"GET", "/healthz", "Liveness: the process serves HTTP.", true, func(s *Server) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) }
	}},
	{"GET", "/readyz", "Readiness: bus and store answer.", true, func(s *Server) http.HandlerFunc { return s.readyz }},
	{"GET", "/metrics", "Prometheus metrics.", true, func(s *Server) http.HandlerFunc {
		return promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}).ServeHTTP
	}},
	{"POST", "/api/v1/ingest", "Ingest NDJSON, one JSON event or plain log lines; 202 once durable.", false, func(s *Server) http.HandlerFunc { return s.ingest }},
	{"GET", "/api/v1/events", "Search events (q, from, to, limit, lang, tenant).", false, func(s *Server) http.HandlerFunc { return s.events }},
	{"GET", "/api/v1/tenants", "List tenants visible to the caller.", false, func(s *Server) http.HandlerFunc { return s.listTenants }},
	{"POST", "/api/v1/tenants", "Create a tenant (admin).", false, func(s *Server) http.HandlerFunc { return s.addTenant }},
	{"POST", "/api/v1/tenants/{name}/tokens", "Create an ingest or read token for a tenant (admin).", false, func(s *Server) http.HandlerFunc { return s.createToken }},
	{"GET", "/api/v1/tenants/{name}/sources", "List a tenant's source mappings (admin).", false, func(s *Server) http.HandlerFunc { return s.listSources }},
	{"POST", "/api/v1/tenants/{name}/sources", "Map a CIDR or TLS certificate subject to a tenant (admin).", false, func(s *Server) http.HandlerFunc { return s.addSource }},
	{"GET", "/api/v1/alerts", "List alerts (tenant, severity, min_severity, status, rule, kind, since, limit).", false, func(s *Server) http.HandlerFunc { return s.listAlerts }},
	{"GET", "/api/v1/alerts/stream", "New and updated alerts as server-sent events (tenant).", false, func(s *Server) http.HandlerFunc { return s.streamAlerts }},
	{"GET", "/api/v1/alerts/{id}", "One alert.", false, func(s *Server) http.HandlerFunc { return s.getAlert }},
	{"PATCH", "/api/v1/alerts/{id}", "Set an alert's status: open, acknowledged, closed (admin).", false, func(s *Server) http.HandlerFunc { return s.patchAlert }},
	{"GET", "/api/v1/rules", "The loaded rule set: counts, rules skipped with file and reason.", false, func(s *Server) http.HandlerFunc { return s.getRules }},
	{"POST", "/api/v1/rules/reload", "Recompile the rules from their sources and swap them in (admin).", false, func(s *Server) http.HandlerFunc { return s.reloadRules }},
	{"GET", "/api/v1/intel", "List indicators (type, source, contains, tenant, limit).", false, func(s *Server) http.HandlerFunc { return s.listIntel }},
	{"POST", "/api/v1/intel", "Add indicators or one manual entry; new ones are retro-hunted in stored events (admin).", false, func(s *Server) http.HandlerFunc { return s.addIntel }},
	{"DELETE", "/api/v1/intel", "Remove an indicator (type, value, tenant) (admin).", false, func(s *Server) http.HandlerFunc { return s.removeIntel }},
	{"GET", "/api/v1/exceptions", "List alert exceptions visible to the caller.", false, func(s *Server) http.HandlerFunc { return s.listExceptions }},
	{"POST", "/api/v1/exceptions", "Add an exception: suppress a rule's alerts for a tenant, optionally where a field matches (admin).", false, func(s *Server) http.HandlerFunc { return s.addException }},
	{"DELETE", "/api/v1/exceptions/{id}", "Remove an exception (admin).", false, func(s *Server) http.HandlerFunc { return s.deleteException }},
	{"POST", "/api/v1/agents/enroll", "Enroll an endpoint agent (enroll token; csr: a certificate request for its key); returns its credential, client certificate, the agent CA and TLS URL, and the pattern repository's trusted root.", false, func(s *Server) http.HandlerFunc { return s.enrollAgent }},
	{"GET", "/api/v1/agents", "List enrolled agents (tenant).", false, func(s *Server) http.HandlerFunc { return s.listAgents }},
	{"GET", "/api/v1/agents/{id}", "One agent: platform, ring, health, active pattern releases, how it authenticates.", false, func(s *Server) http.HandlerFunc { return s.getAgent }},
	{"DELETE", "/api/v1/agents/{id}", "Remove an agent: its credential and client certificate stop working at once (admin).", false, func(s *Server) http.HandlerFunc { return s.removeAgent }},
	{"POST", "/api/v1/agent/heartbeat", "An agent's heartbeat: its version and health (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentHeartbeat }},
	{"GET", "/api/v1/agent/desired", "The release versions the agent may have active per channel under a rollout (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentDesired }},
	{"POST", "/api/v1/agent/report", "An agent reports a release active, failed or rolled back (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentReport }},
	{"POST", "/api/v1/agents/{id}/commands", "Order a measure on an agent: isolate, release, scan, quarantine, restore, upload_sample (admin).", false, func(s *Server) http.HandlerFunc { return s.issueCommand }},
	{"GET", "/api/v1/agents/{id}/commands", "An agent's commands, newest first, with their outcome (limit).", false, func(s *Server) http.HandlerFunc { return s.listCommands }},
	{"GET", "/api/v1/commands/{id}", "One command and its outcome.", false, func(s *Server) http.HandlerFunc { return s.getCommand }},
	{"DELETE", "/api/v1/commands/{id}", "Withdraw a command not yet delivered (admin).", false, func(s *Server) http.HandlerFunc { return s.cancelCommand }},
	{"GET", "/api/v1/agent/commands", "The calling agent's pending commands; they are marked delivered (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentCommands }},
	{"POST", "/api/v1/agent/commands/{id}", "The outcome of a command: ok, result, error (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentCommandOutcome }},
	{"POST", "/api/v1/agent/certificate", "Renew the calling agent's client certificate for a new key (csr); the old one stops working (agent credential).", false, func(s *Server) http.HandlerFunc { return s.renewAgentCert }},
	{"POST", "/api/v1/agent/logs", "Ship log lines or NDJSON events from the agent's host into its tenant; 202 once durable (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentLogs }},
	{"POST", "/api/v1/agent/samples", "Upload a sample (raw body; name, detection, quarantine_id) to the lab (agent credential).", false, func(s *Server) http.HandlerFunc { return s.agentSample }},
	{"GET", "/api/v1/samples", "Lab samples sighted by the caller's tenants, most recent first (tenant, limit).", false, func(s *Server) http.HandlerFunc { return s.listSamples }},
	{"GET", "/api/v1/samples/{sha256}", "One sample: hashes, size, sightings (tenant).", false, func(s *Server) http.HandlerFunc { return s.getSample }},
	{"GET", "/api/v1/samples/{sha256}/content", "A sample's bytes as an attachment, for analysis (admin).", false, func(s *Server) http.HandlerFunc { return s.sampleContent }},
	{"POST", "/api/v1/samples/{sha256}/bandage", "Publish an exact-hash bandage pattern of a sample on the bandage channel (admin).", false, func(s *Server) http.HandlerFunc { return s.sampleBandage }},
	{"GET", "/api/v1/patterns", "Pattern releases per channel.", false, func(s *Server) http.HandlerFunc { return s.listPatterns }},
	{"POST", "/api/v1/patterns/{channel}", "Publish a signed pattern release (records) or roll back to an earlier version (admin).", false, func(s *Server) http.HandlerFunc { return s.publishPatterns }},
	{"GET", "/api/v1/patterns/{channel}/{version}", "A release and its time to protect per tenant: agents active, p50/p99/100 % seconds after publication.", false, func(s *Server) http.HandlerFunc { return s.patternStatus }},
	{"GET", "/api/v1/patterns/{channel}/{version}/diff", "Records added and removed between release ?from= and this one.", false, func(s *Server) http.HandlerFunc { return s.diffPatterns }},
	{"GET", "/api/v1/patterns/{channel}/policy", "The channel's policy (latest, pin, delay) per tenant the caller may read, and what it gives now.", false, func(s *Server) http.HandlerFunc { return s.getPolicy }},
	{"PUT", "/api/v1/patterns/{channel}/policy", "Set a tenant's policy for the channel: latest, pin a version or delay releases (admin; ?tenant=).", false, func(s *Server) http.HandlerFunc { return s.putPolicy }},
	{"GET", "/api/v1/openapi.json", "This API's OpenAPI document.", false, func(s *Server) http.HandlerFunc { return s.openapi }},
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	s.doc = OpenAPI(Routes)
	mux := http.NewServeMux()
	for _, rt := range Routes {
		h := rt.handler(s)
		switch {
		case rt.Agent():
			h = s.authenticateAgent(h).ServeHTTP
		case !rt.Public:
			h = s.authenticate(h)
		}
		pattern := rt.Method + " " + rt.Path
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	// Profiling for operators: admin only, never public.
	mux.Handle("GET /debug/pprof/", s.authenticate(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := requireAdmin(w, r); ok {
			pprof.Index(w, r)
		}
	}))
	mux.Handle("GET /debug/pprof/profile", s.authenticate(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := requireAdmin(w, r); ok {
			pprof.Profile(w, r)
		}
	}))
	// Pattern distribution for agents: signed metadata, content-addressed
	// blobs, the push stream. Agent credentials only.
	if s.Updates != nil {
		mux.Handle("GET /update/v1/events", s.instrument("/update/v1/events", s.authenticateAgent(s.agentEvents())))
		mux.Handle("/update/v1/", s.instrument("/update/v1/", s.authenticateAgent(http.StripPrefix("/update/v1", s.Updates))))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

// Unwrap lets http.ResponseController reach the connection (the agents'
// push stream takes it over).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		h.ServeHTTP(sw, r)
		s.Metrics.Requests.WithLabelValues(route, http.StatusText(sw.code)).Inc()
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			writeProblem(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
			return
		}
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}
