package main

import (
	"os"

	"github.com/mamori-soc/mamori/internal/bench"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks against a real server on loopback"}
	var o bench.IngestOptions
	ing := &cobra.Command{
		Use:     "ingest",
		Short:   "RFC 5424 over TCP (octet counting) into a fresh mamori serve: events/s to searchable, peak RSS, rsyslog ratio",
		Example: `  mamori bench ingest --events 1000000 --runs 5 --rsyslog`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = os.Stdout
			return bench.Ingest(cmd.Context(), o)
		},
	}
	ing.Flags().IntVar(&o.Events, "events", 1000000, "messages per run")
	ing.Flags().IntVar(&o.Conns, "conns", 4, "parallel TCP connections")
	ing.Flags().IntVar(&o.Runs, "runs", 5, "runs (the median is reported)")
	ing.Flags().BoolVar(&o.RSyslog, "rsyslog", true, "also measure rsyslogd imtcp→omfile on the same messages")
	ing.Flags().StringVar(&o.Bin, "bin", "", "mamori binary to benchmark (default: this one)")
	cmd.AddCommand(ing)
	return cmd
}
