package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/mamori-soc/mamori/internal/config"
	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/rollout"
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
			Long: `Parse pattern files (ClamAV .hdb/.hsb/.ndb/.ldb, Mamori YAML, or a
.records file from mamori pattern build) here, then publish their signatures
as the next signed release of a channel. The server
refuses a release that does not compile, and a bandage hash signature of a
known-clean file. Connected agents are told at once and fetch the delta.`,
			Example: "  mamori pattern publish --channel bandage emotet-2026-11.hsb\n  mamori pattern publish --channel main ./patterns/",
			Args:    cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				recs, _, warns, err := readPatternFiles(args)
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				if len(warns) > 0 {
					for _, w := range warns {
						fmt.Fprintln(os.Stderr, "refused:", w)
					}
					return &exitError{code: exitUsage, err: fmt.Errorf("%d signatures do not parse; fix or remove them (mamori pattern build --skip-invalid drops them)", len(warns))}
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
			Use:   "status [VERSION]",
			Short: "Time to protect: per tenant, agents with the release active and p50/p99/100 % seconds after publication",
			Long: `Show a release (by default the channel's latest): its rollout, the time to
protect per tenant (agents with it active, p50/p99/100 % seconds after
publication, agents that refused it) and the tenants' policies for the
channel (pin, delay).`,
			Example: "  mamori pattern status --channel main\n  mamori pattern status 42 --channel main --tenant acme",
			Args:    cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				q := url.Values{}
				if c.tenant != "" {
					q.Set("tenant", c.tenant)
				}
				version := ""
				if len(args) == 1 {
					version = args[0]
				} else {
					v, err := latestVersion(c, channel)
					if err != nil {
						return err
					}
					version = strconv.FormatUint(v, 10)
				}
				var out api.PatternStatus
				path := "/api/v1/patterns/" + url.PathEscape(channel) + "/" + url.PathEscape(version)
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
				if ro := out.Rollout; ro != nil {
					fmt.Println(rolloutLine(*ro))
				}
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
				if err := w.Flush(); err != nil {
					return err
				}
				if len(out.Policies) == 0 {
					fmt.Printf("policies: every tenant follows the latest release\n")
					return nil
				}
				w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "\nTENANT\tPOLICY\tGIVES NOW\tNOTE")
				for _, p := range out.Policies {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Tenant, policyText(p), orDash(p.Target), policyNote(p))
				}
				return w.Flush()
			},
		}
		addConnFlags(st, &c)
		st.Flags().StringVar(&channel, "channel", "main", "channel")
		st.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(st)
	}
	cmd.AddCommand(newPatternPinCmd(), newPatternDelayCmd(), newPatternDiffCmd(), newPatternBuildCmd())
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

