package server

import (
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/mamori-soc/mamori/internal/config"
)

func TestAgentsTLSURLAndNames(t *testing.T) {
	for _, tt := range []struct {
		name, addr, tlsURL, reqHost string
		names                       []string
		want                        string // "" : https://<bound address>
		covers                      string
	}{
		{name: "bound address", addr: "127.0.0.1:0", reqHost: "soc.example:8080", covers: "127.0.0.1"},
		{name: "every address: the host enrolled through", addr: "0.0.0.0:0", reqHost: "soc.example:8080", names: []string{"soc.example"},
			want: "https://soc.example:PORT", covers: "soc.example"},
		{name: "configured", addr: "127.0.0.1:0", tlsURL: "https://agents.example:443", reqHost: "x", want: "https://agents.example:443", covers: "agents.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Data = t.TempDir()
			cfg.Agents.TLSAddr, cfg.Agents.TLSURL, cfg.Agents.TLSNames = tt.addr, tt.tlsURL, tt.names
			at, err := openAgentsTLS(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer at.ln.Close()
			_, port, _ := net.SplitHostPort(at.ln.Addr().String())
			want := tt.want
			switch want {
			case "":
				want = "https://" + at.ln.Addr().String()
			case "https://soc.example:PORT":
				want = "https://soc.example:" + port
			}
			r := httptest.NewRequest("POST", "/api/v1/agents/enroll", nil)
			r.Host = tt.reqHost
			if got := at.urlFor(r); got != want {
				t.Errorf("url %q, want %q", got, want)
			}
			if err := at.certs.leaf().VerifyHostname(tt.covers); err != nil {
				t.Errorf("server certificate: %v", err)
			}
			if err := at.certs.leaf().VerifyHostname("localhost"); err != nil {
				t.Errorf("server certificate: %v", err)
			}
		})
	}
}
