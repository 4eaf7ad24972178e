package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/client"
	"github.com/spf13/cobra"
)

func newClient(c conn) *client.Client { return client.New(c.server, c.token) }

func newTenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Aliases: []string{"tenants"}, Short: "Manage tenants (customer organisations)"}
	{
		var c conn
		var retention string
		var cidrs, subjects []string
		var token bool
		add := &cobra.Command{
			Use:     "add NAME",
			Short:   "Create a tenant, optionally mapping sources to it and issuing an ingest token",
			Example: "  mamori tenant add acme --retention 90d --cidr 10.1.0.0/16 --cert-subject 'CN=fw1.acme.example' --ingest-token",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl := newClient(c)
				ctx := context.Background()
				var t api.TenantJSON
				if err := cl.JSON(ctx, "POST", "/api/v1/tenants", map[string]string{"name": args[0], "retention": retention}, &t); err != nil {
					return err
				}
				fmt.Printf("tenant %s created (id %d, retention %s)\n", t.Name, t.ID, t.Retention)
				for _, m := range []struct {
					kind   string
					values []string
				}{{"cidr", cidrs}, {"cert_subject", subjects}} {
					for _, v := range m.values {
						if err := cl.JSON(ctx, "POST", "/api/v1/tenants/"+url.PathEscape(t.Name)+"/sources", map[string]string{"kind": m.kind, "value": v}, nil); err != nil {
							return err
						}
						fmt.Printf("  source %s %q → %s\n", m.kind, v, t.Name)
					}
				}
				if token {
					var tok struct {
						Token string `json:"token"`
					}
					if err := cl.JSON(ctx, "POST", "/api/v1/tenants/"+url.PathEscape(t.Name)+"/tokens", map[string]string{"kind": "ingest", "name": "cli"}, &tok); err != nil {
						return err
					}
					fmt.Printf("  ingest token (shown once): %s\n", tok.Token)
				}
				return nil
			},
		}
		addConnFlags(add, &c)
		add.Flags().StringVar(&retention, "retention", "", "how long events are kept (e.g. 90d; default: server's)")
		add.Flags().StringSliceVar(&cidrs, "cidr", nil, "map syslog senders in this CIDR to the tenant (repeatable)")
		add.Flags().StringSliceVar(&subjects, "cert-subject", nil, "map TLS clients with this certificate subject or CN (repeatable)")
		add.Flags().BoolVar(&token, "ingest-token", false, "also create an ingest token")
		cmd.AddCommand(add)
	}
	{
		var c conn
		var asJSON bool
		list := &cobra.Command{
			Use:   "list",
			Short: "List tenants",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var resp struct {
					Tenants []api.TenantJSON `json:"tenants"`
				}
				if err := newClient(c).JSON(context.Background(), "GET", "/api/v1/tenants", nil, &resp); err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(os.Stdout)
					for _, t := range resp.Tenants {
						_ = enc.Encode(t)
					}
					return nil
				}
				w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tRETENTION\tCREATED")
				for _, t := range resp.Tenants {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", t.ID, t.Name, t.Retention, t.CreatedAt.Format("2006-01-02 15:04"))
				}
				return w.Flush()
			},
		}
		addConnFlags(list, &c)
		list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
		cmd.AddCommand(list)
	}
	{
		var c conn
		var kind string
		tok := &cobra.Command{
			Use:     "token NAME",
			Short:   "Create an ingest or read token for a tenant",
			Example: "  mamori tenant token acme --kind read",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var resp struct {
					Token string `json:"token"`
				}
				if err := newClient(c).JSON(context.Background(), "POST", "/api/v1/tenants/"+url.PathEscape(args[0])+"/tokens", map[string]string{"kind": kind}, &resp); err != nil {
					return err
				}
				fmt.Println(resp.Token)
				return nil
			},
		}
		addConnFlags(tok, &c)
		tok.Flags().StringVar(&kind, "kind", "ingest", "ingest, read or enroll (enrolls endpoint agents: mamori agent --enroll)")
		cmd.AddCommand(tok)
	}
	return cmd
}
