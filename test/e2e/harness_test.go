package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

var mamoriBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mamori-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mamoriBin = filepath.Join(dir, "mamori")
	build := exec.Command("go", "build", "-o", mamoriBin, "github.com/mamori-soc/mamori/cmd/mamori")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mamori:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need skips (or fails under MAMORI_REQUIRE_ALL=1) when a real sender is missing.
func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			testutil.Missing(t, "%s not installed; run scripts/test-deps.sh", b)
		}
	}
}

// needFile skips (or fails under MAMORI_REQUIRE_ALL=1) when a file is missing.
func needFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		testutil.Missing(t, "%s missing; run scripts/test-deps.sh", path)
	}
}

func corpus(t *testing.T, rel string) string { return testutil.Corpus(t, rel) }

type addresses struct {
	HTTP      string `json:"http"`
	SyslogUDP string `json:"syslog_udp"`
	SyslogTCP string `json:"syslog_tcp"`
	SyslogTLS string `json:"syslog_tls"`
	RELP      string `json:"relp"`
	TLSCert   string `json:"tls_cert"`
	AgentsTLS string `json:"agents_tls"`
	PID       int    `json:"pid"`
}

type server struct {
	t     *testing.T
	data  string
	args  []string
	cmd   *exec.Cmd
	out   *bytes.Buffer
	addr  addresses
	token string
}

// startServer runs mamori serve on ephemeral ports with data in dir (a new
// temp dir when empty).
func startServer(t *testing.T, dir string, extra ...string) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s := &server{t: t, data: dir}
	s.args = append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--syslog-udp", "127.0.0.1:0",
		"--syslog-tcp", "127.0.0.1:0", "--syslog-tls", "127.0.0.1:0", "--relp", "127.0.0.1:0", "--agents-tls", agentsTLSFor(extra)}, extra...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

// agentsTLSFor is the agents' TLS listener for a server started with
// extra: loopback, ephemeral. A test that moves --http off loopback (agents
// in another network namespace) without naming --agents-tls gets none:
// its agents could not reach a loopback listener, and enroll with a bearer
// credential on the HTTP port as before.
func agentsTLSFor(extra []string) string {
	if slices.Contains(extra, "--agents-tls") {
		return "127.0.0.1:0" // the test's own flag comes later and wins
	}
	if i := slices.Index(extra, "--http"); i >= 0 && i+1 < len(extra) && !strings.HasPrefix(extra[i+1], "127.0.0.1:") {
		return ""
	}
	return "127.0.0.1:0"
}

func (s *server) start() {
	t := s.t
	t.Helper()
	_ = os.Remove(filepath.Join(s.data, "run", "addresses.json"))
	s.out = &bytes.Buffer{}
	s.cmd = exec.Command(mamoriBin, s.args...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.Env = append(os.Environ(), "MAMORI_LOG_FORMAT=json", "MAMORI_LOG_LEVEL=info")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(s.data, "run", "addresses.json"))
		if err == nil && json.Unmarshal(b, &s.addr) == nil && s.addr.PID == s.cmd.Process.Pid {
			break
		}
		if time.Now().After(deadline) || (s.cmd.ProcessState != nil) {
			t.Fatalf("server did not start; output:\n%s", s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(s.data, "admin.token"))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	s.token = strings.TrimSpace(string(tok))
}

// stop sends SIGINT and waits for a clean exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			s.t.Errorf("server exit: %v\n%s", err, s.out.String())
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		s.t.Errorf("server did not stop within 60s after SIGINT\n%s", s.out.String())
	}
}

// kill9 kills the server with SIGKILL, as a crash would.
func (s *server) kill9() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// cli runs the mamori CLI against s with its admin token and returns its
// trimmed output; a failure fails the test.
func (s *server) cli(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(mamoriBin, args...)
	cmd.Env = append(os.Environ(), "MAMORI_SERVER=http://"+s.addr.HTTP, "MAMORI_TOKEN="+s.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("mamori %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (s *server) url(path string) string { return "http://" + s.addr.HTTP + path }

// api calls the API with token (admin when empty) and decodes JSON into out.
func (s *server) api(method, path, token string, body io.Reader, out any) (int, error) {
	if token == "" {
		token = s.token
	}
	req, _ := http.NewRequest(method, s.url(path), body)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

type searchResp struct {
	Total  uint64              `json:"total"`
	Events []map[string]any    `json:"events"`
	Rows   []map[string]string `json:"rows"`
	LogsQL string              `json:"logsql"`
	Code   string              `json:"code"`
	Detail string              `json:"detail"`
}

func (s *server) search(q string, extra url.Values) (searchResp, int) {
	s.t.Helper()
	v := url.Values{"q": {q}, "from": {"-30y"}, "limit": {"10"}}
	for k, vs := range extra {
		v[k] = vs
	}
	var r searchResp
	code, err := s.api("GET", "/api/v1/events?"+v.Encode(), "", nil, &r)
	if err != nil {
		s.t.Fatalf("search %q: %v", q, err)
	}
	return r, code
}

// waitCount polls until q matches want events (or the deadline), returning
// the last count seen.
func (s *server) waitCount(q string, want uint64, d time.Duration) uint64 {
	s.t.Helper()
	deadline := time.Now().Add(d)
	var last uint64
	for {
		r, code := s.search(q, url.Values{"limit": {"0"}})
		if code != 200 {
			s.t.Fatalf("search %q: HTTP %d %s %s", q, code, r.Code, r.Detail)
		}
		last = r.Total
		if last >= want || time.Now().After(deadline) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("bad addr %q", addr)
	}
	if _, err := strconv.Atoi(addr[i+1:]); err != nil {
		t.Fatalf("bad port in %q", addr)
	}
	return addr[:i], addr[i+1:]
}

func run(t *testing.T, ctx context.Context, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func (s *server) apiWithHeader(method, path string, body io.Reader, hdr map[string]string) (int, error) {
	req, _ := http.NewRequest(method, s.url(path), body)
	req.Header.Set("Authorization", "Bearer "+s.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *server) metrics() string {
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// restartSamePorts restarts a stopped or killed server on the ports it had,
// as senders configured with fixed addresses expect.
func (s *server) restartSamePorts() {
	s.t.Helper()
	flags := map[string]string{"--http": s.addr.HTTP, "--syslog-udp": s.addr.SyslogUDP, "--syslog-tcp": s.addr.SyslogTCP,
		"--syslog-tls": s.addr.SyslogTLS, "--relp": s.addr.RELP, "--agents-tls": s.addr.AgentsTLS}
	for i := 0; i+1 < len(s.args); i++ {
		if v, ok := flags[s.args[i]]; ok && v != "" {
			s.args[i+1] = v
		}
	}
	s.start()
}
