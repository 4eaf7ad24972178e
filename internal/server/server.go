package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/bus"
	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/ingest"
	"github.com/mamori-soc/mamori/internal/ingest/relp"
	"github.com/mamori-soc/mamori/internal/lab"
	"github.com/mamori-soc/mamori/internal/persist"
	"github.com/mamori-soc/mamori/internal/respond"
	"github.com/mamori-soc/mamori/internal/state"
	"github.com/mamori-soc/mamori/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Addresses are the bound listener addresses, written to
// <data>/run/addresses.json so tools and tests can find ports chosen by the
// OS (an address ending in :0).
type Addresses struct {
	HTTP      string `json:"http,omitempty"`
	SyslogUDP string `json:"syslog_udp,omitempty"`
	SyslogTCP string `json:"syslog_tcp,omitempty"`
	SyslogTLS string `json:"syslog_tls,omitempty"`
	RELP      string `json:"relp,omitempty"`
	TLSCert   string `json:"tls_cert,omitempty"`
	AgentsTLS string `json:"agents_tls,omitempty"`
	PID       int    `json:"pid"`
}

// AdminTokenFile is where a generated admin token is kept (mode 0600).
const AdminTokenFile = "admin.token"

func bindErr(what, addr, key string, err error) error {
	hint := ""
	if errors.Is(err, syscall.EADDRINUSE) {
		hint = " (another mamori or syslog daemon?)"
	}
	return fmt.Errorf("cannot bind %s %s: %w%s; set %s or %s", what, addr, err, hint, key, config.EnvKey(key))
}

