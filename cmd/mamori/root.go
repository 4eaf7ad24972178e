package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "mamori",
		Short: "Mamori: an open-source Security Operations Center platform",
		Long: `Mamori collects security logs from many customers (tenants), keeps every one,
and finds them again.

  mamori serve                 run the all-in-one server on embedded defaults
  mamori ingest FILE...        send log files or Windows .evtx to a server
  mamori search QUERY          search events
  mamori scan PATH...          scan files offline with pattern files
  mamori pattern publish FILE  publish a signed pattern release to agents
  mamori agent --enroll TOKEN  run the endpoint agent`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newIngestCmd(), newSearchCmd(), newAlertsCmd(), newRulesCmd(), newIntelCmd(), newTenantCmd(), newConfigCmd(), newScanCmd(), newPatternCmd(), newKeysCmd(), newAgentCmd(), newAgentsCmd(), newBenchCmd(), newVersionCmd())
	return root
}

// conn holds the connection settings every client command shares.
type conn struct {
	server, token, tenant string
}

func addConnFlags(cmd *cobra.Command, c *conn) {
	def := os.Getenv("MAMORI_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	cmd.Flags().StringVar(&c.server, "server", def, "server URL (MAMORI_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", os.Getenv("MAMORI_TOKEN"), "API token (MAMORI_TOKEN)")
	cmd.Flags().StringVar(&c.tenant, "tenant", os.Getenv("MAMORI_TENANT"), "tenant (MAMORI_TENANT)")
}

func newLogger(level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" || (format == "" && !term.IsTerminal(int(os.Stderr.Fd()))) {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func isTTY() bool { return term.IsTerminal(int(os.Stdout.Fd())) }
