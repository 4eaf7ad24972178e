//go:build linux

package isolate

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mamori-soc/mamori/internal/testutil"
	"golang.org/x/sys/unix"
)

// The test topology, built fresh for each test in its own network
// namespaces (the test process's namespace is never modified):
//
//	server ns                     agent ns                      peer ns
//	 agent 10.77.1.2/24 ──veth── srv 10.77.1.1/24
//	       fd77:1::2/64               fd77:1::1/64
//	                                  lan 10.77.2.1/24 ──veth── agent 10.77.2.2/24
//	                                      fd77:2::1/64                fd77:2::2/64
//
// Listeners answer one line naming themselves: server on 7443 (allowed by
// the test policies) and 7444 (not allowed), peer on 7443, 53 (TCP and UDP,
// "DNS") and 7445 (a line echo, for a connection opened before isolation),
// agent on 7443 (for inbound checks).
const (
	agentToServer4 = "10.77.1.1"
	server4        = "10.77.1.2"
	agentToServer6 = "fd77:1::1"
	server6        = "fd77:1::2"
	agentToPeer4   = "10.77.2.1"
	peer4          = "10.77.2.2"
	agentToPeer6   = "fd77:2::1"
	peer6          = "fd77:2::2"
)

const (
	reachTimeout   = 2 * time.Second        // an allowed connection is instant
	blockedTimeout = 400 * time.Millisecond // a dropped SYN from outside
)

type netns struct {
	name string
	f    *os.File
}

// do runs fn on an OS thread switched into the namespace; sockets created
// by fn stay in that namespace whatever thread later uses them.
func (n *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine exits, so no goroutine runs in the wrong namespace.
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dial connects over TCP from the namespace and returns the line the
// listener answers with.
func (n *netns) dial(addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout}).Dial("tcp", addr)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// dialUDP sends one datagram from the namespace and returns the answer.
func (n *netns) dialUDP(addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := n.do(func() error {
		var err error
		c, err = net.Dial("udp", addr)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("query\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	k, err := c.Read(buf)
	return strings.TrimSpace(string(buf[:k])), err
}

// serve listens on TCP port (dual stack) in the namespace and answers
// every connection with its name.
func (n *netns) serve(t *testing.T, port int, name string) {
	t.Helper()
	var l net.Listener
	if err := n.do(func() error {
		var err error
		l, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", n.name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", name)
			c.Close()
		}
	}()
}

// serveUDP answers every datagram on port (dual stack) with its name.
func (n *netns) serveUDP(t *testing.T, port int, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := n.do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen udp in %s: %v", n.name, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name+"\n"), from)
		}
	}()
}

// serveEcho echoes lines back on a long-lived TCP connection.
func (n *netns) serveEcho(t *testing.T, port int) {
	t.Helper()
	var l net.Listener
	if err := n.do(func() error {
		var err error
		l, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", n.name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// connect opens a TCP connection from the namespace and leaves it open.
func (n *netns) connect(t *testing.T, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: reachTimeout}).Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("connect %s → %s: %v", n.name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo sends a line on c and waits for it to come back.
func echo(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo: got %q", line)
	}
	return nil
}

type topo struct {
	agent, server, peer *netns
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hostTables lists the tables of the test process's own namespace.
func hostTables(t *testing.T) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatalf("host nftables: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("host nftables: %v", err)
	}
	var out []string
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("%d/%s", tb.Family, tb.Name))
	}
	slices.Sort(out)
	return out
}