// Run starts everything, prints where it listens to out, and blocks until
// ctx ends; then it shuts down cleanly.
func Run(ctx context.Context, cfg config.Config, out io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.Data, err)
	}
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st, err := state.Open(ctx, filepath.Join(cfg.Data, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Tenants.Default != "" {
		if _, err := st.EnsureTenant(ctx, cfg.Tenants.Default); err != nil {
			return fmt.Errorf("default tenant: %w", err)
		}
	}
	adminSecret, err := ensureAdmin(ctx, st, cfg)
	if err != nil {
		return err
	}

	b, err := bus.Open(ctx, bus.Options{URL: cfg.NATS.URL, DataDir: filepath.Join(cfg.Data, "bus"), Replicas: cfg.NATS.Replicas,
		MaxBytes: int64(cfg.NATS.MaxBytes), MaxAge: cfg.NATS.MaxAge.D(), Logger: log.With("component", "bus")})
	if err != nil {
		return err
	}
	defer b.Close()

	events, err := store.Open(cfg.Events.URL, cfg.Data, st.TenantID)
	if err != nil {
		return err
	}
	defer events.Close()

	// Persister: bus → store. Its consumer exists before anything is
	// published; it runs until the pipeline has drained.
	pm := persist.NewMetrics(reg)
	pm.NoTenantLabel = !cfg.Metrics.TenantLabels
	pers := &persist.Persister{Bus: b, Store: events, Logger: log.With("component", "persist"), Metrics: pm, SyncEvery: cfg.Events.SyncInterval.D()}
	if err := pers.Ensure(ctx); err != nil {
		return err
	}
	// Detection: its consumer also exists before anything is published.
	det, err := openDetection(ctx, cfg, st, b, events, reg, log)
	if err != nil {
		return err
	}
	if det != nil {
		det.start(ctx)
		defer det.close()
	}

	pctx, stopPersist := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPersist()
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		if err := pers.Run(pctx); err != nil {
			log.Error("persister stopped", "err", err)
		}
	}()

	im := ingest.NewMetrics(reg)
	im.NoTenantLabel = !cfg.Metrics.TenantLabels
	pipe := ingest.NewPipeline(b, ingest.PipelineOptions{
		BatchEvents: cfg.Ingest.BatchEvents, BatchBytes: int(cfg.Ingest.BatchBytes), BatchWait: cfg.Ingest.BatchWait.D(),
		MaxPending: cfg.Ingest.MaxPending, Logger: log.With("component", "ingest"), Metrics: im,
	})
	defaultTenant := cfg.Tenants.Default
	if cfg.Tenants.RejectUnmapped {
		defaultTenant = ""
	}
	router := ingest.NewRouter(defaultTenant)
	reloadRouter := func(ctx context.Context) error {
		ms, err := st.Mappings(ctx)
		if err != nil {
			return err
		}
		m := ingest.Mappings{CIDRs: map[string]string{}, CertSubjects: map[string]string{}}
		for _, x := range ms {
			if x.Kind == state.MapCIDR {
				m.CIDRs[x.Value] = x.Tenant
			} else {
				m.CertSubjects[x.Value] = x.Tenant
			}
		}
		return router.Load(m)
	}
	if err := reloadRouter(ctx); err != nil {
		return fmt.Errorf("load source mappings: %w", err)
	}
	for _, lt := range []string{cfg.Syslog.UDP.Tenant, cfg.Syslog.TCP.Tenant, cfg.Syslog.TLS.Tenant, cfg.RELP.Tenant} {
		if lt != "" {
			if _, err := st.EnsureTenant(ctx, lt); err != nil {
				return fmt.Errorf("listener tenant: %w", err)
			}
		}
	}
	lis := &ingest.Listeners{Pipeline: pipe, Router: router, MaxFrame: int(cfg.Syslog.MaxFrame), ChunkFrames: 512,
		ChunkWait: 5 * time.Millisecond, Logger: log, Metrics: im}

	lctx, stopListeners := context.WithCancel(ctx)
	defer stopListeners()
	var lwg sync.WaitGroup
	addrs := Addresses{PID: os.Getpid()}
	serve := func(fn func() error) {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			if err := fn(); err != nil {
				log.Error("listener stopped", "err", err)
			}
		}()
	}
	if a := cfg.Syslog.UDP.Addr; a != "" {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return bindErr("syslog UDP", a, "syslog.udp.addr", err)
		}
		if uc, ok := pc.(*net.UDPConn); ok && cfg.Syslog.UDPBuffer > 0 {
			_ = uc.SetReadBuffer(int(cfg.Syslog.UDPBuffer))
		}
		addrs.SyslogUDP = pc.LocalAddr().String()
		serve(func() error { return lis.ServeUDP(lctx, pc, cfg.Syslog.UDP.Tenant) })
	}
	if a := cfg.Syslog.TCP.Addr; a != "" {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return bindErr("syslog TCP", a, "syslog.tcp.addr", err)
		}
		addrs.SyslogTCP = ln.Addr().String()
		serve(func() error { return lis.ServeStream(lctx, ln, ingest.SourceTCP, cfg.Syslog.TCP.Tenant) })
	}
	if a := cfg.Syslog.TLS.Addr; a != "" {
		tc, certFile, err := ingest.ServerTLSConfig(ingest.TLSOptions{CertFile: cfg.Syslog.TLS.CertFile, KeyFile: cfg.Syslog.TLS.KeyFile,
			ClientCAFile: cfg.Syslog.TLS.ClientCAFile, ClientAuth: cfg.Syslog.TLS.ClientAuth, Dir: filepath.Join(cfg.Data, "tls")})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return bindErr("syslog TLS", a, "syslog.tls.addr", err)
		}
		addrs.SyslogTLS, addrs.TLSCert = ln.Addr().String(), certFile
		serve(func() error {
			return lis.ServeStream(lctx, tls.NewListener(ln, tc), ingest.SourceTLS, cfg.Syslog.TLS.Tenant)
		})
	}
	var relpSrv *relp.Server
	if a := cfg.RELP.Addr; a != "" {
		// relp.Listen clamps the segment size: librelp corks its socket, and
		// with loopback's 64 KiB segments each window would wait for the
		// kernel's 200 ms cork timeout.
		ln, err := relp.Listen(ctx, "tcp", a)
		if err != nil {
			return bindErr("RELP", a, "relp.addr", err)
		}
		addrs.RELP = ln.Addr().String()
		relpSrv = &relp.Server{MaxFrame: int(cfg.Syslog.MaxFrame), MaxBatch: 1024, Handler: lis.RELPHandler(cfg.RELP.Tenant), Logger: log.With("component", "relp")}
		serve(func() error { return relpSrv.Serve(lctx, ln) })
	}

	apiSrv := &api.Server{State: st, Store: events, Pipeline: pipe, Gatherer: reg, Logger: log.With("component", "api"),
		Metrics: api.NewMetrics(reg), MaxBody: int64(cfg.HTTP.MaxBodyBytes), MaxLine: max(int(cfg.Syslog.MaxFrame), 1<<20),
		DefaultTen: cfg.Tenants.Default, ReloadRouter: reloadRouter,
		Ready: func(ctx context.Context) error {
			if _, err := b.Info(ctx); err != nil {
				return err
			}
			ts := st.Tenants()
			if len(ts) == 0 {
				return nil
			}
			return events.Query(ctx, []string{ts[0].Name}, time.Now().Add(-time.Minute), time.Now(), "* | limit 1", func(store.Row) error { return nil })
		}}
	if det != nil {
		apiSrv.Alerts, apiSrv.Detect, apiSrv.Intel = det.alerts, det.engine, det.intel
	}
	pats, err := openPatterns(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	if pats != nil {
		defer pats.close()
		apiSrv.Fleet, apiSrv.Releases, apiSrv.Updates, apiSrv.Rollouts = pats.fleet, pats.repo, pats.handler, pats.rollouts
		if len(pats.knownClean) > 0 {
			apiSrv.KnownClean = pats.isKnownClean
		}
		if apiSrv.Commands, err = respond.Open(ctx, st.SQL(), respond.Options{Logger: log.With("component", "respond")}); err != nil {
			return err
		}
		if apiSrv.Lab, err = lab.Open(ctx, st.SQL(), filepath.Join(cfg.Data, "samples"), filepath.Join(cfg.Data, "keys", "samples.key"),
			lab.Options{Logger: log.With("component", "lab")}); err != nil {
			return err
		}
		reg.MustRegister(apiSrv.ProtectionCollector())
	}
	hln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return bindErr("HTTP API", cfg.HTTP.Addr, "http.addr", err)
	}
	addrs.HTTP = hln.Addr().String()
	// The agents' TLS listener serves the same API; it exists where agents
	// are managed.
	var agentsLn *agentsTLS
	if pats != nil && cfg.Agents.TLSAddr != "" {
		if agentsLn, err = openAgentsTLS(cfg, log.With("component", "agents-tls")); err != nil {
			hln.Close()
			return err
		}
		apiSrv.AgentCA, apiSrv.AgentsTLSURL = agentsLn.ca, agentsLn.urlFor
		addrs.AgentsTLS = agentsLn.ln.Addr().String()
	}
	apiSrv.RequireMTLS = cfg.Agents.RequireMTLS
	// One handler for both listeners: it holds the agents' push streams.
	handler := apiSrv.Handler()
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	// Idle keep-alive connections go after two minutes: tens of thousands
	// of agents would otherwise each hold one (a goroutine and buffers in
	// the server, a descriptor on both sides) beside their push stream.
	// Heartbeats every minute keep an agent's own connection in use.
	const idleTimeout = 2 * time.Minute
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout, ErrorLog: errLog}
	serve(func() error {
		if err := hs.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	var as *http.Server
	if agentsLn != nil {
		as = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout, ErrorLog: errLog}
		serve(func() error {
			if err := as.Serve(agentsLn.listener()); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}

	rctx, stopRetention := context.WithCancel(ctx)
	defer stopRetention()
	go retentionLoop(rctx, st, events, cfg.Tenants.Retention.D(), cfg.Tenants.RetentionInterval.D(), log.With("component", "retention"))

	if err := writeAddresses(cfg.Data, addrs); err != nil {
		return err
	}
	printBanner(out, cfg, addrs, adminSecret)
	log.Info("mamori serving", "http", addrs.HTTP, "agents_tls", addrs.AgentsTLS, "data", cfg.Data)

	<-ctx.Done()
	log.Info("shutting down: stopping listeners")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopListeners()
	_ = hs.Shutdown(sctx)
	if as != nil {
		_ = as.Shutdown(sctx)
	}
	// Senders still delivering get a few seconds to finish.
	lis.CloseConns(10 * time.Second)
	lwg.Wait()
	if err := pipe.Close(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	// Let the persister catch up so the store holds what the bus holds.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if info, err := b.Info(sctx); err != nil || info.Messages == 0 {
			break
		}
	}
	stopPersist()
	pwg.Wait()
	if det != nil {
		det.close()
	}
	_ = os.Remove(filepath.Join(cfg.Data, "run", "addresses.json"))
	log.Info("shutdown complete")
	return nil
}

func ensureAdmin(ctx context.Context, st *state.DB, cfg config.Config) (newSecret string, err error) {
	if cfg.Auth.AdminToken != "" {
		if _, err := st.AddTokenSecret(ctx, cfg.Auth.AdminToken, state.TokenAdmin, "", "preset"); err != nil && !errors.Is(err, state.ErrExists) {
			return "", fmt.Errorf("preset admin token: %w", err)
		}
		return "", nil
	}
	n, err := st.CountTokens(ctx, state.TokenAdmin)
	if err != nil || n > 0 {
		return "", err
	}
	secret, _, err := st.CreateToken(ctx, state.TokenAdmin, "", "first-start")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(cfg.Data, AdminTokenFile), []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return secret, nil
}

func writeAddresses(dir string, a Addresses) error {
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	b, _ := json.MarshalIndent(a, "", "  ")
	tmp := filepath.Join(run, "addresses.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write addresses: %w", err)
	}
	return os.Rename(tmp, filepath.Join(run, "addresses.json"))
}

