package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IngestOptions configures the ingest benchmark.
type IngestOptions struct {
	Events  int    // messages per run
	Conns   int    // parallel TCP connections
	Runs    int    // repetitions; the median is reported
	Bin     string // mamori binary to start (default: this executable)
	RSyslog bool   // also measure rsyslogd imtcp → omfile
	// CPUProfile, when set, saves the server's CPU profile of the first
	// ProfileSecs seconds of the run there (from /debug/pprof/profile).
	CPUProfile  string
	ProfileSecs int
	// Target, when set, is the data dir of a server already running (its
	// run/addresses.json and admin.token are read) instead of a fresh one.
	Target string
	Out    io.Writer
	// NoDetect runs the server without the detection engine (the baseline
	// the detection cost is compared with).
	NoDetect bool
	// Rules are Sigma rule directories the server loads (--rules).
	Rules []string
	// Indicators, when > 0, loads that many synthetic indicators before
	// sending.
	Indicators int
}

// IngestResult is one run's figures.
type IngestResult struct {
	MamoriEPS  float64
	RSSMB      float64
	RSyslogEPS float64
	SendSecs   float64
	TotalSecs  float64
	// With detection: when the detection consumer had evaluated every
	// event, and the p99 of event arrival → finding (from the server's
	// histogram; bucket upper bound).
	DetectSecs   float64
	LatencyP99   float64
	Findings     float64
	IntelLoadSec float64
}

// makeFrames builds conns buffers of octet-counted RFC 5424 messages that
// carry a unique run marker, so the benchmark can count what is searchable.
func makeFrames(events, conns int, marker string) [][]byte {
	bufs := make([][]byte, conns)
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for c := 0; c < conns; c++ {
		var b bytes.Buffer
		for i := c; i < events; i += conns {
			// A real sshd line (parsed into user, source and outcome fields);
			// the run marker travels in structured data.
			msg := fmt.Sprintf("<38>1 %s fw-%02d.example.net sshd %d - [meta seq=\"%d\" run=\"%s\"] Failed password for invalid user admin%d from 198.51.100.%d port %d ssh2",
				ts, i%50, 1000+i%300, i, marker, i%97, i%254+1, 1024+i%60000)
			fmt.Fprintf(&b, "%d %s", len(msg), msg)
		}
		bufs[c] = b.Bytes()
	}
	return bufs
}

func send(addr string, bufs [][]byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(bufs))
	for _, b := range bufs {
		wg.Add(1)
		go func(b []byte) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := c.Write(b); err != nil {
				errs <- err
			}
		}(b)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

type server struct {
	cmd   *exec.Cmd
	dir   string
	http  string
	tcp   string
	token string
	pid   int
}

