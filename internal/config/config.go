package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalid marks a configuration that cannot be used.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole server configuration.
type Config struct {
	Data     string         `yaml:"data"`
	HTTP     HTTPConfig     `yaml:"http"`
	Syslog   SyslogConfig   `yaml:"syslog"`
	RELP     RELPConfig     `yaml:"relp"`
	NATS     NATSConfig     `yaml:"nats"`
	Events   EventsConfig   `yaml:"events"`
	Detect   DetectConfig   `yaml:"detect"`
	Patterns PatternsConfig `yaml:"patterns"`
	Agents   AgentsConfig   `yaml:"agents"`
	Tenants  TenantsConfig  `yaml:"tenants"`
	Auth     AuthConfig     `yaml:"auth"`
	Ingest   IngestConfig   `yaml:"ingest"`
	Log      LogConfig      `yaml:"log"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT wins
	// when set); the collector works harder as the heap nears it. 0: none.
	MemoryLimit Size `yaml:"memory_limit"`

	// origin records where each value set other than by default came from
	// ("file", "env" or "flag"), by YAML path.
	origin map[string]string
}

// SetOrigin records that the value at path came from src (e.g. "flag").
func (c *Config) SetOrigin(path, src string) {
	if c.origin == nil {
		c.origin = map[string]string{}
	}
	c.origin[path] = src
}

// HTTPConfig configures the API listener.
type HTTPConfig struct {
	Addr         string `yaml:"addr"`
	MaxBodyBytes Size   `yaml:"max_body"`
}

// ListenerConfig is one syslog-family listener. An empty Addr disables it.
// Tenant, when set, maps everything received on this listener to that tenant.
type ListenerConfig struct {
	Addr   string `yaml:"addr"`
	Tenant string `yaml:"tenant"`
}

// TLSListenerConfig is a TLS listener. Without cert/key files a self-signed
// server certificate is generated under the data dir on first start.
type TLSListenerConfig struct {
	Addr         string `yaml:"addr"`
	Tenant       string `yaml:"tenant"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth: "none", "request" (verify if given) or "require".
	ClientAuth string `yaml:"client_auth"`
}

// SyslogConfig configures the syslog listeners.
type SyslogConfig struct {
	UDP      ListenerConfig    `yaml:"udp"`
	TCP      ListenerConfig    `yaml:"tcp"`
	TLS      TLSListenerConfig `yaml:"tls"`
	MaxFrame Size              `yaml:"max_frame"`
	// UDPBuffer is the socket receive buffer requested for the UDP listener.
	UDPBuffer Size `yaml:"udp_buffer"`
}

// RELPConfig configures the RELP listener (plain TCP; RELP over TLS is not
// offered yet).
type RELPConfig struct {
	Addr   string `yaml:"addr"`
	Tenant string `yaml:"tenant"`
}

// NATSConfig selects the bus: embedded (URL empty) or an external cluster.
type NATSConfig struct {
	URL      string `yaml:"url"`
	Replicas int    `yaml:"replicas"`
	// MaxBytes caps the event stream; when full, ingest pushes back.
	MaxBytes Size `yaml:"max_bytes"`
	// MaxAge caps how long events stay on the bus after being stored.
	MaxAge Duration `yaml:"max_age"`
}

// EventsConfig selects the events store: "" (embedded) or victorialogs://host:port.
type EventsConfig struct {
	URL string `yaml:"url"`
	// SyncInterval is how often the store consumer makes appended events
	// durable and acknowledges their bus batches (embedded engine). Longer
	// means fewer, larger files and less merging, and a longer replay after
	// a crash.
	SyncInterval Duration `yaml:"sync_interval"`
}

