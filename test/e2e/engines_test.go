package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mamori-soc/mamori/internal/store/vltest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ingestHTTP posts n NDJSON events carrying marker and fails on anything
// but 202.
func ingestHTTP(t *testing.T, s *server, marker string, n int) {
	t.Helper()
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"message":"%s n=%d","host":{"name":"h%d"}}`+"\n", marker, i, i%7)
	}
	code, err := s.api("POST", "/api/v1/ingest", "", strings.NewReader(sb.String()), nil)
	if err != nil || code != 202 {
		t.Fatalf("ingest: %d %v", code, err)
	}
}

// TestVictoriaLogsEngines runs mamori serve against a VictoriaLogs single
// node and a cluster (two storage nodes behind a -storageNode front node),
// both built from the Go module proxy.
func TestVictoriaLogsEngines(t *testing.T) {
	single := vltest.StartSingle(t)
	cluster := vltest.StartCluster(t, 2)
	for name, url := range map[string]string{"single": single.URL, "cluster": cluster.Front.URL} {
		t.Run(name, func(t *testing.T) {
			u := strings.Replace(url, "http://", "victorialogs://", 1)
			s := startServer(t, "", "--events", u)
			marker := "vl-" + name
			ingestHTTP(t, s, marker, 3000)
			if got := s.waitCount(marker, 3000, 30*time.Second); got != 3000 {
				t.Fatalf("%s: %d of 3000 searchable", name, got)
			}
			r, code := s.search(marker+" | stats count() by host.name", nil)
			if code != 200 || len(r.Rows) != 7 {
				t.Fatalf("%s stats: %d rows %v", name, len(r.Rows), r.Rows)
			}
		})
	}
}

// TestNATSCluster runs mamori serve against three clustered NATS servers
// with the event stream replicated R3, and kills one node mid-way.
func TestNATSCluster(t *testing.T) {
	ports := make([]int, 3)
	cports := make([]int, 3)
	for i := range ports {
		ports[i], cports[i] = freePort(t), freePort(t)
	}
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*natsserver.Server
	for i := 0; i < 3; i++ {
		o := &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: ports[i], JetStream: true, StoreDir: t.TempDir(),
			Cluster: natsserver.ClusterOpts{Name: "mamori-test", Host: "127.0.0.1", Port: cports[i]},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")), NoLog: true, NoSigs: true,
		}
		s, err := natsserver.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		srvs = append(srvs, s)
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats node not ready")
		}
	}
	var urls []string
	for _, p := range ports {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	// JetStream needs a meta leader before streams can be created.
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream meta leader: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s := startServer(t, "", "--nats", strings.Join(urls, ","), "--nats-replicas", "3")
	info, err := js.Stream(context.Background(), "MAMORI_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	si, _ := info.Info(context.Background())
	if si.Config.Replicas != 3 || si.Cluster == nil || len(si.Cluster.Replicas) != 2 {
		t.Fatalf("stream not replicated R3: %+v", si.Cluster)
	}
	ingestHTTP(t, s, "natscluster-a", 2000)
	// Lose one node that is not the stream leader: R3 keeps quorum.
	for _, n := range srvs {
		if n.Name() != si.Cluster.Leader {
			n.Shutdown()
			break
		}
	}
	ingestHTTP(t, s, "natscluster-b", 2000)
	if got := s.waitCount("natscluster-a OR natscluster-b", 4000, 60*time.Second); got != 4000 {
		t.Fatalf("%d of 4000 searchable through the NATS cluster", got)
	}
}
