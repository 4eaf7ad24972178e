package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/server"
	"github.com/spf13/cobra"
)

// loadConfig applies file, env, then the flags the user set.
func loadConfig(cmd *cobra.Command, path string, flagCfg *config.Config) (config.Config, error) {
	if path == "" {
		path = os.Getenv("MAMORI_CONFIG")
	}
	c, err := config.Load(path, os.Environ())
	if err != nil {
		return c, err
	}
	set := func(name, path string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
			c.SetOrigin(path, "flag")
		}
	}
	set("data", "data", &c.Data, flagCfg.Data)
	set("http", "http.addr", &c.HTTP.Addr, flagCfg.HTTP.Addr)
	set("syslog-udp", "syslog.udp.addr", &c.Syslog.UDP.Addr, flagCfg.Syslog.UDP.Addr)
	set("syslog-tcp", "syslog.tcp.addr", &c.Syslog.TCP.Addr, flagCfg.Syslog.TCP.Addr)
	set("syslog-tls", "syslog.tls.addr", &c.Syslog.TLS.Addr, flagCfg.Syslog.TLS.Addr)
	set("relp", "relp.addr", &c.RELP.Addr, flagCfg.RELP.Addr)
	set("agents-tls", "agents.tls_addr", &c.Agents.TLSAddr, flagCfg.Agents.TLSAddr)
	set("nats", "nats.url", &c.NATS.URL, flagCfg.NATS.URL)
	set("events", "events.url", &c.Events.URL, flagCfg.Events.URL)
	set("log-level", "log.level", &c.Log.Level, flagCfg.Log.Level)
	if cmd.Flags().Changed("max-frame") {
		c.Syslog.MaxFrame = flagCfg.Syslog.MaxFrame
		c.SetOrigin("syslog.max_frame", "flag")
	}
	if cmd.Flags().Changed("rules") {
		c.Detect.Rules = flagCfg.Detect.Rules
		c.SetOrigin("detect.rules", "flag")
	}
	if cmd.Flags().Changed("nats-replicas") {
		c.NATS.Replicas = flagCfg.NATS.Replicas
		c.SetOrigin("nats.replicas", "flag")
	}
	return c, c.Validate()
}

func addServerFlags(cmd *cobra.Command, f *config.Config, cfgPath *string) {
	d := config.Default()
	*f = d
	fl := cmd.Flags()
	fl.StringVar(cfgPath, "config", "", "YAML config file (MAMORI_CONFIG)")
	fl.StringVar(&f.Data, "data", d.Data, "data directory (MAMORI_DATA)")
	fl.StringVar(&f.HTTP.Addr, "http", d.HTTP.Addr, "HTTP API address (MAMORI_HTTP_ADDR)")
	fl.StringVar(&f.Syslog.UDP.Addr, "syslog-udp", d.Syslog.UDP.Addr, "syslog UDP address, empty to disable (MAMORI_SYSLOG_UDP_ADDR)")
	fl.StringVar(&f.Syslog.TCP.Addr, "syslog-tcp", d.Syslog.TCP.Addr, "syslog TCP address (MAMORI_SYSLOG_TCP_ADDR)")
	fl.StringVar(&f.Syslog.TLS.Addr, "syslog-tls", d.Syslog.TLS.Addr, "syslog TLS address (MAMORI_SYSLOG_TLS_ADDR)")
	fl.StringVar(&f.RELP.Addr, "relp", d.RELP.Addr, "RELP address (MAMORI_RELP_ADDR)")
	fl.StringVar(&f.Agents.TLSAddr, "agents-tls", d.Agents.TLSAddr, "agents' mutual-TLS address, empty to disable (MAMORI_AGENTS_TLS_ADDR)")
	fl.StringVar(&f.NATS.URL, "nats", "", "external NATS cluster, e.g. nats://a:4222,nats://b:4222 (default: embedded)")
	fl.IntVar(&f.NATS.Replicas, "nats-replicas", d.NATS.Replicas, "stream replicas on an external cluster (MAMORI_NATS_REPLICAS)")
	fl.StringVar(&f.Events.URL, "events", "", "events store: victorialogs://host:9428 (default: embedded engine)")
	fl.StringSliceVar(&f.Detect.Rules, "rules", nil, "Sigma rule directory or file, e.g. a SigmaHQ checkout's rules/ (repeatable; MAMORI_DETECT_RULES)")
	fl.Var(&f.Syslog.MaxFrame, "max-frame", "largest syslog frame (MAMORI_SYSLOG_MAX_FRAME)")
	fl.StringVar(&f.Log.Level, "log-level", d.Log.Level, "debug, info, warn, error (MAMORI_LOG_LEVEL)")
}

func newServeCmd() *cobra.Command {
	var f config.Config
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the all-in-one server (embedded NATS, event engine and SQLite)",
		Example: `  mamori serve
  mamori serve --data /var/lib/mamori --http 0.0.0.0:8080
  mamori serve --rules ./sigma/rules --rules ./sigma/rules-emerging-threats
  mamori serve --events victorialogs://10.0.0.5:9428 --nats nats://a:4222,nats://b:4222,nats://c:4222 --nats-replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd, cfgPath, &f)
			if err != nil {
				return err
			}
			log := newLogger(c.Log.Level, c.Log.Format)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, c, os.Stdout, log)
		},
	}
	addServerFlags(cmd, &f, &cfgPath)
	return cmd
}
