package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mamori-soc/mamori/internal/agent/quarantine"
	"github.com/mamori-soc/mamori/internal/pattern"
)

// Roots are where remove_persistence looks. Entries may be globs
// ("/home/*/.config/autostart"). A nil field means the system default
// (DefaultRoots); an empty non-nil one means nowhere.
type Roots struct {
	SystemdUnits []string // directories holding unit files
	Cron         []string // cron files, or directories whose files are cron files
	Autostart    []string // XDG autostart directories
}

// Options configure a Runner.
type Options struct {
	// Store receives everything a step removes, so Undo can put it back.
	// Without one, steps that would remove a file fail with ErrNoStore.
	Store *quarantine.Store
	Roots Roots
	// Protected are paths (globs allowed, matched against the path and each
	// of its parents) that are never quarantined or unlinked. nil means
	// DefaultProtected. The agent's own binary and the quarantine directory
	// are always protected.
	Protected []string
	// DryRun reports what each step would do, changing nothing.
	DryRun bool
	Logger *slog.Logger
	// Systemctl, when set, is called with "stop <unit>" before a unit is
	// removed and "daemon-reload" after; the agent passes a function that
	// runs systemctl(1). Failures are reported in the step, not fatal.
	Systemctl func(ctx context.Context, args ...string) error
	// ProcDir is where processes are listed (default /proc).
	ProcDir string
}

// Runner executes cleanup definitions. It is safe for concurrent use.
type Runner struct {
	o         Options
	log       *slog.Logger
	protected []string
	safePIDs  []int // never killed: init, the agent, its parent
}

// New returns a Runner; zero options get the defaults above.
func New(o Options) *Runner {
	def := DefaultRoots()
	if o.Roots.SystemdUnits == nil {
		o.Roots.SystemdUnits = def.SystemdUnits
	}
	if o.Roots.Cron == nil {
		o.Roots.Cron = def.Cron
	}
	if o.Roots.Autostart == nil {
		o.Roots.Autostart = def.Autostart
	}
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	prot := o.Protected
	if prot == nil {
		prot = DefaultProtected()
	}
	prot = slices.Clone(prot)
	if exe, err := os.Executable(); err == nil {
		prot = append(prot, exe)
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			prot = append(prot, real)
		}
	}
	if o.Store != nil {
		prot = append(prot, o.Store.Dir())
	}
	for i, p := range prot {
		prot[i] = filepath.Clean(p)
	}
	return &Runner{
		o: o, log: o.Logger.With("component", "cleanup"), protected: prot,
		safePIDs: []int{1, os.Getpid(), os.Getppid()},
	}
}

// Target is what a definition is run against: the detection.
type Target struct {
	Path      string `json:"path"`      // the detected file; {detected} in steps
	Signature string `json:"signature"` // the detection's name
}

// TargetOf is the target of a scan detection. A match inside an archive
// targets the archive itself: that is the file on disk.
func TargetOf(d pattern.Detection) Target {
	return Target{Path: d.Path, Signature: d.Signature}
}

// Status is a step's outcome.
type Status string

const (
	StatusDone    Status = "done"
	StatusSkipped Status = "skipped" // nothing to do (not present), or cancelled
	StatusFailed  Status = "failed"
	StatusPlanned Status = "planned" // dry run: it would have acted
)

// Report is what a Run did, in step order. It is JSON-serialisable so the
// agent can send it to the server and Undo it later from the stored copy.
type Report struct {
	Detection string    `json:"detection"`
	Target    Target    `json:"target"`
	DryRun    bool      `json:"dry_run,omitempty"`
	Started   time.Time `json:"started"`
	Steps     []Outcome `json:"steps"`
}

// Outcome is one step's result and the undo information for what it did.
type Outcome struct {
	Step        Step          `json:"step"`
	Status      Status        `json:"status"`
	Detail      string        `json:"detail,omitempty"`
	Err         error         `json:"-"`
	Error       string        `json:"error,omitempty"`
	Killed      []int         `json:"killed,omitempty"`
	Quarantined []Quarantined `json:"quarantined,omitempty"`
	Unlinked    []Link        `json:"unlinked,omitempty"`
}

// Quarantined is a file a step put into the quarantine store.
type Quarantined struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	// Rewritten is the sha256 of what the step wrote back in the file's
	// place (a cron file without the removed lines); "" when the file was
	// moved away. Undo only replaces a rewritten file that is still exactly
	// what the step wrote.
	Rewritten string `json:"rewritten_sha256,omitempty"`
}

// Link is a symbolic link a step removed (systemd .wants links); Undo
// recreates it.
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// Failed reports whether any step failed.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Steps, func(o Outcome) bool { return o.Status == StatusFailed })
}