// PatternsConfig configures pattern distribution to endpoint agents: the
// signed release repository (TUF) served under /update/v1/.
type PatternsConfig struct {
	Enabled bool `yaml:"enabled"`
	// Keys is the directory of the repository's signing keys (default
	// <data>/keys). On first start the server creates the offline root keys
	// in Keys/root: move that directory off the server.
	Keys string `yaml:"keys"`
	// KnownClean are directories of known-clean files (e.g. /usr/bin): a
	// bandage release whose hash signature matches one of them is refused.
	KnownClean []string `yaml:"known_clean"`
	// Rings are the rollout stages in percent of the agents, e.g.
	// "1,10,50,100"; a release advances after Soak without a refusal or a
	// health gate breach.
	Rings string `yaml:"rings"`
	// RingScope is "global" (the stages are percentages of all agents) or
	// "tenant" (of each tenant's agents: every customer gets a canary).
	RingScope string   `yaml:"ring_scope"`
	Soak      Duration `yaml:"soak"`
	// Gates bound the health a rolling release must keep on the agents that
	// made it active; a breach halts and rolls back like a refusal.
	Gates GatesConfig `yaml:"gates"`
}

// AgentsConfig configures how enrolled endpoint agents reach the server.
type AgentsConfig struct {
	// TLSAddr is the agents' mutual-TLS listener (the same API): its server
	// certificate is issued by the agent CA (<data>/keys/agent-ca), and
	// agents enrolled with a certificate request authenticate with their
	// client certificate. Empty disables it (agents then enroll with a
	// bearer credential only).
	TLSAddr string `yaml:"tls_addr"`
	// TLSNames are extra DNS names (or IPs) for the listener's certificate,
	// besides its addresses, the host name and localhost.
	TLSNames []string `yaml:"tls_names"`
	// TLSURL is the https URL given to agents at enrollment for the
	// listener (behind NAT or a DNS name); default: its bound address, or
	// the host the agent enrolled through when bound to every address.
	TLSURL string `yaml:"tls_url"`
	// RequireMTLS refuses agent requests that carry only a bearer
	// credential (401): agents enrolled without a certificate are locked
	// out.
	RequireMTLS bool `yaml:"require_mtls"`
}

// GatesConfig are the rollout health gates. Each compares what an agent
// reported since it made the release active with its own health before;
// 0 turns a gate off.
type GatesConfig struct {
	Enabled bool `yaml:"enabled"`
	// CleanHits: breach when detections on known-clean files (false
	// positives) rose by at least this many.
	CleanHits int `yaml:"clean_hits"`
	// EngineRestarts: breach at this many engine restarts (a crash loop).
	EngineRestarts int `yaml:"engine_restarts"`
	// ScanErrorRate: breach when the share of scans that failed rose by more
	// than this (0.05: five percentage points).
	ScanErrorRate float64 `yaml:"scan_error_rate"`
	// CPUFactor: breach when the mean CPU time per scan grew beyond this
	// multiple of the agent's own baseline...
	CPUFactor float64 `yaml:"cpu_factor"`
	// CPUFloor: ...and is at least this much, so that 0.1 ms becoming
	// 0.4 ms trips nothing.
	CPUFloor Duration `yaml:"cpu_floor"`
	// MinScans is the number of scans since activation below which the
	// error rate and CPU gates do not judge (too few to mean anything).
	MinScans int `yaml:"min_scans"`
	// SelfTest: breach when an agent reports its engine self-test failing
	// with the release active.
	SelfTest bool `yaml:"self_test"`
}

// DetectConfig configures the detection engine.
type DetectConfig struct {
	Enabled bool `yaml:"enabled"`
	// Rules are Sigma rule directories or files (e.g. a SigmaHQ checkout's
	// rules/ directory), loaded as published.
	Rules []string `yaml:"rules"`
	// Builtin loads Mamori's own threshold rules (brute force, port scan,
	// mail fan-out).
	Builtin bool `yaml:"builtin"`
	Workers int  `yaml:"workers"`
	// DedupWindow: the same rule on the same entity within it updates one alert.
	DedupWindow Duration `yaml:"dedup_window"`
	// RetroHunt is how far back a new indicator is hunted in stored events
	// (0 turns retro-hunts off).
	RetroHunt Duration `yaml:"retro_hunt"`
	// Placeholders fill Sigma's expand modifier, e.g. DomainControllers: [dc1, dc2].
	Placeholders map[string][]string `yaml:"placeholders"`
	// DisabledRules are rule ids that never run.
	DisabledRules []string `yaml:"disabled_rules"`
	// Tenants overrides per tenant.
	Tenants map[string]TenantDetectConfig `yaml:"tenants"`
	// Anomaly turns the volume baselines on.
	Anomaly bool `yaml:"anomaly"`
	// AnomalyStreams replaces the default baseline streams (outbound mail by
	// tenant, host and source; firewall denies by port; auth failures by user).
	AnomalyStreams []AnomalyStream `yaml:"anomaly_streams"`
}

