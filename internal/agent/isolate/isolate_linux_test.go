//go:build linux

package isolate

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// serverPolicy allows the agent to reach the server's port 7443 over IPv4
// and IPv6, nothing else.
func serverPolicy() Policy {
	return Policy{
		Allow: []Endpoint{
			Host(mustAddr(server4), "tcp", 7443),
			Host(mustAddr(server6), "tcp", 7443),
		},
		Reason: "alert 42: suspicious beaconing",
	}
}

// tableShape is the agent namespace's view of our table: how many tables
// carry its name and each chain's rule comments, in order (the time of
// application left out).
func tableShape(t *testing.T, tp *topo) (tables int, chains map[string][]string) {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(tp.agent.f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range all {
		if tb.Name == DefaultTable {
			tables++
		}
	}
	if tables == 0 {
		return 0, nil
	}
	chains = map[string][]string{}
	tb := &nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet}
	cs, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range cs {
		if ch.Table.Name != DefaultTable {
			continue
		}
		rules, err := c.GetRules(tb, ch)
		if err != nil {
			t.Fatal(err)
		}
		list := []string{}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if m, ok := parseMeta(s); ok {
				m.AppliedAt = time.Time{} // differs between applies
				s = m.comment()
			}
			list = append(list, s)
		}
		chains[ch.Name] = list
	}
	return tables, chains
}