func readServer(s *server, dir string) error {
	var a struct {
		HTTP      string `json:"http"`
		SyslogTCP string `json:"syslog_tcp"`
		PID       int    `json:"pid"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "run", "addresses.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	s.http, s.tcp, s.pid = a.HTTP, a.SyslogTCP, a.PID
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		return err
	}
	s.token = strings.TrimSpace(string(tok))
	return nil
}

// attach uses a server that is already running with data dir dir.
func attach(dir string) (*server, error) {
	s := &server{}
	if err := readServer(s, dir); err != nil {
		return nil, fmt.Errorf("attach to server in %s: %w", dir, err)
	}
	return s, nil
}

func startMamori(o IngestOptions) (*server, error) {
	args := []string{"--syslog-tcp", "127.0.0.1:0"}
	for _, r := range o.Rules {
		args = append(args, "--rules", r)
	}
	var env []string
	if o.NoDetect {
		env = append(env, "MAMORI_DETECT_ENABLED=false")
	}
	if o.Indicators > 0 {
		// The synthetic indicators are loaded into an empty server: hunting
		// them in the (empty) store would only measure the retro-hunt queue.
		env = append(env, "MAMORI_DETECT_RETRO_HUNT=0")
	}
	return startServe(o.Bin, args, env)
}

// startServe runs `mamori serve` on a fresh data dir with the HTTP API on
// an ephemeral port and every other listener off unless args turn it on.
func startServe(bin string, args, env []string) (*server, error) {
	dir, err := os.MkdirTemp("", "mamori-bench")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	all := append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--syslog-udp", "", "--syslog-tcp", "",
		"--syslog-tls", "", "--relp", "", "--log-level", "warn"}, args...)
	s.cmd = exec.Command(bin, all...)
	s.cmd.Env = append(os.Environ(), env...)
	logf, _ := os.Create(filepath.Join(dir, "server.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := readServer(s, dir); err == nil && s.pid == s.cmd.Process.Pid {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("mamori serve did not start; see " + filepath.Join(dir, "server.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	}
	_ = os.RemoveAll(s.dir)
}

func (s *server) count(marker string) (uint64, error) {
	// A LogsQL word filter uses the engine's bloom filters: polling stays cheap.
	q := url.Values{"q": {`"` + marker + `"`}, "lang": {"logsql"}, "from": {"-1h"}, "limit": {"0"}, "histogram": {"false"}}
	req, _ := http.NewRequest("GET", "http://"+s.http+"/api/v1/events?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Total uint64 `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return r.Total, nil
}

func (s *server) profile(path string, secs int) {
	if secs <= 0 {
		secs = 5
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.http, secs), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// PeakRSSMB reads a process's peak resident set (VmHWM) in MiB.
func PeakRSSMB(pid int) float64 { return procStatusMB(pid, "VmHWM:") }

// procStatusMB reads a kB field of /proc/PID/status, in MiB.
func procStatusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func runMamori(ctx context.Context, o IngestOptions, run int) (IngestResult, error) {
	var s *server
	var err error
	if o.Target != "" {
		s, err = attach(o.Target)
	} else {
		s, err = startMamori(o)
		if err == nil {
			defer s.stop()
		}
	}
	if err != nil {
		return IngestResult{}, err
	}
	var intelSecs float64
	if o.Indicators > 0 {
		t0 := time.Now()
		if err := s.loadIndicators(o.Indicators); err != nil {
			return IngestResult{}, fmt.Errorf("indicators: %w", err)
		}
		intelSecs = time.Since(t0).Seconds()
	}
	marker := fmt.Sprintf("benchrun%d%d", time.Now().UnixNano(), run)
	bufs := makeFrames(o.Events, o.Conns, marker)
	if o.CPUProfile != "" {
		go s.profile(o.CPUProfile, o.ProfileSecs)
	}
	start := time.Now()
	if err := send(s.tcp, bufs); err != nil {
		return IngestResult{}, fmt.Errorf("send: %w", err)
	}
	sent := time.Since(start)
	var n uint64
	for {
		n, err = s.count(marker)
		if err != nil {
			return IngestResult{}, err
		}
		if n >= uint64(o.Events) {
			break
		}
		if time.Since(start) > 10*time.Minute || ctx.Err() != nil {
			return IngestResult{}, fmt.Errorf("only %d of %d events searchable after %s", n, o.Events, time.Since(start).Round(time.Second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	total := time.Since(start)
	res := IngestResult{MamoriEPS: float64(o.Events) / total.Seconds(), RSSMB: PeakRSSMB(s.pid), SendSecs: sent.Seconds(), TotalSecs: total.Seconds(),
		IntelLoadSec: intelSecs}
	if !o.NoDetect {
		for {
			m, err := s.metrics()
			if err != nil {
				return res, err
			}
			if m.detected >= float64(o.Events) {
				res.DetectSecs = time.Since(start).Seconds()
				res.LatencyP99, res.Findings = m.p99, m.findings
				break
			}
			if time.Since(start) > 10*time.Minute {
				return res, fmt.Errorf("detection evaluated only %.0f of %d events", m.detected, o.Events)
			}
			time.Sleep(100 * time.Millisecond)
		}
		res.RSSMB = PeakRSSMB(s.pid)
	}
	return res, nil
}

// runRSyslog measures rsyslogd receiving the same frames over imtcp and
// writing them to a file: the receive-and-write-to-disk ceiling.
func runRSyslog(o IngestOptions) (float64, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		return 0, errors.New("rsyslogd not installed (apt-get install rsyslog)")
	}
	dir, err := os.MkdirTemp("", "mamori-bench-rsyslog")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	out := filepath.Join(dir, "out.log")
	conf := fmt.Sprintf(`global(workDirectory="%s" maxMessageSize="64k")
module(load="imtcp" MaxSessions="64")
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="w")
ruleset(name="w" queue.type="LinkedList" queue.size="500000" queue.dequeueBatchSize="1024") {
  action(type="omfile" file="%s" template="RSYSLOG_FileFormat" asyncWriting="on" flushOnTXEnd="off" ioBufferSize="256k")
}
`, dir, port, out)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, "-n", "-f", cf, "-i", filepath.Join(dir, "pid"))
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			return 0, fmt.Errorf("rsyslogd did not listen: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bufs := makeFrames(o.Events, o.Conns, "rsyslogrun")
	start := time.Now()
	if err := send(addr, bufs); err != nil {
		return 0, err
	}
	for {
		n, _ := countLines(out)
		if n >= o.Events {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return 0, fmt.Errorf("rsyslog wrote %d of %d lines", n, o.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(o.Events) / time.Since(start).Seconds(), nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n, nil
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// Ingest runs the benchmark and prints one line per run and a summary.
func Ingest(ctx context.Context, o IngestOptions) error {
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Bin = exe
	}
	var eps, rss, rs []float64
	for i := 0; i < o.Runs; i++ {
		r, err := runMamori(ctx, o, i)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		eps, rss = append(eps, r.MamoriEPS), append(rss, r.RSSMB)
		line := fmt.Sprintf("run %d: mamori %.0f events/s (sent in %.2fs, searchable after %.2fs), peak RSS %.0f MiB", i+1, r.MamoriEPS, r.SendSecs, r.TotalSecs, r.RSSMB)
		if !o.NoDetect {
			line += fmt.Sprintf("; detection done after %.2fs, %.0f findings, finding latency p99 ≤ %gs", r.DetectSecs, r.Findings, r.LatencyP99)
			if r.IntelLoadSec > 0 {
				line += fmt.Sprintf(" (%d indicators loaded in %.1fs first)", o.Indicators, r.IntelLoadSec)
			}
		}
		if o.RSyslog {
			v, err := runRSyslog(o)
			if err != nil {
				return fmt.Errorf("rsyslog run %d: %w", i+1, err)
			}
			rs = append(rs, v)
			line += fmt.Sprintf("; rsyslog imtcp→omfile %.0f events/s", v)
		}
		fmt.Fprintln(o.Out, line)
	}
	summary := fmt.Sprintf("ingest events=%d conns=%d runs=%d mamori_eps=%.0f peak_rss_mb=%.0f", o.Events, o.Conns, o.Runs, median(eps), median(rss))
	if o.RSyslog {
		summary += fmt.Sprintf(" rsyslog_eps=%.0f ratio=%.2f", median(rs), median(eps)/median(rs))
	}
	fmt.Fprintln(o.Out, summary)
	return nil
}