// AnomalyStream is one baseline stream: events whose fields match are
// counted per minute, per tenant and per By group, and a rate of at least
// K times the seasonal expectation (and Z spreads above it, and MinCount)
// for For minutes is a surge.
type AnomalyStream struct {
	Name     string              `yaml:"name"`
	Match    map[string][]string `yaml:"match"`
	By       []string            `yaml:"by"`
	K        float64             `yaml:"k"`
	Z        float64             `yaml:"z"`
	For      Duration            `yaml:"for"`
	MinCount int                 `yaml:"min_count"`
	Severity string              `yaml:"severity"`
}

// TenantDetectConfig is one tenant's detection override.
type TenantDetectConfig struct {
	// Builtin, when set, turns Mamori's own rules on or off for the tenant.
	Builtin *bool `yaml:"builtin"`
	// DisabledRules are rule ids that do not run for the tenant.
	DisabledRules []string `yaml:"disabled_rules"`
}

// TenantsConfig configures tenancy.
type TenantsConfig struct {
	// Default receives traffic no mapping claims; empty with RejectUnmapped rejects it.
	Default        string   `yaml:"default"`
	RejectUnmapped bool     `yaml:"reject_unmapped"`
	Retention      Duration `yaml:"retention"`
	// RetentionInterval is how often the retention job runs.
	RetentionInterval Duration `yaml:"retention_interval"`
}

// AuthConfig configures API authentication.
type AuthConfig struct {
	// AdminToken presets the admin token (otherwise one is generated and
	// printed on first start).
	AdminToken string `yaml:"admin_token" secret:"true"`
}

// IngestConfig tunes batching between listeners and the bus.
type IngestConfig struct {
	BatchEvents int      `yaml:"batch_events"`
	BatchBytes  Size     `yaml:"batch_bytes"`
	BatchWait   Duration `yaml:"batch_wait"`
	// MaxPending caps events parsed but not yet durable; beyond it TCP
	// readers block and UDP datagrams are dropped (and counted).
	MaxPending int `yaml:"max_pending"`
}

// MetricsConfig configures /metrics.
type MetricsConfig struct {
	// TenantLabels labels per-tenant series with the tenant name; turn it
	// off when tenants are many (series are then labelled tenant="_all").
	TenantLabels bool `yaml:"tenant_labels"`
}

// LogConfig configures Mamori's own logs.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // "text", "json" or "" (text on a TTY, JSON otherwise)
}

