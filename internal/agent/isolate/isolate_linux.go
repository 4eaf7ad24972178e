//go:build linux

package isolate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Options configures an Isolator.
type Options struct {
	// NetNSFd is an open file descriptor of the network namespace to
	// isolate (for example /run/netns/NAME); 0 means the namespace of the
	// calling process. The caller keeps it open while the Isolator is used.
	NetNSFd int
	// StateFile records the applied policy (JSON, mode 0600) so that an
	// agent started after a reboot, which empties the kernel ruleset,
	// re-applies it (Restore). Empty: no state file; a restarted agent
	// still finds a live table, but a reboot lifts the isolation.
	StateFile string
	// Table is the nftables table (family inet) to own; DefaultTable when
	// empty. Letters, digits, '_' and '-' only.
	Table string
	// OnReapply, when set, is called by Run after it found the table gone
	// while the host should be isolated (someone ran "nft flush ruleset",
	// restarted nftables.service, deleted the table...) and applied it
	// again; err is the outcome. Report it: it is tampering or a
	// misconfigured firewall manager. Called without locks held.
	OnReapply func(err error)
}

// Isolator applies, reads back and lifts the isolation table. Its methods
// are safe for concurrent use; they are serialized. Netlink calls do not
// take a context: ctx is checked before the change starts, and a change is
// a single short kernel transaction.
type Isolator struct {
	opts    Options
	mu      sync.Mutex
	changed chan struct{}
	// beforeFlush, when set (tests), may queue more messages into Apply's
	// batch just before it is sent.
	beforeFlush func(*nftables.Conn, *nftables.Table)
	noMetaTime  bool // the kernel rejected "meta time" once (Linux < 5.4)
	// want is the isolation this process applied or restored, which Run
	// keeps in place; nil after Release or expiry.
	want *stateRecord
}

// New returns an Isolator after checking that nf_tables answers in the
// target namespace; an error wrapping ErrUnsupported means it does not.
func New(opts Options) (*Isolator, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if len(opts.Table) > 200 || strings.IndexFunc(opts.Table, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return nil, fmt.Errorf("isolate: table name %q: letters, digits, '_' and '-' only", opts.Table)
	}
	i := &Isolator{opts: opts, changed: make(chan struct{}, 1)}
	c, err := i.conn()
	if err != nil {
		return nil, err
	}
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		for _, e := range []error{unix.EPROTONOSUPPORT, unix.EAFNOSUPPORT, unix.EOPNOTSUPP, unix.EINVAL} {
			if errors.Is(err, e) {
				return nil, fmt.Errorf("%w: nf_tables: %v", ErrUnsupported, err)
			}
		}
		return nil, fmt.Errorf("isolate: nf_tables: %w", err)
	}
	return i, nil
}

func (i *Isolator) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if i.opts.NetNSFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(i.opts.NetNSFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("isolate: netlink: %w", err)
	}
	return c, nil
}

func (i *Isolator) tableRef() *nftables.Table {
	return &nftables.Table{Name: i.opts.Table, Family: nftables.TableFamilyINet}
}

func (i *Isolator) notify() {
	select {
	case i.changed <- struct{}{}:
	default:
	}
}

// Apply isolates the host under p, replacing any previous isolation in one
// kernel transaction: on error nothing changed (the host is exactly as
// isolated, or not, as before). Applying the same policy again is
// harmless.
func (i *Isolator) Apply(ctx context.Context, p Policy) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	np, err := p.normalize(now)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.applyLocked(np, now.UTC(), true)
}

func (w *stateRecord) expired(now time.Time) bool {
	return !w.Policy.Until.IsZero() && !now.Before(w.Policy.Until)
}

