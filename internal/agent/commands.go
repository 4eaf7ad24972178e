package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mamori-soc/mamori/internal/agent/isolate"
	"github.com/mamori-soc/mamori/internal/respond"
)

// ErrUnsupportedCommand: this agent cannot carry out a command kind (no
// isolator on this platform, or a kind newer than the agent).
var ErrUnsupportedCommand = errors.New("command not supported by this agent")

// Isolator is what the agent needs of network isolation (isolate.Isolator
// on Linux).
type Isolator interface {
	Apply(ctx context.Context, p isolate.Policy) error
	Release(ctx context.Context) error
	Status(ctx context.Context) (isolate.Status, error)
}

// CommandFunc carries out one command kind; its result is reported as the
// command's outcome.
type CommandFunc func(ctx context.Context, args json.RawMessage) (result any, err error)

type outcome struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// wakeCommands asks the command loop to fetch pending commands.
func (a *Agent) wakeCommands() {
	select {
	case a.cmdWake <- struct{}{}:
	default:
	}
}

// commands runs the commands the server queues for this agent, one at a
// time, in order: woken by the push stream's "commands" event and at
// every (re)connection, so nothing queued while the agent was away is
// missed.
func (a *Agent) commands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.cmdWake:
		}
		if err := a.runPending(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("agent commands", "err", err)
			// Try again soon: a command may be an isolation during an incident.
			go func() {
				select {
				case <-ctx.Done():
				case <-time.After(5*time.Second + rand.N(5*time.Second)):
					a.wakeCommands()
				}
			}()
		}
	}
}

func (a *Agent) runPending(ctx context.Context) error {
	var list struct {
		Commands []respond.Command `json:"commands"`
	}
	if err := a.getJSON(ctx, "/api/v1/agent/commands", &list); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	for _, c := range list.Commands {
		// A command whose outcome could not be posted is not carried out
		// twice: only its outcome is posted again.
		a.mu.Lock()
		out, done := a.unposted[c.ID]
		a.mu.Unlock()
		if !done {
			out = a.execute(ctx, c)
		}
		if err := a.post(ctx, "/api/v1/agent/commands/"+url.PathEscape(c.ID), out); err != nil {
			a.mu.Lock()
			a.unposted[c.ID] = out
			a.mu.Unlock()
			return fmt.Errorf("report %s: %w", c.ID, err)
		}
		a.mu.Lock()
		delete(a.unposted, c.ID)
		a.mu.Unlock()
	}
	return nil
}

func (a *Agent) execute(ctx context.Context, c respond.Command) outcome {
	fn := a.handlers[c.Kind]
	var res any
	var err error
	if fn == nil {
		err = fmt.Errorf("%w: %s", ErrUnsupportedCommand, c.Kind)
	} else {
		res, err = fn(ctx, c.Args)
	}
	out := outcome{OK: err == nil}
	if res != nil {
		out.Result, _ = json.Marshal(res)
	}
	if err != nil {
		out.Error = err.Error()
		a.log.Warn("command failed", "command", c.ID, "kind", c.Kind, "err", err)
	} else {
		a.log.Info("command done", "command", c.ID, "kind", c.Kind)
	}
	return out
}

// IsolationResult is the outcome of an isolate command.
type IsolationResult struct {
	Until   time.Time `json:"until"`
	Allowed []string  `json:"allowed"`
	Kernel  bool      `json:"kernel_expiry"` // the kernel lifts it at Until even without the agent
}

