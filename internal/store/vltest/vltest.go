// Package vltest starts real VictoriaLogs servers for tests: a single node
// or a small cluster, on loopback ports, with data under t.TempDir(), stopped
// by t.Cleanup.
//
// The victoria-logs binary is built once from the Go module proxy
// (go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@Version)
// into $MAMORI_TEST_CACHE or $HOME/.cache/mamori-test/bin and reused after.
// When it cannot be built the test is skipped, unless MAMORI_REQUIRE_ALL=1
// (then it fails).
package vltest

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/testutil"
)

// Version is the VictoriaLogs release the tests run against; it matches the
// lib/logstorage version in go.mod.
const Version = "v1.52.1"

const pkg = "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"

// CacheDir is where the binary is kept.
func CacheDir() string {
	if d := os.Getenv("MAMORI_TEST_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "mamori-test", "bin")
	}
	return filepath.Join(home, ".cache", "mamori-test", "bin")
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the victoria-logs binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		if os.Getenv("MAMORI_REQUIRE_ALL") == "1" {
			t.Fatalf("vltest: cannot build victoria-logs %s: %v", Version, buildErr)
		}
		t.Skipf("vltest: cannot build victoria-logs %s (set MAMORI_REQUIRE_ALL=1 to fail instead): %v", Version, buildErr)
	}
	return buildPath
}

func build() (string, error) {
	dir := CacheDir()
	// The file name carries the version, so a version bump rebuilds.
	final := filepath.Join(dir, "victoria-logs-"+Version)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		return final, nil
	}
	// go install writes $GOBIN/victoria-logs; use a private GOBIN so that
	// concurrent test binaries do not race, then rename into place.
	plain := filepath.Join(dir, "victoria-logs")
	if fi, err := os.Stat(plain); err == nil && fi.Mode().IsRegular() && versionOf(plain) == Version {
		if err := os.Link(plain, final); err == nil || os.IsExist(err) {
			return final, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", pkg+"@"+Version)
	cmd.Dir = os.TempDir() // outside any module: install the module's own pinned dependencies
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", pkg, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "victoria-logs"), final); err != nil {
		return "", err
	}
	return final, nil
}

// versionOf returns the VictoriaLogs module version a binary was built from ("" when unknown).
func versionOf(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil || bi.Main.Path != "github.com/VictoriaMetrics/VictoriaLogs" {
		return ""
	}
	return bi.Main.Version
}

// Node is a running victoria-logs process.
type Node struct {
	Addr    string // host:port
	URL     string // http://host:port
	DataDir string // "" for a cluster insert/select node
	cmd     *exec.Cmd
	out     *testutil.Buffer
	done    chan struct{}
}

// CommonFlags are passed to every node: accept data up to 30 years old, log warnings only.
var CommonFlags = []string{"-retentionPeriod=30y", "-loggerLevel=WARN"}

// StartSingle starts a single-node server with deletes enabled.
func StartSingle(t testing.TB, extra ...string) *Node {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"-storageDataPath=" + dir, "-delete.enable"}, extra...)
	n := Start(t, args...)
	n.DataDir = dir
	return n
}

// Cluster is a VictoriaLogs cluster: storage nodes plus one node started with
// -storageNode that serves both insert and select.
type Cluster struct {
	Front   *Node
	Storage []*Node
}

// StartCluster starts storageNodes storage nodes and a front node.
func StartCluster(t testing.TB, storageNodes int) *Cluster {
	t.Helper()
	c := &Cluster{}
	var addrs []string
	for i := 0; i < storageNodes; i++ {
		dir := t.TempDir()
		n := Start(t, "-storageDataPath="+dir, "-internaldelete.enable")
		n.DataDir = dir
		c.Storage = append(c.Storage, n)
		addrs = append(addrs, n.Addr)
	}
	c.Front = Start(t, "-storageNode="+strings.Join(addrs, ","), "-delete.enable")
	return c
}

// StorageURLs returns the base URLs of the storage nodes.
func (c *Cluster) StorageURLs() []string {
	var u []string
	for _, n := range c.Storage {
		u = append(u, n.URL)
	}
	return u
}

// Start runs victoria-logs with args (plus CommonFlags and -httpListenAddr on a free
// loopback port), waits for /health and registers its stop with t.Cleanup.
func Start(t testing.TB, args ...string) *Node {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := start(bin, args)
		if err == nil {
			t.Cleanup(func() {
				n.Stop()
				if t.Failed() {
					t.Logf("victoria-logs %s output:\n%s", n.Addr, tail(n.out.String(), 4000))
				}
			})
			return n
		}
		lastErr = err // most likely the port was taken meanwhile: try another
	}
	t.Fatalf("vltest: cannot start victoria-logs %v: %v", args, lastErr)
	return nil
}

func start(bin string, args []string) (*Node, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	all := append([]string{"-httpListenAddr=" + addr}, CommonFlags...)
	all = append(all, args...)
	n := &Node{Addr: addr, URL: "http://" + addr, out: &testutil.Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, all...)
	n.cmd.Stdout = n.out
	n.cmd.Stderr = n.out
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-n.done:
			return nil, fmt.Errorf("exited early: %s", tail(n.out.String(), 2000))
		default:
		}
		resp, err := http.Get(n.URL + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, fmt.Errorf("no /health after 30s: %s", tail(n.out.String(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop terminates the node (SIGTERM, then SIGKILL after 10s).
func (n *Node) Stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Output returns what the node printed so far.
func (n *Node) Output() string { return n.out.String() }

// freeAddr picks a free loopback port (listen on :0, close, use).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
