package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/intel"
	"github.com/spf13/cobra"
)

func newIntelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "intel", Short: "Manage indicators of compromise (feeds and manual entries)"}
	{
		var c conn
		var req api.IntelAdd
		add := &cobra.Command{
			Use:   "add TYPE VALUE",
			Short: "Add one indicator reported by a research team or hotline (ip, cidr, domain, url, md5, sha1, sha256, email, filename, auto)",
			Example: "  mamori intel add ip 203.0.113.9 --source NTT-CERT --confidence 80 --ttl 7d\n" +
				"  mamori intel add domain evil.example --source vendor-lab --tlp amber --tenant acme",
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				req.Type, req.Value, req.Tenant = args[0], args[1], c.tenant
				var res api.IntelAddResult
				if err := newClient(c).JSON(context.Background(), "POST", "/api/v1/intel", req, &res); err != nil {
					return err
				}
				fmt.Printf("indicator stored (%d new, %d updated)%s\n", res.New, res.Updated, retroNote(res))
				return nil
			},
		}
		addConnFlags(add, &c)
		f := add.Flags()
		f.StringVar(&req.Source, "source", "", "who reported it (required), e.g. NTT-CERT")
		f.IntVar(&req.Confidence, "confidence", 50, "0-100")
		f.StringVar(&req.TLP, "tlp", "", "clear, green, amber, amber+strict or red")
		f.StringVar(&req.TTL, "ttl", "", "expire after, e.g. 7d (default: never)")
		f.StringVar(&req.Description, "description", "", "free text")
		f.StringSliceVar(&req.Tags, "tag", nil, "tags, e.g. malware family (repeatable)")
		_ = add.MarkFlagRequired("source")
		cmd.AddCommand(add)
	}
	{
		var c conn
		var o intel.FeedOptions
		var ttl string
		imp := &cobra.Command{
			Use:   "import FILE|DIR...",
			Short: "Import feeds: STIX 2.1 bundles, MISP feeds (a directory with manifest.json), abuse.ch CSV/lists, plain lists",
			Example: "  mamori intel import urlhaus.csv --source abuse.ch-urlhaus --ttl 30d\n" +
				"  mamori intel import ./misp-feed/ --source circl-osint --confidence 70",
			Args: cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if ttl != "" {
					d, err := config.ParseDuration(ttl)
					if err != nil {
						return fmt.Errorf("--ttl: %w", err)
					}
					o.TTL = d
				}
				o.Tenant = c.tenant
				cl := newClient(c)
				total := api.IntelAddResult{}
				for _, path := range args {
					feed, err := readFeed(path, o)
					if err != nil {
						return err
					}
					for _, p := range feed.Problems {
						fmt.Fprintf(os.Stderr, "skipped: %s\n", p)
					}
					const chunk = 5000
					for i := 0; i < len(feed.Indicators); i += chunk {
						part := feed.Indicators[i:min(i+chunk, len(feed.Indicators))]
						var res api.IntelAddResult
						if err := cl.JSON(context.Background(), "POST", "/api/v1/intel", api.IntelAdd{Indicators: part}, &res); err != nil {
							return fmt.Errorf("%s: %w", path, err)
						}
						total.New += res.New
						total.Updated += res.Updated
						total.Unchanged += res.Unchanged
						total.Retro = total.Retro || res.Retro
					}
					fmt.Printf("%s: %s feed, %d indicators, %d entries skipped\n", path, feed.Format, len(feed.Indicators), len(feed.Problems))
				}
				fmt.Printf("stored: %d new, %d updated, %d unchanged%s\n", total.New, total.Updated, total.Unchanged, retroNote(total))
				return nil
			},
		}
		addConnFlags(imp, &c)
		f := imp.Flags()
		f.StringVar(&o.Source, "source", "", "feed name recorded on every indicator (required)")
		f.IntVar(&o.Confidence, "confidence", 0, "confidence when the feed gives none (default 50)")
		f.StringVar(&o.TLP, "tlp", "", "TLP when the feed gives none")
		f.StringVar(&ttl, "ttl", "", "expiry when the feed gives none, e.g. 30d")
		_ = imp.MarkFlagRequired("source")
		cmd.AddCommand(imp)
	}
	{
		var c conn
		var typ, source, contains string
		var limit int
		var asJSON bool
		list := &cobra.Command{
			Use:   "list",
			Short: "List indicators",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				q := url.Values{"limit": {fmt.Sprint(limit)}}
				for k, v := range map[string]string{"type": typ, "source": source, "contains": contains, "tenant": c.tenant} {
					if v != "" {
						q.Set(k, v)
					}
				}
				var resp api.IntelList
				if err := newClient(c).Do(context.Background(), "GET", "/api/v1/intel", q, nil, nil, &resp); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(resp)
				}
				now := time.Now()
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TYPE\tVALUE\tTENANT\tCONFIDENCE\tTLP\tSOURCES\tEXPIRES")
				for _, ind := range resp.Indicators {
					exp := "never"
					if t := ind.Expires(); !t.IsZero() {
						exp = t.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", ind.Type, ind.Value, orAll(ind.Tenant), ind.Confidence(now),
						ind.TLP(now), strings.Join(ind.SourceNames(), ","), exp)
				}
				return tw.Flush()
			},
		}
		addConnFlags(list, &c)
		f := list.Flags()
		f.StringVar(&typ, "type", "", "only this type")
		f.StringVar(&source, "source", "", "only indicators reported by this source")
		f.StringVar(&contains, "contains", "", "value contains this")
		f.IntVar(&limit, "limit", 100, "at most this many")
		f.BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(list)
	}
	{
		var c conn
		rm := &cobra.Command{
			Use:   "remove TYPE VALUE",
			Short: "Remove an indicator (every source's report of it)",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				q := url.Values{"type": {args[0]}, "value": {args[1]}}
				if c.tenant != "" {
					q.Set("tenant", c.tenant)
				}
				if err := newClient(c).Do(context.Background(), "DELETE", "/api/v1/intel", q, nil, nil, nil); err != nil {
					return err
				}
				fmt.Printf("indicator %s %s removed\n", args[0], args[1])
				return nil
			},
		}
		addConnFlags(rm, &c)
		cmd.AddCommand(rm)
	}
	return cmd
}

func retroNote(r api.IntelAddResult) string {
	if r.Retro {
		return "; retro-hunt of the stored events queued"
	}
	return ""
}

// readFeed parses a feed file (gzip allowed) or a MISP feed directory.
func readFeed(path string, o intel.FeedOptions) (*intel.Feed, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return intel.ParseMISPFeed(os.DirFS(path), ".", o)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return intel.ParseFeed(r, filepath.Base(path), o)
}
