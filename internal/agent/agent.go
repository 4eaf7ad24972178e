package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/agent/cleanup"
	"github.com/mamori-soc/mamori/internal/agent/logship"
	"github.com/mamori-soc/mamori/internal/agent/quarantine"
	"github.com/mamori-soc/mamori/internal/agent/scanjob"
	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/respond"
	"github.com/mamori-soc/mamori/internal/update"
)

// What the push stream said of the rollouts (Agent.gated); an older
// server says nothing, and the agent always asks.
const (
	gatingUnknown int32 = iota
	gatingNone
	gatingSome
)

// Sentinel errors.
var (
	ErrEnroll   = errors.New("enrollment failed")
	ErrSelfTest = errors.New("pattern self-test failed")
	ErrIdentity = errors.New("no agent identity")
)

// Identity is what enrollment gives an agent, kept in its directory.
type Identity struct {
	Server     string `json:"server"` // the URL the agent enrolled with
	AgentID    string `json:"agent_id"`
	Tenant     string `json:"tenant"`
	Credential string `json:"credential"`
	// Root is the newest trusted root of the pattern repository (pinned at
	// enrollment, advanced by verified rotations).
	Root []byte `json:"root"`
	// KeyPEM is the agent's private key (made here, never sent), CertPEM
	// the client certificate the server issued for it, CAPEM the agent CA
	// pinned at enrollment — the only authority trusted for TLSURL, the
	// server's agents TLS listener, which the agent talks to from then on.
	// Empty for an agent enrolled with a bearer credential only.
	CertPEM string `json:"cert_pem,omitempty"`
	KeyPEM  string `json:"key_pem,omitempty"`
	CAPEM   string `json:"ca_pem,omitempty"`
	TLSURL  string `json:"tls_url,omitempty"`
}

const identityFile = "agent.json"

// Enroll exchanges an enroll token for the agent's identity. It makes the
// agent's key and sends a certificate request for it: a server with an
// agents TLS listener answers with a client certificate, one without (or
// older than this agent) with a bearer credential only.
func Enroll(ctx context.Context, hc *http.Client, server, token string, info fleet.Info) (Identity, error) {
	server = strings.TrimRight(server, "/")
	key, csr, err := newKey()
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrEnroll, err)
	}
	r, err := enroll(ctx, hc, server, token, enrollRequest{Info: info, CSR: string(csr)})
	if errors.Is(err, errNoCSR) {
		// A server from before mutual TLS refuses the unknown field.
		r, err = enroll(ctx, hc, server, token, enrollRequest{Info: info})
	}
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Server: server, AgentID: r.AgentID, Tenant: r.Tenant, Credential: r.Credential, Root: r.Root}
	if r.Certificate == "" {
		return id, nil
	}
	id.CertPEM, id.CAPEM, id.TLSURL = r.Certificate, r.CA, strings.TrimRight(r.TLSURL, "/")
	if id.KeyPEM, err = keyPEM(key); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrEnroll, err)
	}
	if _, err := id.tlsConfig(); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrEnroll, err)
	}
	if u, err := url.Parse(id.TLSURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return Identity{}, fmt.Errorf("%w: the server gave no usable tls_url (%q)", ErrEnroll, id.TLSURL)
	}
	return id, nil
}

type enrollRequest struct {
	fleet.Info
	CSR string `json:"csr,omitempty"`
}

type enrollResponse struct {
	AgentID     string `json:"agent_id"`
	Tenant      string `json:"tenant"`
	Credential  string `json:"credential"`
	Root        []byte `json:"root"`
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	TLSURL      string `json:"tls_url"`
}

// errNoCSR: the server does not know the csr field.
var errNoCSR = errors.New("server takes no certificate request")