// applyLocked records the intent (state file) first, so a crash between
// the two steps errs on the side of isolation, then commits the table; it
// puts the previous state file back when the commit fails.
func (i *Isolator) applyLocked(p Policy, appliedAt time.Time, writeStateFile bool) error {
	var restore func()
	if i.opts.StateFile != "" && writeStateFile {
		prev, err := os.ReadFile(i.opts.StateFile)
		switch {
		case err == nil:
			restore = func() { _ = writeFileAtomic(i.opts.StateFile, prev) }
		case errors.Is(err, os.ErrNotExist):
			restore = func() { _ = removeState(i.opts.StateFile) }
		default:
			return fmt.Errorf("isolate: state file: %w", err)
		}
		rec := stateRecord{Table: i.opts.Table, AppliedAt: appliedAt, Policy: p}
		if err := writeState(i.opts.StateFile, rec); err != nil {
			return err
		}
	}
	meta := tableMeta{Until: p.Until, AppliedAt: appliedAt, Reason: p.Reason}
	kernelExpiry := !p.Until.IsZero() && !i.noMetaTime
	err := i.commit(p, meta, kernelExpiry)
	if err != nil && kernelExpiry && errors.Is(err, unix.EOPNOTSUPP) {
		// Linux < 5.4 has no "meta time": the whole batch was rejected, so
		// try again without the kernel-side expiry (Run still lifts
		// the isolation, but only while the agent runs).
		i.noMetaTime = true
		err = i.commit(p, meta, false)
	}
	if err != nil {
		if restore != nil {
			restore()
		}
		return fmt.Errorf("isolate: apply rejected, nothing changed: %w", err)
	}
	i.want = &stateRecord{Table: i.opts.Table, AppliedAt: appliedAt, Policy: p}
	i.notify()
	return nil
}

// commit sends the table replacement as one batch.
func (i *Isolator) commit(p Policy, meta tableMeta, kernelExpiry bool) error {
	c, err := i.conn()
	if err != nil {
		return err
	}
	t := addTable(c, i.opts.Table, p, meta, kernelExpiry)
	if i.beforeFlush != nil {
		i.beforeFlush(c, t)
	}
	return c.Flush()
}

// Release lifts the isolation: it deletes the state file, then the table
// (one transaction). It returns ErrNotIsolated when there was no table.
func (i *Isolator) Release(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.releaseLocked()
}

// releaseLocked removes the state file before the table: a crash in
// between leaves the table, which a restarted agent still sees (and which
// still expires), rather than a state file that would re-isolate a host
// that was released.
func (i *Isolator) releaseLocked() error {
	i.want = nil
	if i.opts.StateFile != "" {
		if err := removeState(i.opts.StateFile); err != nil {
			return err
		}
	}
	c, err := i.conn()
	if err != nil {
		return err
	}
	c.DelTable(i.tableRef())
	err = c.Flush()
	i.notify()
	if errors.Is(err, unix.ENOENT) {
		return ErrNotIsolated
	}
	if err != nil {
		return fmt.Errorf("isolate: release: %w", err)
	}
	return nil
}

// Status reads the isolation back from the live ruleset (not from the
// state file): whether the table is present, its allow lists, Until,
// Reason and the count of dropped packets.
func (i *Isolator) Status(ctx context.Context) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.statusLocked()
}

func (i *Isolator) statusLocked() (Status, error) {
	st := Status{Table: i.opts.Table}
	c, err := i.conn()
	if err != nil {
		return st, err
	}
	if _, err := c.ListTableOfFamily(i.opts.Table, nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return st, nil
		}
		return st, fmt.Errorf("isolate: status: %w", err)
	}
	st.Isolated = true
	t := i.tableRef()
	seenDNS := map[string]bool{}
	for _, name := range []string{chainInput, chainOutput, chainForward} {
		rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
		if err != nil {
			return st, fmt.Errorf("isolate: status: chain %s: %w", name, err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					st.Dropped += ctr.Packets
				}
			}
			if name != chainOutput {
				continue
			}
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			switch {
			case strings.HasPrefix(comment, commentAllow):
				if e, err := parseEndpoint(strings.TrimPrefix(comment, commentAllow)); err == nil {
					st.Policy.Allow = append(st.Policy.Allow, e)
				}
			case strings.HasPrefix(comment, commentInbound):
				if e, err := parseEndpoint(strings.TrimPrefix(comment, commentInbound)); err == nil {
					st.Policy.Inbound = append(st.Policy.Inbound, e)
				}
			case strings.HasPrefix(comment, commentDNS):
				s := strings.TrimPrefix(comment, commentDNS)
				if a, err := netip.ParseAddr(s); err == nil && !seenDNS[s] {
					seenDNS[s] = true
					st.Policy.AllowDNS = append(st.Policy.AllowDNS, a)
				}
			case comment == commentDHCP:
				st.Policy.AllowDHCP = true
			case comment == commentExpiry:
				st.KernelExpiry = true
			default:
				if m, ok := parseMeta(comment); ok {
					st.Policy.Until, st.Policy.Reason, st.AppliedAt = m.Until, m.Reason, m.AppliedAt
				}
			}
		}
	}
	st.Expired = !st.Policy.Until.IsZero() && !time.Now().Before(st.Policy.Until)
	return st, nil
}

