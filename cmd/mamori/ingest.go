package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/mamori-soc/mamori/internal/client"
	"github.com/spf13/cobra"
)

func newIngestCmd() *cobra.Command {
	var c conn
	var batch int
	cmd := &cobra.Command{
		Use:   "ingest FILE...",
		Short: "Send log files (any supported format, gzip ok) and Windows .evtx to a server",
		Example: `  MAMORI_TOKEN=mmr_... mamori ingest /var/log/auth.log fw.log.gz
  mamori ingest --tenant acme --server http://soc:8080 Security.evtx`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			cl := client.New(c.server, c.token)
			var res client.IngestResult
			start := time.Now()
			tty := isTTY()
			opts := client.IngestOptions{Tenant: c.tenant, BatchLines: batch, BatchBytes: 4 << 20, MaxLine: 1 << 20,
				Progress: func(r client.IngestResult) {
					if tty {
						el := time.Since(start).Seconds()
						fmt.Fprintf(os.Stderr, "\r%d files, %d events sent, %.0f events/s   ", r.Files, r.Sent, float64(r.Sent)/max(el, 1e-3))
					}
				}}
			for _, f := range files {
				if err := cl.IngestFile(ctx, f, opts, &res); err != nil {
					if tty {
						fmt.Fprintln(os.Stderr)
					}
					printIngestSummary(res, start)
					return err
				}
			}
			if tty {
				fmt.Fprintln(os.Stderr)
			}
			printIngestSummary(res, start)
			return nil
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().IntVar(&batch, "batch", 5000, "events per request")
	return cmd
}

func printIngestSummary(r client.IngestResult, start time.Time) {
	el := time.Since(start).Seconds()
	fmt.Printf("ingested %s events from %d files in %.1f s (%s events/s): sent %s, stored %s, unparsed %s, evtx record errors %d\n",
		commas(r.Stored), r.Files, el, commas(int(float64(r.Stored)/max(el, 1e-3))), commas(r.Sent), commas(r.Stored), commas(r.Unparsed), r.EVTXErrors)
}

func commas(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
