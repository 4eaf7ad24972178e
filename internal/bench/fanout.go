package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-soc/mamori/internal/agent"
	"github.com/mamori-soc/mamori/internal/client"
	"github.com/mamori-soc/mamori/internal/fleet"
)

// FanoutOptions configures the fan-out benchmark.
type FanoutOptions struct {
	Agents int
	Runs   int    // bandage releases measured; medians are reported
	Bin    string // mamori binary to start (default: this executable)
	// DeltaKB is the size of the main-channel delta measured after the
	// bandages (0: skip the delta and rollback steps).
	DeltaKB int
	Out     io.Writer
	// CPUProfile, when set, saves this process's CPU profile (the agents'
	// side) of the measured releases there; ServerCPUProfile the server's
	// over the same time (from its /debug/pprof/profile).
	CPUProfile       string
	ServerCPUProfile string
}

// Fanout starts a server and o.Agents simulated agents in this process.
// Each is a real agent.Agent in verify-only mode: it follows the push
// stream, verifies the signed metadata (timestamp, snapshot, targets or
// bandage role) and the blob hash for real, applies the delta, and reports
// the release active; it does not compile the set. The clock runs from
// just before the publish request to each agent's activation.
func Fanout(ctx context.Context, o FanoutOptions) error {
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Bin = exe
	}
	o.Agents, o.Runs = max(o.Agents, 1), max(o.Runs, 1)
	// Each simulated agent holds a push stream and fetch connections, in
	// this process and in the server (which inherits the limit). Raise the
	// descriptor limit as far as the machine lets us; where its hard limit
	// is lower than real agents would need (this VM: 20,000), the agents
	// share fewer fetch connections so that neither side runs out (it did:
	// HTTP 500s, failed dials and a failed publish at 10,000 agents).
	limit := raiseNoFile(uint64(4*o.Agents + 4096))
	fetchConns := 0 // unlimited
	if need := uint64(3*o.Agents + 4096); limit < need {
		fetchConns = max(int(limit)-o.Agents-4096, 256)
		fmt.Fprintf(o.Out, "descriptor limit %d: the agents share at most %d fetch connections\n", limit, fetchConns)
	}
	// One ring: this measures delivery, not the rollout's soak time.
	s, err := startServe(o.Bin, nil, []string{"MAMORI_DETECT_ENABLED=false", "MAMORI_PATTERNS_RINGS=100"})
	if err != nil {
		return err
	}
	defer s.stop()
	base := "http://" + s.http
	api := client.New(base, s.token)
	admin := func(method, path string, body, out any) error { return api.JSON(ctx, method, path, body, out) }
	if err := admin("POST", "/api/v1/tenants", map[string]string{"name": "bench"}, nil); err != nil {
		return err
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := admin("POST", "/api/v1/tenants/bench/tokens", map[string]string{"kind": "enroll"}, &tok); err != nil {
		return err
	}

	fmt.Fprintf(o.Out, "enrolling %d agents …\n", o.Agents)
	tr := streamRouter{
		stream: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
		fetch:  &http.Transport{MaxIdleConnsPerHost: 2*o.Agents + 16, MaxConnsPerHost: fetchConns, DisableCompression: true},
	}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	ids := make([]agent.Identity, o.Agents)
	if err := parallel(ctx, o.Agents, 16, func(i int) error {
		id, err := agent.Enroll(ctx, hc, base, tok.Token, fleet.Info{Hostname: fmt.Sprintf("sim-%05d", i), OS: "sim"})
		ids[i] = id
		return err
	}); err != nil {
		return err
	}

	// Activation times per (channel, version), and first syncs.
	type key struct {
		ch string
		v  uint64
	}
	var mu sync.Mutex
	var t0 time.Time
	acts := map[key][]time.Duration{}
	var synced atomic.Int64
	var syncErrs atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{}
	actx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	var wg sync.WaitGroup
	for i := range ids {
		first := true
		a, err := agent.New(ids[i], agent.Options{
			VerifyOnly: true, Heartbeat: -1, Channels: []string{"bandage", "main"}, HTTP: hc,
			Logger: slog.New(slog.DiscardHandler),
			OnActive: func(ch string, v uint64) {
				mu.Lock()
				acts[key{ch, v}] = append(acts[key{ch, v}], time.Since(t0))
				mu.Unlock()
			},
			OnSync: func(err error) {
				if err != nil {
					syncErrs.Add(1)
					msg := err.Error()
					if len(msg) > 200 {
						msg = msg[:200]
					}
					errMu.Lock()
					errKinds[msg]++
					errMu.Unlock()
				}
				if first {
					first = false
					synced.Add(1)
				}
			},
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(actx) }()
		if i%200 == 199 { // stay under the listen backlog
			time.Sleep(20 * time.Millisecond)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); synced.Load() < int64(o.Agents); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents connected", synced.Load(), o.Agents)
		}
	}
	time.Sleep(time.Second)
	idleRSS := rssMB(s.pid)
	fmt.Fprintf(o.Out, "%d agents connected; server RSS %.0f MB\n", o.Agents, idleRSS)

	publish := func(channel string, body any) (uint64, int64, error) {
		var rel struct {
			Version uint64 `json:"version"`
			Deltas  []struct {
				From   uint64 `json:"from"`
				Length int64  `json:"length"`
			} `json:"deltas"`
			Full struct {
				Length int64 `json:"length"`
			} `json:"full"`
		}
		mu.Lock()
		t0 = time.Now()
		mu.Unlock()
		if err := admin("POST", "/api/v1/patterns/"+channel, body, &rel); err != nil {
			return 0, 0, err
		}
		size := rel.Full.Length
		for _, d := range rel.Deltas {
			if d.From == rel.Version-1 {
				size = d.Length
			}
		}
		return rel.Version, size, nil
	}
	wait := func(channel string, v uint64) []time.Duration {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			n := len(acts[key{channel, v}])
			mu.Unlock()
			if n >= o.Agents {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acts[key{channel, v}])
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var serverProf chan error
	if o.ServerCPUProfile != "" {
		serverProf = make(chan error, 1)
		pctx, stopProf := context.WithCancel(ctx)
		defer stopProf()
		go func() { serverProf <- saveServerProfile(pctx, base, s.token, o.ServerCPUProfile, 5*o.Runs+10) }()
		time.Sleep(200 * time.Millisecond)
	}
	var p50s, p99s, maxs, cpus []float64
	var wire int64
	for run := 1; run <= o.Runs; run++ {
		cpu0 := procCPUSeconds(s.pid)
		v, size, err := publish("bandage", map[string]any{"records": []string{randomHashRecord("Bandage.Bench." + strconv.Itoa(run))}})
		if err != nil {
			return err
		}
		wire = size
		st := summarize(wait("bandage", v), o.Agents)
		// The server's own CPU per agent-update: what the server would need
		// if the agents ran on their own machines, not on these cores.
		cpuMS := (procCPUSeconds(s.pid) - cpu0) * 1000 / float64(o.Agents)
		fmt.Fprintf(o.Out, "run %d: bandage %d (blob %d B) %s; server CPU %.2f ms per agent\n", run, v, size, st, cpuMS)
		p50s, p99s, maxs, cpus = append(p50s, st.p50), append(p99s, st.p99), append(maxs, st.max), append(cpus, cpuMS)
		time.Sleep(time.Second)
	}
	fmt.Fprintf(o.Out, "fanout agents=%d p50=%.2fs p99=%.2fs max=%.2fs server_rss_mb=%.0f bandage_blob_bytes=%d sync_errors=%d server_cpu_ms_per_agent=%.2f\n",
		o.Agents, median(p50s), median(p99s), median(maxs), idleRSS, wire, syncErrs.Load(), median(cpus))
	if serverProf != nil {
		if err := <-serverProf; err != nil {
			fmt.Fprintf(o.Out, "server profile: %v\n", err)
		}
	}

	if o.DeltaKB > 0 {
		recs := []string{randomHashRecord("Main.Bench.Base")}
		v, _, err := publish("main", map[string]any{"records": recs})
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "main %d (base) %s\n", v, summarize(wait("main", v), o.Agents))
		// Random sha256 records compress to ~40 B each in the delta.
		for i := 0; i < o.DeltaKB*1024/40; i++ {
			recs = append(recs, randomHashRecord("Main.Bench."+strconv.Itoa(i)))
		}
		v2, size, err := publish("main", map[string]any{"records": recs})
		if err != nil {
			return err
		}
		st := summarize(wait("main", v2), o.Agents)
		fmt.Fprintf(o.Out, "fanout-delta agents=%d delta_kb=%d p50=%.2fs p99=%.2fs max=%.2fs\n", o.Agents, size/1024, st.p50, st.p99, st.max)
		time.Sleep(time.Second)
		v3, _, err := publish("main", map[string]any{"rollback_to": v})
		if err != nil {
			return err
		}
		st = summarize(wait("main", v3), o.Agents)
		fmt.Fprintf(o.Out, "fanout-rollback agents=%d p50=%.2fs p99=%.2fs max=%.2fs\n", o.Agents, st.p50, st.p99, st.max)
	}
	fmt.Fprintf(o.Out, "server peak RSS %.0f MB\n", PeakRSSMB(s.pid))
	for k, n := range errKinds {
		fmt.Fprintf(o.Out, "sync error ×%d: %s\n", n, k)
	}
	stopAgents()
	wg.Wait()
	return nil
}

