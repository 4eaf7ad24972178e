package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mamori-soc/mamori/internal/alert"
	"github.com/mamori-soc/mamori/internal/api"
	"github.com/spf13/cobra"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Aliases: []string{"alert"}, Short: "List, show and triage alerts"}
	{
		var c conn
		var severity, minSeverity, status, rule, kind, since string
		var limit int
		var asJSON bool
		list := &cobra.Command{
			Use:     "list",
			Short:   "List alerts, most recently updated first",
			Example: "  mamori alerts list --since 24h --min-severity high\n  mamori alerts list --tenant acme --rule 5d2c62fe-3cbb-47c3-88e3-88d4c8b6c5f6 --json",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				q := url.Values{}
				for k, v := range map[string]string{"tenant": c.tenant, "severity": severity, "min_severity": minSeverity, "status": status, "rule": rule, "kind": kind} {
					if v != "" {
						q.Set(k, v)
					}
				}
				if since != "" {
					q.Set("since", "-"+strings.TrimPrefix(since, "-"))
				}
				if limit > 0 {
					q.Set("limit", fmt.Sprint(limit))
				}
				var resp api.AlertList
				if err := newClient(c).Do(context.Background(), "GET", "/api/v1/alerts", q, nil, nil, &resp); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(resp)
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tSEVERITY\tSTATUS\tCOUNT\tLAST SEEN\tRULE")
				for _, a := range resp.Alerts {
					title := a.Rule.Title
					if title == "" {
						title = a.Rule.ID
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s%s\n", a.ID, a.Tenant, a.Severity, a.Status, a.Count,
						a.LastSeen.UTC().Format(time.RFC3339), title, retroMark(a))
				}
				return tw.Flush()
			},
		}
		addConnFlags(list, &c)
		f := list.Flags()
		f.StringVar(&severity, "severity", "", "only these severities (informational,low,medium,high,critical)")
		f.StringVar(&minSeverity, "min-severity", "", "this severity and above")
		f.StringVar(&status, "status", "", "only these statuses (open,acknowledged,closed,suppressed; default: all but suppressed)")
		f.StringVar(&rule, "rule", "", "only this rule id")
		f.StringVar(&kind, "kind", "", "only this kind (sigma, correlation, indicator, anomaly)")
		f.StringVar(&since, "since", "", "only alerts updated within this time (e.g. 1h, 7d)")
		f.IntVar(&limit, "limit", 0, "at most this many (default 100)")
		f.BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(list)
	}
	{
		var c conn
		var asJSON bool
		show := &cobra.Command{
			Use:   "show ID",
			Short: "Show one alert with its entities and events",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var a alert.Alert
				if err := newClient(c).JSON(context.Background(), "GET", "/api/v1/alerts/"+url.PathEscape(args[0]), nil, &a); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(a)
				}
				printAlert(&a)
				return nil
			},
		}
		addConnFlags(show, &c)
		show.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(show)
	}
	for _, st := range []struct{ verb, status, short string }{
		{"ack", alert.StatusAcknowledged, "Acknowledge an alert (someone is on it)"},
		{"close", alert.StatusClosed, "Close an alert (the next finding opens a new one)"},
		{"reopen", alert.StatusOpen, "Reopen an alert"},
	} {
		var c conn
		sub := &cobra.Command{
			Use:   st.verb + " ID",
			Short: st.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var a alert.Alert
				if err := newClient(c).JSON(context.Background(), "PATCH", "/api/v1/alerts/"+url.PathEscape(args[0]), api.AlertPatch{Status: st.status}, &a); err != nil {
					return err
				}
				fmt.Printf("alert %s is %s\n", a.ID, a.Status)
				return nil
			},
		}
		addConnFlags(sub, &c)
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(newExceptionsCmd())
	return cmd
}

func retroMark(a *alert.Alert) string {
	if a.Retro {
		return " (retro)"
	}
	return ""
}