// Restore is what an agent calls at start. A live table is kept (or, when
// expired, removed). Without one, a state file whose isolation has not
// expired means the host rebooted while isolated: the policy is applied
// again. An expired state file is removed. It returns the resulting status;
// run Run afterwards to keep it and lift it at Until.
func (i *Isolator) Restore(ctx context.Context) (Status, error) {
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	st, err := i.statusLocked()
	if err != nil {
		return st, err
	}
	if st.Isolated {
		if st.Expired {
			if err := i.releaseLocked(); err != nil && !errors.Is(err, ErrNotIsolated) {
				return st, err
			}
			return i.statusLocked()
		}
		i.want = &stateRecord{Table: i.opts.Table, AppliedAt: st.AppliedAt, Policy: st.Policy}
		i.notify()
		return st, nil
	}
	if i.opts.StateFile == "" {
		return st, nil
	}
	rec, err := readState(i.opts.StateFile)
	if err != nil || rec == nil {
		return st, err
	}
	now := time.Now()
	p, err := rec.Policy.normalize(now)
	if err != nil {
		// Expired (or no longer valid): the isolation is over.
		return st, removeState(i.opts.StateFile)
	}
	if err := i.applyLocked(p, rec.AppliedAt, false); err != nil {
		return st, err
	}
	return i.statusLocked()
}

// Run keeps the isolation as this Isolator last applied or restored it,
// until ctx ends (it then returns ctx.Err()): it removes the table (and
// the state file) when Until passes, and applies it again when the table
// disappears while the host should still be isolated (see
// Options.OnReapply). It learns of changes from the kernel (an nftables
// monitor), from Apply and Release, and by re-reading the ruleset at least
// every minute. Call Restore first when the agent starts. The kernel
// already stops enforcing the table at Until; Run cleans up.
func (i *Isolator) Run(ctx context.Context) error {
	tableEvents := i.watch(ctx)
	for {
		wait, reapplied, err := i.reconcile(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if reapplied && i.opts.OnReapply != nil {
			i.opts.OnReapply(err)
		}
		if reapplied && err == nil {
			continue // read back what was applied
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-i.changed:
		case <-tableEvents:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reconcile compares the live table with i.want and acts; it returns when
// to look again.
func (i *Isolator) reconcile(ctx context.Context) (wait time.Duration, reapplied bool, err error) {
	const resync, retry = time.Minute, 5 * time.Second
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	st, err := i.statusLocked()
	if err != nil {
		return retry, false, err
	}
	now := time.Now()
	switch {
	case st.Isolated && st.Expired:
		if err := i.releaseLocked(); err != nil && !errors.Is(err, ErrNotIsolated) {
			return retry, false, err
		}
		return resync, false, nil
	case st.Isolated && !st.Policy.Until.IsZero():
		return min(st.Policy.Until.Sub(now), resync), false, nil
	case st.Isolated:
		return resync, false, nil
	case i.want == nil:
		return resync, false, nil
	case i.want.expired(now):
		i.want = nil
		if i.opts.StateFile != "" {
			return resync, false, removeState(i.opts.StateFile)
		}
		return resync, false, nil
	}
	// The table is gone but the host should be isolated. Unless it was
	// released by another process (which removes the state file first),
	// put it back.
	if i.opts.StateFile != "" {
		rec, err := readState(i.opts.StateFile)
		if err != nil {
			return retry, false, err
		}
		if rec == nil || !rec.AppliedAt.Equal(i.want.AppliedAt) {
			i.want = nil
			return resync, false, nil
		}
	}
	w := *i.want
	if err := i.applyLocked(w.Policy, w.AppliedAt, false); err != nil {
		return retry, true, err
	}
	return 0, true, nil
}

// watch returns a channel signalled when a table is deleted in the
// namespace (nil, which never fires, when the monitor cannot be set up;
// the periodic re-read remains). It stops with ctx.
func (i *Isolator) watch(ctx context.Context) <-chan struct{} {
	c, err := i.conn()
	if err != nil {
		return nil
	}
	// Unfiltered: google/nftables v0.3.0 tests its filter flags as
	// (flags&1)<<type, which drops every event of a narrower filter.
	mon := nftables.NewMonitor()
	events, err := c.AddMonitor(mon)
	if err != nil {
		return nil
	}
	out := make(chan struct{}, 1)
	go func() {
		defer func() {
			_ = mon.Close()
			for range events { // let the monitor's goroutines finish
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				if t, isTable := ev.Data.(*nftables.Table); ev.Type == nftables.MonitorEventTypeDelTable &&
					isTable && t.Name == i.opts.Table {
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return out
}
