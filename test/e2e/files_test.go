package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runOut(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

var summaryRe = regexp.MustCompile(`sent ([\d,]+), stored ([\d,]+), unparsed ([\d,]+)`)

func ingestCLI(t *testing.T, s *server, args ...string) (sent, stored int) {
	t.Helper()
	cmd := exec.Command(mamoriBin, append([]string{"ingest", "--server", "http://" + s.addr.HTTP}, args...)...)
	cmd.Env = append(os.Environ(), "MAMORI_TOKEN="+s.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mamori ingest: %v\n%s", err, out)
	}
	m := summaryRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no summary in %s", out)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(strings.ReplaceAll(s, ",", "")); return n }
	return atoi(m[1]), atoi(m[2])
}

// TestIngestEVTX sends the labelled attack EVTX corpus with `mamori ingest`
// and compares what is searchable with the reference record counts.
func TestIngestEVTX(t *testing.T) {
	dir := corpus(t, "evtx/sbousseaden-EVTX-ATTACK-SAMPLES")
	var manifest []struct {
		File    string `json:"file"`
		Records int    `json:"records"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "MANIFEST.reference-counts.json"))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &manifest)
	var files []string
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".evtx") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no evtx files")
	}
	s := startServer(t, "")
	// Attack samples are years old: the lab tenant keeps them (retention
	// applies to event time).
	addTenantCLI(t, s, "lab", "20y")
	// An unknown tenant is refused, not created.
	cmd := exec.Command(mamoriBin, "ingest", "--tenant", "nosuch", "--server", "http://"+s.addr.HTTP, "--token", s.token, files[0])
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "tenant_unknown") {
		t.Fatalf("ingest into an unknown tenant: %v %s", err, out)
	}
	sent, stored := ingestCLI(t, s, append([]string{"--tenant", "lab"}, files...)...)
	if sent != stored {
		t.Fatalf("sent %d, stored %d", sent, stored)
	}
	got := s.waitCount("mamori.source:http AND winlog.event_id:*", uint64(stored), 60*time.Second)
	ref := 0
	for _, f := range manifest {
		ref += f.Records
	}
	t.Logf("evtx: %d files, %d records sent, %d searchable, reference (python-evtx) %d", len(files), sent, got, ref)
	if got != uint64(stored) {
		t.Fatalf("searchable %d != stored %d", got, stored)
	}
	if ref > 0 && stored < ref {
		t.Fatalf("stored %d records, fewer than the reference %d", stored, ref)
	}
	// Attack data is searchable by ECS/winlog fields: e.g. Sysmon process creation.
	r, _ := s.search(`winlog.event_id:1 AND winlog.channel:"Microsoft-Windows-Sysmon/Operational"`, nil)
	if r.Total == 0 {
		t.Fatalf("no Sysmon EventID 1 found (%s)", r.LogsQL)
	}
}

// TestIngestSuricataZeek sends real Suricata EVE and Zeek JSON logs.
func TestIngestSuricataZeek(t *testing.T) {
	eve := filepath.Join(corpus(t, "netsec/suricata-schema-docs"), "eve-json-format.examples.ndjson")
	s := startServer(t, "")
	addTenantCLI(t, s, "lab", "20y")
	sent, stored := ingestCLI(t, s, "--tenant", "lab", eve)
	if sent == 0 || sent != stored {
		t.Fatalf("eve: sent %d stored %d", sent, stored)
	}
	if got := s.waitCount(`observer.product:suricata OR suricata.event_type:*`, uint64(stored), 30*time.Second); got != uint64(stored) {
		t.Fatalf("%d of %d events recognised as Suricata EVE", got, stored)
	}
	r, _ := s.search(`event.kind:alert AND rule.name:*`, url.Values{"tenant": {"lab"}})
	t.Logf("suricata: %d events, %d alerts with rule.name", stored, r.Total)
	if r.Total == 0 {
		t.Errorf("no EVE alert mapped to rule.name")
	}
}

func addTenantCLI(t *testing.T, s *server, name, retention string) {
	t.Helper()
	cmd := exec.Command(mamoriBin, "tenant", "add", name, "--retention", retention, "--server", "http://"+s.addr.HTTP, "--token", s.token)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tenant add: %v %s", err, out)
	}
}
