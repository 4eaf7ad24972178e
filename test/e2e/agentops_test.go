package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

// agentEnv is a server with tenant acme and one running agent.
type agentEnv struct {
	s       *server
	dir     string
	id      string
	out     *testutil.Buffer
	cmd     *exec.Cmd
	readTok string
}

func (e *agentEnv) mamori(t *testing.T, args ...string) string {
	t.Helper()
	return e.s.cli(args...)
}

func startAgentEnv(t *testing.T, agentArgs ...string) *agentEnv {
	t.Helper()
	e := &agentEnv{s: startServer(t, ""), dir: t.TempDir(), out: &testutil.Buffer{}}
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
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(e.out.String(), "following log file"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agent never started following the log file")
		}
	}
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

// TestQuarantineSampleBandageLoop: the malware lab's loop with the real
// server and agent. An analyst quarantines a suspicious file on an
// endpoint (it leaves the disk, kept encrypted), has the agent upload it
// to the lab (visible to its tenant only), makes an exact-hash bandage of
// it, which reaches the agent as a signed release; a restore puts the file
// back byte for byte. A path the agent protects is refused.
func TestQuarantineSampleBandageLoop(t *testing.T) {
	e := startAgentEnv(t)
	s := e.s
	victim := filepath.Join(t.TempDir(), "invoice.pdf.exe")
	payload := fmt.Sprintf("MZ not really a PE, a dropper stand-in %d\n", time.Now().UnixNano())
	writeFile(t, victim, payload)

	c := s.issue(t, e.id, "quarantine", fmt.Sprintf(`{"path":%q,"reason":"INC-7"}`, victim))
	if c.State != "done" {
		t.Fatalf("quarantine: %+v", c)
	}
	var entry struct {
		ID     string `json:"id"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(c.Result, &entry); err != nil || entry.ID == "" {
		t.Fatalf("quarantine result %s", c.Result)
	}
	if _, err := os.Stat(victim); !os.IsNotExist(err) {
		t.Fatalf("quarantined file still on disk: %v", err)
	}
	// From the CLI: refused by the agent, exit code 1 with its reason.
	cmd := exec.Command(mamoriBin, "agents", "quarantine", e.id, "/bin/sh")
	cmd.Env = append(os.Environ(), "MAMORI_SERVER=http://"+s.addr.HTTP, "MAMORI_TOKEN="+s.token)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "protected") {
		t.Errorf("mamori agents quarantine /bin/sh: %v: %s", err, out)
	}

	c = s.issue(t, e.id, "upload_sample", fmt.Sprintf(`{"id":%q}`, entry.ID))
	if c.State != "done" {
		t.Fatalf("upload: %+v", c)
	}
	var smp struct {
		SHA256    string `json:"sha256"`
		Size      int    `json:"size"`
		Sightings []struct {
			Agent, Name string
		} `json:"sightings"`
	}
	if code, err := s.api("GET", "/api/v1/samples/"+entry.SHA256, e.readTok, nil, &smp); err != nil || code != 200 || smp.Size != len(payload) || len(smp.Sightings) != 1 || smp.Sightings[0].Name != victim {
		t.Fatalf("sample as acme sees it: %d %v %+v", code, err, smp)
	}
	e.mamori(t, "tenant", "add", "globex")
	globexTok := e.mamori(t, "tenant", "token", "globex", "--kind", "read")
	if code, _ := s.api("GET", "/api/v1/samples/"+entry.SHA256, globexTok, nil, nil); code != 404 {
		t.Errorf("another tenant reads the sample: %d", code)
	}
	if code, _ := s.api("GET", "/api/v1/samples/"+entry.SHA256+"/content", e.readTok, nil, nil); code != 403 {
		t.Errorf("a read token downloads the sample: %d", code)
	}

	var bandage struct {
		Record  string `json:"record"`
		Release struct {
			Version int `json:"version"`
		} `json:"release"`
	}
	code, err := s.api("POST", "/api/v1/samples/"+entry.SHA256+"/bandage", s.token, strings.NewReader(`{"name":"Bandage.Lab.Dropper"}`), &bandage)
	if err != nil || code != 201 || !strings.Contains(bandage.Record, entry.SHA256) {
		t.Fatalf("bandage: %d %v %+v", code, err, bandage)
	}
	s.waitStatus(t, "bandage", bandage.Release.Version, func(p protection) bool { return p.Active == 1 })
	if code, _ := s.api("POST", "/api/v1/samples/"+entry.SHA256+"/bandage", s.token, strings.NewReader(`{"name":"Bandage.Lab.Dropper"}`), nil); code != 409 {
		t.Errorf("the same bandage twice: %d", code)
	}

	c = s.issue(t, e.id, "restore", fmt.Sprintf(`{"id":%q}`, entry.ID))
	if c.State != "done" {
		t.Fatalf("restore: %+v", c)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != payload {
		t.Fatalf("restored file: %v", err)
	}
}

// TestAgentDetectsAndResponds: the agent watches a directory; once the
// EICAR bandage is active, a test file written into a subdirectory made
// after the agent started is detected, quarantined, and reported to the
// SOC as an event of the agent's tenant; an on-demand scan ordered from
// the API finds and quarantines another; the heartbeat carries the scan
// counters the rollout gates judge.
func TestAgentDetectsAndResponds(t *testing.T) {
	watched := t.TempDir()
	e := startAgentEnv(t, "--watch", watched)
	s := e.s
	e.mamori(t, "pattern", "publish", "--channel", "bandage", corpus(t, "malware-patterns/eicar/sigs/eicar.hdb"))
	s.waitStatus(t, "bandage", 1, func(p protection) bool { return p.Active == 1 })
	// Nothing was gated (a fast-lane bandage): the push stream said so,
	// and the agent never asked which version it may have.
	m := s.metrics()
	if n := metricSum(m, "mamori_api_requests_total", `route="GET /api/v1/agent/desired"`); n != 0 {
		t.Errorf("%v desired-version requests while nothing was gated", n)
	}
	if n := metricSum(m, "mamori_api_requests_total", `route="POST /api/v1/agent/report"`); n == 0 {
		t.Error("no agent report counted: the request metrics are not what this test reads")
	}

	eicar := `X5O!P%@AP[4\PZX54(P^)7CC)7}$` + "EICAR-STANDARD-ANTIVIRUS-" + `TEST-FILE!$H+H*`
	marker := fmt.Sprintf("dropped%d", time.Now().UnixNano())
	sub := filepath.Join(watched, "downloads")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the watch has added the new directory
	dropped := filepath.Join(sub, marker+".com")
	writeFile(t, dropped, eicar)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(dropped); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped test file was not quarantined")
		}
	}
	q := url.Values{"tenant": {"acme"}, "limit": {"0"}}
	var total uint64
	for deadline := time.Now().Add(15 * time.Second); total == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, _ := s.search(marker+" AND quarantined", q)
		total = r.Total
	}
	if total != 1 {
		t.Fatalf("detection event found %d times, want 1", total)
	}

	// On demand, from the API.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "clean.txt"), "nothing to see\n")
	writeFile(t, filepath.Join(other, "x.com"), eicar)
	// From the CLI this time: `mamori agents scan` waits for the outcome.
	if ids := e.mamori(t, "agents", "list", "-q"); ids != e.id {
		t.Fatalf("mamori agents list -q: %q", ids)
	}
	var c commandJSON
	if err := json.Unmarshal([]byte(e.mamori(t, "agents", "scan", e.id, other, "--json")), &c); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Files int `json:"files"`
		Found []struct {
			Path string `json:"path"`
		} `json:"found"`
	}
	if err := json.Unmarshal(c.Result, &sum); c.State != "done" || err != nil || sum.Files != 2 || len(sum.Found) == 0 || sum.Found[0].Path != filepath.Join(other, "x.com") {
		t.Fatalf("scan command: %+v %s", c, c.Result)
	}
	if _, err := os.Stat(filepath.Join(other, "x.com")); !os.IsNotExist(err) {
		t.Error("the scanned test file was not quarantined")
	}

	var ag struct {
		Health struct {
			Scans      int `json:"scans"`
			Detections int `json:"detections"`
		} `json:"health"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, err := s.api("GET", "/api/v1/agents/"+e.id, e.readTok, nil, &ag); err == nil && code == 200 && ag.Health.Detections >= 2 && ag.Health.Scans >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat health %+v", ag.Health)
		}
	}
}