func printAlert(a *alert.Alert) {
	fmt.Printf("alert %s  [%s, %s]%s\n", a.ID, a.Severity, a.Status, retroMark(a))
	fmt.Printf("  tenant     %s\n", a.Tenant)
	fmt.Printf("  rule       %s (%s) %s\n", a.Rule.ID, a.Kind, a.Rule.Title)
	if a.Rule.Path != "" {
		fmt.Printf("  file       %s\n", a.Rule.Path)
	}
	fmt.Printf("  count      %d events, %s → %s\n", a.Count, a.FirstSeen.UTC().Format(time.RFC3339), a.LastSeen.UTC().Format(time.RFC3339))
	if len(a.Tags) > 0 {
		fmt.Printf("  tags       %s\n", strings.Join(a.Tags, ", "))
	}
	kinds := make([]string, 0, len(a.Entities))
	for k := range a.Entities {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Printf("  %-10s %s\n", k, strings.Join(a.Entities[k], ", "))
	}
	keys := make([]string, 0, len(a.Details))
	for k := range a.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-10s %s\n", k, a.Details[k])
	}
	if len(a.EventIDs) > 0 {
		fmt.Printf("  events     %d kept; search them with: mamori search 'event.id:%s'\n", len(a.EventIDs), a.EventIDs[0])
	}
}

func newExceptionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "exception", Aliases: []string{"exceptions"}, Short: "Suppress alerts per tenant and rule without deleting the rule"}
	{
		var c conn
		var x alert.Exception
		var ttl string
		add := &cobra.Command{
			Use:     "add",
			Short:   "Add an exception",
			Example: "  mamori alerts exception add --tenant acme --rule 5d2c62fe-3cbb-47c3-88e3-88d4c8b6c5f6 --field source.ip --op cidr --value 10.9.0.0/16 --comment 'vulnerability scanner' --ttl 30d",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				x.Tenant = c.tenant
				var out alert.Exception
				if err := newClient(c).JSON(context.Background(), "POST", "/api/v1/exceptions", api.ExceptionRequest{Exception: x, TTL: ttl}, &out); err != nil {
					return err
				}
				fmt.Printf("exception %d added\n", out.ID)
				return nil
			},
		}
		addConnFlags(add, &c)
		f := add.Flags()
		f.StringVar(&x.RuleID, "rule", "", "only this rule id (default: every rule)")
		f.StringVar(&x.Field, "field", "", "event field to test (e.g. source.ip, user.name)")
		f.StringVar(&x.Op, "op", "equals", "equals, contains, startswith, endswith or cidr")
		f.StringSliceVar(&x.Values, "value", nil, "value(s) the field may have (repeatable)")
		f.StringVar(&x.Comment, "comment", "", "why")
		f.StringVar(&ttl, "ttl", "", "expire after this time (e.g. 30d)")
		cmd.AddCommand(add)
	}
	{
		var c conn
		list := &cobra.Command{
			Use:   "list",
			Short: "List exceptions",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var resp api.ExceptionList
				if err := newClient(c).JSON(context.Background(), "GET", "/api/v1/exceptions", nil, &resp); err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTENANT\tRULE\tCONDITION\tEXPIRES\tCOMMENT")
				for _, x := range resp.Exceptions {
					cond := "(whole rule)"
					if x.Field != "" {
						cond = fmt.Sprintf("%s %s %s", x.Field, x.Op, strings.Join(x.Values, ","))
					}
					exp := "never"
					if !x.Expires.IsZero() {
						exp = x.Expires.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", x.ID, orAll(x.Tenant), orAll(x.RuleID), cond, exp, x.Comment)
				}
				return tw.Flush()
			},
		}
		addConnFlags(list, &c)
		cmd.AddCommand(list)
	}
	{
		var c conn
		del := &cobra.Command{
			Use:   "delete ID",
			Short: "Remove an exception",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := newClient(c).Do(context.Background(), "DELETE", "/api/v1/exceptions/"+url.PathEscape(args[0]), nil, nil, nil, nil); err != nil {
					return err
				}
				fmt.Printf("exception %s removed\n", args[0])
				return nil
			},
		}
		addConnFlags(del, &c)
		cmd.AddCommand(del)
	}
	return cmd
}

func orAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
