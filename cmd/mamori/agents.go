package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/fleet"
	"github.com/mamori-soc/mamori/internal/respond"
)

// newAgentsCmd is the analyst's side of the fleet: list agents and order
// measures on one (the endpoint itself runs `mamori agent`).
func newAgentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "List enrolled agents and order measures on one: isolate, release, scan, quarantine, restore, upload"}
	{
		var c conn
		var asJSON, quiet bool
		list := &cobra.Command{
			Use:     "list",
			Short:   "List enrolled agents",
			Example: "  mamori agents list --tenant acme\n  mamori agents list -q",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				q := url.Values{}
				if c.tenant != "" {
					q.Set("tenant", c.tenant)
				}
				var resp api.AgentList
				if err := newClient(c).Do(context.Background(), "GET", "/api/v1/agents", q, nil, nil, &resp); err != nil {
					return err
				}
				switch {
				case asJSON:
					enc := json.NewEncoder(os.Stdout)
					for _, a := range resp.Agents {
						if err := enc.Encode(a); err != nil {
							return err
						}
					}
					return nil
				case quiet:
					for _, a := range resp.Agents {
						fmt.Println(a.ID)
					}
					return nil
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tHOST\tOS\tAUTH\tLAST SEEN\tACTIVE")
				for _, a := range resp.Agents {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Tenant, a.Info.Hostname, a.Info.OS, a.Auth,
						a.LastSeen.UTC().Format(time.RFC3339), activeSets(a))
				}
				return tw.Flush()
			},
		}
		addConnFlags(list, &c)
		list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per agent")
		list.Flags().BoolVarP(&quiet, "quiet", "q", false, "agent ids only")
		cmd.AddCommand(list)
	}
	{
		var c conn
		show := &cobra.Command{
			Use:   "show ID",
			Short: "One agent: platform, ring, health, active pattern releases (JSON)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var a fleet.Agent
				if err := newClient(c).Do(context.Background(), "GET", "/api/v1/agents/"+url.PathEscape(args[0]), nil, nil, nil, &a); err != nil {
					return err
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(a)
			},
		}
		addConnFlags(show, &c)
		cmd.AddCommand(show)
	}
	{
		var c conn
		remove := &cobra.Command{
			Use:   "remove ID",
			Short: "Forget an agent: its credential and certificate stop working at its next request",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := newClient(c).Do(context.Background(), "DELETE", "/api/v1/agents/"+url.PathEscape(args[0]), nil, nil, nil, nil); err != nil {
					return err
				}
				fmt.Printf("agent %s removed\n", args[0])
				return nil
			},
		}
		addConnFlags(remove, &c)
		cmd.AddCommand(remove)
	}
	{
		var c conn
		var asJSON bool
		var limit int
		cmds := &cobra.Command{
			Use:   "commands ID",
			Short: "An agent's commands, newest first, with their outcome",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				q := url.Values{}
				if limit > 0 {
					q.Set("limit", fmt.Sprint(limit))
				}
				var resp api.CommandList
				if err := newClient(c).Do(context.Background(), "GET", "/api/v1/agents/"+url.PathEscape(args[0])+"/commands", q, nil, nil, &resp); err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(os.Stdout)
					for _, x := range resp.Commands {
						if err := enc.Encode(x); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tKIND\tSTATE\tBY\tCREATED\tOUTCOME")
				for _, x := range resp.Commands {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Kind, x.State, x.By, x.CreatedAt.Format(time.RFC3339), outcomeText(x))
				}
				return tw.Flush()
			},
		}
		addConnFlags(cmds, &c)
		cmds.Flags().BoolVar(&asJSON, "json", false, "one JSON object per command")
		cmds.Flags().IntVar(&limit, "limit", 0, "at most this many (default 100)")
		cmd.AddCommand(cmds)
	}

	// The measures: each queues a command and, unless --wait 0, waits for
	// the agent's outcome.
	measure := func(use, short, example string, nargs int, flags func(*cobra.Command) func(args []string) (kind string, body any)) {
		var c conn
		var wait time.Duration
		var asJSON bool
		sub := &cobra.Command{Use: use, Short: short, Example: example, Args: cobra.MinimumNArgs(nargs)}
		build := flags(sub)
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			kind, body := build(args[1:])
			return orderMeasure(c, args[0], kind, body, wait, asJSON)
		}
		addConnFlags(sub, &c)
		sub.Flags().DurationVar(&wait, "wait", 30*time.Second, "wait this long for the agent's outcome (0: queue and return)")
		sub.Flags().BoolVar(&asJSON, "json", false, "print the command as JSON")
		cmd.AddCommand(sub)
	}
	measure("isolate ID", "Cut an agent's host off the network, except the Mamori server (Linux, nftables)",
		"  mamori agents isolate agt_… --for 4h --reason INC-42\n  mamori agents isolate agt_… --allow 10.0.0.53:udp/53", 1,
		func(sub *cobra.Command) func([]string) (string, any) {
			var dur, reason string
			var allow []string
			sub.Flags().StringVar(&dur, "for", "", "how long (1m–720h; default 24h); the kernel lifts it then even without the agent")
			sub.Flags().StringArrayVar(&allow, "allow", nil, "another endpoint the host may still reach (ADDR, CIDR, ADDR:tcp/PORT); repeatable")
			sub.Flags().StringVar(&reason, "reason", "", "why (kept with the isolation)")
			return func([]string) (string, any) {
				return respond.KindIsolate, respond.Isolate{For: dur, Allow: allow, Reason: reason}
			}
		})
	measure("release ID", "Lift an agent's isolation", "  mamori agents release agt_…", 1,
		func(*cobra.Command) func([]string) (string, any) {
			return func([]string) (string, any) { return respond.KindRelease, struct{}{} }
		})
	measure("scan ID PATH...", "Scan paths on an agent's host now", "  mamori agents scan agt_… /home /tmp", 2,
		func(*cobra.Command) func([]string) (string, any) {
			return func(paths []string) (string, any) { return respond.KindScan, respond.Scan{Paths: paths} }
		})
	measure("quarantine ID PATH", "Move a file on an agent's host into its encrypted quarantine", "  mamori agents quarantine agt_… /tmp/invoice.pdf.exe --reason INC-42", 2,
		func(sub *cobra.Command) func([]string) (string, any) {
			var reason string
			sub.Flags().StringVar(&reason, "reason", "", "why")
			return func(a []string) (string, any) {
				return respond.KindQuarantine, respond.Quarantine{Path: a[0], Reason: reason}
			}
		})
	measure("restore ID QUARANTINE-ID", "Put a quarantined file back where it was", "  mamori agents restore agt_… 6b76076f…", 2,
		func(*cobra.Command) func([]string) (string, any) {
			return func(a []string) (string, any) { return respond.KindRestore, respond.QuarantineRef{ID: a[0]} }
		})
	measure("upload ID QUARANTINE-ID", "Send a quarantined file to the server's lab", "  mamori agents upload agt_… 6b76076f…", 2,
		func(*cobra.Command) func([]string) (string, any) {
			return func(a []string) (string, any) { return respond.KindUploadSample, respond.QuarantineRef{ID: a[0]} }
		})
	return cmd
}