// TestIsolationNetns is the scenario, for real: before isolation
// the agent reaches a peer, during isolation only the server, after
// release the peer again; IPv4 and IPv6.
func TestIsolationNetns(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	iso := tp.isolator(t, "")
	ctx := t.Context()
	a, s, p := tp.agent, tp.server, tp.peer

	open := []check{
		{from: a, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		{from: a, addr: hp(server6, 7443), reach: true, want: "server:7443"},
		{from: a, addr: hp(server4, 7444), reach: true, want: "server:7444"},
		{from: a, addr: hp(peer4, 7443), reach: true, want: "peer:7443"},
		{from: a, addr: hp(peer6, 7443), reach: true, want: "peer:7443"},
		{from: a, addr: hp(peer4, 53), reach: true, want: "peer:53/udp", udp: true},
		{from: p, addr: hp(agentToPeer4, 7443), reach: true, want: "agent:7443"},
		{from: p, addr: hp(agentToPeer6, 7443), reach: true, want: "agent:7443"},
		{from: s, addr: hp(agentToServer4, 7443), reach: true, want: "agent:7443"},
	}
	tp.expect(t, "before isolation", open...)
	if st, err := iso.Status(ctx); err != nil || st.Isolated {
		t.Fatalf("Status before isolation = %+v, %v; want not isolated", st, err)
	}
	// A connection to the peer opened before the isolation (a C2 session)
	// must be cut, not grandfathered in by conntrack.
	c2 := a.connect(t, hp(peer4, 7445))
	if err := echo(c2, reachTimeout); err != nil {
		t.Fatalf("echo before isolation: %v", err)
	}

	pol := serverPolicy()
	if err := iso.Apply(ctx, pol); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	tp.expect(t, "isolated",
		check{from: a, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: a, addr: hp(server6, 7443), reach: true, want: "server:7443"},
		check{from: a, addr: hp(server4, 7444)},                                       // the server, another port
		check{from: a, addr: hp(peer4, 7443)},                                         // the peer
		check{from: a, addr: hp(peer6, 7443)},                                         // over IPv6
		check{from: a, addr: hp(peer4, 53), udp: true},                                // DNS not allowed
		check{from: p, addr: hp(agentToPeer4, 7443)},                                  // the peer in
		check{from: p, addr: hp(agentToPeer6, 7443)},                                  // over IPv6
		check{from: s, addr: hp(agentToServer4, 7443)},                                // the server in: not in Inbound
		check{from: s, addr: hp(agentToServer6, 7443)},                                // nor over IPv6
		check{from: a, addr: hp(agentToPeer4, 7443), reach: true, want: "agent:7443"}, // own address
		check{from: a, addr: "127.0.0.1:7443", reach: true, want: "agent:7443"},       // loopback
		check{from: a, addr: "[::1]:7443", reach: true, want: "agent:7443"},
	)
	if err := echo(c2, blockedTimeout); err == nil {
		t.Errorf("a connection to the peer opened before isolation still works")
	}
	st, err := iso.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	wantPol, _ := pol.normalize(time.Now())
	if !st.Isolated || st.Expired || st.KernelExpiry || !reflect.DeepEqual(st.Policy, wantPol) ||
		st.Table != DefaultTable || time.Since(st.AppliedAt) > time.Minute || st.Dropped == 0 {
		t.Errorf("Status = %+v\nwant isolated, policy %+v, packets dropped", st, wantPol)
	}

	// Idempotent: applying twice replaces the table, never duplicates it.
	pol2 := serverPolicy()
	pol2.AllowDNS = []netip.Addr{mustAddr(peer4), mustAddr(peer6)}
	pol2.Inbound = []Endpoint{Host(mustAddr(server4), "tcp", 7443)}
	pol2.AllowDHCP = true
	if err := iso.Apply(ctx, pol2); err != nil {
		t.Fatalf("Apply (2): %v", err)
	}
	n1, shape1 := tableShape(t, tp)
	if err := iso.Apply(ctx, pol2); err != nil {
		t.Fatalf("Apply (3): %v", err)
	}
	n2, shape2 := tableShape(t, tp)
	if n1 != 1 || n2 != 1 || !reflect.DeepEqual(shape1, shape2) || len(shape2) != 3 {
		t.Errorf("re-apply: %d then %d tables, chains %v then %v; want 1 table, identical 3 chains", n1, n2, shape1, shape2)
	}
	tp.expect(t, "isolated, DNS to the peer, inbound from the server",
		check{from: a, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: a, addr: hp(peer4, 53), reach: true, want: "peer:53/udp", udp: true},
		check{from: a, addr: hp(peer6, 53), reach: true, want: "peer:53/udp", udp: true},
		check{from: a, addr: hp(peer4, 53), reach: true, want: "peer:53"}, // DNS over TCP
		check{from: a, addr: hp(peer4, 7443)},
		check{from: a, addr: hp(peer6, 7443)},
		check{from: s, addr: hp(agentToServer4, 7443), reach: true, want: "agent:7443"},
		check{from: s, addr: hp(agentToServer6, 7443)}, // inbound was IPv4 only
		check{from: p, addr: hp(agentToPeer4, 7443)},
	)
	if st, err := iso.Status(ctx); err != nil || len(st.Policy.AllowDNS) != 2 || len(st.Policy.Inbound) != 1 || !st.Policy.AllowDHCP {
		t.Errorf("Status after re-apply = %+v, %v", st.Policy, err)
	}

	// Prefixes (not byte-aligned): 10.77.1.2/31 covers the server, any
	// protocol and port; 10.77.2.0/31 does not cover the peer (.2).
	pol3 := Policy{Allow: []Endpoint{
		{Addr: netip.MustParsePrefix("10.77.1.2/31")},
		{Addr: netip.MustParsePrefix("10.77.2.0/31")},
		{Addr: netip.MustParsePrefix("fd77:1::/120"), Proto: "tcp"},
	}}
	if err := iso.Apply(ctx, pol3); err != nil {
		t.Fatalf("Apply (prefixes): %v", err)
	}
	tp.expect(t, "isolated, prefixes",
		check{from: a, addr: hp(server4, 7444), reach: true, want: "server:7444"},
		check{from: a, addr: hp(server6, 7444), reach: true, want: "server:7444"},
		check{from: a, addr: hp(peer4, 7443)},
		check{from: a, addr: hp(peer6, 7443)},
	)

	if err := iso.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	tp.expect(t, "released", open...)
	if err := echo(c2, reachTimeout); err != nil {
		t.Logf("the pre-isolation connection did not recover: %v (acceptable)", err)
	}
	if st, err := iso.Status(ctx); err != nil || st.Isolated {
		t.Errorf("Status after release = %+v, %v; want not isolated", st, err)
	}
	if err := iso.Release(ctx); !errors.Is(err, ErrNotIsolated) {
		t.Errorf("second Release = %v, want ErrNotIsolated", err)
	}
	if n, _ := tableShape(t, tp); n != 0 {
		t.Errorf("%d tables left after release", n)
	}
}

// TestIsolationExpiry: the agent lifts the isolation at Until (Run).
func TestIsolationExpiry(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	sf := filepath.Join(t.TempDir(), "isolation.json")
	iso := tp.isolator(t, sf)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- iso.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})

	pol := serverPolicy()
	pol.Until = time.Now().Add(time.Second)
	if err := iso.Apply(ctx, pol); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if st, err := iso.Status(ctx); err != nil || !st.KernelExpiry || !st.Policy.Until.Equal(pol.Until) {
		t.Fatalf("Status = %+v, %v; want kernel expiry at %v", st, err, pol.Until)
	}
	tp.expect(t, "isolated until expiry",
		check{from: tp.agent, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: tp.agent, addr: hp(peer4, 7443)},
	)
	back := waitReach(t, tp.agent, hp(peer4, 7443), "peer:7443", pol.Until.Add(3*time.Second))
	if back.Before(pol.Until.Add(-20 * time.Millisecond)) { // the dial began at back
		t.Errorf("peer reachable at %v, before Until %v", back, pol.Until)
	}
	t.Logf("peer reachable %v after Until", back.Sub(pol.Until))
	// Run removes the table and the state file.
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, err := iso.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Isolated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table still present %v after Until", time.Since(pol.Until))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(sf); !os.IsNotExist(err) {
		t.Errorf("state file after expiry: %v, want removed", err)
	}
	tp.expect(t, "expired",
		check{from: tp.peer, addr: hp(agentToPeer6, 7443), reach: true, want: "agent:7443"},
	)

	// A re-apply with a later Until re-arms the running Run.
	pol.Until = time.Now().Add(time.Second)
	if err := iso.Apply(ctx, pol); err != nil {
		t.Fatalf("Apply (2): %v", err)
	}
	tp.expect(t, "isolated again", check{from: tp.agent, addr: hp(peer4, 7443)})
	waitReach(t, tp.agent, hp(peer4, 7443), "peer:7443", pol.Until.Add(3*time.Second))
}