// readPatternFiles parses signature files, the signature files directly in
// directories, and .records files (canonical records, one a line, as
// mamori pattern build writes them). files counts those read.
func readPatternFiles(args []string) (recs []pattern.Record, files int, warns []pattern.Warning, err error) {
	for _, p := range args {
		paths := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			paths = nil
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if _, ok := pattern.FormatOf(e.Name(), false); (ok || isRecordsFile(e.Name())) && !e.IsDir() {
					paths = append(paths, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range paths {
			var rs []pattern.Record
			var ws []pattern.Warning
			var err error
			if isRecordsFile(f) {
				rs, ws, err = readRecordsFile(f)
			} else {
				rs, ws, err = pattern.ParseFile(f)
			}
			if err != nil {
				return nil, files, warns, err
			}
			files++
			recs, warns = append(recs, rs...), append(warns, ws...)
		}
	}
	return recs, files, warns, nil
}

const recordsExt = ".records"

func isRecordsFile(name string) bool { return strings.HasSuffix(strings.ToLower(name), recordsExt) }

// readRecordsFile reads canonical records, one a line.
func readRecordsFile(path string) ([]pattern.Record, []pattern.Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var recs []pattern.Record
	var warns []pattern.Warning
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), update.MaxRecordLen+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		rec, err := pattern.ParseRecord(line)
		if err != nil {
			warns = append(warns, pattern.Warning{File: path, Line: n, Err: err})
			continue
		}
		rec.File, rec.Line = path, n
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return recs, warns, nil
}

// latestVersion is the newest release of channel.
func latestVersion(c conn, channel string) (uint64, error) {
	var out struct {
		Channels map[string][]update.Release `json:"channels"`
	}
	if err := newClient(c).JSON(context.Background(), "GET", "/api/v1/patterns", nil, &out); err != nil {
		return 0, err
	}
	rels := out.Channels[channel]
	if len(rels) == 0 {
		return 0, &exitError{code: exitUsage, err: fmt.Errorf("channel %s has no release yet", channel)}
	}
	return rels[len(rels)-1].Version, nil
}

func rolloutLine(ro rollout.Rollout) string {
	s := fmt.Sprintf("rollout: %s at %d %% since %s", ro.State, ro.Percent, ro.StageAt.Local().Format(time.DateTime))
	if ro.FastLane {
		s += " (fast lane)"
	}
	if ro.Reason != "" {
		s += "; " + ro.Reason
	}
	if ro.RolledBackTo > 0 {
		s += fmt.Sprintf("; rolled back by version %d", ro.RolledBackTo)
	}
	return s
}

func policyText(p rollout.PolicyStatus) string {
	switch p.Mode {
	case rollout.PolicyPin:
		return fmt.Sprintf("pin %d", p.Version)
	case rollout.PolicyDelay:
		return "delay " + p.Delay
	}
	return p.Mode
}

func policyNote(p rollout.PolicyStatus) string {
	if p.Note != "" {
		return p.Note
	}
	if p.Next > 0 {
		return fmt.Sprintf("version %d from %s", p.Next, p.NextAt.Local().Format(time.DateTime))
	}
	return ""
}

func orDash(v uint64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

// putPolicy sets the tenant's policy and prints what it means now.
func putPolicy(c conn, channel string, req api.PolicyRequest, asJSON bool) error {
	if c.tenant == "" {
		return &exitError{code: exitUsage, err: errors.New("name the tenant whose agents the policy is for: --tenant or MAMORI_TENANT")}
	}
	var st rollout.PolicyStatus
	path := "/api/v1/patterns/" + url.PathEscape(channel) + "/policy?" + url.Values{"tenant": {c.tenant}}.Encode()
	if err := newClient(c).JSON(context.Background(), "PUT", path, req, &st); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(st)
	}
	fmt.Printf("%s %s: %s; version %s now", st.Tenant, st.Channel, policyText(st), orDash(st.Target))
	if n := policyNote(st); n != "" {
		fmt.Printf(" (%s)", n)
	}
	fmt.Println()
	return nil
}

func newPatternPinCmd() *cobra.Command {
	var c conn
	var channel string
	var latest, asJSON bool
	cmd := &cobra.Command{
		Use:   "pin VERSION | --latest",
		Short: "Keep a tenant's agents on one release of a channel, or let them follow the latest again",
		Long: `Pin a tenant's agents to one release of a channel: they move to it (back,
if need be) and stay there, rollout rings permitting, until the pin is lifted
with --latest. A pin holds even if the SOC later rolls that release back
(mamori pattern status shows it); a release already rolled back cannot be
pinned.`,
		Example: "  mamori pattern pin 41 --channel main --tenant acme\n  mamori pattern pin --latest --channel main --tenant acme",
		Args: func(cmd *cobra.Command, args []string) error {
			if latest == (len(args) == 1) || len(args) > 1 {
				return errors.New("give a VERSION or --latest")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.PolicyRequest{Mode: rollout.PolicyLatest}
			if !latest {
				v, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil || v == 0 {
					return &exitError{code: exitUsage, err: fmt.Errorf("version %q: not a release number", args[0])}
				}
				req = api.PolicyRequest{Mode: rollout.PolicyPin, Version: v}
			}
			return putPolicy(c, channel, req, asJSON)
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().StringVar(&channel, "channel", "main", "channel")
	cmd.Flags().BoolVar(&latest, "latest", false, "lift the pin or delay: follow the latest release")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPatternDelayCmd() *cobra.Command {
	var c conn
	var channel string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delay DURATION",
		Short: "Let a tenant's agents take a release only once it has been out for DURATION",
		Long: `Delay a channel's releases for a tenant: its agents take a release only once
it was published at least DURATION ago (1m to 30d), and meanwhile keep what
they have. A rollback is never delayed: an agent holding a release that was
rolled back moves off it at once. mamori pattern pin --latest lifts the delay.`,
		Example: "  mamori pattern delay 6h --channel main --tenant acme",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.ParseDuration(args[0]); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return putPolicy(c, channel, api.PolicyRequest{Mode: rollout.PolicyDelay, Delay: args[0]}, asJSON)
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().StringVar(&channel, "channel", "main", "channel")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newPatternDiffCmd() *cobra.Command {
	var c conn
	var channel string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Records added and removed between two releases of a channel",
		Long: `Show the records added and removed going from release FROM to release TO
(either order). --json prints one object per record:
{"change":"added"|"removed","record":"<kind> <name> <data>"}.`,
		Example: "  mamori pattern diff 41 42 --channel main",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if v, err := strconv.ParseUint(a, 10, 64); err != nil || v == 0 {
					return &exitError{code: exitUsage, err: fmt.Errorf("version %q: not a release number", a)}
				}
			}
			var d api.PatternDiff
			path := "/api/v1/patterns/" + url.PathEscape(channel) + "/" + args[1] + "/diff?from=" + args[0]
			if err := newClient(c).JSON(context.Background(), "GET", path, nil, &d); err != nil {
				return err
			}
			return printDiff(os.Stdout, d, asJSON)
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().StringVar(&channel, "channel", "main", "channel")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per record")
	return cmd
}

func printDiff(w io.Writer, d api.PatternDiff, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, x := range []struct {
			change string
			recs   []string
		}{{"removed", d.Removed}, {"added", d.Added}} {
			for _, r := range x.recs {
				if err := enc.Encode(map[string]string{"change": x.change, "record": r}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	fmt.Fprintf(w, "%s %d → %d: %s added, %s removed\n", d.Channel, d.From, d.To, commas(len(d.Added)), commas(len(d.Removed)))
	for _, r := range d.Removed {
		fmt.Fprintln(w, "-", r)
	}
	for _, r := range d.Added {
		fmt.Fprintln(w, "+", r)
	}
	return nil
}

// buildResult is what mamori pattern build reports.
type buildResult struct {
	Output  string         `json:"output"`
	Files   int            `json:"files"`
	Records int            `json:"records"`
	Kinds   map[string]int `json:"kinds"`
	Bytes   int            `json:"bytes"`
	SHA256  string         `json:"content_sha256"` // equals the release's content_sha256 once published
	Refused int            `json:"refused"`
}

func newPatternBuildCmd() *cobra.Command {
	var out string
	var skip, asJSON bool
	cmd := &cobra.Command{
		Use:   "build FILE|DIR... -o DIR",
		Short: "Parse and compile pattern files here, as publish does, and write the release's canonical records",
		Long: `Parse pattern files (ClamAV .hdb/.hsb/.ndb/.ldb, Mamori YAML, .records) and
compile them as the server and the agents will, without a server, then write
the canonical records (one a line, sorted, de-duplicated) to
DIR/patterns.records: the exact content a release of them would carry (its
sha256 is the release's content_sha256), and a file mamori pattern publish
takes. Signatures that do not parse or compile are listed; they fail the
build unless --skip-invalid drops them. The bandage channel's known-clean
check needs the server's known-clean set: publish still applies it.`,
		Example: "  mamori pattern build ./sigs -o ./out && mamori pattern publish ./out/patterns.records",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &exitError{code: exitUsage, err: errors.New("name the output directory: -o DIR")}
			}
			res, err := buildPatterns(args, out, skip, os.Stderr)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			kinds := make([]string, 0, len(res.Kinds))
			for _, k := range slices.Sorted(maps.Keys(res.Kinds)) {
				kinds = append(kinds, fmt.Sprintf("%s %s", k, commas(res.Kinds[k])))
			}
			fmt.Printf("built %s records (%s) from %d files into %s: %s bytes, content sha256 %s; %d signatures refused\n",
				commas(res.Records), strings.Join(kinds, ", "), res.Files, res.Output, commas(res.Bytes), res.SHA256, res.Refused)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "directory to write patterns.records to")
	cmd.Flags().BoolVar(&skip, "skip-invalid", false, "drop signatures that do not parse or compile instead of failing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

// buildPatterns parses and compiles args, reports refused signatures on
// stderr and writes the canonical records to dir/patterns.records.
func buildPatterns(args []string, dir string, skip bool, stderr io.Writer) (buildResult, error) {
	recs, files, warns, err := readPatternFiles(args)
	if err != nil {
		return buildResult{}, &exitError{code: exitUsage, err: err}
	}
	_, cwarns, err := pattern.Compile(recs)
	if err != nil {
		return buildResult{}, &exitError{code: exitUsage, err: err}
	}
	if len(cwarns) > 0 {
		// Which records failed: compile each alone (only on this path).
		kept := recs[:0:0]
		for _, r := range recs {
			if _, w, err := pattern.Compile([]pattern.Record{r}); err == nil && len(w) == 0 {
				kept = append(kept, r)
			}
		}
		recs = kept
	}
	warns = append(warns, cwarns...)
	for _, w := range warns {
		fmt.Fprintln(stderr, "refused:", w)
	}
	if len(warns) > 0 && !skip {
		return buildResult{}, &exitError{code: exitUsage, err: fmt.Errorf("%d signatures do not parse or compile; fix or remove them, or --skip-invalid", len(warns))}
	}
	if len(recs) == 0 {
		return buildResult{}, &exitError{code: exitUsage, err: errors.New("no signatures to build")}
	}
	lines := make(update.Records, len(recs))
	res := buildResult{Files: files, Kinds: map[string]int{}, Refused: len(warns)}
	for i, r := range recs {
		lines[i] = []byte(r.String())
	}
	canon, err := update.Canonical(lines)
	if err != nil {
		return buildResult{}, &exitError{code: exitUsage, err: err}
	}
	var buf bytes.Buffer
	for _, l := range canon {
		buf.Write(l)
		buf.WriteByte('\n')
		kind, _, _ := strings.Cut(string(l), " ")
		res.Kinds[kind]++
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return buildResult{}, fmt.Errorf("build: %w", err)
	}
	res.Output = filepath.Join(dir, "patterns"+recordsExt)
	if err := os.WriteFile(res.Output, buf.Bytes(), 0o644); err != nil {
		return buildResult{}, fmt.Errorf("build: %w", err)
	}
	sum := update.ContentHash(canon)
	res.Records, res.Bytes, res.SHA256 = len(canon), buf.Len(), hex.EncodeToString(sum[:])
	return res, nil
}
