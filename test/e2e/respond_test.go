package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

type commandJSON struct {
	ID     string          `json:"id"`
	Kind   string          `json:"kind"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// issue orders a command on an agent and waits for its outcome.
func (s *server) issue(t *testing.T, agentID, kind, args string) commandJSON {
	t.Helper()
	var c commandJSON
	code, err := s.api("POST", "/api/v1/agents/"+agentID+"/commands", s.token, strings.NewReader(`{"kind":"`+kind+`","args":`+args+`}`), &c)
	if err != nil || code != 202 {
		t.Fatalf("issue %s: %d %v", kind, code, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, err := s.api("GET", "/api/v1/commands/"+c.ID, s.token, nil, &c); err == nil && code == 200 && (c.State == "done" || c.State == "failed") {
			return c
		}
	}
	t.Fatalf("command %s (%s) never completed: %+v", c.ID, kind, c)
	return c
}

// vethNS is a network namespace joined to the host by a veth pair: the
// agent's side holds agentIP, the host's side serverIP and peerIP (a /29).
type vethNS struct {
	name                      string
	serverIP, peerIP, agentIP string
}

// newVethNS builds one in 10.<b>.x.0/29, or skips (fails under
// MAMORI_REQUIRE_ALL=1) where the host cannot; removed by t.Cleanup.
func newVethNS(t *testing.T, b int) vethNS {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Missing(t, "isolation needs root (network namespaces, nf_tables)")
	}
	need(t, "ip", "bash")
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	tag := hex.EncodeToString(r)
	hostIf, nsIf := "mmrh"+tag, "mmra"+tag
	subnet := fmt.Sprintf("10.%d.%d", b, r[0])
	n := vethNS{name: "mmr-e2e-" + tag, serverIP: subnet + ".1", agentIP: subnet + ".2", peerIP: subnet + ".3"}
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", n.name); err != nil {
		testutil.Missing(t, "cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", n.name) })
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", n.name},
		{"addr", "add", n.serverIP + "/29", "dev", hostIf},
		{"addr", "add", n.peerIP + "/29", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", n.name, "addr", "add", n.agentIP + "/29", "dev", nsIf},
		{"-n", n.name, "link", "set", nsIf, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			testutil.Missing(t, "cannot build the veth link: %v", err)
		}
	}
	t.Cleanup(func() { _ = ip("link", "del", hostIf) })
	return n
}

// reach reports whether the namespace can open a TCP connection to addr
// (bash's /dev/tcp, within 3 s).
func (n vethNS) reach(addr string) bool {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ip", "netns", "exec", n.name, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)).Run() == nil
}

// TestIsolationByCommand: the real server, the real agent in a network
// namespace joined to the host by a veth pair, and a peer on the same
// link. Before isolation the agent's host reaches the peer; an isolate
// command from the API cuts it off the peer while it still reaches the
// server; the isolation survives an agent killed and restarted; a release
// command gives the peer back. Analysts without an admin token cannot
// order it, and a malformed order is refused before it is queued.
func TestIsolationByCommand(t *testing.T) {
	n := newVethNS(t, 231)
	ns, serverIP, peerIP := n.name, n.serverIP, n.peerIP
	peer, err := net.Listen("tcp", peerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() {
		for {
			c, err := peer.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("peer\n"))
			c.Close()
		}
	}()
	reach := n.reach

	s := startServer(t, "", "--http", serverIP+":0")
	run := s.cli
	run("tenant", "add", "acme")
	enroll := run("tenant", "token", "acme", "--kind", "enroll")
	readTok := run("tenant", "token", "acme", "--kind", "read")

	agentDir := t.TempDir()
	var agentOut bytes.Buffer
	startAgent := func(args ...string) *exec.Cmd {
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns, mamoriBin, "agent", "--dir", agentDir, "--heartbeat", "1s", "--log-format", "json"}, args...)...)
		cmd.Stdout, cmd.Stderr = &agentOut, &agentOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	ag := startAgent("--server", "http://"+s.addr.HTTP, "--enroll", enroll)
	defer func() {
		_ = ag.Process.Signal(syscall.SIGTERM)
		_ = ag.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", agentOut.String())
		}
	}()
	var agentID string
	for deadline := time.Now().Add(30 * time.Second); agentID == ""; time.Sleep(100 * time.Millisecond) {
		var list struct {
			Agents []struct {
				ID string `json:"id"`
			} `json:"agents"`
		}
		if code, err := s.api("GET", "/api/v1/agents", s.token, nil, &list); err == nil && code == 200 && len(list.Agents) == 1 {
			agentID = list.Agents[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not enroll:\n%s", agentOut.String())
		}
	}

	if !reach(peer.Addr().String()) || !reach(s.addr.HTTP) {
		t.Fatal("before isolation the agent's host must reach the peer and the server")
	}
	// Refused before queueing: a read token, then a typo in the arguments.
	if code, _ := s.api("POST", "/api/v1/agents/"+agentID+"/commands", readTok, strings.NewReader(`{"kind":"isolate"}`), nil); code != 403 {
		t.Errorf("read token ordered an isolation: %d", code)
	}
	if code, _ := s.api("POST", "/api/v1/agents/"+agentID+"/commands", s.token, strings.NewReader(`{"kind":"isolate","args":{"duration":"1h"}}`), nil); code != 400 {
		t.Errorf("unknown argument accepted: %d", code)
	}

	c := s.issue(t, agentID, "isolate", `{"for":"10m","reason":"INC-42 e2e"}`)
	if c.State != "done" {
		t.Fatalf("isolate: %+v", c)
	}
	var res struct {
		Until   time.Time `json:"until"`
		Allowed []string  `json:"allowed"`
	}
	if err := json.Unmarshal(c.Result, &res); err != nil || time.Until(res.Until) < 9*time.Minute || len(res.Allowed) != 1 || !strings.HasPrefix(res.Allowed[0], serverIP+"/32 tcp ") {
		t.Errorf("isolate result %s", c.Result)
	}
	if reach(peer.Addr().String()) {
		t.Error("isolated host still reaches the peer")
	}
	if !reach(s.addr.HTTP) {
		t.Error("isolated host no longer reaches the server")
	}

	// Killed and restarted while isolated: still isolated, still obeys.
	_ = ag.Process.Signal(syscall.SIGKILL)
	_ = ag.Wait()
	ag = startAgent()
	time.Sleep(time.Second)
	if reach(peer.Addr().String()) {
		t.Error("isolation lost when the agent restarted")
	}
	c = s.issue(t, agentID, "release", `{}`)
	if c.State != "done" || !strings.Contains(string(c.Result), `"was_isolated":true`) {
		t.Fatalf("release: %+v", c)
	}
	if !reach(peer.Addr().String()) {
		t.Error("released host does not reach the peer")
	}
	// Listed for the analyst, newest first.
	var list struct {
		Commands []commandJSON `json:"commands"`
	}
	if code, err := s.api("GET", "/api/v1/agents/"+agentID+"/commands", readTok, nil, &list); err != nil || code != 200 || len(list.Commands) != 2 || list.Commands[0].Kind != "release" {
		t.Errorf("command list %d %v %+v", code, err, list)
	}
}
