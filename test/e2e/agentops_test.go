package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentEnv is a server with tenant acme and one running agent.
type agentEnv struct {
	s       *server
	dir     string
	id      string
	out     *bytes.Buffer
	cmd     *exec.Cmd
	readTok string
}

func (e *agentEnv) mamori(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(mamoriBin, args...)
	cmd.Env = append(os.Environ(), "MAMORI_SERVER=http://"+e.s.addr.HTTP, "MAMORI_TOKEN="+e.s.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mamori %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func startAgentEnv(t *testing.T, agentArgs ...string) *agentEnv {
	t.Helper()
	e := &agentEnv{s: startServer(t, ""), dir: t.TempDir(), out: &bytes.Buffer{}}
	e.mamori(t, "tenant", "add", "acme")
	enroll := e.mamori(t, "tenant", "token", "acme", "--kind", "enroll")
	e.readTok = e.mamori(t, "tenant", "token", "acme", "--kind", "read")
	e.cmd = exec.Command(mamoriBin, append([]string{"agent", "--dir", e.dir, "--server", "http://" + e.s.addr.HTTP, "--enroll", enroll,
		"--heartbeat", "1s", "--log-format", "json"}, agentArgs...)...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		_ = e.cmd.Wait()
		if t.Failed() {
			t.Logf("agent output:\n%s", e.out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); e.id == ""; time.Sleep(100 * time.Millisecond) {
		var list struct {
			Agents []struct {
				ID string `json:"id"`
			} `json:"agents"`
		}
		if code, err := e.s.api("GET", "/api/v1/agents", e.s.token, nil, &list); err == nil && code == 200 && len(list.Agents) == 1 {
			e.id = list.Agents[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not enroll:\n%s", e.out.String())
		}
	}
	return e
}

// TestAgentShipsLogs: the agent follows a local log file (including one
// rotated under it) and its new lines become searchable events of its
// tenant; lines written before the agent started are not shipped.
func TestAgentShipsLogs(t *testing.T) {
	logDir := t.TempDir()
	logFile := filepath.Join(logDir, "auth.log")
	marker := fmt.Sprintf("shipmark%d", time.Now().UnixNano())
	// Timestamps of now: the search looks at the past, and a syslog stamp
	// has no year or zone.
	stamp := func() string { return time.Now().UTC().Format(time.Stamp) }
	writeFile(t, logFile, "<38>"+stamp()+" pc1 sshd[1]: old line "+marker+"old\n")
	e := startAgentEnv(t, "--logs", filepath.Join(logDir, "*.log"))
	appendLine := func(p, s string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, s)
		f.Close()
	}
	time.Sleep(1500 * time.Millisecond) // the shipper has seen the file at its end
	for i := range 5 {
		appendLine(logFile, fmt.Sprintf("<38>%s pc1 sshd[2]: Failed password for root from 203.0.113.%d port 22 ssh2 %s", stamp(), i, marker))
	}
	_ = os.Rename(logFile, logFile+".1")
	appendLine(logFile+".1", "<38>"+stamp()+" pc1 sshd[2]: after rotation, old file "+marker)
	appendLine(logFile, "<38>"+stamp()+" pc1 sshd[2]: after rotation, new file "+marker)
	q := url.Values{"tenant": {"acme"}, "limit": {"0"}}
	var total uint64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, code := e.s.search(marker, q)
		if code == 200 {
			total = r.Total
		}
		if total >= 7 {
			break
		}
	}
	if total != 7 {
		t.Fatalf("%d shipped events found, want 7; server:\n%s", total, e.s.out.String())
	}
	if r, _ := e.s.search(marker+"old", q); r.Total != 0 {
		t.Errorf("history before the agent started was shipped")
	}
	// The events belong to the agent's tenant only.
	e.mamori(t, "tenant", "add", "globex")
	if r, _ := e.s.search(marker, url.Values{"tenant": {"globex"}, "limit": {"0"}}); r.Total != 0 {
		t.Errorf("another tenant sees %d of the agent's events", r.Total)
	}
}
