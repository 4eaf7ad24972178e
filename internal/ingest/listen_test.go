package ingest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCloseConnsDrains: at shutdown, what a sender wrote before closing
// its side is still read and submitted, and an idle connection that stays
// open does not hold the shutdown for the whole grace period.
func TestCloseConnsDrains(t *testing.T) {
	b := openBus(t, 1<<30)
	seen, _ := consume(t, b, nil)
	p := NewPipeline(b, PipelineOptions{BatchEvents: 500, BatchWait: 5 * time.Millisecond, MaxPending: 100000, Metrics: NewMetrics(prometheus.NewRegistry())})
	l := &Listeners{Pipeline: p, Router: NewRouter("default"), MaxFrame: 64 << 10}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.ServeStream(ctx, ln, SourceTCP, "") }()

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000
	go func() {
		for i := 0; i < n; i++ {
			msg := fmt.Sprintf("<13>1 2026-11-25T10:00:00Z h app - - - drain seq=%d", i)
			fmt.Fprintf(busy, "%d %s", len(msg), msg)
		}
		busy.Close()
	}()
	// Shut down while the sender is still writing.
	time.Sleep(20 * time.Millisecond)
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.CloseConns(30 * time.Second)
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("CloseConns took %v: the idle connection held it for the grace period", el)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(seen()); got != n {
		t.Fatalf("%d of %d frames written before the shutdown were submitted", got, n)
	}
}