// TestIsolationKernelExpiry: with no agent running (no Run), the kernel stops
// enforcing the table at Until; Restore then removes it.
func TestIsolationKernelExpiry(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	iso := tp.isolator(t, "")
	ctx := t.Context()
	pol := serverPolicy()
	pol.Until = time.Now().Add(time.Second)
	if err := iso.Apply(ctx, pol); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	tp.expect(t, "isolated", check{from: tp.agent, addr: hp(peer6, 7443)})
	back := waitReach(t, tp.agent, hp(peer6, 7443), "peer:7443", pol.Until.Add(3*time.Second))
	if back.Before(pol.Until.Add(-20 * time.Millisecond)) { // the dial began at back
		t.Errorf("peer reachable at %v, before Until %v", back, pol.Until)
	}
	tp.expect(t, "expired, table still present",
		check{from: tp.peer, addr: hp(agentToPeer4, 7443), reach: true, want: "agent:7443"},
		check{from: tp.agent, addr: hp(peer4, 7443), reach: true, want: "peer:7443"},
	)
	st, err := iso.Status(ctx)
	if err != nil || !st.Isolated || !st.Expired {
		t.Fatalf("Status = %+v, %v; want isolated (table present) and expired", st, err)
	}
	st, err = iso.Restore(ctx)
	if err != nil || st.Isolated {
		t.Fatalf("Restore = %+v, %v; want the expired table removed", st, err)
	}
	if n, _ := tableShape(t, tp); n != 0 {
		t.Errorf("%d tables after Restore", n)
	}
}

