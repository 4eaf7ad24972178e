package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/mamori-soc/mamori/internal/api"
	"github.com/spf13/cobra"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Inspect and reload the detection rules"}
	for _, v := range []struct {
		use, short, method, path string
	}{
		{"status", "Show the loaded rule set: counts, and every rule skipped with its file and reason", "GET", "/api/v1/rules"},
		{"reload", "Recompile the rules from their sources and swap them in (also: SIGHUP to the server)", "POST", "/api/v1/rules/reload"},
	} {
		var c conn
		var asJSON bool
		sub := &cobra.Command{
			Use:   v.use,
			Short: v.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var st api.RulesStatus
				if err := newClient(c).JSON(context.Background(), v.method, v.path, nil, &st); err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(st)
				}
				fmt.Printf("rules loaded %s: %d Sigma rules (%d active, %d dormant), %d correlations, %d skipped\n",
					st.Loaded.Format("2006-01-02 15:04:05"), st.Rules, st.Active, st.Dormant, st.Correlations, st.Skipped)
				srcs := make([]string, 0, len(st.ByLogsource))
				for k := range st.ByLogsource {
					srcs = append(srcs, k)
				}
				sort.Slice(srcs, func(i, j int) bool { return st.ByLogsource[srcs[i]] > st.ByLogsource[srcs[j]] })
				for i, k := range srcs {
					if i == 10 {
						fmt.Printf("  … %d more logsources\n", len(srcs)-10)
						break
					}
					fmt.Printf("  %5d  %s\n", st.ByLogsource[k], k)
				}
				for _, p := range st.Problems {
					fmt.Printf("skipped: %s\n", p)
				}
				for _, w := range st.Warnings {
					fmt.Printf("warning: %s\n", w)
				}
				return nil
			},
		}
		addConnFlags(sub, &c)
		sub.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(sub)
	}
	return cmd
}
