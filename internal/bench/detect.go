package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// loadIndicators posts n synthetic indicators (IPv4 addresses outside the
// benchmark's traffic, domains and SHA-256 hashes) in batches.
func (s *server) loadIndicators(n int) error {
	type src struct {
		Source     string `json:"source"`
		Confidence int    `json:"confidence"`
	}
	type ind struct {
		Type    string `json:"type"`
		Value   string `json:"value"`
		Sources []src  `json:"sources"`
	}
	const chunk = 20000
	for done := 0; done < n; {
		k := min(chunk, n-done)
		batch := make([]ind, k)
		for i := range batch {
			j := done + i
			var typ, val string
			switch j % 3 {
			case 0:
				typ, val = "ipv4", fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)
			case 1:
				typ, val = "domain", fmt.Sprintf("bad%d.example.net", j)
			default:
				typ, val = "sha256", fmt.Sprintf("%064x", j)
			}
			batch[i] = ind{Type: typ, Value: val, Sources: []src{{Source: "bench", Confidence: 60}}}
		}
		body, _ := json.Marshal(map[string]any{"indicators": batch})
		req, _ := http.NewRequest("POST", "http://"+s.http+"/api/v1/intel", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("POST /api/v1/intel: HTTP %d: %s", resp.StatusCode, msg)
		}
		done += k
	}
	return nil
}

type detectMetrics struct {
	detected, findings, p99 float64
}

// metrics reads the detection counters and the finding-latency histogram.
func (s *server) metrics() (detectMetrics, error) {
	var m detectMetrics
	req, _ := http.NewRequest("GET", "http://"+s.http+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	buckets := map[float64]float64{}
	var count float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case name == "mamori_detect_events_total":
			m.detected = v
		case strings.HasPrefix(name, "mamori_detect_findings_total{"):
			m.findings += v
		case name == "mamori_detect_alert_latency_seconds_count":
			count = v
		case strings.HasPrefix(name, `mamori_detect_alert_latency_seconds_bucket{le="`):
			le := strings.TrimSuffix(strings.TrimPrefix(name, `mamori_detect_alert_latency_seconds_bucket{le="`), `"}`)
			b, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				b, err = math.Inf(1), nil
			}
			if err == nil {
				buckets[b] = v
			}
		}
	}
	if count > 0 {
		les := make([]float64, 0, len(buckets))
		for le := range buckets {
			les = append(les, le)
		}
		sort.Float64s(les)
		for _, le := range les {
			if buckets[le] >= 0.99*count {
				m.p99 = le
				break
			}
		}
	}
	return m, sc.Err()
}
