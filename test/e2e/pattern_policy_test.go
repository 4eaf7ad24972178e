package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPatternPolicyAndRestart: through the CLI and a real agent. A release
// built locally (mamori pattern build) is published; a second one follows
// and mamori pattern diff shows what changed; pinning the tenant to the
// first moves its agent back; the rollout state and the pin survive a
// server restart; pin --latest lets the agent follow the latest again.
func TestPatternPolicyAndRestart(t *testing.T) {
	t.Setenv("MAMORI_PATTERNS_SOAK", "1s")
	s := startServer(t, "")
	run := s.cli
	run("tenant", "add", "acme")
	enroll := run("tenant", "token", "acme", "--kind", "enroll")
	agent := exec.Command(mamoriBin, "agent", "--dir", t.TempDir(), "--server", "http://"+s.addr.HTTP, "--enroll", enroll, "--heartbeat", "1s")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGTERM); _ = agent.Wait() })
	active := func(want uint64) {
		t.Helper()
		var list struct {
			Agents []struct {
				Active map[string]struct {
					Version uint64 `json:"version"`
				} `json:"active"`
			} `json:"agents"`
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			list.Agents = nil
			if code, err := s.api("GET", "/api/v1/agents", s.token, nil, &list); err == nil && code == 200 && len(list.Agents) == 1 &&
				list.Agents[0].Active["main"].Version == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent never had main %d active: %+v", want, list)
			}
		}
	}

	sigs := t.TempDir()
	one := writeSigs(t, sigs, "one.hsb", "3395856ce81f2b7382dee72602f798b642f14140:68:Main.One\n")
	out := run("pattern", "build", one, "-o", filepath.Join(sigs, "build"))
	if !strings.Contains(out, "built 1 records (hash 1)") {
		t.Errorf("build: %s", out)
	}
	run("pattern", "publish", "--channel", "main", filepath.Join(sigs, "build", "patterns.records"))
	active(1)
	two := writeSigs(t, sigs, "two.hsb", "44d88612fea8a8f36de82e1278abb02f:68:Main.Two\n")
	run("pattern", "publish", "--channel", "main", one, two)
	active(2)
	if out := run("pattern", "diff", "1", "2", "--channel", "main"); !strings.Contains(out, "1 added, 0 removed") || !strings.Contains(out, "+ hash Main.Two") {
		t.Errorf("diff: %s", out)
	}

	if out := run("pattern", "pin", "1", "--channel", "main", "--tenant", "acme"); !strings.Contains(out, "acme main: pin 1") {
		t.Errorf("pin: %s", out)
	}
	active(1)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := run("pattern", "status", "--channel", "main")
		if strings.Contains(out, "rollout: done at 100 %") {
			if !strings.Contains(out, "acme") || !strings.Contains(out, "pin 1") {
				t.Errorf("status without the policy: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release 2 never done: %s", out)
		}
	}

	s.stop()
	s.restartSamePorts()
	out = run("pattern", "status", "2", "--channel", "main")
	if !strings.Contains(out, "rollout: done at 100 %") || !strings.Contains(out, "pin 1") {
		t.Errorf("after the restart: %s", out)
	}
	run("pattern", "pin", "--latest", "--channel", "main", "--tenant", "acme")
	active(2)
}