type spread struct {
	n              int
	p50, p99, max  float64
	reached, total int
}

func (s spread) String() string {
	return fmt.Sprintf("active on %d/%d: p50=%.3fs p99=%.3fs max=%.3fs", s.reached, s.total, s.p50, s.p99, s.max)
}

// summarize takes the activation delays; agents that never activated
// count as +Inf, so a missing 1 % shows in p99.
func summarize(ds []time.Duration, total int) spread {
	xs := make([]float64, 0, total)
	for _, d := range ds {
		xs = append(xs, d.Seconds())
	}
	reached := len(xs)
	for len(xs) < total {
		xs = append(xs, math.Inf(1))
	}
	slices.Sort(xs)
	at := func(q float64) float64 { return xs[max(int(math.Ceil(q*float64(len(xs))))-1, 0)] }
	return spread{n: total, p50: at(0.5), p99: at(0.99), max: xs[len(xs)-1], reached: reached, total: total}
}

func randomHashRecord(name string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "hash " + name + " " + hex.EncodeToString(b[:]) + ":*"
}

// parallel runs fn(0..n-1) on workers goroutines; the first error wins.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					errc <- ctx.Err()
					return
				}
				if err := fn(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// rssMB is the current resident set of a process.
func rssMB(pid int) float64 { return procStatusMB(pid, "VmRSS:") }

// procCPUSeconds is the CPU time (user + system) a process used so far,
// from /proc/PID/stat (0 where there is none).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15 (clock ticks, 100/s).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// saveServerProfile saves the server's CPU profile over the next seconds.
func saveServerProfile(ctx context.Context, base, token, path string, seconds int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// streamRouter sends the agents' push streams and their fetches through
// separate transports, so that a cap on fetch connections never keeps a
// stream from opening.
type streamRouter struct{ stream, fetch *http.Transport }

func (r streamRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/events") {
		return r.stream.RoundTrip(req)
	}
	return r.fetch.RoundTrip(req)
}
