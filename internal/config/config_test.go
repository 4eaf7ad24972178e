package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadPrecedenceAndStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "mamori.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.HTTP.Addr != "127.0.0.1:8080" || c.Syslog.MaxFrame != 64<<10 || c.Tenants.Retention.D() != 30*24*time.Hour {
				t.Fatalf("unexpected defaults: %+v", c)
			}
		}},
		{name: "file", yaml: "syslog:\n  max_frame: 128KiB\n  tcp:\n    addr: 127.0.0.1:1\ntenants:\n  retention: 7d\n", check: func(t *testing.T, c Config) {
			if c.Syslog.MaxFrame != 128<<10 || c.Syslog.TCP.Addr != "127.0.0.1:1" || c.Tenants.Retention.D() != 7*24*time.Hour {
				t.Fatalf("file not applied: %+v", c.Syslog)
			}
		}},
		{name: "env beats file", yaml: "http:\n  addr: 127.0.0.1:1\n", env: []string{"MAMORI_HTTP_ADDR=127.0.0.1:2", "MAMORI_INGEST_BATCH_WAIT=5ms"}, check: func(t *testing.T, c Config) {
			if c.HTTP.Addr != "127.0.0.1:2" || c.Ingest.BatchWait.D() != 5*time.Millisecond {
				t.Fatalf("env not applied: %+v", c.HTTP)
			}
		}},
		{name: "unknown key names key and line", yaml: "syslog:\n  tcp:\n    adr: x\n", wantErr: "line 3: unknown key adr"},
		{name: "bad size", yaml: "syslog:\n  max_frame: lots\n", wantErr: "invalid size"},
		{name: "bad env int", env: []string{"MAMORI_INGEST_BATCH_EVENTS=x"}, wantErr: "MAMORI_INGEST_BATCH_EVENTS"},
		{name: "gate defaults", check: func(t *testing.T, c Config) {
			g := c.Patterns.Gates
			if !g.Enabled || g.CleanHits != 1 || g.EngineRestarts != 3 || g.ScanErrorRate != 0.05 || g.CPUFactor != 3 || g.CPUFloor.D() != 20*time.Millisecond || g.MinScans != 20 || !g.SelfTest {
				t.Fatalf("gates %+v", g)
			}
		}},
		{name: "gates from file and env", yaml: "patterns:\n  gates:\n    engine_restarts: 5\n    cpu_floor: 50ms\n",
			env: []string{"MAMORI_PATTERNS_GATES_CPU_FACTOR=4.5", "MAMORI_PATTERNS_GATES_SELF_TEST=false"}, check: func(t *testing.T, c Config) {
				g := c.Patterns.Gates
				if g.EngineRestarts != 5 || g.CPUFloor.D() != 50*time.Millisecond || g.CPUFactor != 4.5 || g.SelfTest {
					t.Fatalf("gates %+v", g)
				}
			}},
		{name: "bad env float", env: []string{"MAMORI_PATTERNS_GATES_SCAN_ERROR_RATE=lots"}, wantErr: "MAMORI_PATTERNS_GATES_SCAN_ERROR_RATE"},
		{name: "unknown gate", yaml: "patterns:\n  gates:\n    cpu: 3\n", wantErr: "line 3: unknown key cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(write(tt.yaml), tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestSettingsMaskSecrets(t *testing.T) {
	c := Default()
	c.Auth.AdminToken = "supersecret"
	for _, s := range c.Settings() {
		if strings.Contains(s.Value, "supersecret") {
			t.Fatalf("secret leaked in %s", s.Path)
		}
		if s.Path == "auth.admin_token" && s.Env != "MAMORI_AUTH_ADMIN_TOKEN" {
			t.Fatalf("env key %s", s.Env)
		}
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "15m": 15 * time.Minute, "1w": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "2y": 730 * 24 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for in, want := range map[string]int64{"64KiB": 65536, "1GiB": 1 << 30, "10MB": 10_000_000, "512": 512} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSize("-1"); err == nil {
		t.Error("negative size accepted")
	}
}

func TestOrigins(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(p, []byte("syslog:\n  tcp:\n    addr: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, []string{"MAMORI_HTTP_ADDR=127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	c.SetOrigin("data", "flag")
	want := map[string]string{"syslog.tcp.addr": "file", "http.addr": "env", "data": "flag", "relp.addr": "default"}
	for _, s := range c.Settings() {
		if w, ok := want[s.Path]; ok && s.Origin != w {
			t.Errorf("%s from %s, want %s", s.Path, s.Origin, w)
		}
	}
}

func TestValidateGates(t *testing.T) {
	tests := []struct {
		name    string
		set     func(g *GatesConfig)
		wantErr string
	}{
		{name: "defaults", set: func(*GatesConfig) {}},
		{name: "all off", set: func(g *GatesConfig) { *g = GatesConfig{} }},
		{name: "negative restarts", set: func(g *GatesConfig) { g.EngineRestarts = -1 }, wantErr: "patterns.gates.engine_restarts"},
		{name: "rate above 1", set: func(g *GatesConfig) { g.ScanErrorRate = 5 }, wantErr: "patterns.gates.scan_error_rate"},
		{name: "cpu factor 1", set: func(g *GatesConfig) { g.CPUFactor = 1 }, wantErr: "patterns.gates.cpu_factor"},
		{name: "negative floor", set: func(g *GatesConfig) { g.CPUFloor = Duration(-time.Millisecond) }, wantErr: "patterns.gates.cpu_floor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c.Patterns.Gates)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestAgentsConfig(t *testing.T) {
	c, err := Load("", []string{"MAMORI_AGENTS_TLS_ADDR=0.0.0.0:9443", "MAMORI_AGENTS_TLS_NAMES=soc.example, 203.0.113.7", "MAMORI_AGENTS_REQUIRE_MTLS=true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Agents.TLSAddr != "0.0.0.0:9443" || len(c.Agents.TLSNames) != 2 || c.Agents.TLSNames[1] != "203.0.113.7" || !c.Agents.RequireMTLS {
		t.Fatalf("env not applied: %+v", c.Agents)
	}
	if Default().Agents.TLSAddr != "127.0.0.1:8443" {
		t.Errorf("default agents.tls_addr %q", Default().Agents.TLSAddr)
	}
	for _, tt := range []struct {
		name    string
		set     func(*AgentsConfig)
		wantErr string
	}{
		{"defaults", func(*AgentsConfig) {}, ""},
		{"tls url", func(a *AgentsConfig) { a.TLSURL = "https://soc.example:8443" }, ""},
		{"require without listener", func(a *AgentsConfig) { a.RequireMTLS, a.TLSAddr = true, "" }, "agents.require_mtls"},
		{"plain url", func(a *AgentsConfig) { a.TLSURL = "http://soc.example:8443" }, "agents.tls_url"},
		{"url with path", func(a *AgentsConfig) { a.TLSURL = "https://soc.example/agents" }, "agents.tls_url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c.Agents)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}
