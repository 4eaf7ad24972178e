package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"text/tabwriter"

	"github.com/mamori-soc/mamori/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	var f config.Config
	var cfgPath string
	pr := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (secrets masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd, cfgPath, &f)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tVALUE\tFROM\tENV")
			for _, s := range c.Settings() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Path, s.Value, s.Origin, s.Env)
			}
			return w.Flush()
		},
	}
	addServerFlags(pr, &f, &cfgPath)
	cmd.AddCommand(pr)
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Println("mamori", version())
		},
	}
}

// buildVersion is the module version the binary was built at, or "".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return ""
}
