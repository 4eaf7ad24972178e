package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/agent"
	"github.com/mamori-soc/mamori/internal/agent/isolate"
	"github.com/mamori-soc/mamori/internal/fleet"
)

func newAgentCmd() *cobra.Command {
	var server, enroll, dir, level, format string
	var channels, logs, scanPaths, watch []string
	var logsFromStart, uploadSamples bool
	var scanCPU float64
	var scanIO int64
	var scanEvery time.Duration
	var onDetect string
	var heartbeat time.Duration
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the endpoint agent: signed pattern updates pushed by the server, guarded loading, self-test",
		Long: `Run the endpoint agent. The first start enrolls with --enroll TOKEN (an enroll
token: mamori tenant token TENANT --kind enroll) and keeps the agent's
credential and the pattern repository's trusted root in --dir; later starts
need neither --enroll nor --server. The agent makes its own key and gets a
client certificate for it: from then on it talks to the server's agents TLS
listener with mutual TLS, trusting only the agent CA pinned at enrollment.

The agent follows the server's push stream; each new release is verified
(TUF: signatures, versions, expiry, hashes), compiled and self-tested before
it becomes active, and the last good set stays active when a release fails.

It scans on the server's command, on a schedule (--scan-path, --scan-every)
and when files change (--watch), within --scan-cpu and --scan-io. A
detection runs the cleanup definition for its signature or quarantines the
file (encrypted, restorable), and is reported to the SOC as an event. The
server can also order isolation (nftables, Linux), release, quarantine,
restore and sample upload. --logs ships local log files.`,
		Example: "  mamori agent --server https://soc.example --enroll mmr_… --dir /var/lib/mamori-agent\n" +
			"  mamori agent --dir /var/lib/mamori-agent --watch /home --watch /tmp --scan-path / --logs '/var/log/auth.log'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(level, format)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			host, _ := os.Hostname()
			info := fleet.Info{Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: version()}
			hc := &http.Client{Timeout: 5 * time.Minute}
			id, err := agent.LoadIdentity(dir)
			switch {
			case errors.Is(err, agent.ErrIdentity):
				if enroll == "" || server == "" {
					return &exitError{code: exitUsage, err: fmt.Errorf("not enrolled yet: give --server and --enroll TOKEN")}
				}
				if id, err = agent.Enroll(ctx, hc, server, enroll, info); err != nil {
					return &exitError{code: exitUnreachable, err: err}
				}
				if err := agent.SaveIdentity(dir, id); err != nil {
					return err
				}
				if id.CertPEM != "" {
					log.Info("enrolled; mutual TLS from now on", "agent", id.AgentID, "tenant", id.Tenant, "server", id.Server, "tls_url", id.TLSURL)
				} else {
					log.Info("enrolled with a bearer credential only (the server issued no client certificate)", "agent", id.AgentID, "tenant", id.Tenant, "server", id.Server)
				}
			case err != nil:
				return err
			case server != "" && strings.TrimRight(server, "/") != id.Server:
				return &exitError{code: exitUsage, err: fmt.Errorf("%s is enrolled with %s, not %s", dir, id.Server, server)}
			}
			o := agent.Options{Dir: dir, Channels: channels, HTTP: hc, Logger: log, Info: info, Heartbeat: heartbeat,
				Logs: logs, LogsFromStart: logsFromStart, ScanCPU: scanCPU, ScanIO: scanIO, ScanEvery: scanEvery, ScanPaths: scanPaths,
				Watch: watch, OnDetect: onDetect, UploadSamples: uploadSamples}
			if iso := startIsolator(ctx, dir, log); iso != nil {
				o.Isolator = iso
			}
			a, err := agent.New(id, o)
			if err != nil {
				return err
			}
			log.Info("agent running", "agent", id.AgentID, "channels", channels, "active", a.Installed())
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("MAMORI_SERVER"), "server URL (first start)")
	f.StringVar(&enroll, "enroll", os.Getenv("MAMORI_ENROLL_TOKEN"), "enroll token (first start)")
	f.StringVar(&dir, "dir", "./mamori-agent", "state directory: credential, key and certificate, trusted root, last good pattern sets")
	f.StringSliceVar(&channels, "channels", []string{"main", "bandage", "cleanup"}, "pattern channels to follow")
	f.DurationVar(&heartbeat, "heartbeat", time.Minute, "heartbeat interval")
	f.StringArrayVar(&logs, "logs", nil, "ship this log file (or glob) to the server; repeatable")
	f.BoolVar(&logsFromStart, "logs-from-start", false, "ship log files seen for the first time from their beginning, not their end")
	f.StringArrayVar(&scanPaths, "scan-path", nil, "scan this directory every --scan-every; repeatable")
	f.DurationVar(&scanEvery, "scan-every", 24*time.Hour, "interval of the scheduled scan of --scan-path")
	f.StringArrayVar(&watch, "watch", nil, "scan files under this directory when they change; repeatable")
	f.Float64Var(&scanCPU, "scan-cpu", 0.25, "share of one CPU core scanning may use")
	f.Int64Var(&scanIO, "scan-io", 32<<20, "bytes per second scanning may read")
	f.StringVar(&onDetect, "on-detect", agent.ActQuarantine, "what to do with a detection: quarantine (run its cleanup definition, else quarantine the file) or report")
	f.BoolVar(&uploadSamples, "upload-samples", false, "upload quarantined files to the server's lab at once (else on command)")
	f.StringVar(&level, "log-level", "info", "debug, info, warn, error")
	f.StringVar(&format, "log-format", "", "text or json (default: text on a terminal)")
	return cmd
}

func version() string {
	if v := buildVersion(); v != "" {
		return v
	}
	return "(devel)"
}

// startIsolator prepares network isolation (nftables on Linux): a host
// isolated before a restart or a reboot stays isolated until its expiry.
// Without it the agent still runs, and refuses isolate commands.
func startIsolator(ctx context.Context, dir string, log *slog.Logger) *isolate.Isolator {
	iso, err := isolate.New(isolate.Options{StateFile: filepath.Join(dir, "isolation.json"), OnReapply: func(err error) {
		log.Warn("isolation table was removed by someone else and applied again", "err", err)
	}})
	if err != nil {
		log.Warn("network isolation is not available on this host; isolate commands will be refused", "err", err)
		return nil
	}
	st, err := iso.Restore(ctx)
	if err != nil {
		log.Error("restore network isolation", "err", err)
	} else if st.Isolated {
		log.Warn("host is isolated", "until", st.Policy.Until, "reason", st.Policy.Reason)
	}
	go func() { _ = iso.Run(ctx) }()
	return iso
}