// newTopo builds the topology, or skips (fails under MAMORI_REQUIRE_ALL=1)
// when the host cannot: not root, no ip(8), no network namespaces, no
// nf_tables. Everything is removed by t.Cleanup, failed test or not.
func newTopo(t *testing.T) *topo {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "isolation tests need root (network namespaces, nf_tables)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testutil.Missing(t, "isolation tests need ip(8) from iproute2: %v", err)
	}
	// The host's own ruleset must come out of the test as it went in.
	before := hostTables(t)
	t.Cleanup(func() {
		if after := hostTables(t); !slices.Equal(before, after) {
			t.Errorf("the test process's own namespace changed: tables %v, then %v", before, after)
		}
		if slices.Contains(hostTables(t), fmt.Sprintf("%d/%s", nftables.TableFamilyINet, DefaultTable)) {
			t.Errorf("table %s present in the host namespace", DefaultTable)
		}
	})

	prefix := "mamori-iso-" + randHex(4)
	mk := func(role string) *netns {
		name := prefix + "-" + role
		if err := ip("netns", "add", name); err != nil {
			testutil.Missing(t, "cannot create network namespaces: %v", err)
		}
		n := &netns{name: name}
		t.Cleanup(func() {
			if n.f != nil {
				n.f.Close()
			}
			if err := ip("netns", "del", name); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		f, err := os.Open("/run/netns/" + name)
		if err != nil {
			t.Fatalf("open netns: %v", err)
		}
		n.f = f
		return n
	}
	tp := &topo{agent: mk("agent"), server: mk("server"), peer: mk("peer")}
	a, s, p := tp.agent.name, tp.server.name, tp.peer.name
	steps := [][]string{
		// Created inside the namespaces: the veths never exist in the host's.
		{"-n", a, "link", "add", "srv", "type", "veth", "peer", "name", "agent", "netns", s},
		{"-n", a, "link", "add", "lan", "type", "veth", "peer", "name", "agent", "netns", p},
		// Up before addressing: IPv6 addresses added to a down link stay
		// unusable for about a second after it comes up.
		{"-n", a, "link", "set", "lo", "up"},
		{"-n", s, "link", "set", "lo", "up"},
		{"-n", p, "link", "set", "lo", "up"},
		{"-n", a, "link", "set", "srv", "up"},
		{"-n", a, "link", "set", "lan", "up"},
		{"-n", s, "link", "set", "agent", "up"},
		{"-n", p, "link", "set", "agent", "up"},
		{"-n", a, "addr", "add", agentToServer4 + "/24", "dev", "srv"},
		{"-n", a, "addr", "add", agentToServer6 + "/64", "dev", "srv", "nodad"},
		{"-n", a, "addr", "add", agentToPeer4 + "/24", "dev", "lan"},
		{"-n", a, "addr", "add", agentToPeer6 + "/64", "dev", "lan", "nodad"},
		{"-n", s, "addr", "add", server4 + "/24", "dev", "agent"},
		{"-n", s, "addr", "add", server6 + "/64", "dev", "agent", "nodad"},
		{"-n", p, "addr", "add", peer4 + "/24", "dev", "agent"},
		{"-n", p, "addr", "add", peer6 + "/64", "dev", "agent", "nodad"},
	}
	for _, st := range steps {
		if err := ip(st...); err != nil {
			testutil.Missing(t, "cannot build the veth topology: %v", err)
		}
	}
	tp.server.serve(t, 7443, "server:7443")
	tp.server.serve(t, 7444, "server:7444")
	tp.peer.serve(t, 7443, "peer:7443")
	tp.peer.serve(t, 53, "peer:53")
	tp.peer.serveUDP(t, 53, "peer:53/udp")
	tp.peer.serveEcho(t, 7445)
	tp.agent.serve(t, 7443, "agent:7443")
	tp.warmUp(t)
	return tp
}

// warmUp waits until every path of the fresh topology carries traffic
// (the first packets over a veth that just came up can be lost, which
// would cost a connection a 1 s SYN retransmission), retrying with short
// timeouts for up to 5 s.
func (tp *topo) warmUp(t *testing.T) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	paths := []check{
		{from: tp.agent, addr: hp(server4, 7443)},
		{from: tp.agent, addr: hp(server6, 7443)},
		{from: tp.agent, addr: hp(peer4, 7443)},
		{from: tp.agent, addr: hp(peer6, 7443)},
		{from: tp.agent, addr: hp(peer4, 53), udp: true},
		{from: tp.agent, addr: hp(peer6, 53), udp: true},
		{from: tp.server, addr: hp(agentToServer4, 7443)},
		{from: tp.server, addr: hp(agentToServer6, 7443)},
		{from: tp.peer, addr: hp(agentToPeer4, 7443)},
		{from: tp.peer, addr: hp(agentToPeer6, 7443)},
	}
	for _, c := range paths {
		for {
			dial := c.from.dial
			if c.udp {
				dial = c.from.dialUDP
			}
			_, err := dial(c.addr, 100*time.Millisecond)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topology not ready: %s → %s: %v", c.from.name, c.addr, err)
			}
		}
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Logf("topology ready in %v", d)
	}
}

// isolator returns an Isolator for the agent namespace, skipping when the
// kernel has no nf_tables.
func (tp *topo) isolator(t *testing.T, stateFile string) *Isolator {
	t.Helper()
	iso, err := New(Options{NetNSFd: int(tp.agent.f.Fd()), StateFile: stateFile})
	if errors.Is(err, ErrUnsupported) {
		testutil.Missing(t, "nf_tables unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return iso
}

// check is one connection attempt and whether it must succeed.
type check struct {
	from  *netns
	addr  string // host:port
	reach bool
	want  string // the answer, when reach
	udp   bool
}

func hp(host string, port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }

// expect runs the checks concurrently (a blocked one costs its timeout)
// and reports each mismatch.
func (tp *topo) expect(t *testing.T, phase string, checks ...check) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]string, len(checks))
	for k, c := range checks {
		wg.Go(func() {
			timeout := reachTimeout
			if !c.reach {
				timeout = blockedTimeout
			}
			dial := c.from.dial
			if c.udp {
				dial = c.from.dialUDP
			}
			got, err := dial(c.addr, timeout)
			switch {
			case c.reach && err != nil:
				errs[k] = fmt.Sprintf("%s: %s → %s: want %q, got error %v", phase, c.from.name, c.addr, c.want, err)
			case c.reach && got != c.want:
				errs[k] = fmt.Sprintf("%s: %s → %s: want %q, got %q", phase, c.from.name, c.addr, c.want, got)
			case !c.reach && err == nil:
				errs[k] = fmt.Sprintf("%s: %s → %s: want blocked, got through (%q)", phase, c.from.name, c.addr, got)
			}
		})
	}
	wg.Wait()
	failed := false
	for _, e := range errs {
		if e != "" {
			t.Error(e)
			failed = true
		}
	}
	if failed {
		tp.dump(t)
		t.FailNow()
	}
}

// dump logs the agent namespace's ruleset when nft(8) happens to be
// installed (diagnostics only; nothing depends on it).
func (tp *topo) dump(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		return
	}
	out, _ := exec.Command("ip", "netns", "exec", tp.agent.name, "nft", "list", "ruleset").CombinedOutput()
	t.Logf("agent ruleset:\n%s", out)
}
