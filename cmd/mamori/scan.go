package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/mamori-soc/mamori/internal/pattern"
	"github.com/mamori-soc/mamori/internal/pattern/yara"
)

// scanLine is one JSON line of `mamori scan`: a detection (kind "hash",
// "body", "logical", or "yara" for a YARA rule), or a limit that cut a
// scan short (kind "limit"), or a file that could not be read (kind
// "error").
type scanLine struct {
	Path      string `json:"path"`
	Container string `json:"container,omitempty"`
	Signature string `json:"signature,omitempty"`
	Kind      string `json:"kind"`
	Offset    *int64 `json:"offset,omitempty"`
	Error     string `json:"error,omitempty"`
}

// scanSummary is the last line.
type scanSummary struct {
	Summary    bool    `json:"summary"`
	Files      int     `json:"files"`
	Bytes      int64   `json:"bytes"`
	Infected   int     `json:"infected"`
	Detections int     `json:"detections"`
	Limits     int     `json:"limits"`
	Errors     int     `json:"errors"`
	Signatures int     `json:"signatures"`
	YARARules  int     `json:"yara_rules,omitempty"`
	Warnings   int     `json:"warnings"`
	LoadSecs   float64 `json:"load_seconds"`
	ScanSecs   float64 `json:"scan_seconds"`
	MBps       float64 `json:"mb_per_second"`
}

func newScanCmd() *cobra.Command {
	var patterns []string
	var workers int
	var quiet bool
	lim := pattern.DefaultLimits()
	cmd := &cobra.Command{
		Use:   "scan PATH...",
		Short: "Scan files and directories offline with pattern files",
		Long: `Scan files and directories (recursively, inside zip, gzip, tar and mail
attachments) with pattern files: ClamAV .hdb/.hsb/.ndb/.ldb and Mamori YAML,
given by --patterns (files or directories; repeatable). YARA rules (.yar,
.yara) are run too when mamori is built with -tags yara (a file's own bytes
only, not container members); otherwise they are reported as needing it.

Prints one JSON line per detection ({"path","container","signature","kind",
"offset"}), per limit that cut a scan short (kind "limit") and per
unreadable file (kind "error"), then a summary line. Exit code 1 when
something was found, 0 when clean, 2 on error (bad patterns, unreadable
input) with nothing found.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(patterns) == 0 {
				return errors.New("--patterns is required")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return runScan(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), args, patterns, workers, lim, quiet)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&patterns, "patterns", nil, "pattern file or directory (repeatable)")
	f.IntVar(&workers, "workers", runtime.GOMAXPROCS(0), "files scanned in parallel")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only detections and the summary (no load warnings)")
	f.IntVar(&lim.MaxDepth, "max-depth", lim.MaxDepth, "container nesting depth")
	f.Int64Var(&lim.MaxTotalBytes, "max-total-bytes", lim.MaxTotalBytes, "bytes unpacked per top-level file")
	f.Int64Var(&lim.MaxRatio, "max-ratio", lim.MaxRatio, "compression ratio above which a member is not unpacked")
	f.IntVar(&lim.MaxFiles, "max-files", lim.MaxFiles, "members per archive")
	return cmd
}

func runScan(ctx context.Context, stdout, stderr io.Writer, paths, patterns []string, workers int, lim pattern.Limits, quiet bool) error {
	t0 := time.Now()
	set, warns, err := pattern.Load(patterns...)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("load patterns: %w", err)}
	}
	yr, warns, err := loadYARA(ctx, patterns, warns)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("load YARA rules: %w", err)}
	}
	defer yr.Close()
	if !quiet {
		for _, w := range warns {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	st := set.Stats()
	sum := scanSummary{Summary: true, Signatures: st.Hash + st.Body + st.Logical, YARARules: yr.Len(), Warnings: len(warns), LoadSecs: time.Since(t0).Seconds()}
	if sum.Signatures == 0 && sum.YARARules == 0 {
		return &exitError{code: exitUsage, err: errors.New("no usable signatures in --patterns")}
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	sc := pattern.NewScanner(set, lim)
	t1 := time.Now()
	report := func(r pattern.FileResult) error {
		sum.Files++
		if fi, err := os.Lstat(r.Path); err == nil && fi.Mode().IsRegular() {
			sum.Bytes += fi.Size()
		}
		infected := false
		for _, d := range r.Detections {
			l := scanLine{Path: d.Path, Container: d.Container, Signature: d.Signature, Kind: string(d.Kind)}
			if d.Offset >= 0 {
				l.Offset = &d.Offset
			}
			if d.Kind == pattern.KindLimit {
				sum.Limits++
			} else {
				sum.Detections++
				infected = true
			}
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		if infected {
			sum.Infected++
		}
		if r.Err != nil {
			sum.Errors++
			return enc.Encode(scanLine{Path: r.Path, Kind: "error", Error: r.Err.Error()})
		}
		return nil
	}
	scanFile := func(ctx context.Context, p string) pattern.FileResult {
		dets, err := sc.ScanFile(ctx, p)
		if yr != nil && err == nil {
			var ydets []pattern.Detection
			ydets, err = yr.ScanFile(ctx, p)
			dets = append(dets, ydets...)
		}
		return pattern.FileResult{Path: p, Detections: dets, Err: err}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			if err := report(pattern.FileResult{Path: p, Err: err}); err != nil {
				return err
			}
			continue
		}
		switch {
		case fi.IsDir() && yr != nil:
			err = pattern.WalkFiles(ctx, p, workers, scanFile, report)
		case fi.IsDir():
			err = sc.Walk(ctx, p, workers, report)
		default:
			err = report(scanFile(ctx, p))
		}
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	sum.ScanSecs = time.Since(t1).Seconds()
	if sum.ScanSecs > 0 {
		sum.MBps = float64(sum.Bytes) / 1e6 / sum.ScanSecs
	}
	if err := enc.Encode(sum); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	// A detection is what a script must act on: it wins over errors, which
	// the summary and the error lines report.
	switch {
	case sum.Detections > 0:
		return &exitError{code: exitFound}
	case sum.Errors > 0:
		return &exitError{code: exitUsage}
	}
	return nil
}

// loadYARA compiles the YARA rule files among patterns when the engine is
// built in (nil rules otherwise, or when there are none). pattern.Load has
// reported those files as needing YARA; its warnings about them are then
// replaced by the compiler's (files skipped, with file and line).
func loadYARA(ctx context.Context, patterns []string, warns []pattern.Warning) (*yara.Rules, []pattern.Warning, error) {
	if !yara.Built {
		return nil, warns, nil
	}
	files, err := yara.RuleFiles(patterns...)
	if err != nil || len(files) == 0 {
		return nil, warns, err
	}
	rules, ywarns, err := yara.Compile(ctx, files, yara.Options{})
	if err != nil {
		return nil, warns, err
	}
	kept := warns[:0:0]
	for _, w := range warns {
		if !errors.Is(w, pattern.ErrNeedsYARA) {
			kept = append(kept, w)
		}
	}
	return rules, append(kept, ywarns...), nil
}