// Default returns the embedded-defaults configuration.
func Default() Config {
	return Config{
		Data: "./mamori-data",
		HTTP: HTTPConfig{Addr: "127.0.0.1:8080", MaxBodyBytes: 64 << 20},
		Syslog: SyslogConfig{
			UDP:       ListenerConfig{Addr: "127.0.0.1:5514"},
			TCP:       ListenerConfig{Addr: "127.0.0.1:5514"},
			TLS:       TLSListenerConfig{Addr: "127.0.0.1:6514", ClientAuth: "request"},
			MaxFrame:  64 << 10,
			UDPBuffer: 8 << 20,
		},
		RELP:   RELPConfig{Addr: "127.0.0.1:2514"},
		NATS:   NATSConfig{Replicas: 1, MaxBytes: 10 << 30, MaxAge: Duration(7 * 24 * time.Hour)},
		Events: EventsConfig{SyncInterval: Duration(2 * time.Second)},
		Detect: DetectConfig{Enabled: true, Builtin: true, Workers: 2, DedupWindow: Duration(time.Hour),
			RetroHunt: Duration(30 * 24 * time.Hour), Anomaly: true},
		Patterns: PatternsConfig{Enabled: true, Rings: "1,10,50,100", RingScope: "global", Soak: Duration(10 * time.Minute), Gates: defaultGates()},
		Agents:   AgentsConfig{TLSAddr: "127.0.0.1:8443"},
		Tenants:  TenantsConfig{Default: "default", Retention: Duration(30 * 24 * time.Hour), RetentionInterval: Duration(time.Hour)},
		Ingest:   IngestConfig{BatchEvents: 2000, BatchBytes: 60 << 10, BatchWait: Duration(20 * time.Millisecond), MaxPending: 100000},
		Log:      LogConfig{Level: "info"},
		Metrics:  MetricsConfig{TenantLabels: true},
		// Leaves room under 1 GiB of RSS for the engines' own caches.
		MemoryLimit: 640 << 20,
	}
}

// Load builds the configuration: defaults, then the YAML file (if path is
// not empty), then MAMORI_* environment variables from env.
func Load(path string, env []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		if err := decodeStrict(b, &c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil && len(doc.Content) > 0 {
			markFile(&c, doc.Content[0], "")
		}
	}
	if err := applyEnv(&c, env); err != nil {
		return c, err
	}
	return c, nil
}

// markFile records every leaf key the file sets.
func markFile(c *Config, n *yaml.Node, prefix string) {
	if n.Kind != yaml.MappingNode {
		if prefix != "" {
			c.SetOrigin(prefix, "file")
		}
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if prefix != "" {
			k = prefix + "." + k
		}
		markFile(c, n.Content[i+1], k)
	}
}

func decodeStrict(b []byte, c *Config) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		// yaml.v3 says "line 3: field foo not found in type config.SyslogConfig";
		// say it in the user's words.
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
		msg = strings.ReplaceAll(msg, "  ", "")
		if i := strings.Index(msg, " not found in type "); i >= 0 {
			msg = strings.Replace(msg[:i], "field ", "unknown key ", 1)
		}
		return fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	return nil
}

// EnvKey is the environment variable for a YAML path, e.g. syslog.tcp.addr
// → MAMORI_SYSLOG_TCP_ADDR.
func EnvKey(path string) string {
	return "MAMORI_" + strings.ToUpper(strings.NewReplacer(".", "_").Replace(path))
}

// walk calls fn for every leaf of the config with its dotted YAML path.
func walk(v reflect.Value, prefix string, fn func(path string, f reflect.Value, sf reflect.StructField) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			if err := walk(fv, path, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(path, fv, sf); err != nil {
			return err
		}
	}
	return nil
}

func applyEnv(c *Config, env []string) error {
	vals := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MAMORI_") {
			vals[k] = v
		}
	}
	err := walk(reflect.ValueOf(c).Elem(), "", func(path string, f reflect.Value, _ reflect.StructField) error {
		k := EnvKey(path)
		v, ok := vals[k]
		if !ok {
			return nil
		}
		if err := setValue(f, v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, k, err)
		}
		c.SetOrigin(path, "env")
		return nil
	})
	if err != nil {
		return err
	}
	// Client-side variables (MAMORI_TOKEN, MAMORI_SERVER, ...) share the
	// prefix, so unknown MAMORI_* names are not errors.
	return nil
}

func setValue(f reflect.Value, s string) error {
	switch p := f.Addr().Interface().(type) {
	case *Duration:
		return p.Set(s)
	case *Size:
		return p.Set(s)
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*p = n
	case *[]string:
		*p = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				*p = append(*p, v)
			}
		}
	case *float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		*p = b
	default:
		return fmt.Errorf("unsupported type %T", p)
	}
	return nil
}