func (a *Agent) isolateCmd(ctx context.Context, raw json.RawMessage) (any, error) {
	var args respond.Isolate
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, fmt.Errorf("isolate arguments: %w", err)
	}
	d, err := respond.IsolationFor(args)
	if err != nil {
		return nil, err
	}
	server, err := a.serverEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	p := isolate.Policy{Allow: server, Until: time.Now().Add(d), Reason: args.Reason}
	for _, s := range args.Allow {
		e, err := respond.ParseEndpoint(s)
		if err != nil {
			return nil, err
		}
		p.Allow = append(p.Allow, isolate.Endpoint{Addr: e.Prefix, Proto: e.Proto, Port: e.Port})
	}
	// Pin the server's addresses first: once isolated, DNS is gone, and
	// the agent must still reconnect to hear "release".
	a.pinServer(server)
	if err := a.o.Isolator.Apply(ctx, p); err != nil {
		return nil, err
	}
	res := IsolationResult{Until: p.Until.UTC()}
	for _, e := range p.Allow {
		res.Allowed = append(res.Allowed, e.String())
	}
	if st, err := a.o.Isolator.Status(ctx); err == nil {
		res.Kernel = st.KernelExpiry
	}
	return res, nil
}

func (a *Agent) releaseCmd(ctx context.Context, _ json.RawMessage) (any, error) {
	err := a.o.Isolator.Release(ctx)
	if err == nil || errors.Is(err, isolate.ErrNotIsolated) {
		a.mu.Lock()
		a.pinned = nil
		a.mu.Unlock()
		if a.o.Dir != "" {
			_ = os.Remove(filepath.Join(a.o.Dir, pinnedFile))
		}
	}
	if errors.Is(err, isolate.ErrNotIsolated) {
		return map[string]bool{"was_isolated": false}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]bool{"was_isolated": true}, nil
}

// serverEndpoints resolves the server as the agent dials it (its base
// URL: the agents TLS listener when it has a client certificate): the
// addresses isolation must leave reachable.
func (a *Agent) serverEndpoints(ctx context.Context) ([]isolate.Endpoint, error) {
	u, err := url.Parse(a.base)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("server URL %s: no port", a.base)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname()); err != nil {
		return nil, fmt.Errorf("resolve the server %s: %w", u.Hostname(), err)
	}
	var out []isolate.Endpoint
	for _, ip := range addrs {
		out = append(out, isolate.Host(ip, "tcp", uint16(n)))
	}
	return out, nil
}

// pinServer makes the agent dial the server at these addresses instead of
// resolving its name.
func (a *Agent) pinServer(eps []isolate.Endpoint) {
	var addrs []string
	for _, e := range eps {
		addrs = append(addrs, net.JoinHostPort(e.Addr.Addr().String(), strconv.Itoa(int(e.Port))))
	}
	a.mu.Lock()
	a.pinned = addrs
	a.mu.Unlock()
	if a.o.Dir != "" {
		b, _ := json.Marshal(addrs)
		if err := writeFileAtomic(filepath.Join(a.o.Dir, pinnedFile), b); err != nil {
			a.log.Warn("keep the server's addresses", "err", err)
		}
	}
}

// pinnedFile keeps the server's addresses while isolated, for an agent
// restarted then (DNS is blocked).
const pinnedFile = "server-addresses.json"

// restorePins reloads the server's addresses when the host is still
// isolated at start, and forgets them when it is not.
func (a *Agent) restorePins(ctx context.Context) {
	if a.o.Isolator == nil || a.o.Dir == "" {
		return
	}
	p := filepath.Join(a.o.Dir, pinnedFile)
	st, err := a.o.Isolator.Status(ctx)
	if err != nil {
		return
	}
	if !st.Isolated || st.Expired {
		_ = os.Remove(p)
		return
	}
	var addrs []string
	if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &addrs) == nil {
		a.mu.Lock()
		a.pinned = addrs
		a.mu.Unlock()
	}
}

// dial is the agent's HTTP dialer: to the server's pinned addresses when
// it has them (isolated), else a plain dial.
func (a *Agent) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	a.mu.Lock()
	pinned := a.pinned
	a.mu.Unlock()
	var d net.Dialer
	if len(pinned) > 0 && addr == a.serverHost {
		var errs []error
		for _, p := range pinned {
			c, err := d.DialContext(ctx, network, p)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return d.DialContext(ctx, network, addr)
}
