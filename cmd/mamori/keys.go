package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/update"
)

// The key commands work on files, offline: the server's data directory
// (--data) holds the update repository in <data>/update and, unless
// patterns.keys says otherwise (--keys), the keys in <data>/keys/root and
// <data>/keys/online.

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, inspect and rotate the pattern signing keys (offline)",
		Long: `The pattern repository is signed with The Update Framework: an offline root
(N ed25519 keys, a threshold of which signs each root version) and online
timestamp, snapshot, targets and bandage keys the server holds. These
commands work on the files directly; stop the server before rotating.`,
	}
	cmd.AddCommand(newKeysInitCmd(), newKeysShowCmd(), newKeysRotateRootCmd(), newKeysRotateOnlineCmd())
	return cmd
}

// keyPaths locates the repository and the keys of a data directory.
type keyPaths struct {
	data, keys string
}

func (p keyPaths) keysDir() string {
	if p.keys != "" {
		return p.keys
	}
	return filepath.Join(p.data, "keys")
}
func (p keyPaths) repoDir() string   { return filepath.Join(p.data, "update") }
func (p keyPaths) onlineDir() string { return filepath.Join(p.keysDir(), update.OnlineKeysDir) }

func (p keyPaths) check() error {
	if p.data == "" {
		return &exitError{code: exitUsage, err: errors.New("--data (the server's data directory) is required")}
	}
	if _, err := os.Stat(filepath.Join(p.repoDir(), "metadata")); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s holds no pattern repository (the server creates it at first start, or `mamori keys init --data`): %w", p.repoDir(), err)}
	}
	return nil
}

// repoOptions logs the repository's own messages at warn level only: the
// commands print their summary themselves.
func repoOptions() update.RepoOptions {
	return update.RepoOptions{Logger: newLogger("warn", "")}
}

func newKeysInitCmd() *cobra.Command {
	var dir, data string
	var count, threshold int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the offline root keys and the online keys (and, with --data, the repository)",
		Long: `Create the offline root keys (--count ed25519 keys, --threshold of them needed
to sign a root) in DIR/root and the online keys in DIR/online, files mode
0600. Existing keys are never overwritten.

With --data, DIR defaults to <data>/keys and the pattern repository
<data>/update is created and signed with these keys, so the server starts
with them. A server finding keys but no repository refuses to start (it
would have to create both), so give --data unless the keys are for a server
set up otherwise.`,
		Example: "  mamori keys init --data /var/lib/mamori\n  mamori keys init --dir ./keys --count 5 --threshold 3",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" && data == "" {
				return &exitError{code: exitUsage, err: errors.New("--dir or --data is required")}
			}
			if dir == "" {
				dir = filepath.Join(data, "keys")
			}
			return runKeysInit(cmd.OutOrStdout(), dir, data, count, threshold)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "keys directory (root/ and online/ are created in it)")
	f.StringVar(&data, "data", "", "server data directory: also create the repository in <data>/update")
	f.IntVar(&count, "count", 3, "number of root keys")
	f.IntVar(&threshold, "threshold", 2, "root keys needed to sign a root")
	return cmd
}

func runKeysInit(out io.Writer, dir, data string, count, threshold int) error {
	p := keyPaths{data: data, keys: dir}
	if data != "" {
		if _, err := os.Stat(filepath.Join(p.repoDir(), "metadata")); err == nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s already holds a pattern repository; rotate its keys with `mamori keys rotate-root` or `rotate-online`", p.repoDir())}
		}
	}
	root, online, err := update.InitKeys(dir, count, threshold)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	rootDir := filepath.Join(dir, update.RootKeysDir)
	fmt.Fprintf(out, "created %d root keys (%d needed to sign a root) in %s\n", len(root.Keys), root.Threshold, rootDir)
	fmt.Fprintf(out, "created the timestamp, snapshot, targets and bandage keys in %s\n", filepath.Join(dir, update.OnlineKeysDir))
	if data != "" {
		repo, err := update.InitRepo(p.repoDir(), root, online, repoOptions())
		if err != nil {
			return fmt.Errorf("create the repository (the keys are kept): %w", err)
		}
		fmt.Fprintf(out, "created the pattern repository %s (root version 1, expires %s)\n", p.repoDir(), repo.RootExpires().Local().Format(time.DateOnly))
	} else {
		fmt.Fprintln(out, "note: no repository was created (no --data); a server refuses to start on keys without one")
	}
	fmt.Fprintf(out, "move %s off this machine: give each holder one root-N.key with root-threshold; they are needed only to rotate keys or renew the root\n", rootDir)
	return nil
}

