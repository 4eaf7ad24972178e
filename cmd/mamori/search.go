package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/spf13/cobra"
)

func newSearchCmd() *cobra.Command {
	var c conn
	var since, from, to, lang string
	var limit int
	var asJSON, failOnMatch bool
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search events with the analyst query language (or raw LogsQL)",
		Example: `  mamori search 'source.ip:10.0.0.0/8 AND event.outcome:failure' --since 1h
  mamori search 'event.category:email | stats count() by host.name' --since 30m
  mamori search '"failed password" | top 10 source.ip' --since 1d --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if len(args) == 1 {
				q.Set("q", args[0])
			}
			if from == "" {
				from = "-" + since
			}
			q.Set("from", from)
			if to != "" {
				q.Set("to", to)
			}
			q.Set("limit", strconv.Itoa(limit))
			if lang != "" {
				q.Set("lang", lang)
			}
			if c.tenant != "" {
				q.Set("tenant", c.tenant)
			}
			var resp api.EventsResponse
			cl := newClient(c)
			if err := cl.Do(context.Background(), "GET", "/api/v1/events", q, nil, nil, &resp); err != nil {
				return err
			}
			found := resp.Total > 0 || len(resp.Rows) > 0
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				if resp.Rows != nil {
					for _, r := range resp.Rows {
						_ = enc.Encode(r)
					}
				} else {
					for _, e := range resp.Events {
						_ = enc.Encode(e)
					}
					fmt.Fprintf(os.Stderr, "%d of %d matching events\n", len(resp.Events), resp.Total)
				}
			} else {
				printSearch(resp)
			}
			if failOnMatch && found {
				return &exitError{code: exitFound}
			}
			return nil
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().StringVar(&since, "since", "1h", "how far back (e.g. 15m, 1h, 7d)")
	cmd.Flags().StringVar(&from, "from", "", "start (RFC 3339 or relative like -2h); overrides --since")
	cmd.Flags().StringVar(&to, "to", "", "end (default now)")
	cmd.Flags().IntVar(&limit, "limit", 50, "events to show")
	cmd.Flags().StringVar(&lang, "lang", "", "query language: mamori (default) or logsql")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.Flags().BoolVar(&failOnMatch, "fail-on-match", false, "exit 1 when something matched")
	return cmd
}

func printSearch(resp api.EventsResponse) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	if resp.Rows != nil {
		var cols []string
		seen := map[string]bool{}
		for _, r := range resp.Rows {
			for k := range r {
				if !seen[k] {
					seen[k] = true
					cols = append(cols, k)
				}
			}
		}
		sort.Strings(cols)
		fmt.Fprintln(w, strings.ToUpper(strings.Join(cols, "\t")))
		for _, r := range resp.Rows {
			vals := make([]string, len(cols))
			for i, c := range cols {
				vals[i] = r[c]
			}
			fmt.Fprintln(w, strings.Join(vals, "\t"))
		}
		return
	}
	fmt.Fprintf(w, "TIME\tTENANT\tHOST\tKIND\tMESSAGE\n")
	for _, e := range resp.Events {
		str := func(k string) string { s, _ := e[k].(string); return s }
		msg := str("message")
		if msg == "" {
			msg = str("event.original")
		}
		if len(msg) > 120 {
			msg = msg[:117] + "..."
		}
		kind := str("event.kind")
		if kind == "" {
			kind = "event"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", str("@timestamp"), str("tenant"), str("host.name"), kind, msg)
	}
	fmt.Fprintf(w, "-- %d of %d matching events (%s .. %s)\n", len(resp.Events), resp.Total, resp.From.Format("2006-01-02 15:04:05"), resp.To.Format("2006-01-02 15:04:05"))
}