// waitReach polls until from reaches addr, failing at deadline, and
// returns when it first did.
func waitReach(t *testing.T, from *netns, addr, want string, deadline time.Time) time.Time {
	t.Helper()
	for {
		now := time.Now()
		if got, err := from.dial(addr, 100*time.Millisecond); err == nil && got == want {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s → %s still blocked at %v", from.name, addr, deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIsolationRestart: a restarted agent finds the live isolation; after
// a reboot (empty ruleset) it re-applies it from the state file; an
// expired state file is discarded.
func TestIsolationRestart(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	sf := filepath.Join(t.TempDir(), "agent", "isolation.json")
	ctx := t.Context()

	first := tp.isolator(t, sf)
	pol := serverPolicy()
	pol.Until = time.Now().Add(time.Hour)
	if err := first.Apply(ctx, pol); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	applied, err := first.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v; want mode 0600", fi, err)
	}

	// The agent restarts: a new Isolator on the same state file.
	second := tp.isolator(t, sf)
	st, err := second.Restore(ctx)
	st.Dropped = applied.Dropped // IPv6 multicast reports may be dropped meanwhile
	if err != nil || !reflect.DeepEqual(st, applied) {
		t.Fatalf("Restore after restart = %+v, %v\nwant %+v", st, err, applied)
	}

	// The host reboots: the kernel ruleset is empty, the state file remains.
	c, err := nftables.New(nftables.WithNetNSFd(int(tp.agent.f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(&nftables.Table{Name: DefaultTable, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tp.expect(t, "rebooted, before Restore", check{from: tp.agent, addr: hp(peer4, 7443), reach: true, want: "peer:7443"})
	third := tp.isolator(t, sf)
	st, err = third.Restore(ctx)
	if err != nil || !st.Isolated || !st.AppliedAt.Equal(applied.AppliedAt) || !reflect.DeepEqual(st.Policy, applied.Policy) {
		t.Fatalf("Restore after reboot = %+v, %v\nwant %+v", st, err, applied)
	}
	tp.expect(t, "re-isolated after reboot",
		check{from: tp.agent, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: tp.agent, addr: hp(peer4, 7443)},
	)

	// Released: no state file, and a later Restore changes nothing.
	if err := third.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sf); !os.IsNotExist(err) {
		t.Errorf("state file after Release: %v", err)
	}
	if st, err := third.Restore(ctx); err != nil || st.Isolated {
		t.Errorf("Restore after Release = %+v, %v", st, err)
	}

	// A reboot after Until: the state file is stale and is discarded.
	stale := stateRecord{Table: DefaultTable, AppliedAt: time.Now().Add(-2 * time.Hour), Policy: serverPolicy()}
	stale.Policy.Until = time.Now().Add(-time.Hour)
	if err := writeState(sf, stale); err != nil {
		t.Fatal(err)
	}
	if st, err := third.Restore(ctx); err != nil || st.Isolated {
		t.Errorf("Restore of an expired state = %+v, %v; want not isolated", st, err)
	}
	if _, err := os.Stat(sf); !os.IsNotExist(err) {
		t.Errorf("expired state file kept: %v", err)
	}
	tp.expect(t, "stale state ignored", check{from: tp.agent, addr: hp(peer4, 7443), reach: true, want: "peer:7443"})
}

// TestIsolationAtomic: a batch the kernel rejects changes nothing; the
// host is never left half-isolated (nor half-released).
func TestIsolationAtomic(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	sf := filepath.Join(t.TempDir(), "isolation.json")
	iso := tp.isolator(t, sf)
	ctx := t.Context()
	poison := func(c *nftables.Conn, tb *nftables.Table) {
		// The last message of the batch jumps to a chain that does not
		// exist: the kernel rejects it, and so the whole transaction.
		c.AddRule(&nftables.Rule{
			Table: tb,
			Chain: &nftables.Chain{Name: chainOutput, Table: tb},
			Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "no-such-chain"}},
		})
	}

	// Not isolated → failed Apply → still not isolated, no state file.
	iso.beforeFlush = poison
	if err := iso.Apply(ctx, serverPolicy()); err == nil {
		t.Fatal("poisoned Apply succeeded")
	}
	if n, _ := tableShape(t, tp); n != 0 {
		t.Fatalf("a rejected first Apply left %d tables", n)
	}
	if _, err := os.Stat(sf); !os.IsNotExist(err) {
		t.Errorf("state file after a rejected Apply: %v", err)
	}
	tp.expect(t, "after rejected first apply", check{from: tp.agent, addr: hp(peer4, 7443), reach: true, want: "peer:7443"})

	// Isolated → failed replacement → the previous isolation, unchanged.
	iso.beforeFlush = nil
	if err := iso.Apply(ctx, serverPolicy()); err != nil {
		t.Fatal(err)
	}
	_, before := tableShape(t, tp)
	stateBefore, err := os.ReadFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	iso.beforeFlush = poison
	wider := serverPolicy()
	wider.Allow = append(wider.Allow, Host(mustAddr(peer4), "", 0))
	if err := iso.Apply(ctx, wider); err == nil {
		t.Fatal("poisoned Apply succeeded")
	}
	iso.beforeFlush = nil
	n, after := tableShape(t, tp)
	if n != 1 || !reflect.DeepEqual(before, after) {
		t.Errorf("rejected replacement changed the table:\n%v\n%v", before, after)
	}
	if stateAfter, _ := os.ReadFile(sf); string(stateAfter) != string(stateBefore) {
		t.Errorf("rejected replacement changed the state file:\n%s\n%s", stateBefore, stateAfter)
	}
	tp.expect(t, "after rejected replacement",
		check{from: tp.agent, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: tp.agent, addr: hp(peer4, 7443)},
	)

	// A policy error changes nothing either.
	if err := iso.Apply(ctx, Policy{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("Apply(empty) = %v, want ErrPolicy", err)
	}
	if _, again := tableShape(t, tp); !reflect.DeepEqual(before, again) {
		t.Errorf("a rejected policy changed the table")
	}
}

// TestIsolationTamper: Run puts back a table removed behind its back (as
// "nft flush ruleset" would), reporting it, but not one released by
// another process.
func TestIsolationTamper(t *testing.T) {
	t.Parallel()
	tp := newTopo(t)
	sf := filepath.Join(t.TempDir(), "isolation.json")
	reapplied := make(chan error, 10)
	iso, err := New(Options{NetNSFd: int(tp.agent.f.Fd()), StateFile: sf, OnReapply: func(err error) { reapplied <- err }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	if err := iso.Apply(ctx, serverPolicy()); err != nil {
		t.Fatal(err)
	}
	go func() { done <- iso.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	_, want := tableShape(t, tp)

	// Let Run reach its first wait (it has just read the table back).
	time.Sleep(100 * time.Millisecond)
	c, err := nftables.New(nftables.WithNetNSFd(int(tp.agent.f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	c.FlushRuleset()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case err := <-reapplied:
		if err != nil {
			t.Fatalf("re-apply: %v", err)
		}
		t.Logf("table re-applied %v after the ruleset was flushed", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("table not re-applied after the ruleset was flushed")
	}
	if n, got := tableShape(t, tp); n != 1 || !reflect.DeepEqual(got, want) {
		t.Errorf("re-applied table differs:\n%v\n%v", want, got)
	}
	tp.expect(t, "re-isolated",
		check{from: tp.agent, addr: hp(server4, 7443), reach: true, want: "server:7443"},
		check{from: tp.agent, addr: hp(peer4, 7443)},
	)

	// Another process (another Isolator on the same state file) releases:
	// Run must not put the table back.
	other, err := New(Options{NetNSFd: int(tp.agent.f.Fd()), StateFile: sf})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-reapplied:
		t.Fatalf("a release by another process was undone (%v)", err)
	default:
	}
	if n, _ := tableShape(t, tp); n != 0 {
		t.Errorf("%d tables after release by another process", n)
	}
}