func enroll(ctx context.Context, hc *http.Client, server, token string, body enrollRequest) (enrollResponse, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/api/v1/agents/enroll", bytes.NewReader(b))
	if err != nil {
		return enrollResponse{}, fmt.Errorf("%w: %w", ErrEnroll, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return enrollResponse{}, fmt.Errorf("%w: %w", ErrEnroll, err)
	}
	defer resp.Body.Close()
	b, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusBadRequest && body.CSR != "" && bytes.Contains(b, []byte(`unknown field \"csr\"`)) {
		return enrollResponse{}, errNoCSR
	}
	if resp.StatusCode != http.StatusCreated {
		return enrollResponse{}, fmt.Errorf("%w: %s: %s", ErrEnroll, resp.Status, strings.TrimSpace(string(b)))
	}
	var r enrollResponse
	if err := json.Unmarshal(b, &r); err != nil || r.Credential == "" {
		return enrollResponse{}, fmt.Errorf("%w: malformed answer", ErrEnroll)
	}
	return r, nil
}

// newKey makes the agent's private key (ECDSA P-256) and a certificate
// request for it. The server decides the certificate's subject.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("agent key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(crand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "mamori agent"}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

func keyPEM(key *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("agent key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// tlsConfig is the client side of mutual TLS with the agents listener:
// the agent's certificate, and the pinned agent CA as the only root (not
// the system's: no public CA can stand in for the server).
func (id Identity) tlsConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair([]byte(id.CertPEM), []byte(id.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(id.CAPEM)) {
		return nil, errors.New("agent CA: no certificate in ca_pem")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// mutualTLS is the TLS configuration for the agents listener, or nil when
// the agent has no client certificate (enrolled with a bearer credential
// only) or an expired one: then it talks to the URL it enrolled with.
func (a *Agent) mutualTLS() (*tls.Config, error) {
	if a.id.CertPEM == "" || a.id.TLSURL == "" {
		return nil, nil
	}
	tc, err := a.id.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	leaf := tc.Certificates[0].Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(tc.Certificates[0].Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrIdentity, err)
		}
	}
	switch left := time.Until(leaf.NotAfter); {
	case left <= 0:
		// The listener would refuse it; the bearer credential still works
		// unless the server requires mutual TLS.
		a.log.Error("client certificate expired; falling back to the bearer credential: enroll the agent again",
			"not_after", leaf.NotAfter)
		return nil, nil
	case left < renewBefore:
		a.log.Info("client certificate expires soon; renewing it", "not_after", leaf.NotAfter)
	}
	return tc, nil
}

// authorize sets the bearer credential on req (none with mutual TLS: the
// certificate authenticates, and the secret stays off the wire).
func (a *Agent) authorize(req *http.Request) {
	if a.auth != "" {
		req.Header.Set("Authorization", a.auth)
	}
}

// saveIdentity keeps the current identity.
func (a *Agent) saveIdentity() error {
	a.mu.Lock()
	id := a.id
	a.mu.Unlock()
	return SaveIdentity(a.o.Dir, id)
}

// SaveIdentity writes id into dir (0600: it holds the credential).
func SaveIdentity(dir string, id Identity) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(id, "", "  ")
	return writeFileAtomic(filepath.Join(dir, identityFile), b)
}

// LoadIdentity reads the identity saved in dir.
func LoadIdentity(dir string) (Identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return Identity{}, ErrIdentity
	}
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, fmt.Errorf("%s: %w", identityFile, err)
	}
	return id, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Options configure an Agent.
type Options struct {
	// Dir keeps the identity and the last good pattern sets; "" keeps
	// nothing on disk (simulated agents).
	Dir      string
	Channels []string // default main, bandage
	// HTTP gives the client's settings (its timeout); the agent makes its
	// own transport (mutual TLS with its client certificate, dialling
	// pinned addresses while isolated). A client with a Transport is used
	// as it is: the agent then talks to the URL it enrolled with, by its
	// bearer credential (simulated agents sharing one transport).
	HTTP   *http.Client
	Logger *slog.Logger
	Info   fleet.Info
	// Heartbeat is the heartbeat interval (default 60 s; < 0: none).
	Heartbeat time.Duration
	// LoadTimeout bounds compiling and self-testing a new set (default 30 s).
	LoadTimeout time.Duration
	// VerifyOnly verifies and applies releases without compiling them
	// (simulated agents in benchmarks, which verify for real but do not scan).
	VerifyOnly bool
	// OnActive is called after a release became active, OnSync after each
	// sync (benchmarks).
	OnActive func(channel string, version uint64)
	OnSync   func(err error)
	// Isolator carries out isolate and release commands; nil: the agent
	// refuses them (reported as failed, never silently ignored).
	Isolator Isolator
	// NoCommands: do not fetch or run server commands (simulated agents).
	NoCommands bool
	// Logs are local log files (or glob patterns) shipped to the server's
	// ingest pipeline; LogsFromStart ships files seen for the first time
	// from their beginning rather than their end.
	Logs          []string
	LogsFromStart bool

	// Scanning: CPU is the share of one core scans may use (default 0.25),
	// IO their read rate (default 32 MiB/s); ScanPaths are scanned every
	// ScanEvery (0: never), Watch roots are scanned on change.
	ScanCPU   float64
	ScanIO    int64
	ScanEvery time.Duration
	ScanPaths []string
	Watch     []string
	// OnDetect is ActQuarantine (default) or ActReport; UploadSamples
	// sends what is quarantined to the server's lab at once.
	OnDetect      string
	UploadSamples bool
}

// Agent is a running endpoint agent.
type Agent struct {
	id   Identity
	o    Options
	log  *slog.Logger
	tuf  *update.Client
	auth string // the Authorization header; empty with mutual TLS
	// base is the URL of every call to the server: the agents TLS
	// listener when the agent has a client certificate, else the URL it
	// enrolled with (id.Server).
	base string
	cert atomic.Pointer[tls.Certificate] // the client certificate (mutual TLS), renewed in place
	// gated is what the push stream last said of the rollouts:
	// (gatingNone) lets a sync skip asking which versions the rings allow.
	gated atomic.Int32

	syncMu  sync.Mutex  // one sync at a time: push, retry
	pending atomic.Bool // the last sync failed: retry without waiting for a push

	mu        sync.Mutex
	installed map[string]*update.Installed
	refused   map[string]uint64 // channel → a version that failed to load: not retried
	scanner   *pattern.Scanner
	health    fleet.Health

	quar    *quarantine.Store // nil without a Dir
	cleaner *cleanup.Runner
	scans   *scanjob.Runner      // nil for simulated agents
	recent  map[string]time.Time // files acted on lately: one action per file

	cmdWake    chan struct{}
	handlers   map[string]CommandFunc
	unposted   map[string]outcome // command id → outcome not yet accepted by the server
	pinned     []string           // the server's addresses while isolated (no DNS then)
	serverHost string             // host:port of the server, as the dialer sees it
}

// New builds an agent from its identity, reloading the last good sets
// kept in o.Dir.
func New(id Identity, o Options) (*Agent, error) {
	if id.Credential == "" || len(id.Root) == 0 {
		return nil, fmt.Errorf("%w: enroll first", ErrIdentity)
	}
	if len(o.Channels) == 0 {
		o.Channels = []string{"main", "bandage"}
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Minute}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Minute
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 30 * time.Second
	}
	if o.ScanCPU <= 0 {
		o.ScanCPU = 0.25
	}
	if o.ScanIO <= 0 {
		o.ScanIO = 32 << 20
	}
	if o.OnDetect == "" {
		o.OnDetect = ActQuarantine
	}
	if o.OnDetect != ActQuarantine && o.OnDetect != ActReport {
		return nil, fmt.Errorf("on-detect %q: %s or %s", o.OnDetect, ActQuarantine, ActReport)
	}
	a := &Agent{id: id, o: o, log: o.Logger, auth: "Bearer " + id.Credential, installed: map[string]*update.Installed{}, refused: map[string]uint64{},
		cmdWake: make(chan struct{}, 1), unposted: map[string]outcome{}, handlers: map[string]CommandFunc{}, recent: map[string]time.Time{},
		base: strings.TrimRight(id.Server, "/")}
	if o.HTTP.Transport == nil {
		// Our own transport, so that an isolated agent dials the server's
		// pinned addresses, and presents its client certificate.
		hc := *o.HTTP
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = a.dial
		tc, err := a.mutualTLS()
		if err != nil {
			return nil, err
		}
		if tc != nil {
			// The certificate is asked for at each handshake, so that a
			// renewed one is used without a new transport.
			if err := a.useCertificate(tc.Certificates[0]); err != nil {
				return nil, err
			}
			tc.Certificates, tc.GetClientCertificate = nil, a.clientCertificate
			tr.TLSClientConfig = tc
			a.base, a.auth = id.TLSURL, ""
		}
		hc.Transport = tr
		a.o.HTTP = &hc
	}
	if u, err := url.Parse(a.base); err == nil {
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		a.serverHost = net.JoinHostPort(u.Hostname(), port)
	}
	if o.Isolator != nil {
		a.handlers[respond.KindIsolate] = a.isolateCmd
		a.handlers[respond.KindRelease] = a.releaseCmd
	}
	if o.Dir != "" {
		q, err := quarantine.Open(filepath.Join(o.Dir, "quarantine"), quarantine.Logger(o.Logger))
		if err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		a.quar = q
		a.cleaner = cleanup.New(cleanup.Options{Store: q, Logger: o.Logger, Systemctl: systemctl})
		a.handlers[respond.KindQuarantine] = a.quarantineCmd
		a.handlers[respond.KindRestore] = a.restoreCmd
		a.handlers[respond.KindUploadSample] = a.uploadCmd
	}
	if !o.VerifyOnly {
		a.newScans()
	}
	hdr := http.Header{}
	if a.auth != "" {
		hdr.Set("Authorization", a.auth)
	}
	c, err := update.NewClient(id.Root, &update.HTTPFetcher{BaseURL: a.base + "/update/v1/", Client: a.o.HTTP, Header: hdr},
		update.ClientOptions{Logger: o.Logger, RootCheckInterval: time.Hour})
	if err != nil {
		return nil, fmt.Errorf("pattern client: %w", err)
	}
	a.tuf = c
	if o.Dir != "" {
		a.loadSets()
	}
	return a, nil
}