// run is the state of one Run: the executable hash cache lives here so a
// rerun hashes afresh (a binary may have been replaced in between).
type run struct {
	r      *Runner
	target Target
	hashes map[exeKey]string
}

// Run executes def's steps in order against target. Every step runs even
// when an earlier one failed — each is safe on its own (guarded by the
// protected list and the quarantine), and killing a process that the next
// step could not quarantine is still better than nothing; only a
// cancelled ctx stops early, marking the rest skipped. The report is
// returned in every case; err wraps ErrIncomplete when a step failed, and
// is ErrInvalid or ErrMismatch when nothing ran.
func (r *Runner) Run(ctx context.Context, def Definition, target Target) (Report, error) {
	rep := Report{Detection: def.Detection, Target: target, DryRun: r.o.DryRun, Started: time.Now().UTC()}
	if err := def.Validate(); err != nil {
		return rep, err
	}
	if target.Signature != "" && !def.Matches(target.Signature) {
		return rep, fmt.Errorf("%w: %s is not %s", ErrMismatch, target.Signature, def.Detection)
	}
	st := &run{r: r, target: target, hashes: map[exeKey]string{}}
	var failed []error
	for _, step := range def.Steps {
		var out Outcome
		if err := ctx.Err(); err != nil {
			out = Outcome{Step: step, Status: StatusSkipped, Detail: "cancelled", Err: err}
		} else {
			out = st.do(ctx, step)
		}
		if out.Err != nil {
			out.Error = out.Err.Error()
		}
		if out.Status == StatusFailed {
			failed = append(failed, fmt.Errorf("%s: %w", step, out.Err))
		}
		r.log.Info("cleanup step", "detection", def.Detection, "signature", target.Signature,
			"step", step.String(), "status", out.Status, "detail", out.Detail, "err", out.Err, "dry_run", r.o.DryRun)
		rep.Steps = append(rep.Steps, out)
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%w: %d of %d steps failed: %w", ErrIncomplete, len(failed), len(def.Steps), errors.Join(failed...))
	}
	return rep, nil
}

func (st *run) do(ctx context.Context, s Step) Outcome {
	out := Outcome{Step: s}
	switch s.Action {
	case ActionKill:
		st.kill(ctx, s.ImageSHA256, &out)
	case ActionQuarantine:
		st.quarantineFile(ctx, s, &out)
	case ActionRemovePersistence:
		switch s.Kind {
		case SystemdUnit:
			st.removeUnit(ctx, s, &out)
		case Cron:
			st.removeCronLines(ctx, s, &out)
		case Autostart:
			st.removeAutostart(ctx, s, &out)
		default:
			out.fail(fmt.Errorf("%w: %s is a Windows persistence kind and is not executed yet", ErrUnsupported, s.Kind))
		}
	}
	return out
}

func (o *Outcome) fail(err error) {
	o.Status, o.Err = StatusFailed, errors.Join(o.Err, err)
}

// note appends to Detail.
func (o *Outcome) note(format string, args ...any) {
	if o.Detail != "" {
		o.Detail += "; "
	}
	o.Detail += fmt.Sprintf(format, args...)
}

// settle sets the status from what happened when no failure set it: done
// if anything changed, planned in a dry run that found work, skipped
// otherwise.
func (o *Outcome) settle(acted bool, dry bool) {
	switch {
	case o.Status == StatusFailed:
	case acted && dry:
		o.Status = StatusPlanned
	case acted:
		o.Status = StatusDone
	default:
		o.Status = StatusSkipped
	}
}

func (st *run) quarantineFile(ctx context.Context, s Step, out *Outcome) {
	path := s.Path
	if strings.HasPrefix(path, Placeholder) {
		if st.target.Path == "" {
			out.fail(fmt.Errorf("%w: %s needs the detected file's path, and the target has none", ErrInvalid, Placeholder))
			return
		}
		path = st.target.Path + path[len(Placeholder):]
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		out.note("%s is not present", path)
		out.settle(false, false)
		return
	}
	acted := st.quarantine(ctx, path, s, out)
	out.settle(acted, st.r.o.DryRun)
}

// quarantine moves path into the store (or notes that it would), after the
// protected-path check. It reports whether it acted (or would have).
func (st *run) quarantine(ctx context.Context, path string, s Step, out *Outcome) bool {
	if pat, ok := st.r.isProtected(path); ok {
		out.fail(fmt.Errorf("%w: %s (protected by %s)", ErrProtected, path, pat))
		return false
	}
	if st.r.o.DryRun {
		out.note("would quarantine %s", path)
		return true
	}
	if st.r.o.Store == nil {
		out.fail(fmt.Errorf("%w: cannot quarantine %s", ErrNoStore, path))
		return false
	}
	e, err := st.r.o.Store.Put(ctx, path, st.reason(s))
	if err != nil {
		out.fail(err)
		return false
	}
	out.Quarantined = append(out.Quarantined, Quarantined{ID: e.ID, Path: e.Path})
	out.note("quarantined %s as %s", e.Path, e.ID)
	return true
}