func printBanner(out io.Writer, cfg config.Config, a Addresses, adminSecret string) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "mamori is running (data in %s)\n", cfg.Data)
	fmt.Fprintf(&sb, "  HTTP API     http://%s   (search, ingest, /metrics, /healthz)\n", a.HTTP)
	if a.AgentsTLS != "" {
		fmt.Fprintf(&sb, "  agents TLS   %s   (enrolled agents, mutual TLS)\n", a.AgentsTLS)
	}
	if a.SyslogUDP != "" {
		fmt.Fprintf(&sb, "  syslog UDP   %s\n", a.SyslogUDP)
	}
	if a.SyslogTCP != "" {
		fmt.Fprintf(&sb, "  syslog TCP   %s   (octet-counted or LF-framed)\n", a.SyslogTCP)
	}
	if a.SyslogTLS != "" {
		fmt.Fprintf(&sb, "  syslog TLS   %s   (certificate %s)\n", a.SyslogTLS, a.TLSCert)
	}
	if a.RELP != "" {
		fmt.Fprintf(&sb, "  RELP         %s   (acknowledged once durable)\n", a.RELP)
	}
	bus := "embedded NATS JetStream"
	if cfg.NATS.URL != "" {
		bus = "NATS " + cfg.NATS.URL
	}
	ev := "embedded VictoriaLogs engine"
	if cfg.Events.URL != "" {
		ev = cfg.Events.URL
	}
	fmt.Fprintf(&sb, "  bus: %s; events: %s; state: SQLite\n", bus, ev)
	if adminSecret != "" {
		fmt.Fprintf(&sb, "\nAdmin token (shown once; also in %s):\n  %s\n", filepath.Join(cfg.Data, AdminTokenFile), adminSecret)
	}
	if a.SyslogUDP != "" {
		host, port, _ := net.SplitHostPort(a.SyslogUDP)
		fmt.Fprintf(&sb, "\nSend a first log line:\n  logger -n %s -P %s --udp \"hello mamori\"\n", host, port)
	}
	fmt.Fprintf(&sb, "Then find it:\n  MAMORI_TOKEN=<admin token> mamori search hello --since 1h --server http://%s\n", a.HTTP)
	_, _ = io.WriteString(out, sb.String())
}

func retentionLoop(ctx context.Context, st *state.DB, events store.Store, def, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, tn := range st.Tenants() {
			ret := tn.Retention
			if ret <= 0 {
				ret = def
			}
			if ret <= 0 {
				continue
			}
			if err := events.DeleteBefore(ctx, tn.Name, time.Now().Add(-ret)); err != nil && ctx.Err() == nil {
				log.Warn("retention failed", "tenant", tn.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
