package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

type protection struct {
	Tenant string   `json:"tenant"`
	Agents int      `json:"agents"`
	Active int      `json:"active"`
	Failed int      `json:"failed"`
	P50    *float64 `json:"p50_seconds"`
	All    *float64 `json:"all_seconds"`
}

type patternStatus struct {
	Release struct {
		Version    uint64 `json:"version"`
		RollbackOf uint64 `json:"rollback_of"`
	} `json:"release"`
	Tenants []protection `json:"tenants"`
}

// waitStatus polls a release's time to protect until ok accepts it.
func (s *server) waitStatus(t *testing.T, channel string, version int, ok func(protection) bool) protection {
	t.Helper()
	var last patternStatus
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		last = patternStatus{}
		code, err := s.api("GET", fmt.Sprintf("/api/v1/patterns/%s/%d?tenant=acme", channel, version), s.token, nil, &last)
		if err == nil && code == 200 && len(last.Tenants) == 1 && ok(last.Tenants[0]) {
			return last.Tenants[0]
		}
	}
	t.Fatalf("%s %d: status never as expected: %+v", channel, version, last)
	return protection{}
}

func writeSigs(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, body)
	return p
}

// TestAgentPatternDelivery: the real server and the real agent. A bandage
// published reaches the agent, which verifies it, loads it and reports it
// active (time to protect); a release that would detect a system file
// fails the agent's self-test and the last good set stays; the server
// refuses a bandage hash of a known-clean file; a rollback is a new
// version with old content; a restarted agent comes back with its kept
// sets and without enrolling again.
func TestAgentPatternDelivery(t *testing.T) {
	clean := t.TempDir()
	cleanFile := writeSigs(t, clean, "tool.bin", "a perfectly ordinary system tool\n")
	t.Setenv("MAMORI_PATTERNS_KNOWN_CLEAN", clean)
	s := startServer(t, "")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(mamoriBin, args...)
		cmd.Env = append(os.Environ(), "MAMORI_SERVER=http://"+s.addr.HTTP, "MAMORI_TOKEN="+s.token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("tenant", "add", "acme"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	enroll, err := run("tenant", "token", "acme", "--kind", "enroll")
	if err != nil {
		t.Fatalf("%v: %s", err, enroll)
	}
	enroll = strings.TrimSpace(enroll)

	agentDir := t.TempDir()
	var agentOut bytes.Buffer
	startAgent := func(args ...string) *exec.Cmd {
		cmd := exec.Command(mamoriBin, append([]string{"agent", "--dir", agentDir, "--heartbeat", "1s", "--log-format", "json"}, args...)...)
		cmd.Stdout, cmd.Stderr = &agentOut, &agentOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	stopAgent := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	ag := startAgent("--server", "http://"+s.addr.HTTP, "--enroll", enroll)
	defer func() { stopAgent(ag) }()

	sigs := t.TempDir()
	eicarHDB := corpus(t, "malware-patterns/eicar/sigs/eicar.hdb")
	if out, err := run("pattern", "publish", "--channel", "bandage", eicarHDB); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p := s.waitStatus(t, "bandage", 1, func(p protection) bool { return p.Active == 1 })
	if p.Agents != 1 || p.P50 == nil || p.All == nil || *p.All > 10 {
		t.Errorf("bandage 1 protection %+v", p)
	}

	// A main release that detects /bin/sh: refused by the agent's self-test.
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		testutil.Missing(t, "no /bin/sh to poison a release with: %v", err)
	}
	sum := md5.Sum(sh)
	poison := writeSigs(t, sigs, "poison.hdb", hex.EncodeToString(sum[:])+":*:Poison.SystemFile\n")
	if out, err := run("pattern", "publish", "--channel", "main", poison); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p = s.waitStatus(t, "main", 1, func(p protection) bool { return p.Failed == 1 })
	if p.Active != 0 {
		t.Errorf("poison release active on %d agents", p.Active)
	}

	// The server refuses a bandage that would quarantine a known-clean file.
	b, _ := os.ReadFile(cleanFile)
	sum = md5.Sum(b)
	bad := writeSigs(t, sigs, "bad.hdb", hex.EncodeToString(sum[:])+":"+fmt.Sprint(len(b))+":Bandage.Oops\n")
	if out, err := run("pattern", "publish", "--channel", "bandage", bad); err == nil || !strings.Contains(out, "known-clean") {
		t.Errorf("known-clean bandage accepted: %v: %s", err, out)
	}

	// A second bandage, then a rollback to the first: version 3, content of 1.
	second := writeSigs(t, sigs, "second.hsb", "3395856ce81f2b7382dee72602f798b642f14140:68:Bandage.Second\n")
	if out, err := run("pattern", "publish", "--channel", "bandage", second); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s.waitStatus(t, "bandage", 2, func(p protection) bool { return p.Active == 1 })
	if out, err := run("pattern", "rollback", "1", "--channel", "bandage"); err != nil || !strings.Contains(out, "content of version 1") {
		t.Fatalf("rollback: %v: %s", err, out)
	}
	s.waitStatus(t, "bandage", 3, func(p protection) bool { return p.Active == 1 })

	// Restart: no enrollment, the kept sets come back.
	stopAgent(ag)
	agentOut.Reset()
	ag = startAgent()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(agentOut.String(), `"active":{"bandage":3}`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted agent did not come back with bandage 3:\n%s", agentOut.String())
		}
	}
	if strings.Contains(agentOut.String(), "enrolled") {
		t.Error("restarted agent enrolled again")
	}
	out, _ := run("pattern", "status", "3", "--channel", "bandage")
	if !strings.Contains(out, "acme") {
		t.Errorf("pattern status: %s", out)
	}
}

type rolloutJSON struct {
	Percent      int    `json:"percent"`
	State        string `json:"state"`
	RolledBackTo uint64 `json:"rolled_back_to"`
}

// TestRolloutRingsAndPoisonHalt: three real agents. A main release goes
// out in rings (1 % → 10 % → 50 % → 100 %, 1 s soak here): at first only
// the canary has it. A poison release (its self-test fails on /bin/sh) is
// refused by the canary, the rollout halts and rolls back automatically —
// a new release with the last good content, to everyone at once — and the
// other agents never load the poison.
func TestRolloutRingsAndPoisonHalt(t *testing.T) {
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		testutil.Missing(t, "no /bin/sh to poison a release with: %v", err)
	}
	t.Setenv("MAMORI_PATTERNS_SOAK", "1s")
	s := startServer(t, "")
	run := s.cli
	run("tenant", "add", "acme")
	enroll := run("tenant", "token", "acme", "--kind", "enroll")
	for range 3 {
		cmd := exec.Command(mamoriBin, "agent", "--dir", t.TempDir(), "--server", "http://"+s.addr.HTTP, "--enroll", enroll, "--heartbeat", "1s")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var list struct {
			Agents []json.RawMessage `json:"agents"`
		}
		if code, err := s.api("GET", "/api/v1/agents", s.token, nil, &list); err == nil && code == 200 && len(list.Agents) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agents did not enroll")
		}
	}
	time.Sleep(500 * time.Millisecond) // connected to the push stream

	sigs := t.TempDir()
	good := writeSigs(t, sigs, "good.hsb", "3395856ce81f2b7382dee72602f798b642f14140:68:Main.Good\n")
	run("pattern", "publish", "--channel", "main", good)
	status := func(v int) (protection, rolloutJSON) {
		var st struct {
			Tenants []protection `json:"tenants"`
			Rollout *rolloutJSON `json:"rollout"`
		}
		_, _ = s.api("GET", fmt.Sprintf("/api/v1/patterns/main/%d?tenant=acme", v), s.token, nil, &st)
		var p protection
		if len(st.Tenants) == 1 {
			p = st.Tenants[0]
		}
		var ro rolloutJSON
		if st.Rollout != nil {
			ro = *st.Rollout
		}
		return p, ro
	}
	// The 1 % and 10 % stages both hold one agent of three: for about two
	// soaks only the canary may have the release.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		p, ro := status(1)
		if ro.Percent > 10 {
			t.Fatalf("the rollout passed 10 %% before the canary was seen alone: %+v %+v", p, ro)
		}
		if p.Active > 1 {
			t.Fatalf("release active beyond the canary ring: %+v %+v", p, ro)
		}
		if p.Active == 1 && ro.State == "rolling" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("canary never active: %+v %+v", p, ro)
		}
	}
	s.waitStatus(t, "main", 1, func(p protection) bool { return p.Active == 3 })
	// Then the last soak, at 100 %, under the gates.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, ro := status(1)
		if ro.State == "done" {
			break
		}
		if ro.State != "rolling" || time.Now().After(deadline) {
			t.Fatalf("rollout after all rings: %+v", ro)
		}
	}

	sum := md5.Sum(sh)
	poison := writeSigs(t, sigs, "poison.hdb", hex.EncodeToString(sum[:])+":*:Poison.SystemFile\n")
	run("pattern", "publish", "--channel", "main", poison)
	s.waitStatus(t, "main", 3, func(p protection) bool { return p.Active == 3 })
	p, ro := status(2)
	if p.Failed != 1 || p.Active != 0 || ro.State != "halted" || ro.RolledBackTo != 3 {
		t.Errorf("poison release: %+v %+v", p, ro)
	}
}