// orderMeasure queues a command and waits up to wait for its outcome: a
// command the agent reports failed exits 1, one still pending at the end
// of the wait says so and exits 0 (it stays queued).
func orderMeasure(c conn, agentID, kind string, args any, wait time.Duration, asJSON bool) error {
	ctx := context.Background()
	cl := newClient(c)
	var cmd respond.Command
	if err := cl.JSON(ctx, "POST", "/api/v1/agents/"+url.PathEscape(agentID)+"/commands", map[string]any{"kind": kind, "args": args}, &cmd); err != nil {
		return err
	}
	for deadline := time.Now().Add(wait); wait > 0 && !slices.Contains([]string{respond.StateDone, respond.StateFailed, respond.StateExpired, respond.StateCanceled}, cmd.State); {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
		if err := cl.Do(ctx, "GET", "/api/v1/commands/"+url.PathEscape(cmd.ID), nil, nil, nil, &cmd); err != nil {
			return err
		}
	}
	if asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(cmd); err != nil {
			return err
		}
	} else {
		fmt.Printf("%s %s on %s: %s%s\n", cmd.ID, cmd.Kind, agentID, cmd.State, strings.TrimRight(" "+outcomeText(cmd), " "))
	}
	if cmd.State == respond.StateFailed {
		return &exitError{code: exitFound, err: fmt.Errorf("the agent could not %s: %s", kind, cmd.Error)}
	}
	return nil
}

func outcomeText(c respond.Command) string {
	switch {
	case c.Error != "":
		return c.Error
	case len(c.Result) > 0:
		return string(c.Result)
	}
	return ""
}

func activeSets(a fleet.Agent) string {
	var out []string
	for ch, in := range a.Active {
		out = append(out, fmt.Sprintf("%s:%d", ch, in.Version))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