func newKeysShowCmd() *cobra.Command {
	var dir, data string
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "List key ids, roles, types and creation times (never private keys)",
		Long: `List the keys of a keys directory (its root/ and online/, or one key
directory): role, key id (as the signed metadata lists it), type and the
key file's creation time. With --data, also whether the repository's
current metadata trusts each key. Private key material is never printed.`,
		Example: "  mamori keys show --dir /var/lib/mamori/keys --data /var/lib/mamori\n  mamori keys show --dir /media/usb/root --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" && data == "" {
				return &exitError{code: exitUsage, err: errors.New("--dir or --data is required")}
			}
			if dir == "" {
				dir = filepath.Join(data, "keys")
			}
			return runKeysShow(cmd.OutOrStdout(), dir, data, asJSON, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "keys directory, or a root or online key directory (default <data>/keys)")
	f.StringVar(&data, "data", "", "server data directory: show which keys the repository trusts")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per key")
	f.BoolVarP(&quiet, "quiet", "q", false, "print key ids only")
	return cmd
}

// shownKey is one line of `keys show --json`.
type shownKey struct {
	update.KeyInfo
	Trusted *bool `json:"trusted,omitempty"`
}

func runKeysShow(out io.Writer, dir, data string, asJSON, quiet bool) error {
	ks, err := update.DescribeKeys(dir)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	var trust *update.Trust
	if data != "" {
		p := keyPaths{data: data}
		if err := p.check(); err != nil {
			return err
		}
		t, err := update.CurrentTrust(p.repoDir())
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		trust = &t
	}
	keys := make([]shownKey, len(ks.Keys))
	for i, k := range ks.Keys {
		keys[i].KeyInfo = k
		if trust != nil {
			ok := slices.Contains(trust.KeyIDs[k.Role], k.ID)
			keys[i].Trusted = &ok
		}
	}
	switch {
	case quiet:
		for _, k := range keys {
			fmt.Fprintln(out, k.ID)
		}
		return nil
	case asJSON:
		enc := json.NewEncoder(out)
		for _, k := range keys {
			if err := enc.Encode(k); err != nil {
				return err
			}
		}
		return nil
	}
	if trust != nil {
		fmt.Fprintf(out, "repository root version %d: %d root keys, threshold %d, expires %s\n",
			trust.RootVersion, len(trust.KeyIDs["root"]), trust.RootThreshold, trust.RootExpires.Local().Format(time.DateTime))
	}
	if ks.RootThreshold > 0 {
		fmt.Fprintf(out, "root threshold in %s: %d\n", dir, ks.RootThreshold)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "ROLE\tKEY ID\tTYPE\tCREATED\tFILE"
	if trust != nil {
		head += "\tTRUSTED"
	}
	fmt.Fprintln(w, head)
	for _, k := range keys {
		line := fmt.Sprintf("%s\t%.16s\t%s\t%s\t%s", k.Role, k.ID, k.Type, k.Created.Local().Format(time.DateTime), k.File)
		if k.Trusted != nil {
			line += "\t" + map[bool]string{true: "yes", false: "no"}[*k.Trusted]
		}
		fmt.Fprintln(w, line)
	}
	return w.Flush()
}

func newKeysRotateRootCmd() *cobra.Command {
	var p keyPaths
	var rootKeys, newRootKeys string
	var count, threshold int
	cmd := &cobra.Command{
		Use:   "rotate-root",
		Short: "Sign a new root version: new root keys, or the same ones renewed",
		Long: `Write root version N+1 of the repository in <data>/update, signed by a
threshold of the current root keys (--root-keys: the holders' root-N.key
files and root-threshold) and, with --new-root-keys, listing the root keys
there (created with --count/--threshold if that directory holds none) and
signed by their threshold too. Without --new-root-keys the current root keys
and threshold are kept and only the expiry is renewed (root versions are
valid one year). Agents fetch the new root at their next update and follow
the chain from the root they hold.

Stop the server first: it reads the newest root when it starts. (While it
runs it serves the new root file to agents at once, but enrols new agents
with the root it started with, and nothing keeps two processes from writing
the repository at the same time.)`,
		Example: "  mamori keys rotate-root --data /var/lib/mamori --root-keys /media/usb/root --new-root-keys /media/usb/root-2026\n  mamori keys rotate-root --data /var/lib/mamori --root-keys /media/usb/root   # renew",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootKeys == "" {
				return &exitError{code: exitUsage, err: errors.New("--root-keys (a threshold of the current root keys) is required")}
			}
			return runRotateRoot(cmd.Context(), cmd.OutOrStdout(), p, rootKeys, newRootKeys, count, threshold)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.data, "data", "", "server data directory (the repository is <data>/update)")
	f.StringVar(&p.keys, "keys", "", "keys directory if patterns.keys sets one (default <data>/keys)")
	f.StringVar(&rootKeys, "root-keys", "", "directory with a threshold of the current root keys")
	f.StringVar(&newRootKeys, "new-root-keys", "", "directory of the new root keys (created if it holds none)")
	f.IntVar(&count, "count", 3, "number of new root keys, when created")
	f.IntVar(&threshold, "threshold", 2, "new root keys needed to sign a root, when created")
	return cmd
}

func runRotateRoot(ctx context.Context, out io.Writer, p keyPaths, rootKeys, newRootKeys string, count, threshold int) error {
	if err := p.check(); err != nil {
		return err
	}
	old, err := update.LoadRootKeys(rootKeys)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	online, err := update.LoadOnlineKeys(p.onlineDir())
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	repo, err := update.OpenRepo(p.repoDir(), online, repoOptions())
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if newRootKeys == "" {
		if err := repo.ResignRoot(ctx, old, nil); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	} else {
		var next *update.RootKeys
		if _, err := os.Stat(filepath.Join(newRootKeys, "root-threshold")); err == nil {
			next, err = update.LoadRootKeys(newRootKeys)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
		} else {
			if next, err = update.GenerateRootKeys(newRootKeys, count, threshold); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			fmt.Fprintf(out, "created %d new root keys (%d needed to sign a root) in %s\n", len(next.Keys), next.Threshold, newRootKeys)
		}
		if err := repo.RotateRoot(ctx, old, next, nil); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	return printRoot(out, p)
}

func newKeysRotateOnlineCmd() *cobra.Command {
	var p keyPaths
	var rootKeys string
	cmd := &cobra.Command{
		Use:   "rotate-online",
		Short: "Replace the online timestamp, snapshot, targets and bandage keys",
		Long: `Create new online keys, sign root version N+1 listing them with a threshold
of the root keys (--root-keys), re-sign the targets, bandage, snapshot and
timestamp metadata with them, and put them in place of <keys>/online; the
old keys are moved to online.retired-<time> and are trusted by nothing
(delete them). Agents follow the new root at their next update and refuse
anything signed with the retired keys.

The server must be stopped: it keeps the metadata in memory and would sign
on with the retired keys. Start it again afterwards.`,
		Example: "  mamori keys rotate-online --data /var/lib/mamori --root-keys /media/usb/root",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootKeys == "" {
				return &exitError{code: exitUsage, err: errors.New("--root-keys (a threshold of the root keys) is required")}
			}
			if err := p.check(); err != nil {
				return err
			}
			holders, err := update.LoadRootKeys(rootKeys)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			retired, err := update.RotateOnlineKeys(cmd.Context(), p.repoDir(), p.onlineDir(), holders, repoOptions())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "new online keys in %s; the retired ones are in %s (trusted by nothing: delete them)\n", p.onlineDir(), retired)
			return printRoot(out, p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.data, "data", "", "server data directory (the repository is <data>/update)")
	f.StringVar(&p.keys, "keys", "", "keys directory if patterns.keys sets one (default <data>/keys)")
	f.StringVar(&rootKeys, "root-keys", "", "directory with a threshold of the root keys")
	return cmd
}

// printRoot tells what the repository's newest root now is.
func printRoot(out io.Writer, p keyPaths) error {
	t, err := update.CurrentTrust(p.repoDir())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "root version %d written (%s): %d root keys, threshold %d, expires %s; agents follow it at their next update\n",
		t.RootVersion, filepath.Join(p.repoDir(), "metadata", fmt.Sprintf("%d.root.json", t.RootVersion)),
		len(t.KeyIDs["root"]), t.RootThreshold, t.RootExpires.Local().Format(time.DateOnly))
	fmt.Fprintln(out, "start (or restart) the server: it reads the newest root when it starts")
	return nil
}