// Setting is one effective configuration value for `mamori config print`.
type Setting struct {
	Path, Env, Value string
	Origin           string // default, file, env or flag
}

// Settings lists every leaf with its value; secrets are masked.
func (c *Config) Settings() []Setting {
	var out []Setting
	_ = walk(reflect.ValueOf(c).Elem(), "", func(path string, f reflect.Value, sf reflect.StructField) error {
		v := fmt.Sprint(f.Interface())
		if sf.Tag.Get("secret") == "true" && v != "" {
			v = "********"
		}
		origin := c.origin[path]
		if origin == "" {
			origin = "default"
		}
		out = append(out, Setting{Path: path, Env: EnvKey(path), Value: v, Origin: origin})
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Validate checks values that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	if c.Syslog.MaxFrame < 480 {
		errs = append(errs, fmt.Errorf("syslog.max_frame: %d is below the 480 bytes every syslog receiver must accept", c.Syslog.MaxFrame))
	}
	switch c.Syslog.TLS.ClientAuth {
	case "", "none", "request", "require":
	default:
		errs = append(errs, fmt.Errorf("syslog.tls.client_auth: %q is not none, request or require", c.Syslog.TLS.ClientAuth))
	}
	if c.Tenants.Default == "" && !c.Tenants.RejectUnmapped {
		errs = append(errs, errors.New("tenants.default: empty; set a tenant name or tenants.reject_unmapped: true"))
	}
	if c.NATS.Replicas < 1 {
		errs = append(errs, errors.New("nats.replicas: must be at least 1"))
	}
	if c.Ingest.BatchEvents < 1 || c.Ingest.MaxPending < c.Ingest.BatchEvents {
		errs = append(errs, errors.New("ingest: batch_events must be ≥1 and max_pending ≥ batch_events"))
	}
	errs = append(errs, c.Patterns.Gates.validate()...)
	errs = append(errs, c.Agents.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func (a AgentsConfig) validate() []error {
	var errs []error
	if a.RequireMTLS && a.TLSAddr == "" {
		errs = append(errs, errors.New("agents.require_mtls: needs the agents' TLS listener; set agents.tls_addr"))
	}
	if a.TLSURL != "" {
		u, err := url.Parse(a.TLSURL)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("agents.tls_url: %q is not an https://host[:port] URL", a.TLSURL))
		}
	}
	return errs
}

// defaultGates: any detection on a known-clean file, three engine
// restarts, five more scans in a hundred failing, or scans costing three
// times the CPU (and at least 20 ms) halt a rollout.
func defaultGates() GatesConfig {
	return GatesConfig{Enabled: true, CleanHits: 1, EngineRestarts: 3, ScanErrorRate: 0.05, CPUFactor: 3,
		CPUFloor: Duration(20 * time.Millisecond), MinScans: 20, SelfTest: true}
}

// validate checks the gates' bounds (0 turns a gate off).
func (g GatesConfig) validate() []error {
	var errs []error
	for _, n := range []struct {
		key string
		v   int
	}{{"clean_hits", g.CleanHits}, {"engine_restarts", g.EngineRestarts}, {"min_scans", g.MinScans}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("patterns.gates.%s: %d is negative; 0 turns the gate off", n.key, n.v))
		}
	}
	if g.ScanErrorRate < 0 || g.ScanErrorRate > 1 {
		errs = append(errs, fmt.Errorf("patterns.gates.scan_error_rate: %g is not a share between 0 and 1 (0.05: five percentage points)", g.ScanErrorRate))
	}
	if g.CPUFactor != 0 && g.CPUFactor <= 1 {
		errs = append(errs, fmt.Errorf("patterns.gates.cpu_factor: %g would trip on noise; use a multiple above 1 (e.g. 3) or 0 to turn the gate off", g.CPUFactor))
	}
	if g.CPUFloor < 0 {
		errs = append(errs, fmt.Errorf("patterns.gates.cpu_floor: %s is negative", g.CPUFloor))
	}
	return errs
}