// Scanner returns the active scanner (nil before any set is active).
func (a *Agent) Scanner() *pattern.Scanner {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.scanner
}

// Installed returns the active version of each channel.
func (a *Agent) Installed() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]uint64{}
	for ch, in := range a.installed {
		out[ch] = in.Version
	}
	return out
}

// Run follows the server until ctx ends: the push stream (reconnecting
// with backoff), a full sync at every (re)connection, heartbeats.
func (a *Agent) Run(ctx context.Context) error {
	if a.o.Dir != "" {
		n, err := countRestart(a.o.Dir)
		if err != nil {
			a.log.Warn("count restarts", "err", err)
		}
		if n > 0 {
			a.log.Warn("the agent did not stop cleanly before", "unclean_restarts", n)
		}
		a.mu.Lock()
		a.health.EngineRestarts = n
		a.mu.Unlock()
		defer cleanExit(a.o.Dir)
	}
	if a.o.Heartbeat > 0 {
		go a.heartbeats(ctx)
	}
	go a.retries(ctx)
	if !a.o.NoCommands {
		a.restorePins(ctx)
		go a.commands(ctx)
	}
	if a.cert.Load() != nil {
		go a.renewals(ctx)
	}
	if len(a.o.Logs) > 0 {
		if err := a.shipLogs(ctx); err != nil {
			return err
		}
	}
	if a.scans != nil {
		a.startScanning(ctx)
	}
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := a.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		a.log.Warn("push stream lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

// follow reads the server's event stream; every timestamp event (the
// first arrives at connect) triggers a sync.
func (a *Agent) follow(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/update/v1/events", nil)
	if err != nil {
		return err
	}
	a.authorize(req)
	req.Header.Set("Accept", "text/event-stream")
	// The stream is long-lived: no client timeout, only ctx.
	hc := *a.o.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("event stream: %s", resp.Status)
	}
	if !a.o.NoCommands {
		a.wakeCommands() // whatever was queued while we were away
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	var event string
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0: // end of an event
			switch {
			case event == "timestamp" && len(data) > 0:
				a.syncAndNote(ctx, data)
			case event == "commands" && !a.o.NoCommands:
				a.wakeCommands()
			case event == "rollout":
				var r struct {
					Gated bool `json:"gated"`
				}
				if json.Unmarshal(data, &r) == nil {
					a.gated.Store(map[bool]int32{false: gatingNone, true: gatingSome}[r.Gated])
				}
			}
			event, data = "", data[:0]
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(line[len("data:"):], []byte(" "))...)
		}
	}
}

