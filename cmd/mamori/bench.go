package main

import (
	"os"
	"time"

	"github.com/mamori-soc/mamori/internal/bench"
	"github.com/mamori-soc/mamori/internal/detect/anomaly"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks against a real server on loopback"}
	var o bench.IngestOptions
	ing := &cobra.Command{
		Use:   "ingest",
		Short: "RFC 5424 over TCP (octet counting) into a fresh mamori serve: events/s to searchable, peak RSS, rsyslog ratio",
		Example: `  mamori bench ingest --events 1000000 --runs 5 --rsyslog
  mamori bench ingest --no-detect --rsyslog=false
  mamori bench ingest --rules ../shared/corpus/sigma/rules --indicators 1000000 --rsyslog=false`,
		Args: cobra.NoArgs,
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
	ing.Flags().StringVar(&o.Target, "target", "", "data dir of a running server to load instead of starting one")
	ing.Flags().StringVar(&o.CPUProfile, "cpuprofile", "", "save the server CPU profile of the first run here")
	ing.Flags().IntVar(&o.ProfileSecs, "profile-seconds", 5, "length of the CPU profile")
	ing.Flags().BoolVar(&o.NoDetect, "no-detect", false, "run the server without the detection engine (the baseline)")
	ing.Flags().StringSliceVar(&o.Rules, "rules", nil, "Sigma rule directories the server loads (repeatable)")
	ing.Flags().IntVar(&o.Indicators, "indicators", 0, "load this many synthetic indicators before sending")
	cmd.AddCommand(ing)
	var fo bench.FanoutOptions
	fan := &cobra.Command{
		Use:   "fanout",
		Short: "Publish bandage releases to N simulated agents (real TUF verification) in this process: publish → active p50/p99/max, server RSS",
		Example: `  mamori bench fanout --agents 10000 --runs 5
  mamori bench fanout --agents 10000 --delta-kb 140`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fo.Out = os.Stdout
			return bench.Fanout(cmd.Context(), fo)
		},
	}
	fan.Flags().IntVar(&fo.Agents, "agents", 10000, "simulated agents")
	fan.Flags().IntVar(&fo.Runs, "runs", 5, "bandage releases measured (medians reported)")
	fan.Flags().IntVar(&fo.DeltaKB, "delta-kb", 140, "then a main-channel delta of about this size, and a rollback (0: skip)")
	fan.Flags().StringVar(&fo.Bin, "bin", "", "mamori binary to start as the server (default: this one)")
	fan.Flags().StringVar(&fo.CPUProfile, "cpuprofile", "", "save the agents' CPU profile of the measured releases here")
	fan.Flags().StringVar(&fo.ServerCPUProfile, "server-cpuprofile", "", "save the server's CPU profile of the measured releases here")
	cmd.AddCommand(fan)
	var sco bench.ScanOptions
	scb := &cobra.Command{
		Use:   "scan",
		Short: "Scanner throughput (MB/s) against clamscan and yara on the same files and an equivalent signature set",
		Example: `  mamori bench scan --mb 200 --hash 100000 --body 10000
  mamori bench scan --dir /usr/bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sco.Out = os.Stdout
			return bench.Scan(cmd.Context(), sco)
		},
	}
	scb.Flags().StringVar(&sco.Dir, "dir", "", "files to scan (default: generated)")
	scb.Flags().IntVar(&sco.MB, "mb", 200, "megabytes of files to generate")
	scb.Flags().IntVar(&sco.Hash, "hash", 100000, "hash signatures")
	scb.Flags().IntVar(&sco.Body, "body", 10000, "body signatures")
	scb.Flags().IntVar(&sco.Runs, "runs", 3, "runs per tool (best reported)")
	cmd.AddCommand(scb)
	var so bench.SearchOptions
	srch := &cobra.Command{
		Use:     "search",
		Short:   "Load N events into an embedded engine and time analyst queries (field:value, CIDR, stats)",
		Example: `  mamori bench search --events 10000000 --dir /var/tmp/mamori-bench`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			so.Out = os.Stdout
			return bench.Search(cmd.Context(), so)
		},
	}
	srch.Flags().IntVar(&so.Events, "events", 10000000, "events to load")
	srch.Flags().StringVar(&so.Dir, "dir", "", "engine directory (kept and reused when given)")
	srch.Flags().IntVar(&so.Runs, "runs", 5, "timings per query")
	cmd.AddCommand(srch)
	cmd.AddCommand(newBenchOutbreakCmd())
	return cmd
}

func newBenchOutbreakCmd() *cobra.Command {
	var o bench.OutbreakOptions
	var scenario, linesPath string
	var days int
	cmd := &cobra.Command{
		Use:   "outbreak",
		Short: "Replay a generated Postfix stream (steady, diurnal, or a 10× outbreak) through the parser and the baselines; report surges",
		Example: `  mamori bench outbreak --scenario outbreak
  mamori bench outbreak --scenario diurnal --days 7
  mamori bench outbreak --scenario outbreak --lines mail.log   # also write the syslog lines`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Gen.Scenario = anomaly.Scenario(scenario)
			o.Gen.Duration = time.Duration(days) * 24 * time.Hour
			o.Out = os.Stdout
			if linesPath != "" {
				f, err := os.Create(linesPath)
				if err != nil {
					return err
				}
				defer f.Close()
				o.Lines = f
			}
			return bench.Outbreak(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", "outbreak", "steady, diurnal or outbreak")
	cmd.Flags().IntVar(&days, "days", 7, "days of normal traffic (before the rise, for outbreak)")
	cmd.Flags().Uint64Var(&o.Gen.Seed, "seed", 1, "random seed (runs are deterministic)")
	cmd.Flags().Float64Var(&o.Gen.Rate, "rate", 0, "mails per minute: steady rate or diurnal peak (default 10 / 30)")
	cmd.Flags().StringVar(&linesPath, "lines", "", "also write the generated syslog lines to this file")
	return cmd
}