func (st *run) reason(s Step) quarantine.Reason {
	return quarantine.Reason{Kind: quarantine.ReasonCleanup, Signature: st.target.Signature, Note: s.String()}
}

// unlink removes a symbolic link, keeping its target for Undo. A link is
// not quarantined: it holds no bytes, only the path it points to.
func (st *run) unlink(path string, out *Outcome) bool {
	if pat, ok := st.r.isProtected(path); ok {
		out.fail(fmt.Errorf("%w: %s (protected by %s)", ErrProtected, path, pat))
		return false
	}
	target, err := os.Readlink(path)
	if err != nil {
		out.fail(err)
		return false
	}
	if st.r.o.DryRun {
		out.note("would remove link %s -> %s", path, target)
		return true
	}
	if err := os.Remove(path); err != nil {
		out.fail(err)
		return false
	}
	out.Unlinked = append(out.Unlinked, Link{Path: path, Target: target})
	out.note("removed link %s -> %s", path, target)
	return true
}

// remove quarantines a regular file or unlinks a symbolic link at path;
// anything else there is reported, not touched.
func (st *run) remove(ctx context.Context, path string, s Step, out *Outcome) bool {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false
	case err != nil:
		out.fail(err)
		return false
	case fi.Mode()&fs.ModeSymlink != 0:
		return st.unlink(path, out)
	case fi.Mode().IsRegular():
		return st.quarantine(ctx, path, s, out)
	default:
		out.fail(fmt.Errorf("%w: %s is %s", quarantine.ErrNotRegular, path, fi.Mode().Type()))
		return false
	}
}

// expand resolves the glob entries of a root list, in order, without
// duplicates.
func expand(roots []string) []string {
	var out []string
	for _, r := range roots {
		matches := []string{r}
		if strings.ContainsAny(r, "*?[") {
			matches, _ = filepath.Glob(r)
		}
		for _, m := range matches {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Undo puts back everything report's steps removed, last first: files from
// the quarantine, links recreated. Killed processes stay killed. A file
// that changed since the cleanup rewrote it is left alone and reported.
func (r *Runner) Undo(ctx context.Context, rep Report) error {
	var errs []error
	reload := false
	for i := len(rep.Steps) - 1; i >= 0; i-- {
		o := rep.Steps[i]
		for j := len(o.Unlinked) - 1; j >= 0; j-- {
			if err := relink(o.Unlinked[j]); err != nil {
				errs = append(errs, err)
			} else {
				reload = reload || o.Step.Kind == SystemdUnit
			}
		}
		for j := len(o.Quarantined) - 1; j >= 0; j-- {
			if err := r.restore(ctx, o.Quarantined[j]); err != nil {
				errs = append(errs, err)
			} else {
				reload = reload || o.Step.Kind == SystemdUnit
			}
		}
	}
	if reload && r.o.Systemctl != nil {
		if err := r.o.Systemctl(ctx, "daemon-reload"); err != nil {
			errs = append(errs, fmt.Errorf("systemctl daemon-reload: %w", err))
		}
	}
	err := errors.Join(errs...)
	r.log.Info("cleanup undone", "detection", rep.Detection, "signature", rep.Target.Signature, "err", err)
	return err
}

func (r *Runner) restore(ctx context.Context, q Quarantined) error {
	if r.o.Store == nil {
		return fmt.Errorf("undo %s: %w", q.Path, ErrNoStore)
	}
	var opts []quarantine.RestoreOption
	if q.Rewritten != "" {
		sum, err := quarantine.HashFile(ctx, q.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("undo %s: %w", q.Path, err)
		case sum != q.Rewritten:
			return fmt.Errorf("undo %s: %w: changed since the cleanup rewrote it; restore entry %s by hand", q.Path, quarantine.ErrExists, q.ID)
		default:
			opts = append(opts, quarantine.Force())
		}
	}
	if _, err := r.o.Store.Restore(ctx, q.ID, opts...); err != nil {
		return fmt.Errorf("undo %s: %w", q.Path, err)
	}
	return nil
}

func relink(l Link) error {
	if cur, err := os.Readlink(l.Path); err == nil && cur == l.Target {
		return nil // already back
	}
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o755); err != nil {
		return fmt.Errorf("undo link %s: %w", l.Path, err)
	}
	if err := os.Symlink(l.Target, l.Path); err != nil {
		return fmt.Errorf("undo link %s: %w", l.Path, err)
	}
	return nil
}