// syncAndNote runs one sync (serialised) and remembers a failure for
// retries: a server too busy to answer right after a release must not
// leave the agent unprotected until the next push.
func (a *Agent) syncAndNote(ctx context.Context, timestamp []byte) {
	a.syncMu.Lock()
	err := a.Sync(ctx, timestamp)
	a.syncMu.Unlock()
	a.pending.Store(err != nil)
	if err != nil {
		a.log.Warn("pattern sync", "err", err)
	}
	if a.o.OnSync != nil {
		a.o.OnSync(err)
	}
}

// retries re-runs a failed sync every 2–4 s (jittered, so a fleet does not
// come back in step), fetching the timestamp itself.
func (a *Agent) retries(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2*time.Second + rand.N(2*time.Second)):
		}
		if a.pending.Load() {
			a.syncAndNote(ctx, nil)
		}
	}
}

// Sync brings every followed channel to the latest verified release.
// timestamp is the signed timestamp from the push stream, or nil to fetch
// it. A channel without any release yet is skipped.
func (a *Agent) Sync(ctx context.Context, timestamp []byte) error {
	var errs []error
	desired := map[string]uint64{}
	var err error
	if a.gated.Load() != gatingNone {
		desired, err = a.desired(ctx)
	}
	if err != nil {
		// Without the rollout's word, hold: never take a release the rings
		// may not have reached.
		return fmt.Errorf("desired versions: %w", err)
	}
	for _, ch := range a.o.Channels {
		a.mu.Lock()
		have := a.installed[ch]
		a.mu.Unlock()
		var inst *update.Installed
		var err error
		if want, gated := desired[ch]; !gated {
			inst, err = a.tuf.Update(ctx, timestamp, ch, have)
		} else if want == 0 || (have != nil && have.Version == want) {
			continue
		} else {
			inst, err = a.tuf.UpdateTo(ctx, timestamp, ch, want, have)
		}
		if errors.Is(err, update.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
			continue
		}
		a.mu.Lock()
		refused := a.refused[ch] == inst.Version
		a.mu.Unlock()
		if (have != nil && inst.Version == have.Version) || refused {
			continue
		}
		if err := a.activate(ctx, inst); err != nil {
			a.mu.Lock()
			a.refused[ch] = inst.Version
			a.mu.Unlock()
			a.log.Error("pattern release refused; last good set stays active", "channel", ch, "version", inst.Version, "err", err)
			a.report(ctx, fleet.Install{Channel: ch, Version: inst.Version, Status: fleet.StatusFailed, At: time.Now(), Error: err.Error()})
			errs = append(errs, err)
			continue
		}
		a.log.Info("pattern release active", "channel", ch, "version", inst.Version, "records", len(inst.Records))
		a.report(ctx, fleet.Install{Channel: ch, Version: inst.Version, Status: fleet.StatusActive, At: time.Now()})
		if a.o.OnActive != nil {
			a.o.OnActive(ch, inst.Version)
		}
	}
	if a.o.Dir != "" {
		if root := a.tuf.TrustedRoot(); !bytes.Equal(root, a.id.Root) {
			a.mu.Lock()
			a.id.Root = root
			a.mu.Unlock()
			if err := a.saveIdentity(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// activate loads inst (with the other channels' active sets) under the
// guard and makes it active, or returns why not.
func (a *Agent) activate(ctx context.Context, inst *update.Installed) error {
	a.mu.Lock()
	sets := map[string]*update.Installed{}
	for ch, in := range a.installed {
		sets[ch] = in
	}
	a.mu.Unlock()
	sets[inst.Channel] = inst
	var sc *pattern.Scanner
	if !a.o.VerifyOnly {
		var err error
		if sc, err = guardedLoad(ctx, sets, a.o.LoadTimeout); err != nil {
			a.mu.Lock()
			a.health.SelfTestFailed = true
			a.mu.Unlock()
			return err
		}
	}
	if a.o.Dir != "" {
		if err := saveSet(a.o.Dir, inst); err != nil {
			return fmt.Errorf("keep set: %w", err)
		}
	}
	a.mu.Lock()
	a.installed[inst.Channel] = inst
	if sc != nil {
		a.scanner = sc
	}
	a.health.SelfTestFailed = false
	a.mu.Unlock()
	return nil
}

// guardedLoad compiles the union of sets and self-tests it within
// timeout. A set that cannot be compiled in time (a poison release built
// to exhaust the engine) is refused; the work is abandoned, not awaited.
func guardedLoad(ctx context.Context, sets map[string]*update.Installed, timeout time.Duration) (*pattern.Scanner, error) {
	type result struct {
		sc  *pattern.Scanner
		err error
	}
	done := make(chan result, 1)
	go func() {
		sc, err := loadAndTest(ctx, sets)
		done <- result{sc, err}
	}()
	select {
	case r := <-done:
		return r.sc, r.err
	case <-time.After(timeout):
		return nil, fmt.Errorf("%w: load and self-test took over %s", ErrSelfTest, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// selfTestName is the built-in signature every compiled set carries: the
// engine must still find the EICAR test file with it.
const selfTestName = "Mamori.SelfTest.EICAR"

// eicar is the EICAR test file, kept XOR-ed so that this binary is not
// itself an EICAR sample to any scanner (its own included).
func eicar() []byte {
	enc, _ := hex.DecodeString("0d601a7405701514050e6109050f0d60617d050b7c6216167c622871101c161407780601141b1114071178141b011c031c070006780110060178131c191074711d7e1d7f")
	out := make([]byte, len(enc))
	for i, b := range enc {
		out[i] = b ^ 0x55
	}
	return out
}

func loadAndTest(ctx context.Context, sets map[string]*update.Installed) (*pattern.Scanner, error) {
	var recs []pattern.Record
	for _, in := range sets {
		for _, line := range in.Records {
			r, err := pattern.ParseRecord(string(line))
			if err != nil {
				return nil, fmt.Errorf("%w: %s version %d: %w", ErrSelfTest, in.Channel, in.Version, err)
			}
			recs = append(recs, r)
		}
	}
	recs = append(recs, pattern.Record{Kind: pattern.KindHash, Name: selfTestName, Data: "44d88612fea8a8f36de82e1278abb02f:68"})
	set, warns, err := pattern.Compile(recs)
	if err != nil {
		return nil, fmt.Errorf("%w: compile: %w", ErrSelfTest, err)
	}
	if len(warns) > 0 {
		return nil, fmt.Errorf("%w: %d signatures do not compile, first: %v", ErrSelfTest, len(warns), warns[0])
	}
	sc := pattern.NewScanner(set, pattern.DefaultLimits())
	dets, err := sc.ScanBytes(ctx, "self-test", eicar())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSelfTest, err)
	}
	found := false
	for _, d := range dets {
		found = found || d.Signature == selfTestName
	}
	if !found {
		return nil, fmt.Errorf("%w: the engine no longer finds the EICAR test file", ErrSelfTest)
	}
	for _, p := range knownClean() {
		dets, err := sc.ScanFile(ctx, p)
		if err != nil {
			continue // unreadable here: not evidence either way
		}
		for _, d := range dets {
			if d.Kind != pattern.KindLimit {
				return nil, fmt.Errorf("%w: %s detects known-clean %s", ErrSelfTest, d.Signature, p)
			}
		}
	}
	return sc, nil
}

// knownClean lists files that must never be detected: this agent's own
// binary and core system binaries.
func knownClean() []string {
	var out []string
	if exe, err := os.Executable(); err == nil {
		out = append(out, exe)
	}
	switch runtime.GOOS {
	case "windows":
		root := os.Getenv("SystemRoot")
		if root == "" {
			root = `C:\Windows`
		}
		out = append(out, filepath.Join(root, "System32", "kernel32.dll"), filepath.Join(root, "System32", "cmd.exe"), filepath.Join(root, "explorer.exe"))
	default:
		out = append(out, "/bin/sh", "/usr/bin/env", "/bin/ls")
	}
	return out
}

// saveSet keeps an active set as the last good one: a header line, then
// the records.
func saveSet(dir string, in *update.Installed) error {
	d := filepath.Join(dir, "patterns")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	var b bytes.Buffer
	hdr, _ := json.Marshal(map[string]any{"channel": in.Channel, "version": in.Version, "content_sha256": hex.EncodeToString(in.ContentSHA256[:])})
	b.Write(hdr)
	b.WriteByte('\n')
	for _, r := range in.Records {
		b.Write(r)
		b.WriteByte('\n')
	}
	return writeFileAtomic(filepath.Join(d, in.Channel+".set"), b.Bytes())
}

// loadSets restores the last good sets; a set whose content no longer
// hashes to what was verified is dropped (and fetched again).
func (a *Agent) loadSets() {
	for _, ch := range a.o.Channels {
		b, err := os.ReadFile(filepath.Join(a.o.Dir, "patterns", ch+".set"))
		if err != nil {
			continue
		}
		hdrLine, rest, _ := bytes.Cut(b, []byte("\n"))
		var hdr struct {
			Channel string `json:"channel"`
			Version uint64 `json:"version"`
			SHA     string `json:"content_sha256"`
		}
		if json.Unmarshal(hdrLine, &hdr) != nil || hdr.Channel != ch {
			continue
		}
		var recs update.Records
		for _, l := range bytes.Split(rest, []byte("\n")) {
			if len(l) > 0 {
				recs = append(recs, l)
			}
		}
		sum := update.ContentHash(recs)
		if hex.EncodeToString(sum[:]) != hdr.SHA {
			a.log.Warn("kept pattern set altered; dropped", "channel", ch)
			continue
		}
		a.installed[ch] = &update.Installed{Channel: ch, Version: hdr.Version, Records: recs, ContentSHA256: sum}
	}
	if len(a.installed) > 0 && !a.o.VerifyOnly {
		if sc, err := guardedLoad(context.Background(), a.installed, a.o.LoadTimeout); err == nil {
			a.scanner = sc
		} else {
			a.log.Error("kept pattern sets fail to load", "err", err)
		}
	}
}

// desired asks the server which versions the rollout rings allow this
// agent, per gated channel.
func (a *Agent) desired(ctx context.Context) (map[string]uint64, error) {
	var out struct {
		Channels map[string]uint64 `json:"channels"`
	}
	err := a.getJSON(ctx, "/api/v1/agent/desired", &out)
	return out.Channels, err
}

// getJSON GETs an agent endpoint and decodes its JSON answer into v.
func (a *Agent) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return err
	}
	a.authorize(req)
	resp, err := a.o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v)
}

func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.o.Heartbeat)
	defer t.Stop()
	for {
		a.mu.Lock()
		h := a.health
		a.mu.Unlock()
		if a.scans != nil {
			a.scans.Health().ApplyTo(&h)
		}
		_ = a.post(ctx, "/api/v1/agent/heartbeat", map[string]any{"info": a.o.Info, "health": h})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) report(ctx context.Context, in fleet.Install) {
	if err := a.post(ctx, "/api/v1/agent/report", in); err != nil {
		a.log.Warn("report to server", "err", err)
	}
}

func (a *Agent) post(ctx context.Context, path string, v any) error {
	body, _ := json.Marshal(v)
	return a.send(ctx, path, "application/json", body)
}

// send POSTs body to an agent endpoint; any status but 2xx is an error.
func (a *Agent) send(ctx context.Context, path, ctype string, body []byte) error {
	return a.do(ctx, path, ctype, body, nil)
}

// postJSON POSTs a JSON body and decodes the JSON answer into out.
func (a *Agent) postJSON(ctx context.Context, path string, body []byte, out any) error {
	return a.do(ctx, path, "application/json", body, out)
}

func (a *Agent) do(ctx context.Context, path, ctype string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	a.authorize(req)
	req.Header.Set("Content-Type", ctype)
	resp, err := a.o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	if out != nil {
		return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// shipLogs starts following the configured log files.
func (a *Agent) shipLogs(ctx context.Context) error {
	o := logship.Options{Paths: a.o.Logs, FromStart: a.o.LogsFromStart, Logger: a.log.With("component", "logship"),
		Send: func(ctx context.Context, batch []byte) error {
			return a.send(ctx, "/api/v1/agent/logs", "text/plain; charset=utf-8", batch)
		}}
	if a.o.Dir != "" {
		o.StateFile = filepath.Join(a.o.Dir, "logship.json")
	}
	sh, err := logship.New(o)
	if err != nil {
		return fmt.Errorf("log shipping: %w", err)
	}
	go func() { _ = sh.Run(ctx) }()
	return nil
}
