package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/update"
)

func newPatternCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pattern", Aliases: []string{"patterns"}, Short: "Publish signed pattern releases to agents and watch them protect"}
	{
		var c conn
		var channel string
		pub := &cobra.Command{
			Use:   "publish FILE|DIR...",
			Short: "Publish the signatures of pattern files as the next release of a channel",
			Long: `Parse pattern files (ClamAV .hdb/.hsb/.ndb/.ldb, Mamori YAML) here, then
publish their signatures as the next signed release of a channel. The server
refuses a release that does not compile, and a bandage hash signature of a
known-clean file. Connected agents are told at once and fetch the delta.`,
			Example: "  mamori pattern publish --channel bandage emotet-2026-11.hsb\n  mamori pattern publish --channel main ./patterns/",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var recs []pattern.Record
				for _, p := range args {
					files := []string{p}
					if st, err := os.Stat(p); err == nil && st.IsDir() {
						files = nil
						ents, _ := os.ReadDir(p)
						for _, e := range ents {
							if _, ok := pattern.FormatOf(e.Name(), false); ok && !e.IsDir() {
								files = append(files, p+string(os.PathSeparator)+e.Name())
							}
						}
					}
					for _, f := range files {
						rs, warns, err := pattern.ParseFile(f)
						if err != nil {
							return &exitError{code: exitUsage, err: err}
						}
						if len(warns) > 0 {
							for _, w := range warns {
								fmt.Fprintln(os.Stderr, "refused:", w)
							}
							return &exitError{code: exitUsage, err: fmt.Errorf("%s: %d signatures do not parse; fix or remove them", f, len(warns))}
						}
						recs = append(recs, rs...)
					}
				}
				req := api.PublishRequest{}
				for _, r := range pattern.SortRecords(recs) {
					req.Records = append(req.Records, r.String())
				}
				return postRelease(c, channel, req)
			},
		}
		addConnFlags(pub, &c)
		pub.Flags().StringVar(&channel, "channel", "main", "main, bandage (temporary patterns for one malware) or cleanup")
		cmd.AddCommand(pub)
	}
	{
		var c conn
		var channel string
		rb := &cobra.Command{
			Use:   "rollback VERSION",
			Short: "Publish an earlier release's content as the next version (agents move back at once)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				v, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("version: %w", err)}
				}
				return postRelease(c, channel, api.PublishRequest{RollbackTo: v})
			},
		}
		addConnFlags(rb, &c)
		rb.Flags().StringVar(&channel, "channel", "main", "channel")
		cmd.AddCommand(rb)
	}
	{
		var c conn
		var asJSON bool
		list := &cobra.Command{
			Use:   "list",
			Short: "List releases per channel",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var out struct {
					Channels map[string][]update.Release `json:"channels"`
				}
				if err := newClient(c).JSON(context.Background(), "GET", "/api/v1/patterns", nil, &out); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(out)
				}
				w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "CHANNEL\tVERSION\tRECORDS\tPUBLISHED\tFULL\tDELTAS\tNOTE")
				for _, ch := range api.Channels {
					for _, r := range out.Channels[ch] {
						note := ""
						if r.RollbackOf > 0 {
							note = fmt.Sprintf("rollback to %d", r.RollbackOf)
						}
						fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d B\t%d\t%s\n", ch, r.Version, r.Records, r.PublishedAt.Local().Format(time.DateTime), r.Full.Length, len(r.Deltas), note)
					}
				}
				return w.Flush()
			},
		}
		addConnFlags(list, &c)
		list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(list)
	}
	{
		var c conn
		var channel string
		var asJSON bool
		st := &cobra.Command{
			Use:   "status VERSION",
			Short: "Time to protect: per tenant, agents with the release active and p50/p99/100 % seconds after publication",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				q := url.Values{}
				if c.tenant != "" {
					q.Set("tenant", c.tenant)
				}
				var out api.PatternStatus
				path := "/api/v1/patterns/" + url.PathEscape(channel) + "/" + url.PathEscape(args[0])
				if len(q) > 0 {
					path += "?" + q.Encode()
				}
				if err := newClient(c).JSON(context.Background(), "GET", path, nil, &out); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(out)
				}
				fmt.Printf("%s %d: %d records, published %s\n", out.Release.Channel, out.Release.Version, out.Release.Records, out.Release.PublishedAt.Local().Format(time.DateTime))
				w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "TENANT\tAGENTS\tACTIVE\tFAILED\tP50\tP99\tALL")
				secs := func(v *float64) string {
					if v == nil {
						return "-"
					}
					return strconv.FormatFloat(*v, 'f', 2, 64) + "s"
				}
				for _, p := range out.Tenants {
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\t%s\n", p.Tenant, p.Agents, p.Active, p.Failed, secs(p.P50), secs(p.P99), secs(p.All))
				}
				if out.All != nil {
					fmt.Fprintf(w, "(all)\t%d\t%d\t%d\t%s\t%s\t%s\n", out.All.Agents, out.All.Active, out.All.Failed, secs(out.All.P50), secs(out.All.P99), secs(out.All.All))
				}
				return w.Flush()
			},
		}
		addConnFlags(st, &c)
		st.Flags().StringVar(&channel, "channel", "main", "channel")
		st.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(st)
	}
	return cmd
}

// postRelease publishes (or rolls back) and prints the new release.
func postRelease(c conn, channel string, req api.PublishRequest) error {
	var r update.Release
	if err := newClient(c).JSON(context.Background(), "POST", "/api/v1/patterns/"+url.PathEscape(channel), req, &r); err != nil {
		return err
	}
	printRelease(r)
	return nil
}

func printRelease(r update.Release) {
	note := ""
	if r.RollbackOf > 0 {
		note = fmt.Sprintf(" (content of version %d)", r.RollbackOf)
	}
	fmt.Printf("published %s %d%s: %d records, full %d B, %d deltas, content sha256 %s\n",
		r.Channel, r.Version, note, r.Records, r.Full.Length, len(r.Deltas), r.ContentSHA256)
}
